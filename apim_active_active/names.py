"""Names shared by the stack, the scripts and the tests (outputs, tags, resource names)."""

from apim_active_active.settings import Settings

MANAGED_BY = "cdktf:wso2-apim-active-active"

OUTPUT_NODE_IPS = "node_private_ips"
OUTPUT_INSTANCE_IDS = "instance_ids"
OUTPUT_EFS_ID = "efs_id"
OUTPUT_EFS_DNS = "efs_dns_name"
OUTPUT_LB_DNS = "load_balancer_dns_name"
OUTPUT_LB_SG = "load_balancer_security_group_id"
OUTPUT_PUBLIC_NAME = "public_name"
OUTPUT_TARGET_GROUPS = "target_group_arns"
# Plus traffic.public_urls(): publisher_url, devportal_url, admin_url, carbon_url, gateway_url.
OUTPUT_NODE_SG = "node_security_group_id"
OUTPUT_EFS_SG = "efs_security_group_id"
OUTPUT_VPC_ID = "vpc_id"


def rsync_parameter(name_prefix: str, what: str) -> str:
    """SSM parameter through which the rsync peers hand over public keys (what: manager-key or worker-host-key)."""
    return f"/{name_prefix}/rsync/{what}"


def resource_name(name_prefix: str, suffix: str) -> str:
    return f"{name_prefix}-{suffix}"


def default_tags(settings: Settings, environment: str) -> dict[str, str]:
    return {**settings.tags, "Environment": environment, "ManagedBy": MANAGED_BY}
