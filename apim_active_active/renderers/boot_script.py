"""Each node's EC2 user data: a cloud-config that writes the node's files and runs the boot step.

The boot step is assembled from the parts in files/boot/ (BOOT_PARTS): the same on every node of a content_sync
mode, each mode's node getting only its mode's part; what differs per node lives in /etc/wso2am/node.env and
/etc/wso2am/deployment.toml. Nothing secret is written here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.resources import files

import yaml

from apim_active_active import ports
from apim_active_active.engines import APIM_DB_MARKER_TABLE, APP_DB_USER, ENGINES, SHARED_DB_MARKER_TABLE
from apim_active_active.names import restore_share_parameter, rsync_parameter
from apim_active_active.renderers import rsync, shared_folders
from apim_active_active.renderers.boot_loader import BOOT_LOADER, render_loader
from apim_active_active.renderers.cloudwatch_agent import render_agent_config_json
from apim_active_active.renderers.deployment_toml import (
    KEYSTORE_ALIAS,
    KEYSTORE_FILE,
    MANAGER_INDEX,
    TRUSTSTORE_FILE,
    node_ips,
    render_deployment_toml,
)
from apim_active_active.renderers.node_layout import (  # noqa: F401 (the paths, re-exported for readers of a node)
    ACCESS_LOG_CLEANUP,
    AGENT_CONFIG,
    AGENT_CTL,
    BOOT_SCRIPT,
    CONFIG_DIR,
    CONFIG_SOURCE,
    FSTAB_ENTRIES,
    JMX_PORT,
    KEY_MANAGER_CA,
    KEYSTORE_EXPIRY,
    MERGE_CONFIG,
    NODE_ENV,
    RUNTIME_ENV,
    SECRETS_FILE,
    SERVICE,
    SHARE_WATCH,
    sync_role,
)
from apim_active_active.renderers.systemd_units import (  # noqa: F401 (re-exported)
    has_share_watch,
    render_access_log_cleanup,
    render_keystore_expiry,
    render_push_units,
    render_share_watch,
    render_systemd_unit,
)
from apim_active_active.settings import Settings
from apim_active_active.traffic import VERSION_PATH, public_name
from apim_active_active.versions import traits


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
    stack_key_arn: str = ""  # content_sync = "rsync": the key the nodes encrypt the key parameters with
    encryption_key_secret_arn: str = ""  # versions with symmetric internal crypto (4.7): the pair's [encryption] key
    boot_bucket: str = ""  # the stack's boot assets bucket (constructs/boot_assets.py): the boot step is fetched from it


# The boot step's parts, in the order they are assembled, per content_sync mode (and for a gateway node): the header
# (node.env and the contract with it), what every node does, the mode's own part (only that one: an EFS node's script has no rsync code and
# the other way round), and main (boot's order of steps, the commands).
_EVERY_NODE = ("header.sh", "common.sh", "secrets.sh", "vault.sh")
_PAIR_STEPS = ("database.sh", "config.sh", "service.sh", "gate.sh")
BOOT_PARTS: dict[str, tuple[str, ...]] = {
    "efs": (*_EVERY_NODE, *_PAIR_STEPS, "efs.sh", "observe.sh", "main.sh"),
    "rsync": (*_EVERY_NODE, *_PAIR_STEPS, "rsync.sh", "observe.sh", "main.sh"),
    # A gateway scale-out node (gateway_user_data.py): no share and no schema (no database.sh).
    "gateway": (*_EVERY_NODE, "config.sh", "service.sh", "gate.sh", "gateway.sh", "observe.sh", "main.sh"),
}


def boot_part(name: str) -> str:
    """One part of the boot step, with its comments (files/boot/NAME)."""
    return files("apim_active_active.renderers").joinpath("files/boot", name).read_text()


# What a restored environment's nodes get besides, before main: restore.sh (the search index rebuilt), and in the EFS
# mode restore-share.sh (the share's restore waited for and moved into place); rsync has no share to restore.
RESTORE_PARTS: dict[str, tuple[str, ...]] = {"efs": ("restore.sh", "restore-share.sh"), "rsync": ("restore.sh",)}
# What the nodes of an environment whose customization asks for extra jars, JVM options or a post-boot hook get besides,
# before main (every mode, a gateway node's too).
CUSTOMIZE_PART = "customize.sh"
# A pair node's whose keystore is brought, by keystore.source (never a restored one's, which takes its source's keystore:
# brings_keystore): what its first node makes the pair's keystore with, and the source's own part.
KEYSTORE_PARTS: dict[str, tuple[str, ...]] = {
    "secrets_manager": ("keystore-brought.sh", "keystore-secret.sh"),
    "private_ca": ("keystore-brought.sh", "keystore-private-ca.sh"),
}


def boot_script_source(content_sync: str, restored: bool = False, customized: bool = False, *, keystore: str = "generated") -> str:
    """The boot step of a node of that mode ("efs", "rsync" or "gateway"), with its comments: its parts, a blank line
    apart. A restored environment's nodes get the mode's RESTORE_PARTS too, a customized one's CUSTOMIZE_PART, before
    main."""
    parts = BOOT_PARTS[content_sync]
    extra = (
        *(RESTORE_PARTS[content_sync] if restored else ()),
        *((CUSTOMIZE_PART,) if customized else ()),
        *KEYSTORE_PARTS.get(keystore, ()),
    )
    parts = (*parts[:-1], *extra, parts[-1])
    return "\n".join(boot_part(name) for name in parts)


def node_boot_script(settings: Settings) -> str:
    """The boot step a pair node of these settings gets (its mode's, restored, customized)."""
    return boot_script_text(
        settings.content_sync,
        settings.restore is not None,
        settings.customization.customizes_boot,
        keystore=settings.keystore.source if brings_keystore(settings) else "generated",
    )


def brings_keystore(settings: Settings) -> bool:
    """The pair's first node makes its keystore from brought material (keystore-brought.sh): a brought keystore.source,
    in an environment that is not a restore (a restored pair takes its source's keystore, restore.secrets)."""
    return settings.keystore.brought and settings.restore is None


def merge_config_text() -> str:
    """The boot step's `merge-config`: Python for Amazon Linux 2023's python3 with python3-tomli and python3-tomli-w."""
    return files("apim_active_active.renderers").joinpath("files/wso2am-merge-config.py").read_text()


# What the boot step needs from Amazon Linux 2023 besides the JDK and the database client.
BASE_PACKAGES = ("unzip", "openssl", "python3", "python3-tomli", "python3-tomli-w")


def boot_script_text(content_sync: str, restored: bool = False, customized: bool = False, *, keystore: str = "generated") -> str:
    """The boot step as a node of that mode gets it: its source without the comment lines, a quarter of its size
    (EC2 takes at most 16 KB of user data). A test keeps any heredoc line from starting with '#'."""
    shebang, *lines = boot_script_source(content_sync, restored, customized, keystore=keystore).splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith("#") or line.lstrip().startswith("# shellcheck ")]
    return (
        f"{shebang}# {BOOT_SCRIPT} (content_sync = {content_sync}): see apim_active_active/renderers/files/boot/ "
        f"in the toolkit, with its comments.\n{''.join(kept)}"
    )


def java_package_and_home(jdk: int) -> tuple[str, str]:
    """Amazon Corretto on Amazon Linux 2023: the -devel package, whose jcmd starts the JVM's JMX agent on loopback once
    API-M runs (the headless one has java, keytool and rmiregistry only)."""
    if jdk == 8:
        return "java-1.8.0-amazon-corretto-devel", "/usr/lib/jvm/java-1.8.0-amazon-corretto"
    return f"java-{jdk}-amazon-corretto-devel", f"/usr/lib/jvm/java-{jdk}-amazon-corretto"


def efs_dns_name(settings: Settings, efs_id: str) -> str:
    """The name amazon-efs-utils resolves for a file system (and the boot step waits for)."""
    return f"{efs_id}.efs.{settings.region}.amazonaws.com"


def certificate_names(settings: Settings, public_name: str) -> tuple[str, str]:
    """CN and subjectAltName of the pair's shared certificate: the public name and both nodes.
    (A load balancer's DNS name may exceed the 64 characters a CN allows: it goes in the SAN only.)"""
    name = settings.apim.hostname or f"{settings.name_prefix}.apim.internal"
    dns = dict.fromkeys([name, public_name, "localhost"])
    return name, ",".join([f"dns:{n}" for n in dns] + [f"ip:{ip}" for ip in node_ips(settings)])


def content_sync_env(settings: Settings, node_index: int, deployed: Deployed) -> dict[str, str]:
    if settings.uses_efs:
        return {
            "SHARE_ROOT": shared_folders.SHARE_ROOT,
            "EFS_ID": deployed.efs_id,
            "EFS_DNS": efs_dns_name(settings, deployed.efs_id),
            "FSTAB_ENTRIES": FSTAB_ENTRIES,
        }
    return {
        "SYNC_ROLE": sync_role(settings, node_index),
        "SYNC_USER": rsync.SYNC_USER,
        "SYNC_HOME": rsync.SYNC_HOME,
        "SYNC_MARKER": rsync.SYNC_MARKER,
        "SYNC_KEY_DIR": rsync.SYNC_KEY_DIR,
        "SYNC_FORCED_COMMAND": rsync.forced_command(),
        "SYNC_EXCLUDES": " ".join(rsync.NODE_LOCAL),
        "SYNC_WAIT_SECONDS": str(settings.rsync_settings.wait_seconds),
        "SYNC_KEY_ARN": deployed.stack_key_arn,
        "MANAGER_KEY_PARAMETER": rsync_parameter(settings.name_prefix, rsync.MANAGER_KEY),
        "WORKER_HOST_KEY_PARAMETER": rsync_parameter(settings.name_prefix, rsync.WORKER_HOST_KEY),
        "PUSH_TIMER": f"{rsync.PUSH}.timer",
    }


def first_node_url(settings: Settings, node_index: int) -> str:
    """Node 2's first start waits until this answers: node 1's management port (open between the peers)."""
    if node_index == MANAGER_INDEX:
        return ""
    return f"https://{node_ips(settings)[MANAGER_INDEX]}:{ports.MANAGEMENT}{VERSION_PATH}"


def gate_urls(settings: Settings) -> list[str]:
    """What `wso2am-boot gate` asks the node itself: the management version service, and the gateway's readiness
    where the version has it (the load balancer's health checks ask the same)."""
    local = f"https://127.0.0.1:{ports.MANAGEMENT}"
    readiness = traits(settings.apim.version).gateway_readiness_path
    return [f"{local}{VERSION_PATH}", *([f"{local}{readiness}"] if readiness else [])]


def render_node_env(settings: Settings, deployed: Deployed, node_index: int = 0) -> str:
    return env_file(node_env_values(settings, deployed, node_index))


def env_file(values: dict[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def node_env_values(settings: Settings, deployed: Deployed, node_index: int = 0) -> dict[str, str]:
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
        "CONTENT_SYNC": settings.content_sync,
        **content_sync_env(settings, node_index, deployed),
        "SHARED_FOLDERS": shared_folders.env_value(settings),
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
        "KEYSTORE_VALIDITY_DAYS": str(apim.keystore_validity_days),
        "ENCRYPTION_KEY_SECRET_ARN": deployed.encryption_key_secret_arn,
        "UPDATE_LEVEL": str(apim.update_level or ""),  # empty: the GA pack
        "PEER_IP": node_ips(settings)[1 - node_index],
        "PEER_PORTS": " ".join(str(port) for port in ports.PEERS),
        "GATE_URLS": " ".join(gate_urls(settings)),
        "GATE_PORTS": f"{ports.GATEWAY_HTTPS} {ports.WEBSOCKET_TLS}",
        "FIRST_NODE_URL": first_node_url(settings, node_index),
        "FIRST_START_WAIT_SECONDS": str(apim.first_start_wait_seconds),
        "TRUSTSTORE_FILE": TRUSTSTORE_FILE,
        "CERT_NAME": cert_name,
        "CERT_SAN": cert_san,
        "PUBLIC_NAME": name,
        # Empty with the resident Key Manager: nothing to wait for.
        "KEY_MANAGER_URL": key_manager.url or "",
        "KEY_MANAGER_WAIT_SECONDS": str(key_manager.wait_seconds),
        "KEY_MANAGER_CA": KEY_MANAGER_CA if key_manager.ca_certificate else "",
        "AGENT_CONFIG": AGENT_CONFIG if settings.observability.agent else "",  # empty: no agent
        "AGENT_CTL": AGENT_CTL,
        "LOCAL_LOG_DAYS": str(settings.observability.local_log_days),
        "JMX_PORT": str(JMX_PORT),
        **_restore_env(settings),
        **customize_env(settings, f"node-{node_index + 1}"),
        **keystore_env(settings),
        "SECURE_VAULT": "1" if settings.secure_vault.enabled else "",  # empty: the secrets file (vault.sh)
    }
    return values


def customize_env(settings: Settings, role: str) -> dict[str, str]:
    """customize.sh's (only with it): the extra jars (URL#SHA256, or the URL when no checksum is given), the JVM options,
    the post-boot hook (empty: none), and the node's role for the hook."""
    customization = settings.customization
    if not customization.customizes_boot:
        return {}
    jars = [jar.url + (f"#{jar.sha256}" if jar.sha256 else "") for jar in customization.extra_jars]
    return {
        "EXTRA_JARS": " ".join(jars),
        "JVM_OPTIONS": " ".join(customization.jvm_options),
        "POST_BOOT_HOOK": customization.post_boot_hook or "",
        "NODE_ROLE": role,
    }


def keystore_env(settings: Settings) -> dict[str, str]:
    """keystore-brought.sh's (only with it): the setting the keystore comes from, and its ARN (the brought secret's or
    the CA's)."""
    if not brings_keystore(settings):
        return {}
    setting, arn = settings.keystore.origin
    return {"KEYSTORE_SOURCE_SETTING": setting, "KEYSTORE_SOURCE_ARN": arn}


def _restore_env(settings: Settings) -> dict[str, str]:
    """A restored environment's (restore.sh): the generation; with EFS (restore-share.sh), the parameter its share's
    restore is signalled by (empty: no share restored) and how long a node waits for it."""
    restore = settings.restore
    if restore is None:
        return {}
    share = {
        "RESTORE_SHARE_PARAMETER": restore_share_parameter(settings.name_prefix) if restore.share else "",
        "RESTORE_WAIT_SECONDS": str(restore.share_wait_minutes * 60),
    }
    return {"RESTORE_GENERATION": str(restore.generation), **(share if settings.uses_efs else {})}


def unit_entries(name: str, texts: tuple[str, str]) -> list[dict]:
    return [file_entry(f"/etc/systemd/system/{name}.{kind}", text, "0644") for kind, text in zip(("service", "timer"), texts)]


class LiteralBlocks(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so the user data reads like the files it writes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


LiteralBlocks.add_representer(str, _represent_str)


def file_entry(path: str, content: str, permissions: str) -> dict:
    """A write_files entry. (EC2 takes at most 16 KB of user data: the stack gzips the whole of it.)"""
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def render_user_data(settings: Settings, node_index: int, deployed: Deployed) -> str:
    """cloud-config for node 0 or 1."""
    packages = [
        "amazon-efs-utils" if settings.uses_efs else "rsync",
        *BASE_PACKAGES,
        java_package_and_home(settings.apim.jdk)[0],
        ENGINES[settings.database.engine].client_package,
        *(["amazon-cloudwatch-agent"] if settings.observability.agent else []),
    ]
    toml = render_deployment_toml(settings, node_index, deployed.db_host, deployed.db_port, deployed.lb_dns_name)
    write_files = [
        file_entry(NODE_ENV, render_node_env(settings, deployed, node_index), "0644"),
        file_entry(CONFIG_SOURCE, toml, "0644"),
        file_entry(f"/etc/systemd/system/{SERVICE}", render_systemd_unit(settings, node_index), "0644"),
        file_entry(BOOT_LOADER, render_loader(deployed.boot_bucket, settings.region, node_boot_script(settings)), "0755"),
        file_entry(MERGE_CONFIG, merge_config_text(), "0755"),
    ]
    if settings.uses_efs:
        write_files.append(file_entry(FSTAB_ENTRIES, shared_folders.render_fstab(settings, deployed.efs_id), "0644"))
    if has_share_watch(settings, node_index):
        write_files += unit_entries(SHARE_WATCH, render_share_watch(settings))
    role = sync_role(settings, node_index)
    if role == "manager":
        write_files += unit_entries(rsync.PUSH, render_push_units(settings))
    elif role == "worker":
        write_files.append(file_entry(rsync.RSYNCD_CONF, rsync.render_rsyncd_conf(settings), "0644"))
    access_log_cleanup = render_access_log_cleanup(settings)
    if access_log_cleanup:
        write_files.append(file_entry(ACCESS_LOG_CLEANUP, access_log_cleanup, "0644"))
    write_files += common_files(settings)
    return cloud_config_text(packages, write_files)


def common_files(settings: Settings, agent_home: str | None = None) -> list[dict]:
    """What a pair node and a gateway node both get: the keystore expiry's units; when the settings ask, the CloudWatch
    agent's configuration (for the product at agent_home, the pair's by default) and an external Key Manager's CA."""
    entries = unit_entries(KEYSTORE_EXPIRY, render_keystore_expiry(settings))
    agent_config = render_agent_config_json(settings, agent_home)
    if agent_config:
        entries.append(file_entry(AGENT_CONFIG, agent_config, "0644"))
    if settings.key_manager.ca_certificate:
        entries.append(file_entry(KEY_MANAGER_CA, settings.key_manager.ca_certificate.strip() + "\n", "0644"))
    return entries


def cloud_config_text(packages: list[str], write_files: list[dict]) -> str:
    # /etc/hosts is the boot step's (the public name mapped to the node): a reboot's cloud-init leaves it alone.
    cloud_config = {"packages": packages, "manage_etc_hosts": False, "write_files": write_files, "runcmd": [[BOOT_LOADER]]}
    return "#cloud-config\n" + yaml.dump(cloud_config, Dumper=LiteralBlocks, sort_keys=False, width=1000)
