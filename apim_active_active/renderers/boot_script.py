"""Each node's EC2 user data: a cloud-config that writes the node's files and runs the boot step.

The boot step (files/wso2am-boot.sh) is the same on every node; what differs per node lives in
/etc/wso2am/node.env and /etc/wso2am/deployment.toml. Nothing secret is written here.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.resources import files

import yaml

from apim_active_active.engines import APIM_DB_MARKER_TABLE, APP_DB_USER, ENGINES, SHARED_DB_MARKER_TABLE
from apim_active_active.renderers.deployment_toml import (
    KEYSTORE_ALIAS,
    KEYSTORE_FILE,
    TRUSTSTORE_FILE,
    node_ips,
    render_deployment_toml,
)
from apim_active_active.settings import Settings
from apim_active_active.traffic import public_name
from apim_active_active.versions import traits

CONFIG_DIR = "/etc/wso2am"
NODE_ENV = f"{CONFIG_DIR}/node.env"
CONFIG_SOURCE = f"{CONFIG_DIR}/deployment.toml"
RUNTIME_ENV = f"{CONFIG_DIR}/runtime.env"
SECRETS_FILE = f"{CONFIG_DIR}/secrets.env"
KEY_MANAGER_CA = f"{CONFIG_DIR}/key-manager-ca.pem"
BOOT_SCRIPT = "/usr/local/sbin/wso2am-boot"
SERVICE = "wso2am.service"
SHARE_WATCH = "wso2am-share-watch"  # .service (one check) and .timer (every 15 s)
# amazon-efs-utils: TLS in transit (the file system policy denies anything else), IAM authorization
# with the instance role; it applies AWS's recommended NFS options itself. _netdev waits for the network.
EFS_MOUNT_OPTIONS = "_netdev,noresvport,tls,iam"


@dataclass(frozen=True)
class Deployed:
    """What is only known once the stack is applied. The stack passes placeholders and swaps them for
    Terraform references after rendering; tests pass literal values."""

    efs_id: str
    db_host: str
    db_port: int
    db_secret_arn: str
    admin_secret_arn: str
    keystore_secret_arn: str
    lb_dns_name: str
    db_app_secret_arn: str = ""  # API-M's own database user (RDS only; empty with an existing database)


def boot_script_text() -> str:
    return files("apim_active_active.renderers").joinpath("files/wso2am-boot.sh").read_text()


def share_dir(settings: Settings) -> str:
    return f"{settings.apim.home}/repository/deployment/server"


def java_package_and_home(jdk: int) -> tuple[str, str]:
    """Amazon Corretto on Amazon Linux 2023."""
    if jdk == 8:
        return "java-1.8.0-amazon-corretto-devel", "/usr/lib/jvm/java-1.8.0-amazon-corretto"
    return f"java-{jdk}-amazon-corretto-headless", f"/usr/lib/jvm/java-{jdk}-amazon-corretto"


def efs_dns_name(settings: Settings, efs_id: str) -> str:
    """The name amazon-efs-utils resolves for a file system (and the boot step waits for)."""
    return f"{efs_id}.efs.{settings.region}.amazonaws.com"


def certificate_names(settings: Settings, public_name: str) -> tuple[str, str]:
    """CN and subjectAltName of the pair's shared certificate: the public name and both nodes.
    (A load balancer's DNS name may exceed the 64 characters a CN allows: it goes in the SAN only.)"""
    name = settings.apim.hostname or f"{settings.name_prefix}.apim.internal"
    dns = dict.fromkeys([name, public_name, "localhost"])
    return name, ",".join([f"dns:{n}" for n in dns] + [f"ip:{ip}" for ip in node_ips(settings)])


def render_node_env(settings: Settings, deployed: Deployed) -> str:
    apim = settings.apim
    engine = ENGINES[settings.database.engine]
    name = public_name(settings, deployed.lb_dns_name)
    cert_name, cert_san = certificate_names(settings, name)
    key_manager = settings.key_manager
    values = {
        "APIM_HOME": apim.home,
        "ARCHIVE_URL": apim.archive_url,
        "INSTALL_DIR": apim.install_dir,
        "START_SCRIPT": traits(apim.version).start_script,
        "OS_USER": apim.os_user,
        "OS_UID": str(apim.os_uid),
        "EFS_ID": deployed.efs_id,
        "EFS_DNS": efs_dns_name(settings, deployed.efs_id),
        "SHARE_DIR": share_dir(settings),
        "MOUNT_OPTIONS": EFS_MOUNT_OPTIONS,
        "CONFIG_SOURCE": CONFIG_SOURCE,
        "JAVA_HOME": java_package_and_home(apim.jdk)[1],
        "HEAP_PERCENT": str(settings.node.heap_percent),
        "RUNTIME_ENV": RUNTIME_ENV,
        "SERVICE": SERVICE,
        "SHARE_WATCH_TIMER": f"{SHARE_WATCH}.timer",
        "AWS_REGION": settings.region,
        "SECRETS_FILE": SECRETS_FILE,
        "JDBC_DRIVER_URL": settings.database.jdbc_driver_url,
        "DB_ENGINE": settings.database.engine,
        "DB_HOST": deployed.db_host,
        "DB_PORT": str(deployed.db_port),
        "APIM_DB": engine.apim_db,
        "SHARED_DB": engine.shared_db,
        "DB_SCRIPT": engine.script,
        "SHARED_DB_MARKER": SHARED_DB_MARKER_TABLE,
        "APIM_DB_MARKER": APIM_DB_MARKER_TABLE,
        "DB_SECRET_ARN": deployed.db_secret_arn,
        "DB_APP_SECRET_ARN": deployed.db_app_secret_arn,
        "DB_APP_USER": APP_DB_USER,
        "ADMIN_SECRET_ARN": deployed.admin_secret_arn,
        "KEYSTORE_SECRET_ARN": deployed.keystore_secret_arn,
        "KEYSTORE_FILE": KEYSTORE_FILE,
        "KEYSTORE_ALIAS": KEYSTORE_ALIAS,
        "TRUSTSTORE_FILE": TRUSTSTORE_FILE,
        "CERT_NAME": cert_name,
        "CERT_SAN": cert_san,
        "PUBLIC_NAME": name,
        # Empty with the resident Key Manager: nothing to wait for.
        "KEY_MANAGER_URL": key_manager.url or "",
        "KEY_MANAGER_WAIT_SECONDS": str(key_manager.wait_seconds),
        "KEY_MANAGER_CA": KEY_MANAGER_CA if key_manager.ca_certificate else "",
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def render_systemd_unit(settings: Settings) -> str:
    home = settings.apim.home
    script = f"{home}/bin/{traits(settings.apim.version).start_script}"
    start_seconds = 600
    wait = ""
    if settings.key_manager.type != "resident":
        # The seed: the Key Manager is up before API-M starts, on every start, not only the first boot.
        wait = f"ExecStartPre={BOOT_SCRIPT} wait-key-manager\n"
        start_seconds += settings.key_manager.wait_seconds
    return f"""[Unit]
Description=WSO2 API Manager {settings.apim.version} (active-active node)
Wants=network-online.target
After=network-online.target remote-fs.target
# Never run without the share: Carbon would undeploy the artifacts it no longer sees.
RequiresMountsFor={share_dir(settings)}
# Keep retrying (e.g. while an external Key Manager is down): never give up after a burst of failures.
StartLimitIntervalSec=0

[Service]
Type=forking
User={settings.apim.os_user}
Group={settings.apim.os_user}
EnvironmentFile={RUNTIME_ENV}
EnvironmentFile={SECRETS_FILE}
{wait}ExecStart={script} start
ExecStop={script} stop
PIDFile={home}/wso2carbon.pid
Restart=on-failure
RestartSec=10
TimeoutStartSec={start_seconds}
LimitNOFILE=65535

[Install]
WantedBy=multi-user.target
"""


def render_share_watch(settings: Settings) -> tuple[str, str]:
    """(service, timer): every 15 s, stop API-M while its share is unreachable and start it again once it is back."""
    service = f"""[Unit]
Description=Stop WSO2 API-M while {share_dir(settings)} is unreachable

[Service]
Type=oneshot
ExecStart={BOOT_SCRIPT} check-share
TimeoutStartSec=60
"""
    timer = """[Unit]
Description=Watch the share of WSO2 API-M

[Timer]
OnBootSec=60
OnUnitActiveSec=15
AccuracySec=1

[Install]
WantedBy=timers.target
"""
    return service, timer


class _LiteralBlocks(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the user data reads like the files it writes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralBlocks.add_representer(str, _represent_str)


def _file(path: str, content: str, permissions: str) -> dict:
    """A write_files entry. (EC2 takes at most 16 KB of user data: the stack gzips the whole of it.)"""
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def render_user_data(settings: Settings, node_index: int, deployed: Deployed) -> str:
    """cloud-config for node 0 or 1."""
    packages = ["amazon-efs-utils", "unzip", "openssl", "python3", java_package_and_home(settings.apim.jdk)[0],
                ENGINES[settings.database.engine].client_package]
    toml = render_deployment_toml(settings, node_index, deployed.db_host, deployed.db_port, deployed.lb_dns_name)
    write_files = [
        _file(NODE_ENV, render_node_env(settings, deployed), "0644"),
        _file(CONFIG_SOURCE, toml, "0644"),
        _file(f"/etc/systemd/system/{SERVICE}", render_systemd_unit(settings), "0644"),
        _file(BOOT_SCRIPT, boot_script_text(), "0755"),
        *(_file(f"/etc/systemd/system/{SHARE_WATCH}.{kind}", text, "0644")
          for kind, text in zip(("service", "timer"), render_share_watch(settings))),
    ]
    if settings.key_manager.ca_certificate:
        write_files.append(_file(KEY_MANAGER_CA, settings.key_manager.ca_certificate.strip() + "\n", "0644"))
    cloud_config = {"packages": packages, "write_files": write_files, "runcmd": [[BOOT_SCRIPT]]}
    return "#cloud-config\n" + yaml.dump(cloud_config, Dumper=_LiteralBlocks, sort_keys=False, width=1000)
