"""Gateway group: the gateway scale-out nodes (`gateway_scale_out`), an Auto Scaling group across both node subnets
in the load balancer's gateway and WebSocket target groups, its own security group, role and launch template.

Defaults: the launch template as a pair node's instance (the pair's AMI, IMDSv2 required with hop limit 1, an
encrypted gp3 root volume under the stack's key, no SSH key, the role's instance profile, detailed monitoring) with
every node's same user data; a launch lifecycle hook holds a new node in Pending:Wait, out of the target groups, for
up to `ready_seconds` until the node says it is ready (it completes the hook; a node never ready is abandoned and
replaced); then the group's health is the load balancer's, counted after `warmup_seconds` (its grace period and its
instances' warm-up); a target-tracking policy sets the size between `min_size` and `max_size` (the group's desired
capacity is the policy's: never set here); a termination lifecycle hook waits up to `drain_seconds` for a leaving
node to stop API-M (the node completes it; its default result is CONTINUE); a new launch template version is rolled
out by an instance refresh (`refresh_min/max_healthy_percent`); a deploy does not wait for the nodes to boot
(`wait_for_capacity_timeout` "0"). The group's metrics are collected every minute; it, its nodes and their volumes
and network interfaces carry the stack's tags.
Both hooks are the group's initial hooks (in place before its first launch) and also resources of their own, which
change them in place (the provider replaces the whole group on any change of an initial hook).
Security group: egress to the pair's group on its peer ports (the control plane, the traffic managers, the
brokers), HTTPS to AWS APIs and S3, an external Key Manager's port in `key_manager.cidr`; the stack adds the rest
(the load balancer, the database) through rule(); the group launches once every egress rule is there.
The role: Session Manager, read of the S3 artifacts, the given statements, this group's lifecycle (its nodes' states,
CompleteLifecycleAction on this group only); grant() adds more (the CloudWatch agent's).
Instance termination protection does not apply: the group terminates its own nodes.
Exposes: group_name, launch_template_id, security_group_id; rule(), grant().
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, ITerraformDependable, TerraformLocal, TerraformResourceLifecycle, Token
from constructs import Construct

from apim_active_active import aws, ports
from apim_active_active.constructs.node_identity import artifact_read_policy
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.gateway_settings import GatewayScaleOutSettings
from apim_active_active.iam_documents import assume_role_policy, policy_document
from apim_active_active.names import (
    LAUNCHING,
    TERMINATING,
    gateway_group_name,
    gateway_lifecycle_hook_name,
    gateway_ready_hook_name,
    resource_name,
)
from apim_active_active.settings import KeyManagerSettings

ROOT_DEVICE = "/dev/xvda"  # Amazon Linux 2023's root device (AL2023 User Guide, "EBS volumes": the AMI's /dev/xvda)
# The group's own metrics (EC2 Auto Scaling User Guide, "Amazon CloudWatch metrics for Amazon EC2 Auto Scaling": the
# Group* metrics, at 1-minute granularity), for the dashboard and status.
GROUP_METRICS = (
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
)
SCALING_METRIC = {"cpu": "ASGAverageCPUUtilization", "requests": "ALBRequestCountPerTarget"}


@dataclass(frozen=True)
class GatewayGroupProps:
    name_prefix: str
    gateway: GatewayScaleOutSettings
    region: str
    account_id: str
    vpc_id: str
    subnet_ids: list[str]  # the pair's node subnets, one per zone
    ami_id: str  # the pair's
    kms_key_arn: str  # the stack's: the root volumes
    user_data: str  # a Terraform expression giving the base64 of the gzipped cloud-config (every node's)
    artifact_urls: tuple[str, ...]  # what a node fetches at boot: those in S3 get a read grant
    statements: tuple[dict, ...]  # what the nodes may do with the pair's secrets and keys (before any node boots)
    pair_group_id: str  # the pair's security group: its peer ports are the gateways' control plane
    key_manager: KeyManagerSettings
    target_group_arns: tuple[str, ...]  # the load balancer's gateway and WebSocket target groups
    request_label: str  # ALBRequestCountPerTarget's resource label: "<lb arn suffix>/<gateway target group arn suffix>"
    tags: dict[str, str]  # the stack's default tags (the provider's default_tags reach neither the nodes nor volumes)


class GatewayGroup(Construct):
    def __init__(self, scope: Construct, id_: str, props: GatewayGroupProps) -> None:
        super().__init__(scope, id_)
        prefix, gateway = props.name_prefix, props.gateway
        name = resource_name(prefix, "gateway")
        group = aws.security_group.SecurityGroup(
            self, "group", name=name, description="WSO2 API-M gateway scale-out nodes", vpc_id=props.vpc_id, tags={"Name": name}
        )
        self.security_group_id: str = group.id
        self._egress: list[str] = []  # the group's egress rules: its nodes launch once they are all there
        self._nodes: aws.autoscaling_group.AutoscalingGroup | None = None
        for port, what in ports.PEERS.items():
            self.rule(f"to_pair_{port}", "egress", port, f"To the pair: {what}", peer_group=props.pair_group_id)
        if props.key_manager.cidr is not None:
            km = props.key_manager
            self.rule("egress_key_manager", "egress", km.port, f"External Key Manager at {km.cidr}", cidrs=[str(km.cidr)])
        self.rule("egress_https", "egress", ports.HTTPS, "HTTPS to AWS APIs and S3 (packages, product archive)", cidrs=["0.0.0.0/0"])

        # The partition of the ARNs the group writes (aws, aws-cn, aws-us-gov): the caller's. A local, so that the
        # policies' JSON holds a plain reference (no quoted expression).
        caller = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "caller")
        partition = TerraformLocal(self, "partition", Fn.element(Fn.split(":", caller.arn), 1)).as_string
        profile, policies = self._identity(props, name, gateway_group_name(prefix), partition)
        tags = {**props.tags, "Name": name}
        template = aws.launch_template.LaunchTemplate(
            self,
            "launch_template",
            name=name,
            description="WSO2 API-M gateway scale-out node",
            image_id=props.ami_id,
            instance_type=gateway.instance_type,
            iam_instance_profile=aws.launch_template.LaunchTemplateIamInstanceProfile(name=profile.name),
            vpc_security_group_ids=[group.id],
            user_data=props.user_data,
            ebs_optimized="true",
            monitoring=aws.launch_template.LaunchTemplateMonitoring(enabled=True),
            metadata_options=aws.launch_template.LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.launch_template.LaunchTemplateBlockDeviceMappings(
                    device_name=ROOT_DEVICE,
                    ebs=aws.launch_template.LaunchTemplateBlockDeviceMappingsEbs(
                        volume_type="gp3",
                        volume_size=gateway.root_volume_gb,
                        encrypted="true",
                        kms_key_id=props.kms_key_arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            # The nodes themselves are tagged by the group (its tags propagated at launch).
            tag_specifications=[
                aws.launch_template.LaunchTemplateTagSpecifications(resource_type=kind, tags=tags)
                for kind in ("volume", "network-interface")
            ],
            update_default_version=True,
            tags={"Name": name},
        )
        self.launch_template_id: str = template.id
        hooks = {
            "ready": (gateway_ready_hook_name(prefix), LAUNCHING, gateway.ready_seconds, "ABANDON"),
            "drain": (gateway_lifecycle_hook_name(prefix), TERMINATING, gateway.drain_seconds, "CONTINUE"),
        }
        asg = aws.autoscaling_group.AutoscalingGroup(
            self,
            "group_nodes",
            name=gateway_group_name(prefix),
            min_size=gateway.min_size,
            max_size=gateway.max_size,
            vpc_zone_identifier=props.subnet_ids,
            launch_template=aws.autoscaling_group.AutoscalingGroupLaunchTemplate(
                id=template.id, version=Token.as_string(template.latest_version)
            ),
            target_group_arns=list(props.target_group_arns),
            health_check_type="ELB",
            health_check_grace_period=gateway.warmup_seconds,
            default_instance_warmup=gateway.warmup_seconds,
            wait_for_capacity_timeout="0",
            enabled_metrics=list(GROUP_METRICS),
            metrics_granularity="1Minute",
            instance_refresh=aws.autoscaling_group.AutoscalingGroupInstanceRefresh(
                strategy="Rolling",
                preferences=aws.autoscaling_group.AutoscalingGroupInstanceRefreshPreferences(
                    min_healthy_percentage=gateway.refresh_min_healthy_percent,
                    max_healthy_percentage=gateway.refresh_max_healthy_percent,
                ),
            ),
            # In place before the first launch: the provider creates the group at size 0, puts these, then sizes it
            # (separate hooks alone would come after the first nodes had launched). Any change of them would replace
            # the group (ForceNew), so later changes are the hook resources' below.
            initial_lifecycle_hook=[
                aws.autoscaling_group.AutoscalingGroupInitialLifecycleHook(
                    name=hook, lifecycle_transition=transition, heartbeat_timeout=seconds, default_result=result
                )
                for hook, transition, seconds, result in hooks.values()
            ],
            lifecycle=TerraformResourceLifecycle(ignore_changes=["initial_lifecycle_hook"]),
            tag=[aws.autoscaling_group.AutoscalingGroupTag(key=k, value=v, propagate_at_launch=True) for k, v in sorted(tags.items())],
            depends_on=policies,  # a booting node reads the secrets at once; the egress rules: rule()
        )
        self._nodes = asg
        self._depend_on_egress()
        self.group_name: str = asg.name
        for id_, (hook, transition, seconds, result) in hooks.items():
            aws.autoscaling_lifecycle_hook.AutoscalingLifecycleHook(
                self,
                id_,
                name=hook,
                autoscaling_group_name=asg.name,
                lifecycle_transition=transition,
                heartbeat_timeout=seconds,
                default_result=result,
            )
        metric = aws.autoscaling_policy.AutoscalingPolicyTargetTrackingConfigurationPredefinedMetricSpecification(
            predefined_metric_type=SCALING_METRIC[gateway.scaling],
            resource_label=props.request_label if gateway.scaling == "requests" else None,
        )
        aws.autoscaling_policy.AutoscalingPolicy(
            self,
            "scaling",
            name=resource_name(prefix, f"gateway-{gateway.scaling}"),
            autoscaling_group_name=asg.name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=aws.autoscaling_policy.AutoscalingPolicyTargetTrackingConfiguration(
                predefined_metric_specification=metric,
                target_value=gateway.target_cpu_percent if gateway.scaling == "cpu" else gateway.target_requests,
            ),
        )

    def _identity(
        self, props: GatewayGroupProps, name: str, group_name: str, partition: str
    ) -> tuple[aws.iam_instance_profile.IamInstanceProfile, list[ITerraformDependable]]:
        """The nodes' role (and profile): Session Manager, the artifacts, the given statements, this group's hooks; and
        the policies a node uses before its group may launch it."""
        role = aws.iam_role.IamRole(self, "role", name=name, assume_role_policy=assume_role_policy("ec2.amazonaws.com"))
        self._role_id = role.id
        ssm_core = f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(self, "ssm_core", role=role.name, policy_arn=ssm_core)
        artifacts = artifact_read_policy(*props.artifact_urls)
        if artifacts:
            aws.iam_role_policy.IamRolePolicy(self, "artifacts", name="gateway-read-artifacts", role=role.id, policy=artifacts)
        group_arn = f"arn:{partition}:autoscaling:{props.region}:{props.account_id}:autoScalingGroup:*:autoScalingGroupName/{group_name}"
        lifecycle = [
            # Ready (the launch hook) and drained (the termination hook): this group's only.
            {"Sid": "CompleteOwnHooks", "Effect": "Allow", "Action": "autoscaling:CompleteLifecycleAction", "Resource": group_arn},
            # A leaving node waits for Terminating:Wait. DescribeAutoScalingInstances has no resource type to name
            # (Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2 Auto Scaling").
            {"Sid": "ReadLifecycleStates", "Effect": "Allow", "Action": "autoscaling:DescribeAutoScalingInstances", "Resource": "*"},
        ]
        policies: list[ITerraformDependable] = [self.grant("lifecycle", lifecycle), self.grant("use_secrets", list(props.statements))]
        profile = aws.iam_instance_profile.IamInstanceProfile(self, "profile", name=name, role=role.name)
        return profile, policies

    def rule(
        self, id_: str, direction: str, port: int, description: str, *, peer_group: str | None = None, cidrs: list[str] | None = None
    ) -> None:
        """One TCP rule on the gateway nodes' group, from/to a security group or CIDRs."""
        tcp_rule(self, id_, self.security_group_id, direction, port, description, peer_group=peer_group, cidrs=cidrs)
        if direction == "egress":
            made = self.node.find_child(id_)
            assert isinstance(made, aws.security_group_rule.SecurityGroupRule)
            self._egress.append(f"{made.terraform_resource_type}.{made.friendly_unique_id}")
            self._depend_on_egress()

    def _depend_on_egress(self) -> None:
        """A booting node reaches the pair, the database, AWS's APIs at once: the group waits for every egress rule."""
        if self._nodes is not None:
            self._nodes.depends_on = sorted({*(self._nodes.depends_on or []), *self._egress})

    def grant(self, id_: str, statements: list[dict]) -> aws.iam_role_policy.IamRolePolicy:
        """An inline policy of the gateway nodes' role with these statements (exact resources, please)."""
        name = f"gateway-{id_.replace('_', '-')}"  # apart from the pair role's policies of the same purpose
        return aws.iam_role_policy.IamRolePolicy(self, id_, name=name, role=self._role_id, policy=policy_document(statements))
