"""The stand-in product's gateway profile (4.0-4.4), as a gateway node's boot uses it: the pack's bin/profileSetup.sh
-Dprofile=gateway-worker (run with sh, as the boot and WSO2's page run it) puts the gateway-worker template in place of
deployment.toml and removes the other profiles' webapps; the server started with -Dprofile=gateway-worker reaches what
the group's deployment.toml, merged over that template, names for the pair. No network, no root."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers.boot_script import merge_config_text
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.settings import parse_settings
from scripts.rehearsal.product import DEPLOYMENT_TEMPLATES, GATEWAY_WEBAPP, build_archive, gateway_template, shipped_deployment_toml
from tests.conftest import DEPLOYED, local_settings_dict

pytestmark = pytest.mark.slow  # builds the stand-in pack (keytool)


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pack")
    archive = build_archive("4.3.0", folder)
    subprocess.run(["unzip", "-q", str(archive), "-d", str(folder)], check=True)
    return folder / "wso2am-4.3.0"


def unpacked(pack: Path, tmp_path: Path) -> Path:
    home = tmp_path / pack.name
    subprocess.run(["cp", "-a", str(pack), str(home)], check=True)
    return home


def profile_setup(home: Path, *args: str) -> subprocess.CompletedProcess:
    # As the boot step runs it (common.sh install_product): from bin/, with sh.
    return subprocess.run(["sh", "profileSetup.sh", *args], cwd=home / "bin", capture_output=True, text=True, timeout=60)


def webapps(home: Path) -> set[str]:
    return {p.name for p in (home / "repository/deployment/server/webapps").iterdir()}


def test_profile_setup_puts_the_gateway_template_in_place_and_keeps_only_the_gateway_webapp(pack, tmp_path):
    home = unpacked(pack, tmp_path)
    assert (home / DEPLOYMENT_TEMPLATES / "gateway-worker.toml").read_text() == gateway_template()
    assert GATEWAY_WEBAPP in webapps(home) and len(webapps(home)) > 2
    result = profile_setup(home, "-Dprofile=gateway-worker")
    conf = home / "repository/conf"
    assert result.returncode == 0, result.stderr
    assert (conf / "deployment.toml").read_text() == gateway_template()
    assert (conf / "deployment.toml.backup").read_text() == shipped_deployment_toml("4.3.0")
    assert webapps(home) == {GATEWAY_WEBAPP}
    assert tomllib.loads(gateway_template())["server"]["server_role"] == "gateway-worker"


def test_profile_setup_skip_config_optimization_keeps_deployment_toml(pack, tmp_path):
    home = unpacked(pack, tmp_path)
    result = profile_setup(home, "-Dprofile=gateway-worker", "--skipConfigOptimization")
    assert result.returncode == 0, result.stderr
    assert (home / "repository/conf/deployment.toml").read_text() == shipped_deployment_toml("4.3.0")
    assert webapps(home) == {GATEWAY_WEBAPP}


def test_profile_setup_refuses_a_profile_the_stand_in_does_not_know(pack, tmp_path):
    home = unpacked(pack, tmp_path)
    assert profile_setup(home, "-Dprofile=traffic-manager").returncode != 0
    assert (home / "repository/conf/deployment.toml").read_text() == shipped_deployment_toml("4.3.0")


def test_a_3_2_pack_has_no_gateway_profile(tmp_path):
    archive = build_archive("3.2.0", tmp_path)
    names = subprocess.run(["unzip", "-Z1", str(archive)], capture_output=True, text=True, check=True).stdout.split()
    assert not [n for n in names if n.endswith(("profileSetup.sh", "gateway-worker.toml"))]


def merged_gateway_config(tmp_path: Path) -> dict:
    local = local_settings_dict()
    local["gateway_scale_out"] = {"min_size": 1}
    settings = parse_settings(local, "local", environ={})
    (tmp_path / "template.toml").write_text(gateway_template())
    (tmp_path / "group.toml").write_text(render_gateway_toml(settings, DEPLOYED.db_host, 3306, DEPLOYED.lb_dns_name))
    (tmp_path / "merge.py").write_text(merge_config_text())  # for the system python3 (its tomli), as on a node
    merged = subprocess.run(
        ["/usr/bin/python3", str(tmp_path / "merge.py"), str(tmp_path / "template.toml"), str(tmp_path / "group.toml")],
        capture_output=True,
        text=True,
        check=True,
    )
    return tomllib.loads(merged.stdout)


def peer_urls(pack: Path, config: dict, *arguments: str) -> list[str]:
    """The stand-in server's peer_urls for a config, the server started with these arguments."""
    code = (
        "import json, sys; folder, arguments = sys.argv[1:]; sys.argv = ['standin_server.py', *json.loads(arguments)]; "
        "sys.path.insert(0, folder); import standin_server; print(json.dumps(standin_server.peer_urls(json.loads(input()))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(pack / "bin"), json.dumps(["org.wso2.carbon.bootstrap.Bootstrap", *arguments])],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_gateway_worker_reaches_the_pair_the_group_config_names(pack, tmp_path):
    config = merged_gateway_config(tmp_path)
    assert "apim_db" not in config["database"]  # the template's shared_db only: the stand-in needs no apim_db
    urls = peer_urls(pack, config, "-Dprofile=gateway-worker")
    pair = [f"{scheme}://10.0.{n}.10:{port}" for n in (1, 2) for scheme, port in (("tcp", 9611), ("ssl", 9711), ("tcp", 5672))]
    assert sorted(urls) == sorted(pair + ["https://apim.local.test:9443/services/"])


def test_without_the_profile_the_server_reaches_what_it_reached_before(pack, tmp_path):
    config = merged_gateway_config(tmp_path)
    # An all-in-one node reaches the url_groups and event_duplicate_url only (the pair's behaviour unchanged).
    assert sorted(peer_urls(pack, config)) == sorted(f"{s}://10.0.{n}.10:{p}" for n in (1, 2) for s, p in (("tcp", 9611), ("ssl", 9711)))
