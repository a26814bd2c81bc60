"""The wait for an external Key Manager (the seed: it is up before API-M starts), run for real: the boot
step's own code against an HTTPS server on loopback, its certificate checked against the configured CA."""

from __future__ import annotations

import subprocess
import time

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, free_port, local_settings_dict
from tests.helpers import LOOPBACK, key_manager, self_signed_files


@pytest.fixture()
def wait_case(tmp_path):
    """The boot step and a node.env for a pair with an external Key Manager on loopback."""
    port = free_port()
    ca_cert, ca_key = self_signed_files(tmp_path, "key-manager")
    data = local_settings_dict()
    data["key_manager"] = {
        "type": "wso2-is",
        "url": f"https://{LOOPBACK}:{port}",
        "cidr": "127.0.0.0/8",
        "ca_certificate": open(ca_cert).read(),
        "wait_seconds": 30,
    }
    settings = parse_settings(data, environ={})
    env_text = boot_script.render_node_env(settings, DEPLOYED).replace(boot_script.KEY_MANAGER_CA, ca_cert)
    script = tmp_path / "wso2am-boot"
    script.write_text(boot_script.boot_script_text(settings.content_sync))
    return {"port": port, "cert": ca_cert, "key": ca_key, "env_text": env_text, "script": script, "tmp": tmp_path}


def _run_wait(case: dict, *, wait_seconds: int) -> tuple[subprocess.CompletedProcess, float]:
    env_file = case["tmp"] / "node.env"
    env_file.write_text(case["env_text"].replace("KEY_MANAGER_WAIT_SECONDS=30", f"KEY_MANAGER_WAIT_SECONDS={wait_seconds}"))
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(case["script"]), "wait-key-manager"],
        env={"PATH": "/usr/bin:/bin", "NODE_ENV": str(env_file), "BOOT_LOG": "/dev/null", "KEY_MANAGER_POLL_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


def test_waits_until_the_key_manager_answers(wait_case):
    with key_manager(wait_case["port"], wait_case["cert"], wait_case["key"], after_seconds=3):
        result, seconds = _run_wait(wait_case, wait_seconds=30)
    assert result.returncode == 0, result.stderr
    assert "waiting for the key manager" in result.stderr
    assert result.stderr.rstrip().endswith("answers")
    assert 2.5 <= seconds < 20


def test_gives_up_after_wait_seconds_naming_the_key_manager(wait_case):
    result, seconds = _run_wait(wait_case, wait_seconds=3)
    assert result.returncode != 0
    assert f"https://{LOOPBACK}:{wait_case['port']} did not answer within 3s: not starting API-M" in result.stderr
    assert seconds < 15


def test_a_key_manager_whose_certificate_the_ca_did_not_sign_is_not_trusted(wait_case):
    other_cert, other_key = self_signed_files(wait_case["tmp"], "impostor")
    with key_manager(wait_case["port"], other_cert, other_key):
        result, _ = _run_wait(wait_case, wait_seconds=3)
    assert result.returncode != 0 and "did not answer" in result.stderr


def test_api_m_is_left_to_the_units_own_wait_while_the_key_manager_is_down(wait_case):
    """The boot step's start: it waits first; when the Key Manager stays down it enables the unit and hands the
    start to it without blocking (the unit's ExecStartPre waits again, Restart=on-failure retries)."""
    env_file = wait_case["tmp"] / "node.env"
    env_file.write_text(wait_case["env_text"].replace("KEY_MANAGER_WAIT_SECONDS=30", "KEY_MANAGER_WAIT_SECONDS=2"))
    stubs = wait_case["tmp"] / "bin"
    stubs.mkdir()
    calls = wait_case["tmp"] / "systemctl.calls"
    (stubs / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (stubs / "systemctl").chmod(0o755)
    functions_only = wait_case["tmp"] / "functions.sh"
    functions_only.write_text(wait_case["script"].read_text().split("\ncase ")[0])
    command = f'. "{functions_only}"; start_service'
    run = lambda: subprocess.run(  # noqa: E731
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": f"{stubs}:/usr/bin:/bin",
            "NODE_ENV": str(env_file),
            "BOOT_LOG": "/dev/null",
            "KEY_MANAGER_POLL_SECONDS": "1",
            "STARTED_ONCE": str(wait_case["tmp"] / "started-once"),
        },  # never this machine's /var/lib
    )
    down = run()
    assert down.returncode == 0, down.stderr
    assert "did not answer within 2s" in down.stderr and "starts once the key manager answers" in down.stderr
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now wso2am-share-watch.timer",
        "enable wso2am.service",
        "start --no-block wso2am.service",
    ]
    calls.unlink()
    with key_manager(wait_case["port"], wait_case["cert"], wait_case["key"]):
        up = run()
    assert up.returncode == 0, up.stderr
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now wso2am-share-watch.timer",
        "enable wso2am.service",
        "start wso2am.service",
    ]


def test_resident_key_manager_waits_for_nothing(environments, tmp_path):
    env_file = tmp_path / "node.env"
    env_file.write_text(boot_script.render_node_env(environments["local"], DEPLOYED))
    script = tmp_path / "wso2am-boot"
    script.write_text(boot_script.boot_script_text(environments["local"].content_sync))
    result = subprocess.run(
        ["bash", str(script), "wait-key-manager"],
        env={"PATH": "/usr/bin:/bin", "NODE_ENV": str(env_file), "BOOT_LOG": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_the_unit_waits_on_every_start_with_an_external_key_manager_only(environments):
    legacy = boot_script.render_systemd_unit(environments["legacy32"]).splitlines()
    assert f"ExecStartPre={boot_script.BOOT_SCRIPT} wait-key-manager" in legacy
    assert "TimeoutStartSec=1500" in legacy, "the start timeout covers the wait"
    local = boot_script.render_systemd_unit(environments["local"])
    assert "wait-key-manager" not in local and "TimeoutStartSec=600" in local
    assert "StartLimitIntervalSec=0" in legacy, "systemd keeps retrying while the Key Manager is down"
