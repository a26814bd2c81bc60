"""deployment.toml: parsed back with a TOML reader and checked against the active-active rules."""

from __future__ import annotations

import tomllib

import pytest

from apim_active_active.renderers.deployment_toml import LOCAL_SERVICE_URL, render_deployment_toml, secret
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, local_settings_dict
from tests.helpers import at_version, restored_local


def _parsed(settings, node: int) -> dict:
    return tomllib.loads(render_deployment_toml(settings, node, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name))


def _with_version(version: str, jdk: int):
    return parse_settings(at_version(local_settings_dict(), version, jdk), environ={})


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod"])
def test_one_url_group_per_node_identical_on_both_nodes(environments, env):
    settings = environments[env]
    ips = [str(settings.network.node_ip(i)) for i in (0, 1)]
    groups = [_parsed(settings, node)["apim"]["throttling"]["url_group"] for node in (0, 1)]
    assert groups[0] == groups[1]
    assert groups[0] == [
        {"traffic_manager_urls": [f"tcp://{ip}:9611"], "traffic_manager_auth_urls": [f"ssl://{ip}:9711"], "type": "loadbalance"}
        for ip in ips
    ]


@pytest.mark.parametrize("node", [0, 1])
def test_each_node_duplicates_events_to_its_peer(environments, node):
    settings = environments["local"]
    peer = str(settings.network.node_ip(1 - node))
    assert _parsed(settings, node)["apim"]["throttling"]["event_duplicate_url"] == [f"tcp://{peer}:5672"]


@pytest.mark.parametrize("node", [0, 1])
def test_gateway_publishes_to_localhost_on_a_shared_file_system(environments, node):
    environment = _parsed(environments["local"], node)["apim"]["gateway"]["environment"]
    assert len(environment) == 1
    assert environment[0]["service_url"] == LOCAL_SERVICE_URL == "https://localhost:${mgt.transport.https.port}/services/"


@pytest.mark.parametrize(
    "env, name", [("local", "apim.local.test"), ("legacy32", "apim.example.com"), ("dev-without-hostname", DEPLOYED.lb_dns_name)]
)
def test_public_name_is_the_hostname_else_the_load_balancer(environments, env, name):
    if env == "dev-without-hostname":  # (pre-flight refuses it on AWS: no certificate covers the LB's own name)
        dev = environments["dev"]
        settings = dev.model_copy(update={"apim": dev.apim.model_copy(update={"hostname": None})})
    else:
        settings = environments[env]
    for node in (0, 1):
        parsed = _parsed(settings, node)
        assert parsed["server"] == {"hostname": name, "node_ip": str(settings.network.node_ip(node)), "server_role": "default"}
        assert parsed["transport"] == {"https": {"properties": {"proxyPort": 443, "keepAliveTimeout": 305_000}}}, (
            "TLS ends at the load balancer; a node's keep-alive outlasts the load balancer's idle timeout (300 s)"
        )
        assert parsed["passthru_http"] == {"http.socket.timeout": 305_000}, "the gateway's too (180 s as shipped)"
        gateway = parsed["apim"]["gateway"]["environment"][0]
        assert {key: gateway[key] for key in ("http_endpoint", "https_endpoint", "ws_endpoint", "wss_endpoint")} == {
            # the gateway is reached over TLS only: its plain endpoints are the TLS ones
            "http_endpoint": f"https://{name}:8243",
            "https_endpoint": f"https://{name}:8243",
            "ws_endpoint": f"wss://{name}:8099",
            "wss_endpoint": f"wss://{name}:8099",
        }
        assert parsed["apim"]["devportal"] == {"url": f"https://{name}/devportal", "api_key_alias": "$env{APIM_API_KEY_ALIAS}"}


def test_the_nodes_keep_idle_connections_longer_than_the_load_balancer(environments):
    """AWS: a target's keep-alive must outlast the load balancer's idle timeout, or a request sent on a connection the
    node is closing gets a 502. Tomcat's default is 60 s; the gateway's socket timeout 180 s (product default.json)."""
    settings = environments["local"]
    longer = settings.model_copy(update={"load_balancer": settings.load_balancer.model_copy(update={"idle_timeout_seconds": 1800})})
    parsed = _parsed(longer, 0)
    assert parsed["transport"]["https"]["properties"]["keepAliveTimeout"] == 1_805_000
    assert parsed["passthru_http"]["http.socket.timeout"] == 1_805_000


def test_resident_key_manager_by_default(environments):
    assert "key_manager" not in _parsed(environments["local"], 0)["apim"]


@pytest.mark.parametrize("node", [0, 1])
def test_external_key_manager_is_the_identity_server(environments, node):
    assert _parsed(environments["legacy32"], node)["apim"]["key_manager"] == {
        "service_url": "https://is.internal.example.com:9443/services/",
        "username": "$ref{super_admin.username}",
        "password": "$ref{super_admin.password}",
        "type": "WSO2-IS",
    }


def test_version_3_2_rendering():
    parsed = _parsed(_with_version("3.2.0", 11), 0)
    gateway = parsed["apim"]["gateway"]["environment"][0]
    assert gateway["name"] == "Production and Sandbox"
    assert "gateway_type" not in gateway
    assert "throttle_decision_endpoints" not in parsed["apim"]["throttling"]


@pytest.mark.parametrize("version, jdk, decision_endpoints", [("4.1.0", 11, False), ("4.2.0", 17, True), ("4.7.0", 21, True)])
def test_version_4_rendering(version, jdk, decision_endpoints):
    parsed = _parsed(_with_version(version, jdk), 0)
    gateway = parsed["apim"]["gateway"]["environment"][0]
    assert (gateway["name"], gateway["gateway_type"]) == ("Default", "Regular")
    throttling = parsed["apim"]["throttling"]
    assert ("throttle_decision_endpoints" in throttling) is decision_endpoints
    if decision_endpoints:
        assert throttling["throttle_decision_endpoints"] == ["tcp://localhost:5672"]


def test_no_literal_password_in_the_file(environments):
    gateway = _parsed(environments["dev"], 0)["apim"]["gateway"]["environment"][0]
    assert gateway["password"] == "${admin.password}"


def test_only_two_nodes(environments):
    with pytest.raises(ValueError, match="node_index"):
        render_deployment_toml(environments["local"], 2, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)


def test_both_databases_point_at_the_shared_host_with_placeholders_only(environments):
    local = environments["local"]
    database = _parsed(local, 0)["database"]
    host = DEPLOYED.db_host
    assert database["apim_db"] == {
        "type": "mysql",
        "url": f"jdbc:mysql://{host}:3306/WSO2AM_DB?sslMode=REQUIRED",
        # Connector/J 8's class, as WSO2's 4.x active-active page sets it; left out, the config mapper infers the
        # deprecated com.mysql.jdbc.Driver (carbon-kernel's infer.json).
        "driver": "com.mysql.cj.jdbc.Driver",
        "username": secret("db_username", local),
        "password": secret("db_password", local),
    }
    assert database["shared_db"]["url"] == f"jdbc:mysql://{host}:3306/WSO2SHARED_DB?sslMode=REQUIRED"


def test_postgres_is_the_second_engine(environments):
    legacy = environments["legacy32"]
    database = tomllib.loads(render_deployment_toml(legacy, 1, "db.example.com", 5432, "lb.example.com"))["database"]
    assert database["apim_db"]["type"] == "postgre" and database["apim_db"]["driver"] == "org.postgresql.Driver"
    assert database["shared_db"]["url"] == "jdbc:postgresql://db.example.com:5432/wso2shared_db?sslmode=require"


def test_admin_and_keystores_come_from_the_environment(environments):
    parsed = _parsed(environments["dev"], 0)
    assert parsed["super_admin"] == {"username": "admin", "password": "$env{APIM_ADMIN_PASSWORD}", "create_admin_account": True}
    for store in ("tls", "primary"):
        assert parsed["keystore"][store]["password"] == parsed["keystore"][store]["key_password"] == "$env{APIM_KEYSTORE_PASSWORD}"
    assert parsed["truststore"] == {"file_name": "client-truststore.jks", "type": "JKS", "password": "$env{APIM_KEYSTORE_PASSWORD}"}


@pytest.mark.parametrize("node", [0, 1])
def test_4x_event_hub_publishes_to_both_nodes_and_duplicates_to_the_peer(environments, node):
    settings = environments["local"]
    ips = [str(settings.network.node_ip(n)) for n in (0, 1)]
    hub = _parsed(settings, node)["apim"]["event_hub"]
    assert hub["enable"] is True and hub["password"] == secret("admin_password", settings)
    assert hub["event_duplicate_url"] == [f"tcp://{ips[1 - node]}:5672"]
    assert hub["publish"]["url_group"] == [{"urls": [f"tcp://{ip}:9611"], "auth_urls": [f"ssl://{ip}:9711"]} for ip in ips]


def test_3_2_has_no_event_hub(environments):
    assert "event_hub" not in _parsed(environments["legacy32"], 0)["apim"]


def test_4_7_sets_the_pairs_encryption_key(environments):
    """4.7's internal crypto is symmetric by default (WSO2's "Symmetric encryption" page); its start script writes a
    random [encryption] key of its own when none is set: the pair sets one, the same on both nodes."""
    settings = environments["local"].model_copy(
        update={"apim": environments["local"].apim.model_copy(update={"version": "4.7.0", "jdk": 21})}
    )
    assert [_parsed(settings, n)["encryption"] for n in (0, 1)] == [{"key": secret("encryption_key", settings)}] * 2
    assert "encryption" not in _parsed(environments["local"], 0), "4.3 encrypts with the shared keystore"


@pytest.mark.parametrize("node", [0, 1])
def test_a_restored_node_raises_wso2s_re_indexing_switch_registry_xml_j2_v3_2_to_v4_7(examples, node):
    """WSO2's registry.xml.j2 (product-apim v3.2.0 to v4.7.0) takes `[indexing] re_indexing` into the registry's
    lastAccessTimeLocation (.../indexing/lastaccesstime_<n>): a new number is a new location, so the indexer starts over
    and indexes the restored registry from the database (WSO2's re-indexing procedure). One number per restore."""
    assert _parsed(examples["restored"], node)["indexing"] == {"re_indexing": 1}
    assert _parsed(restored_local(generation=4), node)["indexing"] == {"re_indexing": 4}
    assert _parsed(restored_local("rsync", generation=2), node)["indexing"] == {"re_indexing": 2}


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod"])
def test_only_a_restored_environment_touches_the_search_index(environments, env):
    for node in (0, 1):
        assert "indexing" not in _parsed(environments[env], node)
