"""Where the boot step's files live on a node, and which role a node plays in content sync."""

from __future__ import annotations

from apim_active_active.renderers.deployment_toml import MANAGER_INDEX
from apim_active_active.settings import Settings

CONFIG_DIR = "/etc/wso2am"
NODE_ENV = f"{CONFIG_DIR}/node.env"
CONFIG_SOURCE = f"{CONFIG_DIR}/deployment.toml"
RUNTIME_ENV = f"{CONFIG_DIR}/runtime.env"
SECRETS_FILE = f"{CONFIG_DIR}/secrets.env"
STOPPED_BY_WATCH = "/var/lib/wso2am/stopped-by-share-watch"  # the share watch's hold (files/boot/header.sh's default)
KEY_MANAGER_CA = f"{CONFIG_DIR}/key-manager-ca.pem"
BOOT_SCRIPT = "/usr/local/sbin/wso2am-boot"
MERGE_CONFIG = "/usr/local/sbin/wso2am-merge-config"  # the boot step's `merge-config` (its default path)
SERVICE = "wso2am.service"
SHARE_WATCH = "wso2am-share-watch"  # .service (one check) and .timer (every 15 s)
FSTAB_ENTRIES = f"{CONFIG_DIR}/fstab"  # content_sync = "efs": what the boot step adds to /etc/fstab


def sync_role(settings: Settings, node_index: int) -> str:
    """content_sync = "rsync": node 1 is the manager (pushes), node 2 the worker (receives); else none."""
    if settings.uses_efs:
        return ""
    return "manager" if node_index == MANAGER_INDEX else "worker"
