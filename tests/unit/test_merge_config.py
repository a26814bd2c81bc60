"""The node's deployment.toml is the product's own file with the pair's settings merged over it: the boot step's
`merge-config` run for real (bash, the system python3 with the tomli and tomli_w modules Amazon Linux 2023 packages as
python3-tomli and python3-tomli-w), with no node environment, over the stand-in product's shipped files, which have
the tables WSO2's 3.2.0 and 4.3.0 packs ship that the config mapper has no default for."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers.boot_script import boot_script_source, merge_config_text, render_deployment_toml
from apim_active_active.renderers.deployment_toml import secret
from scripts.rehearsal.product import shipped_deployment_toml
from tests.conftest import DEPLOYED

# What the pair must never lose from the product's file (wso2/product-apim, repository/conf/deployment.toml at
# v3.2.0 and v4.3.0): revoked tokens leave both gateways' caches only through this listener; the user store type
# cannot change later without a migration; the Devportal try-out sends these headers.
KEPT_BY_EVERY_VERSION = {
    ("user_store", "type"): "database_unique_id",
    ("service_provider", "sp_name_regex"): "^[\\sa-zA-Z0-9._-]*$",
    ("database", "local", "url"): "jdbc:h2:./repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE",
    ("server", "server_role"): "default",
}
KEPT_BY_4X = {
    ("oauth", "grant_type", "token_exchange", "enable"): True,
    ("apim", "key_manager", "enable_apikey_subscription_validation"): True,
    ("apim", "analytics", "enable"): False,
    ("apim", "ai", "enable"): True,
    ("apim", "sync_runtime_artifacts", "gateway", "gateway_labels"): ["Default"],
}


def _at(document: dict, path: tuple[str, ...]):
    for key in path:
        document = document[key]
    return document


def merge_config(tmp_path: Path, shipped: str, pair: str) -> subprocess.CompletedProcess:
    """`wso2am-boot merge-config SHIPPED PAIR` with an empty environment (no node.env, no AWS)."""
    paths = {name: tmp_path / name for name in ("wso2am-boot", "wso2am-merge-config", "shipped.toml", "pair.toml")}
    for name, text in (
        ("wso2am-boot", boot_script_source("efs")),
        ("wso2am-merge-config", merge_config_text()),
        ("shipped.toml", shipped),
        ("pair.toml", pair),
    ):
        paths[name].write_text(text)
        paths[name].chmod(0o755)
    return subprocess.run(
        [
            "/usr/bin/env",
            "-i",
            "PATH=/usr/bin:/bin",
            f"MERGE_CONFIG={paths['wso2am-merge-config']}",
            "/bin/bash",
            str(paths["wso2am-boot"]),
            "merge-config",
            str(paths["shipped.toml"]),
            str(paths["pair.toml"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("env", ["local", "legacy32"])  # API-M 4.3.0 and 3.2.0
@pytest.mark.parametrize("node", [0, 1])
def test_the_product_file_keeps_its_own_tables_and_takes_the_pairs(environments, env, node, tmp_path):
    settings = environments[env]
    pair_text = render_deployment_toml(settings, node, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    shipped_text = shipped_deployment_toml(settings.apim.version)
    result = merge_config(tmp_path, shipped_text, pair_text)
    assert result.returncode == 0, result.stderr
    merged, pair, shipped = (tomllib.loads(t) for t in (result.stdout, pair_text, shipped_text))

    kept = {**KEPT_BY_EVERY_VERSION, **(KEPT_BY_4X if settings.apim.version.startswith("4.") else {})}
    assert {path: _at(merged, path) for path in kept} == kept
    listener = merged["event_listener"]
    assert [(e["id"], e["name"]) for e in listener] == [("token_revocation", "org.wso2.is.notification.ApimOauthEventInterceptor")]
    assert listener[0]["properties"]["header.X-WSO2-KEY-MANAGER"] == "default"
    assert merged["event_handler"] == shipped["event_handler"]
    assert {"apikey", "authorization"} <= set(merged["apim"]["cors"]["allow_headers"])
    if settings.apim.version.startswith("4."):
        assert "Internal-Key" in merged["apim"]["cors"]["allow_headers"]

    # The pair's keys win, table by table; its arrays of tables replace the shipped ones.
    assert merged["database"]["apim_db"] == pair["database"]["apim_db"]
    assert merged["keystore"]["tls"] == pair["keystore"]["tls"]
    assert merged["server"] == {**shipped["server"], **pair["server"]}
    assert merged["apim"]["gateway"]["environment"] == pair["apim"]["gateway"]["environment"]
    assert merged["apim"]["throttling"] == pair["apim"]["throttling"]
    assert merged["super_admin"]["password"] == secret("admin_password", settings)


def test_a_pair_file_that_does_not_parse_is_refused_naming_it_and_the_line(environments, tmp_path):
    pair = render_deployment_toml(environments["local"], 0, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    broken = pair.replace("\n[server]\n", "\n[server\n", 1)
    result = merge_config(tmp_path, shipped_deployment_toml("4.3.0"), broken)
    assert result.returncode != 0 and result.stdout == ""
    assert f"{tmp_path / 'pair.toml'}:" in result.stderr and "line" in result.stderr, result.stderr


def test_the_merge_runs_on_amazon_linux_2023s_python_3_9():
    """python3 on Amazon Linux 2023 is 3.9 for its whole life: nothing newer in the merge's syntax."""
    ast.parse(merge_config_text(), "wso2am-merge-config", feature_version=(3, 9))
    assert "tomllib" not in merge_config_text(), "tomllib is 3.11+: AL2023's python3 has tomli"
