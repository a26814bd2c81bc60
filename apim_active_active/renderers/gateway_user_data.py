"""A gateway scale-out node's EC2 user data (the group's launch template): the same cloud-config shape as a pair
node's, with the gateway's product, deployment.toml, unit and boot step (BOOT_PARTS["gateway"]), and what every node
of the group shares: nothing per node is in it (an instance finds its own address and id at boot)."""

from __future__ import annotations

from apim_active_active.names import gateway_group_name, gateway_lifecycle_hook_name, gateway_ready_hook_name
from apim_active_active.renderers.boot_loader import BOOT_LOADER, render_loader
from apim_active_active.renderers.boot_script import (
    BASE_PACKAGES,
    Deployed,
    boot_script_text,
    cloud_config_text,
    common_files,
    content_sync_env,
    customize_env,
    env_file,
    file_entry,
    java_package_and_home,
    keystore_env,
    merge_config_text,
    node_env_values,
    unit_entries,
)
from apim_active_active.renderers.deployment_toml import node_ips
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.node_layout import (
    CONFIG_SOURCE,
    GATEWAY_WATCH,
    MERGE_CONFIG,
    NODE_ENV,
    SERVICE,
    gateway_archive_url,
    gateway_home,
    gateway_start_script,
)
from apim_active_active.renderers.systemd_units import drain_wait_seconds, render_gateway_watch, render_systemd_unit
from apim_active_active.settings import Settings
from apim_active_active.versions import GATEWAY_PROFILE, gateway_distribution


def render_gateway_node_env(settings: Settings, deployed: Deployed) -> str:
    """The pair node's environment (node 1's) with what a gateway node differs in: its product, no share, both nodes
    of the pair as its peers, no first-start wait of its own (it waits for the pair instead)."""
    gateway = settings.gateway_scale_out
    assert gateway, "only with a gateway group"
    universal = gateway_distribution(settings.apim.version) == "universal"
    pair_only = content_sync_env(settings, 0, deployed).keys() | {"RESTORE_GENERATION", "RESTORE_SHARE_PARAMETER", "RESTORE_WAIT_SECONDS"}
    pair_only |= keystore_env(settings).keys()  # a gateway node reads the pair's keystore, never makes it
    values = {key: value for key, value in node_env_values(settings, deployed, 0).items() if key not in pair_only}
    values |= {
        "APIM_HOME": gateway_home(settings),
        "ARCHIVE_URL": gateway_archive_url(settings),
        "START_SCRIPT": gateway_start_script(settings),
        "PRODUCT_PROFILE": "" if universal else GATEWAY_PROFILE,
        # The Universal Gateway pack's own level; the profile's pack is the pair's, at apim.update_level.
        "UPDATE_LEVEL": str(gateway.update_level or "") if universal else values["UPDATE_LEVEL"],
        "CONTENT_SYNC": "none",
        "SHARED_FOLDERS": "",
        "PEER_IP": " ".join(node_ips(settings)),
        "FIRST_NODE_URL": "",
        "PAIR_WAIT_SECONDS": str(settings.apim.first_start_wait_seconds),
        "GATEWAY_GROUP": gateway_group_name(settings.name_prefix),
        "LIFECYCLE_HOOK": gateway_lifecycle_hook_name(settings.name_prefix),
        "READY_HOOK": gateway_ready_hook_name(settings.name_prefix),
        "DRAIN_WAIT_SECONDS": str(drain_wait_seconds(settings)),
        "GATEWAY_WATCH_TIMER": f"{GATEWAY_WATCH}.timer",
        **customize_env(settings, "gateway"),
    }
    if values["DB_APP_SECRET_ARN"]:
        values["DB_SECRET_ARN"] = values["DB_APP_SECRET_ARN"]  # not the RDS master's: a gateway never makes the schema
    return env_file(values)


def gateway_boot_script(settings: Settings) -> str:
    """The boot step a gateway node of these settings gets (customized as the pair's nodes)."""
    return boot_script_text("gateway", customized=settings.customization.customizes_boot)


def render_gateway_user_data(settings: Settings, deployed: Deployed) -> str:
    """cloud-config of every node of the gateway group."""
    packages = [
        *BASE_PACKAGES,
        java_package_and_home(settings.apim.jdk)[0],
        *(["amazon-cloudwatch-agent"] if settings.observability.agent else []),
    ]
    toml = render_gateway_toml(settings, deployed.db_host, deployed.db_port, deployed.lb_dns_name)
    write_files = [
        file_entry(NODE_ENV, render_gateway_node_env(settings, deployed), "0644"),
        file_entry(CONFIG_SOURCE, toml, "0644"),
        file_entry(f"/etc/systemd/system/{SERVICE}", render_systemd_unit(settings, gateway=True), "0644"),
        file_entry(BOOT_LOADER, render_loader(deployed.boot_bucket, settings.region, gateway_boot_script(settings)), "0755"),
        file_entry(MERGE_CONFIG, merge_config_text(), "0755"),
        *unit_entries(GATEWAY_WATCH, render_gateway_watch(settings)),
    ]
    return cloud_config_text(packages, [*write_files, *common_files(settings, gateway_home(settings))])
