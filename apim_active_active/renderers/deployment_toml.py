"""Each node's `<API-M_HOME>/repository/conf/deployment.toml` for the active-active pair."""
from __future__ import annotations

import tomli_w

from apim_active_active.settings import Settings
from apim_active_active.versions import traits

THROTTLE_BINARY_PORT = 9611
THROTTLE_AUTH_PORT = 9711
BROKER_PORT = 5672
MANAGEMENT_PORT = 9443
# Shared file system: every node publishes to its own gateway (the seed's "localhost" service_url).
LOCAL_SERVICE_URL = "https://localhost:${mgt.transport.https.port}/services/"


def node_ips(settings: Settings) -> tuple[str, str]:
    return str(settings.network.node_ip(0)), str(settings.network.node_ip(1))


def hostname(settings: Settings, node_index: int) -> str:
    return settings.apim.hostname or node_ips(settings)[node_index]


def _gateway_environment(settings: Settings, node_index: int) -> dict:
    version = traits(settings.apim.version)
    host = hostname(settings, node_index)
    environment = {
        "name": version.gateway_environment_name,
        "type": "hybrid",
        "display_in_api_console": True,
        "description": "This is a hybrid gateway that handles both production and sandbox token traffic.",
        "show_as_token_endpoint_url": True,
        "service_url": LOCAL_SERVICE_URL,
        "username": "${admin.username}",
        "password": "${admin.password}",
        "ws_endpoint": f"ws://{host}:9099",
        "wss_endpoint": f"wss://{host}:8099",
        "http_endpoint": f"http://{host}:${{http.nio.port}}",
        "https_endpoint": f"https://{host}:${{https.nio.port}}",
    }
    if version.has_gateway_type:
        environment |= {"gateway_type": "Regular", "provider": "wso2"}
    return environment


def _throttling(settings: Settings, node_index: int) -> dict:
    ips = node_ips(settings)
    peer = ips[1 - node_index]
    # One group per node, one URL per group: every event reaches both traffic managers.
    url_groups = [
        {
            "traffic_manager_urls": [f"tcp://{ip}:{THROTTLE_BINARY_PORT}"],
            "traffic_manager_auth_urls": [f"ssl://{ip}:{THROTTLE_AUTH_PORT}"],
            "type": "loadbalance",
        }
        for ip in ips
    ]
    throttling: dict = {"event_duplicate_url": [f"tcp://{peer}:{BROKER_PORT}"]}
    if traits(settings.apim.version).has_throttle_decision_endpoints:
        throttling["throttle_decision_endpoints"] = [f"tcp://localhost:{BROKER_PORT}"]
    throttling["url_group"] = url_groups
    return throttling


def render_deployment_toml(settings: Settings, node_index: int) -> str:
    """deployment.toml for node 0 or 1. Database, keystores and admin come from the product defaults."""
    if node_index not in (0, 1):
        raise ValueError(f"node_index must be 0 or 1, not {node_index}")
    document = {
        "server": {
            "hostname": hostname(settings, node_index),
            "node_ip": node_ips(settings)[node_index],
            "server_role": "default",
        },
        "apim": {
            "gateway": {"environment": [_gateway_environment(settings, node_index)]},
            "throttling": _throttling(settings, node_index),
        },
    }
    header = (
        f"# Rendered by apim_active_active for {settings.name_prefix} node {node_index + 1}"
        f" (API-M {settings.apim.version}). Do not edit on the node: change the settings and redeploy.\n"
    )
    return header + tomli_w.dumps(document)
