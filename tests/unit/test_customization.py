"""The escape hatches' settings ([customization]): the overlay merged last into every node's deployment.toml, its keys
the pair owns refused by name before anything runs (every owned family, a nested table, a key only the rendered
document sets, a secret value), the JVM options the pair owns refused, the jars' and the hook's URLs; and what the
nodes are given for them."""

from __future__ import annotations

import copy
import hashlib
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers.boot_script import merge_config_text, render_deployment_toml, render_user_data
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.overlay import OWNED, dotted
from apim_active_active.settings import Settings, SettingsError, parse_settings
from scripts.rehearsal.product import build_bundle_jar, shipped_deployment_toml
from tests.conftest import DEPLOYED, ENVIRONMENTS, local_settings_dict
from tests.helpers import cloud_config_files, restored_local_dict, synth_main

KEY = "customization.deployment_toml"


def customized(overlay: dict | None = None, data: dict | None = None, **customization) -> Settings:
    """The local environment's settings (or data) with this [customization] in place of local's."""
    data = copy.deepcopy(data or local_settings_dict())
    data["customization"] = {**({"deployment_toml": overlay} if overlay is not None else {}), **customization}
    return parse_settings(data, "local.toml", environ={})


def refusal(overlay: dict | None = None, data: dict | None = None, **customization) -> str:
    with pytest.raises(SettingsError) as caught:
        customized(overlay, data, **customization)
    return str(caught.value)


def nested(dotted_key: str, value) -> dict:
    *tables, leaf = dotted_key.split(".")
    document = {leaf: value}
    for table in reversed(tables):
        document = {table: document}
    return document


def documents(settings: Settings) -> list[dict]:
    """Every node's rendered deployment.toml: both pair nodes', the gateway group's."""
    pair = [render_deployment_toml(settings, n, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name) for n in (0, 1)]
    gateway = render_gateway_toml(settings, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    return [tomllib.loads(text) for text in (*pair, gateway)]


# The overlay's keys the pair owns: refused by name, with what decides them ------------------------------------------
OWNED_FAMILIES = [
    ("server.hostname", "apim.example.com", "the public name (apim.hostname"),
    ("server.node_ip", "10.0.1.99", "network.node_host_number"),
    ("server.offset", 1, "apim_active_active/ports.py"),
    ("database.apim_db.url", "jdbc:mysql://elsewhere:3306/apim_db", "database.*"),
    ("database.identity_db.url", "jdbc:mysql://elsewhere:3306/identity_db", "database.*"),  # a third data source too
    ("keystore.primary.file_name", "other.jks", "the pair's keystore"),
    ("keystore.internal.alias", "other", "the pair's keystore"),  # a keystore the pair does not render
    ("truststore.file_name", "other.jks", "the pair's truststore"),
    ("super_admin.username", "root", "the pair's admin"),
    ("secrets.admin_password", "$ref{x}", "secret values"),
    ("encryption.key", "$env{MY_KEY}", "4.7's internal encryption key"),
    ("apim.throttling.url_group", [{"traffic_manager_urls": ["tcp://elsewhere:9611"]}], "the traffic managers"),
    ("apim.throttling.event_duplicate_url", ["tcp://elsewhere:5672"], "the peer's broker"),
    ("apim.throttling.throttle_decision_endpoints", ["tcp://elsewhere:5672"], "throttle decisions"),
    ("apim.throttling.service_url", "https://elsewhere:9443/services/", "the control plane"),
    ("apim.event_hub.enable", False, "the event hub"),
    ("apim.gateway.environment", [{"name": "Other"}], "the gateway environment"),
    ("apim.key_manager.service_url", "https://is.example.com/services/", "key_manager.type, key_manager.url"),
    ("apim.key_manager.type", "Okta", "key_manager.type"),
    ("apim.sync_runtime_artifacts.gateway.gateway_labels", ["Other"], "gateway_scale_out"),
    ("monitoring.jmx.rmi_server_start", True, "observability.agent"),
    ("indexing.re_indexing", 7, "restore.generation"),
]


@pytest.mark.parametrize("key, value, words", OWNED_FAMILIES, ids=[f[0] for f in OWNED_FAMILIES])
def test_an_overlay_key_the_pair_owns_is_refused_by_name_with_what_decides_it(key, value, words):
    message = refusal(nested(key, value))
    (line,) = [line for line in message.splitlines() if line.strip().startswith(KEY)]
    assert line.strip().startswith(f"{KEY}.{key}: the pair's: "), message
    assert words in line, line


def test_every_owned_prefix_is_tried_above():
    families = [key for key, _, _ in OWNED_FAMILIES]
    untried = [prefix for prefix, _, _ in OWNED if not any(key == prefix or key.startswith(prefix + ".") for key in families)]
    assert untried == ["apim.key_manager.username", "apim.key_manager.password"], "the Key Manager's user: below, with wso2-is"


def test_the_refusal_reads_as_one_line_naming_the_key_why_and_the_setting():
    message = refusal({"server": {"hostname": "apim.example.com"}})
    assert message.splitlines() == [
        "local.toml: invalid settings",
        f"  {KEY}.server.hostname: the pair's: the public name (apim.hostname; unset, the load balancer's name)",
    ]


def test_a_nested_table_is_refused_at_the_key_it_would_change_and_every_such_key_is_named():
    """A table the pair sets, given whole or in part: each key of it the pair owns named; a table replaced by a value
    is refused too (it would take the pair's keys under it)."""
    message = refusal({"apim": {"throttling": {"event_duplicate_url": [], "enable_unlimited_tier": True}, "event_hub": {"publish": {}}}})
    named = re.findall(rf"{KEY}\.(\S+):", message)
    assert named == ["apim.throttling.event_duplicate_url"], "an empty table changes nothing; a key of the pair's is named"
    message = refusal({"transport": {"https": "off"}, "apim": "none"})
    assert re.findall(rf"{KEY}\.(\S+):", message) == ["apim", "transport.https"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("transport.https.properties.proxyPort", 8443),  # TLS ends at the load balancer on 443
        ("transport.https.properties.keepAliveTimeout", 1000),
        ("passthru_http.http\\.socket\\.timeout", 1000),  # a quoted key: named as TOML writes it
        ("apim.devportal.url", "https://elsewhere/devportal"),
        ("http_access_log.maxDays", 90),
        ("server.server_role", "gateway-worker"),
    ],
)
def test_a_key_only_the_rendered_document_sets_is_the_pairs_too(key, value):
    path = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", key)]
    overlay: dict = value
    for part in reversed(path):
        overlay = {part: overlay}
    message = refusal(overlay)
    assert f"{KEY}.{dotted(tuple(path))}: the pair's deployment.toml sets it" in message, message


def test_what_the_pair_sets_depends_on_the_settings_the_gateway_groups_keys_too():
    """[apim.jwt] enable: only the gateway group's file sets it (4.0-4.4): the pair's own once the group is on."""
    assert "gateway_scale_out" in local_settings_dict()
    assert f"{KEY}.apim.jwt.enable" in refusal({"apim": {"jwt": {"enable": True}}})
    without_group = local_settings_dict()
    del without_group["gateway_scale_out"]
    settings = customized({"apim": {"jwt": {"enable": True}}}, without_group)
    assert all(document["apim"]["jwt"] == {"enable": True} for document in documents(settings)[:2])


def test_the_key_managers_user_is_the_pairs_with_an_external_key_manager():
    data = local_settings_dict()
    data["key_manager"] = {"type": "wso2-is", "url": "https://is.local.test:9443", "cidr": "10.9.0.0/16"}
    message = refusal({"apim": {"key_manager": {"username": "other"}}}, data)
    assert f"{KEY}.apim.key_manager.username: the pair's: the Key Manager's user" in message


def test_a_restored_environments_reindexing_is_the_pairs():
    message = refusal({"indexing": {"re_indexing": 9}}, restored_local_dict())
    assert f"{KEY}.indexing.re_indexing: the pair's" in message and "restore.generation" in message


@pytest.mark.parametrize(
    "overlay, key",
    [
        ({"apim": {"workflow": {"password": "hunter2"}}}, "apim.workflow.password"),
        ({"apim": {"analytics": {"client_secret": "s3cr3t"}}}, "apim.analytics.client_secret"),
        ({"event_listener": [{"id": "x", "properties": {"Password": "p"}}]}, "event_listener.properties.Password"),
    ],
)
def test_a_secret_value_is_refused_by_the_keys_name(overlay, key):
    message = refusal(overlay)
    assert f"{KEY}.{key}: a secret value would be in the user data" in message, message


def test_a_secret_named_not_held_is_the_operators():
    workflow = {"enable": True, "password": "$ref{super_admin.password}", "username": "${admin.username}"}
    settings = customized({"apim": {"workflow": workflow}})
    assert all(doc["apim"]["workflow"]["password"] == "$ref{super_admin.password}" for doc in documents(settings))


def test_a_secret_reference_the_vault_does_not_seal_is_refused():
    """[secrets] holds the pair's own aliases only (vault.sh): any other $secret{} would stop API-M at start."""
    message = refusal({"apim": {"workflow": {"password": "$secret{workflow_password}"}}})
    assert f"{KEY}.apim.workflow.password: $secret{{...}} names what the secure vault seals" in message, message


# Allowed keys: merged last into every node's file; at boot the overlay's value wins over the product's ----------------
ALLOWED = {
    "apim": {
        "cors": {"allow_credentials": True},  # the product ships false
        "workflow": {"enable": True, "service_url": "https://bps.example.com:9445/bpmn"},  # a service_url not the pair's
        "throttling": {"enable_unlimited_tier": False},  # beside the pair's keys in a table the pair sets
    },
    "transport": {"https": {"properties": {"maxThreads": 400}}},
    # WSO2's own deployments tune the pools under the pair's data sources (wso2/helm-apim).
    "database": {"apim_db": {"pool_options": {"maxActive": 150}}, "shared_db": {"pool_options": {"maxWait": 60000}}},
    "event_handler": [{"name": "userPostSelfRegistration", "subscriptions": ["POST_ADD_USER"]}],
}


def test_an_allowed_overlay_merges_into_every_nodes_file_beside_the_pairs_keys():
    plain, settings = customized({}), customized(ALLOWED)
    for before, after in zip(documents(plain), documents(settings)):
        assert after["apim"]["cors"] == {"allow_credentials": True}
        assert after["apim"]["workflow"]["service_url"] == "https://bps.example.com:9445/bpmn"
        assert after["apim"]["throttling"] == {**before["apim"]["throttling"], "enable_unlimited_tier": False}
        assert after["database"]["shared_db"] == {**before["database"]["shared_db"], "pool_options": {"maxWait": 60000}}
        assert after["event_handler"] == ALLOWED["event_handler"]
    pair, gateway = documents(settings)[0], documents(settings)[2]
    assert pair["database"]["apim_db"]["pool_options"] == {"maxActive": 150}
    assert "apim_db" not in gateway["database"], "a gateway node has no apim_db: its pool tuning is left out there"
    assert pair["transport"]["https"]["properties"] == {**documents(plain)[0]["transport"]["https"]["properties"], "maxThreads": 400}


def test_the_overlays_value_wins_over_the_products_at_boot_and_the_rest_is_kept(tmp_path):
    """The boot step's merge-config over the stand-in 4.3 pack's file: the overlay's value over the shipped one."""
    shipped = shipped_deployment_toml("4.3.0")
    assert tomllib.loads(shipped)["apim"]["cors"]["allow_credentials"] is False
    pair = render_deployment_toml(customized(ALLOWED), 0, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    merge = tmp_path / "wso2am-merge-config"
    merge.write_text(merge_config_text())
    (tmp_path / "shipped.toml").write_text(shipped)
    (tmp_path / "pair.toml").write_text(pair)
    result = subprocess.run(["/usr/bin/python3", str(merge), str(tmp_path / "shipped.toml"), str(tmp_path / "pair.toml")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    merged = tomllib.loads(result.stdout)
    assert merged["apim"]["cors"]["allow_credentials"] is True
    assert merged["apim"]["cors"]["allow_headers"] == tomllib.loads(shipped)["apim"]["cors"]["allow_headers"], "the rest as shipped"
    assert merged["event_handler"] == ALLOWED["event_handler"], "an array of tables the overlay gives replaces the shipped one"


def test_without_customization_the_files_are_as_before():
    settings = customized()
    assert settings.customization.deployment_toml == {} and not settings.customization.customizes_boot
    assert "apim-local" in render_deployment_toml(settings, 0, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)


# JVM options -----------------------------------------------------------------------------------------------------------
REFUSED_OPTIONS = [
    ("-Xms2g", "node.heap_percent"),
    ("-Xmx4096m", "node.heap_percent"),
    ("-XX:MaxHeapSize=4g", "node.heap_percent"),
    ("-Dprofile=gateway-worker", "gateway_scale_out"),
    ("-Dcom.sun.management.jmxremote.port=9999", "observability.agent"),
    ("-DenableCorrelationLogs=true", "observability.correlation_log"),
    ("-Djavax.net.ssl.keyStorePassword=changeit", "no secret in the user data"),
    ("-Dmy.SECRET=x", "no secret in the user data"),
    ("-Dtwo words", "is not one option"),
    ('-Dquoted="x"', "is not one option"),
    ("-Dhome=$HOME", "is not one option"),
    ("Dfile.encoding=UTF-8", "is not one option"),
]


@pytest.mark.parametrize("option, words", REFUSED_OPTIONS, ids=[o for o, _ in REFUSED_OPTIONS])
def test_a_jvm_option_the_pair_owns_or_that_is_not_one_option_is_refused(option, words):
    message = refusal(jvm_options=["-Dfile.encoding=UTF-8", option])
    (line,) = [line for line in message.splitlines() if "customization.jvm_options" in line]
    assert f"{option!r}" in line and words in line, line
    assert "-Dfile.encoding" not in line, "only the refused option is named"


def test_jvm_options_that_are_the_operators_reach_the_nodes_env():
    settings = customized(jvm_options=["-Dfile.encoding=UTF-8", "-XX:+UseG1GC", "-javaagent:/opt/agent.jar=port:1"])
    env = cloud_config_files(render_user_data(settings, 0, DEPLOYED))["/etc/wso2am/node.env"]["content"]
    assert "JVM_OPTIONS='-Dfile.encoding=UTF-8 -XX:+UseG1GC -javaagent:/opt/agent.jar=port:1'\n" in env


# Jars and the hook: where from, and the node roles' reads --------------------------------------------------------------
@pytest.mark.parametrize(
    "customization, field, words",
    [
        ({"extra_jars": [{"url": "s3://b/x.zip"}]}, "customization.extra_jars.0.url", "is not a .jar"),
        ({"extra_jars": [{"url": "ftp://h/x.jar"}]}, "customization.extra_jars.0.url", "s3://bucket/key or https://"),
        ({"extra_jars": [{"url": "s3://b/x.jar", "sha256": "abc"}]}, "customization.extra_jars.0.sha256", "not a hex SHA-256"),
        ({"extra_jars": [{"url": "s3://b/x.jar"}, {"url": "s3://c/x.jar"}]}, "customization.extra_jars", "two jars named x.jar"),
        ({"extra_jars": [{"url": "https://h.example/x.jar"}]}, "customization.extra_jars.0.url", "a new VPC has no internet egress"),
        ({"extra_jars": [{"url": "s3://b/mysql-connector-j-8.4.0.jar"}]}, "customization.extra_jars.0.url", "the JDBC driver's name"),
        ({"post_boot_hook": "https://h.example/hook.sh"}, "customization.post_boot_hook", "a new VPC has no internet egress"),
        ({"post_boot_hook": "file:///root/hook.sh"}, "customization.post_boot_hook", "s3://bucket/key or https://"),
        ({"post_boot_hook": "s3://b/hook.sh#x"}, "customization.post_boot_hook", "no #fragment"),
        ({"extra_jars": [{"url": "s3://b/x.jar", "size": 1}]}, "customization.extra_jars.0.size", "unknown setting"),
    ],
)
def test_bad_jars_and_hooks_name_the_setting(customization, field, words):
    message = refusal(**customization)
    assert any(line.strip().startswith(field) and words in line for line in message.splitlines()), message


def test_https_jars_and_hooks_with_existing_subnets_that_have_egress():
    settings = customized(
        data=tomllib.loads((ENVIRONMENTS / "legacy32.toml").read_text()),
        extra_jars=[{"url": "https://repo.example.com/x.jar", "sha256": "A" * 64}],
        post_boot_hook="https://repo.example.com/hook.sh",
    )
    assert settings.customization.extra_jars[0].sha256 == "a" * 64, "kept as sha256sum writes it"
    assert settings.customization.fetched_urls == ("https://repo.example.com/x.jar", "https://repo.example.com/hook.sh")


def test_only_jars_options_or_a_hook_customize_the_boot_the_overlay_alone_does_not():
    assert not customized({"apim": {"cors": {"allow_credentials": True}}}).customization.customizes_boot
    assert customized(jvm_options=["-Dx=1"]).customization.customizes_boot
    assert customized(post_boot_hook="s3://b/h.sh").customization.customizes_boot


def test_local_turns_every_escape_hatch_on_and_its_jars_checksum_is_the_rehearsals_stand_in():
    customization = parse_settings(local_settings_dict(), environ={}).customization
    assert customization.deployment_toml and customization.extra_jars and customization.jvm_options and customization.post_boot_hook
    (jar,) = customization.extra_jars
    with tempfile.TemporaryDirectory() as folder:
        assert hashlib.sha256(build_bundle_jar(jar.file_name, Path(folder)).read_bytes()).hexdigest() == jar.sha256


def test_the_app_refuses_an_owned_key_by_name_before_synthesizing(tmp_path):
    """The entry point every cdktf command runs (main.py): exit 2, the key named, nothing synthesized."""
    folder = tmp_path / "environments"
    folder.mkdir()
    text = (ENVIRONMENTS / "local.toml").read_text()
    owned, count = re.subn(r"^deployment_toml = .*$", 'deployment_toml = { keystore = { tls = { alias = "mine" } } }', text, flags=re.M)
    assert count == 1
    (folder / "local.toml").write_text(owned)
    out = tmp_path / "out"
    result = synth_main(folder, out)
    assert result.returncode == 2
    assert f"{KEY}.keystore.tls.alias: the pair's: the pair's keystore" in result.stderr, result.stderr
    assert not out.exists(), "nothing may be synthesized"
