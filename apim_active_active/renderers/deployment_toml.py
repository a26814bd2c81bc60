"""Each node's `<API-M_HOME>/repository/conf/deployment.toml` for the active-active pair."""

from __future__ import annotations

from typing import Any

import tomli_w

from apim_active_active import ports
from apim_active_active.engines import ENGINES, jdbc_url
from apim_active_active.renderers.overlay import merge_overlay
from apim_active_active.settings import Settings
from apim_active_active.traffic import gateway_endpoints, public_name, public_urls
from apim_active_active.versions import traits

# Shared file system: every node publishes to its own gateway (the seed's "localhost" service_url).
LOCAL_SERVICE_URL = "https://localhost:${mgt.transport.https.port}/services/"
MANAGER_INDEX = 0  # content_sync = "rsync": node 1 is the manager, the only node that publishes


def node_ips(settings: Settings) -> tuple[str, str]:
    return str(settings.network.node_ip(0)), str(settings.network.node_ip(1))


def gateway_service_url(settings: Settings, node_index: int) -> str:
    """Where a node's gateway environment publishes: its own management port, except node 2 with rsync,
    which publishes through node 1, whose artifacts rsync brings to node 2 (the seed)."""
    if settings.content_sync == "rsync" and node_index != MANAGER_INDEX:
        return f"https://{node_ips(settings)[MANAGER_INDEX]}:{ports.MANAGEMENT}/services/"
    return LOCAL_SERVICE_URL


def _gateway_environment(settings: Settings, node_index: int, name: str) -> dict:
    version = traits(settings.apim.version)
    environment = {
        "name": version.gateway_environment_name,
        "type": "hybrid",
        "display_in_api_console": True,
        "description": "This is a hybrid gateway that handles both production and sandbox token traffic.",
        "show_as_token_endpoint_url": True,
        "service_url": gateway_service_url(settings, node_index),
        "username": "${admin.username}",
        "password": "${admin.password}",
        # Clients reach the gateway through the load balancer, under the public name.
        **gateway_endpoints(name, settings),
    }
    if version.has_gateway_type:
        environment |= {"gateway_type": "Regular", "provider": "wso2"}
    if version.has_event_hub:
        # The pair's entry replaces the shipped one whole: keep the product's WebSub receivers (not routed by the
        # load balancer).
        environment |= {
            "websub_event_receiver_http_endpoint": f"http://localhost:{ports.WEBSUB_HTTP}",
            "websub_event_receiver_https_endpoint": f"https://localhost:{ports.WEBSUB_HTTPS}",
        }
    return environment


def _throttling(settings: Settings, node_index: int) -> dict:
    ips = node_ips(settings)
    peer = ips[1 - node_index]
    # One group per node, one URL per group: every event reaches both traffic managers.
    url_groups = [
        {
            "traffic_manager_urls": [f"tcp://{ip}:{ports.THROTTLE_BINARY}"],
            "traffic_manager_auth_urls": [f"ssl://{ip}:{ports.THROTTLE_AUTH}"],
            "type": "loadbalance",
        }
        for ip in ips
    ]
    throttling: dict = {"event_duplicate_url": [f"tcp://{peer}:{ports.BROKER}"]}
    if traits(settings.apim.version).has_throttle_decision_endpoints:
        throttling["throttle_decision_endpoints"] = [f"tcp://localhost:{ports.BROKER}"]
    throttling["url_group"] = url_groups
    return throttling


# Secret values never appear in the file. Secure vault off: API-M reads them from the environment its unit gets from
# the root-only secrets file the boot step writes. On: `$secret{alias}`, the alias's value in the file's [secrets],
# sealed at boot by the product's cipher tool (files/boot/vault.sh writes the same aliases).
SECRETS = {
    "admin_password": "APIM_ADMIN_PASSWORD",
    "db_username": "APIM_DB_USERNAME",
    "db_password": "APIM_DB_PASSWORD",
    "keystore_password": "APIM_KEYSTORE_PASSWORD",
    "encryption_key": "APIM_ENCRYPTION_KEY",
}


def secret(alias: str, settings: Settings) -> str:
    return f"$secret{{{alias}}}" if settings.secure_vault.enabled else f"$env{{{SECRETS[alias]}}}"


KEYSTORE_FILE = "wso2carbon.jks"
KEYSTORE_ALIAS = "wso2carbon"
TRUSTSTORE_FILE = "client-truststore.jks"


def _event_hub(settings: Settings, node_index: int) -> dict:
    """4.x: every node's notifications (new APIs, subscriptions, token revocations) go to both nodes."""
    ips = node_ips(settings)
    return {
        "enable": True,
        "username": "$ref{super_admin.username}",
        "password": secret("admin_password", settings),
        "service_url": LOCAL_SERVICE_URL,
        "event_listening_endpoints": [f"tcp://localhost:{ports.BROKER}"],
        "event_duplicate_url": [f"tcp://{ips[1 - node_index]}:{ports.BROKER}"],
        "publish": {
            "url_group": [
                {"urls": [f"tcp://{ip}:{ports.THROTTLE_BINARY}"], "auth_urls": [f"ssl://{ip}:{ports.THROTTLE_AUTH}"]} for ip in ips
            ]
        },
    }


def key_manager_section(settings: Settings) -> dict | None:
    """An external WSO2 Identity Server (the seed's hybrid pattern); None keeps the resident Key Manager.
    It shares the user store (WSO2SHARED_DB), so the pair's admin is its admin too."""
    key_manager = settings.key_manager
    if key_manager.type == "resident":
        return None
    return {
        "service_url": f"{key_manager.url}/services/",
        "username": "$ref{super_admin.username}",
        "password": "$ref{super_admin.password}",
        "type": "WSO2-IS",
    }


def database_section(settings: Settings, db_host: str, db_port: int) -> dict:
    engine = ENGINES[settings.database.engine]
    credentials = {"username": secret("db_username", settings), "password": secret("db_password", settings)}
    return {
        name: {"type": engine.toml_type, "url": jdbc_url(engine, db_host, db_port, database), "driver": engine.jdbc_driver, **credentials}
        for name, database in (("apim_db", engine.apim_db), ("shared_db", engine.shared_db))
    }


def keystore_sections(settings: Settings) -> tuple[dict, dict]:
    password = secret("keystore_password", settings)
    store = {"file_name": KEYSTORE_FILE, "type": "JKS", "password": password, "alias": KEYSTORE_ALIAS, "key_password": password}
    return {"tls": store, "primary": store}, {"file_name": TRUSTSTORE_FILE, "type": "JKS", "password": password}


GATEWAY_SOCKET_TIMEOUT_MS = 180_000  # [passthru_http] "http.socket.timeout" in the product's default.json (4.3.0)
NODE_IDLE_MARGIN_SECONDS = 5


def node_idle_ms(settings: Settings) -> int:
    """How long a node keeps an idle connection from the load balancer: longer than the load balancer does."""
    return (settings.load_balancer.idle_timeout_seconds + NODE_IDLE_MARGIN_SECONDS) * 1000


def access_log_has_max_days(version: str) -> bool:
    """catalina-server.xml.j2 passes deployment.toml's [http_access_log] maxDays to Tomcat's AccessLogValve from
    API-M 4.1.0 on (wso2/product-apim, conf/templates/repository/conf/tomcat/catalina-server.xml.j2 at v4.1.0;
    absent at v3.2.0 and v4.0.0)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (4, 1)


def every_node_sections(settings: Settings) -> dict[str, Any]:
    """What a pair node's and a gateway node's files both end with."""
    # The product's own JMX RMI server (9999/11111, on every interface) off: the JVM's JMX agent on loopback serves
    # the CloudWatch agent (`wso2am-boot jmx`, the unit's ExecStartPost). default.json's
    # monitoring.jmx.rmi_server_start is true in wso2/product-apim from v3.2.0 to v4.7.0.
    sections: dict[str, Any] = {"monitoring": {"jmx": {"rmi_server_start": False}}}
    if access_log_has_max_days(settings.apim.version):
        # Tomcat's AccessLogValve deletes its rotated http_access_<date>.log files older than this.
        sections["http_access_log"] = {"maxDays": settings.observability.local_log_days}
    if traits(settings.apim.version).symmetric_internal_crypto:
        # One key for the pair (and its gateways), generated once (the boot step); set, so the 4.7 start script adds
        # none of its own.
        sections["encryption"] = {"key": secret("encryption_key", settings)}
    return sections


def super_admin_section(settings: Settings) -> dict[str, Any]:
    return {"username": "admin", "password": secret("admin_password", settings), "create_admin_account": True}


# The kid the DevPortal writes into the API keys it signs with the primary key ([apim.devportal] api_key_alias:
# api-manager.xml's APIStore/ApiKeyAlias) and the Publisher into internal keys ([apim.publisher] key_alias:
# APIPublisher/InternalKeyAlias, from 4.0; carbon-apimgt 6.7.206, 3.2's, has no internal keys), both
# "gateway_certificate_alias" by default (carbon-apimgt's org.wso2.carbon.apimgt.core.default.json at 6.7.206, 9.0.174
# and 9.33.x); a gateway checks such a key against its truststore's certificate under the key's kid. From the node's
# runtime.env (install_keystores, from the keystore secret's api_key_alias): a keystore rotation moves it without a
# deploy (docs/keystore.md). Only the pair's nodes sign them (a gateway node has no DevPortal or Publisher).
API_KEY_ALIAS_ENV = "APIM_API_KEY_ALIAS"


def key_alias_sections(settings: Settings) -> dict[str, dict[str, str]]:
    alias = f"$env{{{API_KEY_ALIAS_ENV}}}"
    sections = {"devportal": {"api_key_alias": alias}}
    if int(settings.apim.version.split(".")[0]) >= 4:
        sections["publisher"] = {"key_alias": alias}
    return sections


def pair_document(settings: Settings, node_index: int, db_host: str, db_port: int, lb_dns_name: str) -> dict[str, Any]:
    """What the pair sets in node 0's or 1's deployment.toml (customization.deployment_toml not merged). db_host and
    lb_dns_name may be placeholders the stack swaps for the RDS address and the load balancer's DNS name."""
    if node_index not in (0, 1):
        raise ValueError(f"node_index must be 0 or 1, not {node_index}")
    name = public_name(settings, lb_dns_name)
    keystore, truststore = keystore_sections(settings)
    idle_ms = node_idle_ms(settings)
    document: dict[str, Any] = {
        "server": {
            "hostname": name,
            "node_ip": node_ips(settings)[node_index],
            "server_role": "default",
        },
        # TLS ends at the load balancer on 443: links and redirects the portals build must use it. A node keeps an idle
        # connection from the load balancer open longer than the load balancer does (Tomcat's default is 60 s).
        "transport": {"https": {"properties": {"proxyPort": ports.HTTPS, "keepAliveTimeout": idle_ms}}},
        # The gateway's side (passthru's socket timeout, 180 s as shipped): never shorter than the load balancer's.
        "passthru_http": {"http.socket.timeout": max(GATEWAY_SOCKET_TIMEOUT_MS, idle_ms)},
        "super_admin": super_admin_section(settings),
        "database": database_section(settings, db_host, db_port),
        "keystore": keystore,
        "truststore": truststore,
        "apim": {
            "gateway": {"environment": [_gateway_environment(settings, node_index, name)]},
            "throttling": _throttling(settings, node_index),
            "devportal": {"url": public_urls(name)["devportal_url"]},
        },
    }
    document |= every_node_sections(settings)
    key_manager = key_manager_section(settings)
    if key_manager:
        document["apim"]["key_manager"] = key_manager
    if traits(settings.apim.version).has_event_hub:
        document["apim"]["event_hub"] = _event_hub(settings, node_index)
    for table, keys in key_alias_sections(settings).items():
        document["apim"].setdefault(table, {}).update(keys)
    if settings.restore:
        # WSO2's re-index switch (registry.xml.j2 from v3.2.0 to v4.7.0: a new lastAccessTimeLocation, so the indexer
        # starts over from the database); the boot step removes the old index (restore.sh).
        document["indexing"] = {"re_indexing": settings.restore.generation}
    return document


def render_deployment_toml(settings: Settings, node_index: int, db_host: str, db_port: int, lb_dns_name: str) -> str:
    """deployment.toml for node 0 or 1: the pair's settings, customization.deployment_toml merged over them last."""
    document = merge_overlay(pair_document(settings, node_index, db_host, db_port, lb_dns_name), settings.customization.deployment_toml)
    header = (
        f"# Rendered by apim_active_active for {settings.name_prefix} node {node_index + 1}"
        f" (API-M {settings.apim.version}): the pair's part only. The boot step merges it over the product's own"
        f" deployment.toml (wso2am-boot merge-config). Do not edit on the node: change the settings and redeploy.\n"
    )
    return header + tomli_w.dumps(document)
