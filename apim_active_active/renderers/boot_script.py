"""Each node's EC2 user data: a cloud-config that writes the node's files and runs the boot step.

The boot step (files/wso2am-boot.sh) is the same on every node; what differs per node lives in
/etc/wso2am/node.env and /etc/wso2am/deployment.toml. Nothing secret is written here.
"""
from __future__ import annotations

import shlex
from importlib.resources import files

import yaml

from apim_active_active.renderers.deployment_toml import render_deployment_toml
from apim_active_active.settings import Settings
from apim_active_active.versions import traits

CONFIG_DIR = "/etc/wso2am"
NODE_ENV = f"{CONFIG_DIR}/node.env"
CONFIG_SOURCE = f"{CONFIG_DIR}/deployment.toml"
RUNTIME_ENV = f"{CONFIG_DIR}/runtime.env"
BOOT_SCRIPT = "/usr/local/sbin/wso2am-boot"
SERVICE = "wso2am.service"
# AWS's recommended NFS options for EFS; _netdev waits for the network at boot.
EFS_MOUNT_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev"


def boot_script_text() -> str:
    return files("apim_active_active.renderers").joinpath("files/wso2am-boot.sh").read_text()


def share_dir(settings: Settings) -> str:
    return f"{settings.apim.home}/repository/deployment/server"


def java_package_and_home(jdk: int) -> tuple[str, str]:
    """Amazon Corretto on Amazon Linux 2023."""
    if jdk == 8:
        return "java-1.8.0-amazon-corretto-devel", "/usr/lib/jvm/java-1.8.0-amazon-corretto"
    return f"java-{jdk}-amazon-corretto-headless", f"/usr/lib/jvm/java-{jdk}-amazon-corretto"


def render_node_env(settings: Settings, efs_dns_name: str) -> str:
    apim = settings.apim
    values = {
        "APIM_HOME": apim.home,
        "ARCHIVE_URL": apim.archive_url,
        "INSTALL_DIR": apim.install_dir,
        "START_SCRIPT": traits(apim.version).start_script,
        "OS_USER": apim.os_user,
        "OS_UID": str(apim.os_uid),
        "EFS_DNS": efs_dns_name,
        "SHARE_DIR": share_dir(settings),
        "MOUNT_OPTIONS": EFS_MOUNT_OPTIONS,
        "CONFIG_SOURCE": CONFIG_SOURCE,
        "JAVA_HOME": java_package_and_home(apim.jdk)[1],
        "HEAP_PERCENT": str(settings.node.heap_percent),
        "RUNTIME_ENV": RUNTIME_ENV,
        "SERVICE": SERVICE,
        "AWS_REGION": settings.region,
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def render_systemd_unit(settings: Settings) -> str:
    home = settings.apim.home
    script = f"{home}/bin/{traits(settings.apim.version).start_script}"
    return f"""[Unit]
Description=WSO2 API Manager {settings.apim.version} (active-active node)
Wants=network-online.target
After=network-online.target remote-fs.target
# Never run without the share: Carbon would undeploy the artifacts it no longer sees.
RequiresMountsFor={share_dir(settings)}

[Service]
Type=forking
User={settings.apim.os_user}
Group={settings.apim.os_user}
EnvironmentFile={RUNTIME_ENV}
ExecStart={script} start
ExecStop={script} stop
PIDFile={home}/repository/wso2carbon.pid
Restart=on-failure
RestartSec=10
TimeoutStartSec=600
LimitNOFILE=65535

[Install]
WantedBy=multi-user.target
"""


class _LiteralBlocks(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the user data reads like the files it writes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralBlocks.add_representer(str, _represent_str)


def _file(path: str, content: str, permissions: str) -> dict:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def render_user_data(settings: Settings, node_index: int, efs_dns_name: str) -> str:
    """cloud-config for node 0 or 1. efs_dns_name may be a Terraform token (resolved at apply)."""
    cloud_config = {
        "packages": ["nfs-utils", "unzip", java_package_and_home(settings.apim.jdk)[0]],
        "write_files": [
            _file(NODE_ENV, render_node_env(settings, efs_dns_name), "0644"),
            _file(CONFIG_SOURCE, render_deployment_toml(settings, node_index), "0644"),
            _file(f"/etc/systemd/system/{SERVICE}", render_systemd_unit(settings), "0644"),
            _file(BOOT_SCRIPT, boot_script_text(), "0755"),
        ],
        "runcmd": [[BOOT_SCRIPT]],
    }
    return "#cloud-config\n" + yaml.dump(cloud_config, Dumper=_LiteralBlocks, sort_keys=False, width=1000)
