"""Where the boot step's files live on a node, and which role a node plays in content sync."""

from __future__ import annotations

from apim_active_active.gateway_settings import UNIVERSAL_GATEWAY_PACK
from apim_active_active.renderers.deployment_toml import MANAGER_INDEX
from apim_active_active.settings import Settings
from apim_active_active.versions import UNIVERSAL_GATEWAY_START_SCRIPT, gateway_distribution, traits

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
GATEWAY_WATCH = "wso2am-gateway-watch"  # a gateway node's: follow the pair, leave the group gracefully (every 15 s)
# Every node's: the days left of the signing certificate published (daily, and at each start of API-M).
KEYSTORE_EXPIRY = "wso2am-keystore-expiry"
FSTAB_ENTRIES = f"{CONFIG_DIR}/fstab"  # content_sync = "efs": what the boot step adds to /etc/fstab
AGENT_CONFIG = f"{CONFIG_DIR}/cloudwatch-agent.json"  # observability.agent: the CloudWatch agent's configuration
# Amazon Linux 2023's amazon-cloudwatch-agent package installs its control script here.
AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
# The JVM's own JMX agent, bound to loopback only (the product's RMI server on 9999/11111 is turned off): the
# CloudWatch agent reads the JVM's metrics here. Not a peer port: no security group rule names it.
JMX_PORT = 9010
# API-M 3.2 and 4.0: Tomcat's access log has no maxDays in catalina-server.xml.j2; systemd-tmpfiles ages the folder.
ACCESS_LOG_CLEANUP = "/etc/tmpfiles.d/wso2am-logs.conf"


def sync_role(settings: Settings, node_index: int) -> str:
    """content_sync = "rsync": node 1 is the manager (pushes), node 2 the worker (receives); else none."""
    if settings.uses_efs:
        return ""
    return "manager" if node_index == MANAGER_INDEX else "worker"


# A gateway scale-out node's product (gateway_scale_out): the pair's pack in its gateway profile up to 4.4, WSO2's
# Universal Gateway pack from 4.5 (versions.gateway_distribution).
def gateway_home(settings: Settings) -> str:
    if gateway_distribution(settings.apim.version) == "profile":
        return settings.apim.home
    return f"{settings.apim.install_dir}/{UNIVERSAL_GATEWAY_PACK.format(version=settings.apim.version)}"


def gateway_start_script(settings: Settings) -> str:
    if gateway_distribution(settings.apim.version) == "profile":
        return traits(settings.apim.version).start_script
    return UNIVERSAL_GATEWAY_START_SCRIPT


def gateway_archive_url(settings: Settings) -> str:
    assert settings.gateway_scale_out, "only with a gateway group"
    return settings.gateway_scale_out.archive_url or settings.apim.archive_url
