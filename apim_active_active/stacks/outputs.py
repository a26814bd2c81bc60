"""The stack's outputs: what an operator, verify and the pipelines read after a deploy."""

from __future__ import annotations

from cdktf import Fn, TerraformOutput, TerraformStack

from apim_active_active import names
from apim_active_active.constructs.load_balancer import LoadBalancer
from apim_active_active.constructs.network import Network
from apim_active_active.constructs.node import Node
from apim_active_active.constructs.peer_security import PeerSecurity
from apim_active_active.constructs.shared_fs import SharedFileSystem
from apim_active_active.traffic import public_urls


def add_outputs(
    stack: TerraformStack,
    network: Network,
    peers: PeerSecurity,
    share: SharedFileSystem | None,
    balancer: LoadBalancer,
    nodes: list[Node],
    boot_bucket: str,
) -> None:
    values = {
        names.OUTPUT_VPC_ID: (network.vpc_id, "VPC of the pair"),
        names.OUTPUT_NODE_IPS: ([n.private_ip for n in nodes], "Fixed private addresses, node 1 first"),
        names.OUTPUT_INSTANCE_IDS: ([n.instance_id for n in nodes], "EC2 instance ids, node 1 first"),
        names.OUTPUT_NODE_SG: (peers.group_id, "Security group of both nodes"),
        names.OUTPUT_LB_DNS: (balancer.dns_name, "DNS name of the load balancer"),
        names.OUTPUT_LB_SG: (balancer.security_group_id, "Security group of the load balancer"),
        names.OUTPUT_PUBLIC_NAME: (balancer.public_name, "The name clients use ([server] hostname)"),
        names.OUTPUT_TARGET_GROUPS: (balancer.target_group_arns, "Target groups by route"),
        names.OUTPUT_NODE_USER_DATA_SHA256: (
            [Fn.sha256(n.user_data) for n in nodes],
            "SHA-256 of the user data each node should boot with (its base64 text)",
        ),
        names.OUTPUT_NODE_AMIS: ([n.ami_id for n in nodes], "The image each node should run"),
        names.OUTPUT_NODE_INSTANCE_TYPE: ([n.instance_type for n in nodes], "The instance type each node should have"),
        names.OUTPUT_BOOT_BUCKET: (boot_bucket, "S3 bucket of the boot steps the nodes fetch at their first boot"),
    }
    if share:
        values |= {
            names.OUTPUT_EFS_ID: (share.file_system_id, "EFS file system shared at repository/deployment/server"),
            names.OUTPUT_EFS_DNS: (share.dns_name, "EFS DNS name the nodes mount"),
            names.OUTPUT_EFS_SG: (share.security_group_id, "Security group of the EFS mount targets"),
        }
    for name, url in public_urls(balancer.public_name).items():
        values[name] = (url, f"{name.removesuffix('_url').capitalize()} URL, through the load balancer")
    for name, (value, description) in values.items():
        TerraformOutput(stack, name, value=value, description=description)
    # Long (two gzipped cloud-configs): out of the deploy's printout; scripts/roll.py reads it with terraform.
    TerraformOutput(
        stack,
        names.OUTPUT_NODE_USER_DATA,
        value=[n.user_data for n in nodes],
        sensitive=True,
        description="What each node should boot with (base64 gzip; no secret in it)",
    )


def add_observability_outputs(stack: TerraformStack, topic_arn: str, dashboard_name: str | None, log_groups: dict[str, str]) -> None:
    TerraformOutput(stack, names.OUTPUT_ALARM_TOPIC, value=topic_arn, description="SNS topic every alarm notifies")
    if dashboard_name:
        TerraformOutput(stack, names.OUTPUT_DASHBOARD, value=dashboard_name, description="CloudWatch dashboard of the pair")
    if log_groups:
        TerraformOutput(stack, names.OUTPUT_LOG_GROUPS, value=log_groups, description="Log groups the nodes ship to, by log")


def add_backup_outputs(stack: TerraformStack, vault_names: dict[str, str], plan_ids: dict[str, str], role_arn: str) -> None:
    TerraformOutput(stack, names.OUTPUT_BACKUP_ROLE, value=role_arn, description="The role AWS Backup takes here (backups, restores)")
    TerraformOutput(
        stack, names.OUTPUT_BACKUP_VAULTS, value=vault_names, description="AWS Backup vaults of the stack, by role (primary, copy)"
    )
    TerraformOutput(stack, names.OUTPUT_BACKUP_PLANS, value=plan_ids, description="AWS Backup plans of the stack: id by plan name")


def add_gateway_outputs(stack: TerraformStack, group_name: str, launch_template_id: str, security_group_id: str) -> None:
    """The gateway scale-out group's (gateway_scale_out): verify and status find its nodes through the group."""
    TerraformOutput(stack, names.OUTPUT_GATEWAY_GROUP, value=group_name, description="Auto Scaling group of the gateway nodes")
    TerraformOutput(
        stack, names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE, value=launch_template_id, description="Launch template of the gateway nodes"
    )
    TerraformOutput(stack, names.OUTPUT_GATEWAY_SG, value=security_group_id, description="Security group of the gateway nodes")
