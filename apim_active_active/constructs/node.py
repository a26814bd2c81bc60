"""Node: one all-in-one API-M EC2 instance with a fixed private address in its zone's subnet.

The address is known before boot (network.node_ip, given as private_ip), so each node's deployment.toml
names its peer without a dependency cycle.
Defaults: IMDSv2 required, hop limit 1; gp3 root volume encrypted with the stack's key; no SSH key; user data that
replaces the instance when it changes (cloud-init only runs it on first boot).
Exposes: instance_id, private_ip.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import resource_name
from apim_active_active.settings import NodeSettings


@dataclass(frozen=True)
class NodeProps:
    name_prefix: str
    node: NodeSettings
    index: int
    private_ip: str  # fixed before boot (network.node_ip), so each node's deployment.toml names its peer
    ami_id: str
    subnet_id: str
    security_group_ids: tuple[str, ...]
    instance_profile_name: str
    kms_key_arn: str
    user_data: str  # a Terraform expression giving the base64 of the gzipped cloud-config
    depends_on: tuple[ITerraformDependable, ...] = ()
    ignore_security_group_drift: bool = False  # the emulator only (emulator.ignore_instance_sg_drift)


class Node(Construct):
    def __init__(self, scope: Construct, id_: str, props: NodeProps) -> None:
        super().__init__(scope, id_)
        node = props.node
        ignored = []
        if node.ami.ssm_parameter:
            # A new AMI release behind the parameter must not replace both nodes in one apply: roll it
            # out one node at a time (`terraform apply -replace=...` on node 1, then node 2).
            ignored.append("ami")
        if props.ignore_security_group_drift:
            ignored.append("vpc_security_group_ids")
        lifecycle = TerraformResourceLifecycle(ignore_changes=ignored) if ignored else None
        self.private_ip = props.private_ip
        instance = aws.instance.Instance(
            self,
            "instance",
            ami=props.ami_id,
            instance_type=node.instance_type,
            subnet_id=props.subnet_id,
            private_ip=self.private_ip,
            vpc_security_group_ids=list(props.security_group_ids),
            iam_instance_profile=props.instance_profile_name,
            user_data_base64=props.user_data,
            user_data_replace_on_change=True,
            monitoring=node.detailed_monitoring,
            disable_api_termination=node.termination_protection,
            ebs_optimized=True,
            metadata_options=aws.instance.InstanceMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            root_block_device=aws.instance.InstanceRootBlockDevice(
                volume_type="gp3",
                volume_size=node.root_volume_gb,
                encrypted=True,
                kms_key_id=props.kms_key_arn,
            ),
            tags={"Name": resource_name(props.name_prefix, f"node-{props.index + 1}")},
            depends_on=list(props.depends_on) or None,
            lifecycle=lifecycle,
        )
        self.instance_id: str = instance.id
