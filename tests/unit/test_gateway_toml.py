"""A gateway scale-out node's deployment.toml: the pair's part (render_gateway_toml) merged by the boot step's own
`merge-config` over the file the gateway ships with, WSO2's real one (tests/data, checked against the product-apim
mirror when there is one): 4.3's gateway-worker template (profileSetup.sh puts it in place) and 4.7's Universal
Gateway pack's deployment.toml. What it must give: the pair as control plane, event hub and both traffic managers,
its Key Manager, the pair's gateway environment, the shared database only, the backend JWT off as on the pair, and no
secret value."""

from __future__ import annotations

import copy
import subprocess
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers.boot_script import boot_script_source, merge_config_text
from apim_active_active.renderers.deployment_toml import secret
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.settings import Settings, parse_settings
from apim_active_active.versions import traits
from tests.conftest import DEPLOYED, ROOT, local_settings_dict

DATA = ROOT / "tests" / "data"
MIRROR = Path("/work/.mirror/wso2+product-apim/repo")
# What each gateway ships with (tests/data/README.md): (tag, path in wso2/product-apim, the copy here).
SHIPPED = {
    "4.3.0": (
        "v4.3.0",
        "modules/distribution/product/src/main/resources/conf/deployment-templates/gateway-worker.toml",
        DATA / "gateway-worker-4.3.0.toml",
    ),
    "4.7.0": ("v4.7.0", "gateway/modules/distribution/product/src/main/conf/deployment.toml", DATA / "universal-gw-4.7.0-deployment.toml"),
}
NODES = ("10.0.1.10", "10.0.2.10")  # the local environment's pair
CONTROL_PLANE = "https://apim.local.test:9443/services/"
IS_URL = "https://is.local.test:9443"


def gateway_settings(version: str, key_manager: str = "resident") -> Settings:
    data = copy.deepcopy(local_settings_dict())
    data["apim"] |= {"version": version, "archive_url": f"s3://a/wso2am-{version}.zip", "jdk": traits(version).jdk_range[1]}
    universal = int(version.split(".")[1]) >= 5
    data["gateway_scale_out"] = {"archive_url": f"s3://a/wso2am-universal-gw-{version}.zip"} if universal else {}
    if key_manager != "resident":
        data["key_manager"] = {"type": "wso2-is", "url": IS_URL, "cidr": "10.9.0.0/16"}
    return parse_settings(data, environ={})


def _mirror_text(version: str) -> str | None:
    tag, path, _ = SHIPPED[version]
    if not MIRROR.is_dir():
        return None
    return subprocess.run(["git", "-C", str(MIRROR), "show", f"{tag}:{path}"], capture_output=True, text=True, check=True).stdout


def shipped(version: str) -> str:
    """WSO2's file: read from the mirror when there is one, else the copy kept in tests/data."""
    return _mirror_text(version) or SHIPPED[version][2].read_text()


@pytest.mark.parametrize("version", SHIPPED)
def test_the_kept_copies_are_wso2s_files(version):
    mirrored = _mirror_text(version)
    if mirrored is None:
        pytest.skip("no wso2/product-apim mirror here: the copy in tests/data stands")
    assert SHIPPED[version][2].read_text() == mirrored


def merged(tmp_path: Path, settings: Settings) -> tuple[dict, dict, str]:
    """(merged, pair's part, pair's text): `wso2am-boot merge-config` of the gateway's own boot step, run for real with
    no node environment (the system python3 with tomli and tomli_w, as on Amazon Linux 2023)."""
    pair_text = render_gateway_toml(settings, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    files = {
        "wso2am-boot": boot_script_source("gateway"),
        "wso2am-merge-config": merge_config_text(),
        "shipped.toml": shipped(settings.apim.version),
        "pair.toml": pair_text,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    result = subprocess.run(
        ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", f"MERGE_CONFIG={tmp_path / 'wso2am-merge-config'}", "/bin/bash"]
        + [str(tmp_path / "wso2am-boot"), "merge-config", str(tmp_path / "shipped.toml"), str(tmp_path / "pair.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout), tomllib.loads(pair_text), pair_text


@pytest.mark.parametrize("version", SHIPPED)
def test_the_gateway_takes_the_pair_as_event_hub_and_both_traffic_managers(version, tmp_path):
    document, _, _ = merged(tmp_path, gateway_settings(version))
    apim = document["apim"]
    # WSO2's distributed deployment (4.x): deploy events from the control plane's broker, its artifacts pulled from its
    # service URL; here both nodes' brokers (either may publish an event).
    assert apim["event_hub"]["enable"] is True
    assert apim["event_hub"]["service_url"] == CONTROL_PLANE
    assert apim["event_hub"]["event_listening_endpoints"] == [f"tcp://{ip}:5672" for ip in NODES]
    throttling = apim["throttling"]
    assert throttling["service_url"] == CONTROL_PLANE
    assert throttling["throttle_decision_endpoints"] == [f"tcp://{ip}:5672" for ip in NODES]
    # One group per traffic manager, one URL each: WSO2's way of publishing every event to all of them.
    assert throttling["url_group"] == [
        {"traffic_manager_urls": [f"tcp://{ip}:9611"], "traffic_manager_auth_urls": [f"ssl://{ip}:9711"], "type": "loadbalance"}
        for ip in NODES
    ]
    assert apim["sync_runtime_artifacts"]["gateway"]["gateway_labels"] == [traits(version).gateway_environment_name]
    assert document["server"]["hostname"] == "apim.local.test"


def test_4_3_keeps_the_templates_own_throttling_switches(tmp_path):
    document, _, _ = merged(tmp_path, gateway_settings("4.3.0"))
    # gateway-worker.toml's [apim.throttling] keys the pair does not set stay as WSO2 ships them.
    assert document["apim"]["throttling"]["enable_unlimited_tier"] is True
    assert document["apim"]["throttling"]["enable_header_based_throttling"] is False


@pytest.mark.parametrize("version", SHIPPED)
@pytest.mark.parametrize("key_manager", ["resident", "wso2-is"])
def test_the_gateway_validates_keys_against_the_pairs_key_manager(version, key_manager, tmp_path):
    document, _, _ = merged(tmp_path, gateway_settings(version, key_manager))
    section = document["apim"]["key_manager"]
    if key_manager == "resident":
        # The pair's resident Key Manager, through the public name (mapped to a node of the pair that answers).
        assert section["service_url"] == CONTROL_PLANE
        assert "type" not in section
    else:
        assert (section["service_url"], section["type"]) == (f"{IS_URL}/services/", "WSO2-IS")
    assert (section["username"], section["password"]) == ("$ref{super_admin.username}", "$ref{super_admin.password}")


@pytest.mark.parametrize("version", SHIPPED)
def test_the_gateway_has_the_shared_database_only(version, tmp_path):
    document, pair, _ = merged(tmp_path, gateway_settings(version))
    assert set(pair["database"]) == {"shared_db"}, "a gateway needs no apim_db (WSO2's gateway-worker template)"
    assert set(document["database"]) == {"shared_db"}
    shared = document["database"]["shared_db"]
    assert shared["url"] == "jdbc:mysql://apim-local-db.abc.us-east-1.rds.amazonaws.com:3306/WSO2SHARED_DB?sslMode=REQUIRED"
    assert (shared["type"], shared["driver"]) == ("mysql", "com.mysql.cj.jdbc.Driver")


@pytest.mark.parametrize(
    "version, role",
    [("4.0.0", "gateway-worker"), ("4.1.0", "gateway-worker"), ("4.2.0", "gateway-worker"), ("4.3.0", "gateway-worker")]
    + [("4.4.0", "gateway-worker"), ("4.5.0", None), ("4.6.0", None), ("4.7.0", None)],
)
def test_the_server_role_is_the_gateway_workers_up_to_4_4_only(version, role):
    pair = tomllib.loads(render_gateway_toml(gateway_settings(version), DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name))
    assert pair["server"].get("server_role") == role


@pytest.mark.parametrize("version, role", [("4.3.0", "gateway-worker"), ("4.7.0", "default")])
def test_the_merged_server_role(version, role, tmp_path):
    # 4.3: the template's (and the pair's) gateway-worker; 4.7: the Universal Gateway pack's own "default".
    document, _, _ = merged(tmp_path, gateway_settings(version))
    assert document["server"]["server_role"] == role


@pytest.mark.parametrize("version", ["4.0.0", "4.1.0", "4.2.0", "4.3.0", "4.4.0", "4.5.0", "4.6.0", "4.7.0"])
def test_the_backend_jwt_is_off_as_on_the_pair(version):
    """The gateway-worker template (4.0-4.4) enables [apim.jwt]; the all-in-one pack the pair runs, and the Universal
    Gateway pack (4.5+), ship it commented out: the gateway's file turns it off where its template has it on."""
    pair = tomllib.loads(render_gateway_toml(gateway_settings(version), DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name))
    assert pair["apim"].get("jwt") == ({"enable": False} if version < "4.5" else None)
    if MIRROR.is_dir():
        tag = f"v{version}"
        path = (
            "modules/distribution/product/src/main/resources/conf/deployment-templates/gateway-worker.toml"
            if version < "4.5"
            else "gateway/modules/distribution/product/src/main/conf/deployment.toml"
        )
        all_in_one = f"{'' if version < '4.5' else 'all-in-one-apim/'}modules/distribution/product/src/main/conf/deployment.toml"
        gateway_file, pair_file = (
            tomllib.loads(
                subprocess.run(["git", "-C", str(MIRROR), "show", f"{tag}:{f}"], capture_output=True, text=True, check=True).stdout
            )
            for f in (path, all_in_one)
        )
        assert gateway_file["apim"].get("jwt", {}).get("enable") is (True if version < "4.5" else None)
        assert "jwt" not in pair_file["apim"], "the pair's pack: commented out (off)"


@pytest.mark.parametrize("version", SHIPPED)
def test_the_merged_backend_jwt_is_off(version, tmp_path):
    document, _, _ = merged(tmp_path, gateway_settings(version))
    assert tomllib.loads(shipped(version))["apim"].get("jwt", {}).get("enable") is (True if version == "4.3.0" else None)
    assert document["apim"].get("jwt", {}).get("enable", False) is False


def _secrets(document, path=()):
    """(path, value) of every key that holds a secret in deployment.toml's vocabulary."""
    for key, value in document.items():
        if isinstance(value, dict):
            yield from _secrets(value, (*path, key))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _secrets(item, (*path, key))
        elif key in ("password", "key_password", "key", "secret", "auth_token") and value:
            yield ".".join((*path, key)), value


@pytest.mark.parametrize("version", SHIPPED)
def test_no_secret_value_is_in_the_file(version, tmp_path):
    settings = gateway_settings(version)
    document, pair, text = merged(tmp_path, settings)
    for name, value in [*_secrets(pair), *_secrets(document)]:
        assert value.startswith(("$env{", "$ref{", "$secret{")), f"{name} = {value!r}"
    # The shipped defaults (admin/admin, wso2carbon, shareduser) are all replaced.
    wanted = {secret(alias, settings) for alias in ("admin_password", "keystore_password", "db_password")}
    assert wanted <= {v for _, v in _secrets(document)}
    if version == "4.7.0":
        assert document["encryption"]["key"] == secret("encryption_key", settings), "the pair's one symmetric key"
    for arn in (DEPLOYED.admin_secret_arn, DEPLOYED.keystore_secret_arn, DEPLOYED.db_app_secret_arn):
        assert arn not in text
