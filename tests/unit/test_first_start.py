"""Node 2's first start waits (bounded, logged) until node 1's API-M answers, so that one node fills the empty
databases on its first start; node 1 never waits. The boot step's own function, run for real against an HTTPS
server on loopback standing in for node 1's 9443."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from apim_active_active.renderers import boot_script
from tests.conftest import DEPLOYED, free_port
from tests.helpers import LOOPBACK, key_manager, self_signed_files


@pytest.fixture()
def node_2(environments, tmp_path):
    port = free_port()
    cert, key = self_signed_files(tmp_path, "node-1")
    script = tmp_path / "wso2am-boot"
    script.write_text(boot_script.boot_script_text(environments["local"].content_sync))

    def run(*, wait_seconds: int, url: str = f"https://{LOOPBACK}:{port}/services/") -> tuple[subprocess.CompletedProcess, float]:
        env_text = boot_script.render_node_env(environments["local"], DEPLOYED, 1)
        env_text = re.sub(r"^FIRST_NODE_URL=.*$", f"FIRST_NODE_URL={url}", env_text, flags=re.M)
        env_text = re.sub(r"^FIRST_START_WAIT_SECONDS=.*$", f"FIRST_START_WAIT_SECONDS={wait_seconds}", env_text, flags=re.M)
        (tmp_path / "node.env").write_text(env_text)
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", f'. "{script}" && wait_for_first_node'],
            env={"PATH": "/usr/bin:/bin", "NODE_ENV": str(tmp_path / "node.env"), "BOOT_LOG": "/dev/null", "KEY_MANAGER_POLL_SECONDS": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result, time.monotonic() - started

    return {"port": port, "cert": cert, "key": key, "run": run}


def test_node_2_waits_until_node_1_answers(node_2):
    with key_manager(node_2["port"], node_2["cert"], node_2["key"], after_seconds=3):
        result, seconds = node_2["run"](wait_seconds=30)
    assert result.returncode == 0, result.stderr
    assert "waiting for node 1's API-M" in result.stderr
    assert result.stderr.rstrip().endswith(f"node 1's API-M (https://{LOOPBACK}:{node_2['port']}/services/) answers")
    assert 2.5 <= seconds < 20


def test_node_2_starts_anyway_once_the_wait_is_over(node_2):
    result, seconds = node_2["run"](wait_seconds=3)
    assert result.returncode == 0, result.stderr
    assert "did not answer within 3s: starting API-M anyway" in result.stderr
    assert 2.5 <= seconds < 15


def test_node_1_does_not_wait(node_2):
    result, seconds = node_2["run"](wait_seconds=30, url="")
    assert result.returncode == 0 and result.stderr == "" and seconds < 5
