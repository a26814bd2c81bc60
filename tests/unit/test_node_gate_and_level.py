"""Two boot-step checks a roll relies on, run for real (the assembled script, sourced): the update level of the pack a
node installs (WSO2 Updates 2.0 records it in <pack>/updates/config.json as "update-level"), and the node's own gate
(API-M active and answering, the peer's ports, the share), against servers and listeners on loopback."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.shared_folders import shared_folders
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, free_port, local_settings_dict
from tests.helpers import LOOPBACK, key_manager, listening, self_signed_files


def settings_at(level: int | None):
    data = copy.deepcopy(local_settings_dict())
    if level is not None:
        data["apim"] |= {"update_level": level, "archive_url": f"s3://apim-local-artifacts/wso2am-4.3.0.{level}.zip"}
    return parse_settings(data, environ={})


def source_and_run(tmp_path: Path, settings, commands: str, env_lines: str = "", stubs: Path | None = None):
    node_env = tmp_path / "node.env"
    node_env.write_text(boot_script.render_node_env(settings, DEPLOYED) + env_lines)
    script = f". /dev/stdin <<'BOOT'\n{boot_script.boot_script_text(settings.content_sync)}\nBOOT\n{commands}"
    path = f"{stubs}:/usr/bin:/bin" if stubs else "/usr/bin:/bin"
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": path, "NODE_ENV": str(node_env), "BOOT_LOG": "/dev/null"},
    )


def pack(tmp_path: Path, level: int | None) -> Path:
    """An unpacked pack: with updates/config.json as the update tool writes it, or without (a GA pack)."""
    home = tmp_path / "wso2am-4.3.0"
    (home / "updates").mkdir(parents=True)
    if level is not None:
        (home / "updates" / "config.json").write_text(json.dumps({"update-level": level, "backup-dir": "/tmp/x"}))
    return home


@pytest.mark.parametrize(
    ("setting", "in_pack", "accepted"),
    [
        (None, None, True),  # GA pack, no level set
        (None, -1, True),  # the update tool ran on a GA pack and applied nothing
        (12, 12, True),
        (12, 11, False),  # a pack at another level than the settings name
        (12, None, False),  # a GA pack where the settings name a level
        (None, 12, False),  # an updated pack where the settings name none
    ],
)
def test_a_node_installs_only_a_pack_at_the_level_the_settings_name(tmp_path, setting, in_pack, accepted):
    home = pack(tmp_path, in_pack)
    result = source_and_run(tmp_path, settings_at(setting), f"check_update_level {home}")
    assert (result.returncode == 0) == accepted, result.stderr
    if not accepted:
        assert "update level" in result.stderr and "apim.update_level" in result.stderr


@pytest.fixture()
def gate_node(tmp_path):
    """A node's gate with stand-ins for systemctl (is-active from the file "active") and mountpoint (the share and
    its folders mounted while "mounted" exists); the peer and API-M on loopback."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "systemctl").write_text(f'#!/bin/sh\ntest "$1" = is-active && test -e {tmp_path}/active\n')
    (stubs / "mountpoint").write_text(f"#!/bin/sh\ntest -e {tmp_path}/mounted\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    share = tmp_path / "share"
    share.mkdir()
    settings = settings_at(None)
    for name in shared_folders(settings):
        (share / f".wso2am-seeded-{name}").touch()

    def run(ports: list[int], urls: list[str], traffic: list[int]) -> subprocess.CompletedProcess:
        lines = f"PEER_IP={LOOPBACK}\nPEER_PORTS='{' '.join(map(str, ports))}'\nGATE_URLS='{' '.join(urls)}'\n"
        lines += f"GATE_PORTS='{' '.join(map(str, traffic))}'\n"
        lines += f"SHARE_ROOT={share}\n"
        return source_and_run(tmp_path, settings, "gate", lines, stubs)

    return tmp_path, run


def test_the_gate_passes_only_when_api_m_answers_the_peer_is_reached_and_the_share_is_there(gate_node):
    tmp, run = gate_node
    cert, key = self_signed_files(tmp, "node")
    port = free_port()
    url = f"https://{LOOPBACK}:{port}/services/"
    with listening(LOOPBACK, count=4) as peer_ports, listening(LOOPBACK, count=2) as traffic, key_manager(port, cert, key):
        (tmp / "active").touch()
        (tmp / "mounted").touch()
        passed = run(peer_ports, [url], traffic)
        assert passed.returncode == 0, passed.stderr
        assert passed.stderr.count("gate: ok") == 1 + 1 + 2 + 4 + 1
        (tmp / "mounted").unlink()
        no_share = run(peer_ports, [url], traffic)
        assert no_share.returncode != 0 and "FAILED: the share" in no_share.stderr
        (tmp / "mounted").touch()
        (tmp / "active").unlink()
        stopped = run(peer_ports, [url], traffic)
        assert stopped.returncode != 0 and "not active" in stopped.stderr
        (tmp / "active").touch()
        unanswered = run(peer_ports, [f"https://{LOOPBACK}:{port}/nowhere"], traffic)
        assert unanswered.returncode != 0 and "does not answer 200" in unanswered.stderr
        shut = run(peer_ports, [url], [free_port()])
        assert shut.returncode != 0 and "does not accept" in shut.stderr
    closed = run([free_port()], [url], [free_port()])
    assert closed.returncode != 0 and "not reached" in closed.stderr
