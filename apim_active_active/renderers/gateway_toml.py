"""A gateway scale-out node's `deployment.toml`: the pair's part of it, merged over what the gateway ships with
(4.0-4.4: conf/deployment-templates/gateway-worker.toml, which profileSetup.sh puts in place; 4.5-4.7: the Universal
Gateway pack's own), as a pair node's is merged over the all-in-one's.

What WSO2's distributed pages give a gateway, with the pair as control plane and both traffic managers:
- its APIs from the pair: [apim.sync_runtime_artifacts.gateway] (the pair's gateway environment) and [apim.event_hub]
  (deploy events from either node's broker, the artifacts pulled from the control plane's service URL);
- throttling: events published to both traffic managers (one URL group per node) and decisions from both brokers;
- keys validated against the pair's Key Manager (or the external one the pair uses);
- the pair's keystore and truststore (the same files as the pair's: install_keystores).

The control plane's URL is the public name on 9443: the pair's certificate names it, and a gateway node maps it in
its hosts file to a node of the pair that answers (gateway.sh), so a gateway follows the pair when a node is down.
"""

from __future__ import annotations

from typing import Any

import tomli_w

from apim_active_active import ports
from apim_active_active.renderers.deployment_toml import (
    GATEWAY_SOCKET_TIMEOUT_MS,
    database_section,
    every_node_sections,
    key_manager_section,
    keystore_sections,
    node_idle_ms,
    node_ips,
    super_admin_section,
)
from apim_active_active.renderers.overlay import merge_overlay
from apim_active_active.settings import Settings
from apim_active_active.traffic import public_name
from apim_active_active.versions import GATEWAY_PROFILE, gateway_distribution, traits

ADMIN = {"username": "$ref{super_admin.username}", "password": "$ref{super_admin.password}"}


def control_plane_url(name: str) -> str:
    return f"https://{name}:{ports.MANAGEMENT}/services/"


def gateway_document(settings: Settings, db_host: str, db_port: int, lb_dns_name: str) -> dict[str, Any]:
    """What the pair sets in every gateway node's deployment.toml (what differs per node, its address, is not in it;
    customization.deployment_toml not merged)."""
    name = public_name(settings, lb_dns_name)
    control_plane = control_plane_url(name)
    ips = node_ips(settings)
    keystore, truststore = keystore_sections(settings)
    server: dict[str, Any] = {"hostname": name}
    if gateway_distribution(settings.apim.version) == "profile":
        server["server_role"] = GATEWAY_PROFILE  # as the gateway-worker template has it
    document: dict[str, Any] = {
        "server": server,
        # The load balancer's connections to 8243 (passthru's socket timeout): never shorter than its idle timeout.
        "passthru_http": {"http.socket.timeout": max(GATEWAY_SOCKET_TIMEOUT_MS, node_idle_ms(settings))},
        "super_admin": super_admin_section(settings),
        # The registry's data source (WSO2: a gateway keeps shared_db, though it needs no apim_db).
        "database": {"shared_db": database_section(settings, db_host, db_port)["shared_db"]},
        "keystore": keystore,
        "truststore": truststore,
        "apim": {
            "key_manager": key_manager_section(settings) or {"service_url": control_plane, **ADMIN},
            "sync_runtime_artifacts": {"gateway": {"gateway_labels": [traits(settings.apim.version).gateway_environment_name]}},
            "event_hub": {
                "enable": True,
                **ADMIN,
                "service_url": control_plane,
                "event_listening_endpoints": [f"tcp://{ip}:{ports.BROKER}" for ip in ips],
            },
            "throttling": {
                **ADMIN,
                "service_url": control_plane,
                "throttle_decision_endpoints": [f"tcp://{ip}:{ports.BROKER}" for ip in ips],
                # One group per traffic manager, one URL each: every event reaches both.
                "url_group": [
                    {
                        "traffic_manager_urls": [f"tcp://{ip}:{ports.THROTTLE_BINARY}"],
                        "traffic_manager_auth_urls": [f"ssl://{ip}:{ports.THROTTLE_AUTH}"],
                        "type": "loadbalance",
                    }
                    for ip in ips
                ],
            },
        },
    }
    if gateway_distribution(settings.apim.version) == "profile":
        # The backend JWT off, as the pair has it: the gateway-worker template enables [apim.jwt] (v4.0.0-v4.4.0:
        # modules/distribution/product/src/main/resources/conf/deployment-templates/gateway-worker.toml) where the
        # all-in-one pack leaves it commented out (modules/distribution/product/src/main/conf/deployment.toml). The
        # Universal Gateway pack leaves it commented out too (v4.5.0-v4.7.0: gateway/.../conf/deployment.toml).
        document["apim"]["jwt"] = {"enable": False}
    document |= every_node_sections(settings)
    return document


def render_gateway_toml(settings: Settings, db_host: str, db_port: int, lb_dns_name: str) -> str:
    """deployment.toml for every node of the gateway group: customization.deployment_toml merged over it last."""
    document = merge_overlay(gateway_document(settings, db_host, db_port, lb_dns_name), settings.customization.deployment_toml)
    header = (
        f"# Rendered by apim_active_active for {settings.name_prefix}'s gateway group (API-M {settings.apim.version}): the "
        "pair's part only, merged over the gateway's own deployment.toml at boot (wso2am-boot merge-config). Do not edit on "
        "the node: change the settings and redeploy (an instance refresh replaces the group's nodes).\n"
    )
    return header + tomli_w.dumps(document)
