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
# What each node should run (node 1 first), for verify and scripts/roll.py to compare with what runs.
OUTPUT_NODE_USER_DATA = "node_user_data"
OUTPUT_NODE_USER_DATA_SHA256 = "node_user_data_sha256"
OUTPUT_NODE_AMIS = "node_ami_ids"
OUTPUT_NODE_INSTANCE_TYPE = "node_instance_type"
OUTPUT_BOOT_BUCKET = "boot_bucket"  # the boot steps the nodes fetch (constructs/boot_assets.py)
# Observability (docs/observability.md): where alarms go, the dashboard, the log groups by key (observability.py).
OUTPUT_ALARM_TOPIC = "alarm_topic_arn"
OUTPUT_DASHBOARD = "dashboard_name"
OUTPUT_LOG_GROUPS = "log_group_names"
# Backup (docs/backup-and-restore.md): the vaults by role (primary, copy) and the plans' ids by plan name.
OUTPUT_BACKUP_VAULTS = "backup_vault_names"
OUTPUT_BACKUP_PLANS = "backup_plan_ids"
OUTPUT_BACKUP_ROLE = "backup_role_arn"  # AWS Backup's role here: scripts/restore.py restores the share with it
# The gateway scale-out group (docs/gateway-scale-out.md): its Auto Scaling group, launch template and security group.
OUTPUT_GATEWAY_GROUP = "gateway_group_name"
OUTPUT_GATEWAY_LAUNCH_TEMPLATE = "gateway_launch_template_id"
OUTPUT_GATEWAY_SG = "gateway_security_group_id"
# Set only by scripts/roll.py: the nodes are held while it replaces them one at a time.
ROLL_VARIABLE = "roll"


def rsync_parameter(name_prefix: str, what: str) -> str:
    """SSM parameter through which the rsync peers hand over public keys (what: manager-key or worker-host-key)."""
    return f"/{name_prefix}/rsync/{what}"


def restore_share_parameter(name_prefix: str) -> str:
    """SSM parameter scripts/restore.py sets once the share's recovery point is in this environment's file system: the
    restored nodes wait for it before they seed (docs/backup-and-restore.md)."""
    return f"/{name_prefix}/restore/share"


def resource_name(name_prefix: str, suffix: str) -> str:
    return f"{name_prefix}-{suffix}"


def default_tags(settings: Settings, environment: str) -> dict[str, str]:
    return {**settings.tags, "Environment": environment, "ManagedBy": MANAGED_BY}


# The group's lifecycle hooks' transitions (EC2 Auto Scaling's LifecycleTransition values).
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def gateway_group_name(name_prefix: str) -> str:
    """The gateway scale-out group's Auto Scaling group (its nodes complete its lifecycle hook by this name)."""
    return resource_name(name_prefix, "gateways")


def gateway_lifecycle_hook_name(name_prefix: str) -> str:
    """The group's termination lifecycle hook: a leaving gateway node stops API-M, then completes it."""
    return resource_name(name_prefix, "gateway-drain")


def gateway_ready_hook_name(name_prefix: str) -> str:
    """The group's launch lifecycle hook: a new gateway node joins the target groups once it completes it (ready)."""
    return resource_name(name_prefix, "gateway-ready")
