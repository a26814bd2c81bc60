"""The share watch, run for real (the boot step's own check-share) with stand-ins for mountpoint and systemctl:
API-M is stopped while its share is unreachable and started again when it is back, but an operator's stop stays."""
from __future__ import annotations

import subprocess

import pytest

from apim_active_active.renderers import boot_script
from tests.conftest import DEPLOYED


@pytest.fixture()
def watch(environments, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    env_text = boot_script.render_node_env(environments["local"], DEPLOYED)
    env_text = env_text.replace(boot_script.share_dir(environments["local"]), str(share))
    (tmp_path / "node.env").write_text(env_text)
    script = tmp_path / "wso2am-boot"
    script.write_text(boot_script.boot_script_text())
    stubs = tmp_path / "bin"
    stubs.mkdir()
    # mountpoint: the share is mounted while the file "mounted" exists; systemctl: records its calls, and
    # is-active answers from the file "active".
    (stubs / "mountpoint").write_text(f"#!/bin/sh\ntest -e {tmp_path}/mounted\n")
    (stubs / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
        f'case "$1" in is-active) test -e {tmp_path}/active ;; stop) rm -f {tmp_path}/active ;; '
        f'start) touch {tmp_path}/active ;; esac\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), "check-share"], capture_output=True, text=True, timeout=60,
            env={"PATH": f"{stubs}:/usr/bin:/bin", "NODE_ENV": str(tmp_path / "node.env"),
                 "STOPPED_BY_WATCH": str(tmp_path / "run" / "stopped-by-share-watch")})

    def calls() -> list[str]:
        path = tmp_path / "calls"
        lines = path.read_text().splitlines() if path.exists() else []
        path.unlink(missing_ok=True)
        return lines

    return {"run": run, "calls": calls, "tmp": tmp_path, "share": share}


def test_stops_api_m_while_the_share_is_gone_and_starts_it_when_back(watch):
    tmp = watch["tmp"]
    (tmp / "active").touch()
    gone = watch["run"]()
    assert gone.returncode == 0 and "unreachable: stopped API-M" in gone.stderr
    assert watch["calls"]() == ["is-active --quiet wso2am.service", "stop wso2am.service"]
    assert not (tmp / "active").exists()
    (tmp / "mounted").touch()
    (watch["share"] / ".wso2am-seeded").touch()
    back = watch["run"]()
    assert back.returncode == 0 and "is back: started API-M again" in back.stderr
    assert watch["calls"]() == ["start wso2am.service"]
    assert watch["run"]().returncode == 0 and watch["calls"]() == [], "nothing to do while all is well"


def test_a_mounted_but_unseeded_share_counts_as_gone(watch):
    (watch["tmp"] / "active").touch()
    (watch["tmp"] / "mounted").touch()  # mounted, but not the seeded share (no .wso2am-seeded)
    assert "unreachable" in watch["run"]().stderr
    assert "stop wso2am.service" in watch["calls"]()


def test_an_operators_stop_is_not_undone(watch):
    (watch["tmp"] / "mounted").touch()
    (watch["share"] / ".wso2am-seeded").touch()
    result = watch["run"]()  # API-M stopped by someone else; the share is fine
    assert result.returncode == 0 and watch["calls"]() == []


def test_the_timer_runs_the_check_every_15_seconds(environments, tmp_path):
    service, timer = boot_script.render_share_watch(environments["local"])
    assert f"ExecStart={boot_script.BOOT_SCRIPT} check-share" in service.splitlines()
    assert {"OnUnitActiveSec=15", "WantedBy=timers.target"} <= set(timer.splitlines())
    for name, text in (("wso2am-share-watch.service", service), ("wso2am-share-watch.timer", timer)):
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True)
    assert "Unknown key" not in result.stderr and "Unknown section" not in result.stderr, result.stderr
