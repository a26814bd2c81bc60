"""Node: one all-in-one API-M EC2 instance with a fixed private address in its zone's subnet.

The address is known before boot (network.node_ip, given as private_ip), so each node's deployment.toml
names its peer without a dependency cycle.
Defaults: IMDSv2 required, hop limit 1; gp3 root volume encrypted with the stack's key; no SSH key. A deploy never
replaces or stops a running node: what would (user data, AMI, instance type, address) is held, and a deploy whose
settings give a node something else stops at plan naming scripts/roll.py, which replaces one node at a time
(cloud-init only runs user data on first boot: a new user data means a new instance).
Exposes: instance_id, private_ip, address (its Terraform address), user_data and ami_id (what the settings give).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable, Postcondition, TerraformLocal, TerraformResourceLifecycle, TerraformStack
from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import resource_name
from apim_active_active.settings import NodeSettings

# What a change would replace the instance for (or stop it: the instance type): a deploy never changes them on a
# running node, scripts/roll.py replaces one node at a time. A postcondition refuses a deploy that would leave a node
# on what the settings no longer give, naming the command to run.
HELD = ("ami", "user_data_base64", "instance_type", "subnet_id", "private_ip")


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
    roll_variable: str  # the stack's variable scripts/roll.py sets: it holds the nodes while it replaces one at a time
    roll_command: str  # what a refused deploy tells the operator to run
    depends_on: tuple[ITerraformDependable, ...] = ()
    ignore_security_group_drift: bool = False  # the emulator only (emulator.ignore_instance_sg_drift)


class Node(Construct):
    def __init__(self, scope: Construct, id_: str, props: NodeProps) -> None:
        super().__init__(scope, id_)
        node, stack = props.node, TerraformStack.of(self)
        # What the node was booted with, as locals: the instance and its postcondition read the same expression.
        user_data = TerraformLocal(self, "user_data", props.user_data)
        ami = TerraformLocal(self, "ami", props.ami_id)
        ignored = list(HELD)
        if props.ignore_security_group_drift:
            ignored.append("vpc_security_group_ids")
        held = (
            f"self.user_data_base64 == local.{stack.get_logical_id(user_data)} && "
            f'self.ami == local.{stack.get_logical_id(ami)} && self.instance_type == "{node.instance_type}"'
        )
        number = props.index + 1
        lifecycle = TerraformResourceLifecycle(
            ignore_changes=ignored,
            postcondition=[
                Postcondition(
                    condition=f"${{var.{props.roll_variable} || ({held})}}",
                    error_message=f"Node {number} runs other user data, another AMI or instance type than the settings now "
                    "give, and a deploy never replaces or stops a node (both at once would stop API traffic). Roll the nodes "
                    f"one at a time: {props.roll_command} ({props.roll_command} --check shows what differs).",
                )
            ],
        )
        self.private_ip = props.private_ip
        instance = aws.instance.Instance(
            self,
            "instance",
            ami=ami.as_string,
            instance_type=node.instance_type,
            subnet_id=props.subnet_id,
            private_ip=self.private_ip,
            vpc_security_group_ids=list(props.security_group_ids),
            iam_instance_profile=props.instance_profile_name,
            user_data_base64=user_data.as_string,
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
            tags={"Name": resource_name(props.name_prefix, f"node-{number}")},
            depends_on=list(props.depends_on) or None,
            lifecycle=lifecycle,
        )
        self.instance_id: str = instance.id
        self.address: str = f"aws_instance.{stack.get_logical_id(instance)}"  # aws_instance.<this>: what scripts/roll.py replaces
        self.user_data: str = user_data.as_string
        self.ami_id: str = ami.as_string
        self.instance_type: str = node.instance_type
