"""The share watch, run for real (the boot step's own check-share) with stand-ins for mountpoint and systemctl:
API-M is stopped while its share, or any folder bound from it, is unreachable and started again when all of it
is back, but an operator's stop stays."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from apim_active_active import observability
from apim_active_active.renderers import boot_script
from apim_active_active.renderers.node_layout import FSTAB_ENTRIES
from apim_active_active.renderers.shared_folders import SHARE_ROOT, render_fstab, shared_folders
from tests.conftest import DEPLOYED
from tests.helpers import local_settings


@pytest.fixture()
def watch(tmp_path):
    settings = local_settings(tenants=True)  # two folders bound from the share: userstores and tenants
    share = tmp_path / "share"
    share.mkdir()
    entries = tmp_path / "fstab-entries"
    entries.write_text(render_fstab(settings, DEPLOYED.efs_id).replace(SHARE_ROOT, str(share)))
    env = boot_script.render_node_env(settings, DEPLOYED).replace(SHARE_ROOT, str(share))
    (tmp_path / "node.env").write_text(env.replace(f"FSTAB_ENTRIES={FSTAB_ENTRIES}", f"FSTAB_ENTRIES={entries}"))
    script = tmp_path / "wso2am-boot"
    script.write_text(boot_script.boot_script_text(settings.content_sync))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    # mountpoint -q PATH: mounted while PATH is a line of the file "mounts"; mount PATH: adds it there while the file
    # "nfs-answers" exists (else fails as a mount of an unreachable NFS server does); systemctl: records its calls,
    # is-active and show answer from the file "active", is-enabled from the file "enabled".
    (stubs / "mountpoint").write_text(f'#!/bin/sh\ngrep -qxF -- "$2" {tmp_path}/mounts\n')
    (stubs / "mount").write_text(
        f'#!/bin/sh\necho "mount $*" >> {tmp_path}/calls\ntest -e {tmp_path}/nfs-answers || exit 32\necho "$1" >> {tmp_path}/mounts\n'
    )
    (stubs / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
        f'case "$1" in is-active) test -e {tmp_path}/active ;; stop) rm -f {tmp_path}/active ;; '
        f"start) touch {tmp_path}/active ;; is-enabled) test -e {tmp_path}/enabled ;; "
        f"show) if [ -e {tmp_path}/active ]; then echo active; else echo inactive; fi ;; esac\n"
    )
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    folders = shared_folders(settings)

    def mount(*names: str, seeded: bool = True) -> None:
        """The share and the given folders mounted (all of them by default), each seeded or not."""
        chosen = names or tuple(folders)
        (tmp_path / "mounts").write_text("".join(f"{path}\n" for path in [share, *(folders[n] for n in chosen)]))
        for name in folders:
            (share / f".wso2am-seeded-{name}").unlink(missing_ok=True)
            if seeded:
                (share / f".wso2am-seeded-{name}").touch()

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), "check-share"],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": f"{stubs}:/usr/bin:/bin",
                "NODE_ENV": str(tmp_path / "node.env"),
                "BOOT_LOG": str(tmp_path / "boot.log"),
                "SHARE_SEEN": str(tmp_path / "share-seen"),
                "SAID_PRESENT": str(tmp_path / "run" / "said-present"),
                "STOPPED_BY_WATCH": str(tmp_path / "run" / "stopped-by-share-watch"),
                "BOOT_DONE": str(tmp_path / "boot-done"),
                "LOOKED_SINCE_BOOT": str(tmp_path / "run" / "looked-since-boot"),
            },
        )

    def calls() -> list[str]:
        """systemctl's calls since the last look (the mount attempts are in mounts())."""
        path = tmp_path / "calls"
        lines = [line for line in path.read_text().splitlines() if not line.startswith("mount ")] if path.exists() else []
        path.unlink(missing_ok=True)
        return lines

    (tmp_path / "mounts").write_text("")
    return {"run": run, "calls": calls, "tmp": tmp_path, "mount": mount, "folders": folders}


def test_stops_api_m_while_the_share_is_gone_and_starts_it_when_back(watch):
    tmp = watch["tmp"]
    (tmp / "active").touch()
    gone = watch["run"]()
    assert gone.returncode == 0 and "unreachable: stopping API-M" in gone.stderr
    assert watch["calls"]() == ["is-active --quiet wso2am.service", "stop wso2am.service"]
    assert not (tmp / "active").exists()
    watch["mount"]()
    back = watch["run"]()
    assert back.returncode == 0 and "is back: started API-M again" in back.stderr
    assert watch["calls"]() == ["start wso2am.service"]
    assert watch["run"]().returncode == 0 and watch["calls"]() == [], "nothing to do while all is well"


def test_one_folder_not_bound_counts_as_gone(watch):
    assert set(watch["folders"]) == {"userstores", "tenants"}
    (watch["tmp"] / "active").touch()
    watch["mount"]("userstores")  # the share and userstores, but not tenants
    assert "unreachable" in watch["run"]().stderr
    assert "stop wso2am.service" in watch["calls"]()


def test_a_mounted_but_unseeded_share_counts_as_gone(watch):
    (watch["tmp"] / "active").touch()
    watch["mount"](seeded=False)  # mounted, but not the seeded share (no .wso2am-seeded-<name>)
    assert "unreachable" in watch["run"]().stderr
    assert "stop wso2am.service" in watch["calls"]()


def test_an_operators_stop_is_not_undone(watch):
    watch["mount"]()
    result = watch["run"]()  # API-M stopped by someone else; the share is fine
    assert result.returncode == 0 and watch["calls"]() == []


def test_a_share_missing_at_a_reboot_holds_api_m_mends_the_mounts_and_starts_it_when_back(watch):
    """Issue 15, item 5: at a reboot the unit (RequiresMountsFor the share) fails while the share is missing; the
    watch's first look after the boot holds API-M, retries the mounts, and starts API-M once they hold."""
    tmp = watch["tmp"]
    (tmp / "boot-done").touch()  # a node whose boot step completed before this reboot
    (tmp / "enabled").touch()
    missing = watch["run"]()
    assert missing.returncode == 0 and "did not start at this boot" in missing.stderr
    assert "start wso2am.service" not in watch["calls"]() and not (tmp / "active").exists()
    assert (tmp / "run" / "stopped-by-share-watch").exists()
    (tmp / "nfs-answers").touch()  # the NFS server answers again: the watch mounts what fstab lists
    for name in watch["folders"]:
        (Path(tmp / "share") / f".wso2am-seeded-{name}").touch()
    back = watch["run"]()
    assert back.returncode == 0 and "is back: started API-M again" in back.stderr, back.stderr
    assert "start wso2am.service" in watch["calls"]() and (tmp / "active").exists()
    assert len((tmp / "mounts").read_text().split()) == 1 + len(watch["folders"]), "the share, then each folder"


def test_before_the_boot_step_completed_the_watch_does_not_start_api_m(watch):
    """At a first boot the boot step decides when API-M starts (node 2 waits for node 1): no hold is made for it."""
    tmp = watch["tmp"]
    (tmp / "enabled").touch()
    assert "did not start" not in watch["run"]().stderr
    (tmp / "nfs-answers").touch()
    watch["run"]()
    assert "start wso2am.service" not in watch["calls"]()


def test_the_reboot_look_is_made_once_so_a_later_operators_stop_stays(watch):
    tmp = watch["tmp"]
    (tmp / "boot-done").touch()
    (tmp / "enabled").touch()
    (tmp / "active").touch()  # API-M came up at the reboot
    watch["mount"]()
    watch["run"]()
    (tmp / "active").unlink()  # then an operator stops it
    watch["calls"]()
    assert watch["run"]().returncode == 0 and "start wso2am.service" not in watch["calls"]()


def test_the_timer_runs_the_check_every_15_seconds(environments, tmp_path):
    service, timer = boot_script.render_share_watch(environments["local"])
    assert f"ExecStart={boot_script.BOOT_SCRIPT} check-share" in service.splitlines()
    assert {"OnUnitActiveSec=15", "WantedBy=timers.target"} <= set(timer.splitlines())
    for name, text in (("wso2am-share-watch.service", service), ("wso2am-share-watch.timer", timer)):
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(p) for p in tmp_path.iterdir())], capture_output=True, text=True
    )
    assert "Unknown key" not in result.stderr and "Unknown section" not in result.stderr, result.stderr


def verdicts(tmp) -> list[str]:
    log = tmp / "boot.log"
    return [line.split("wso2am-boot: ", 1)[1] for line in log.read_text().splitlines() if "verdict" in line] if log.exists() else []


def test_the_share_verdict_for_the_alarm_only_once_the_share_was_seen(watch):
    """observability.SHARE_VERDICT_*: a share missing before it was ever there (rsync's node 2 before its first push)
    is expected and not said; once seen, each look that misses it says so, and "present" at most once a minute."""
    tmp = watch["tmp"]
    watch["run"]()
    assert verdicts(tmp) == []
    watch["mount"]()
    watch["run"]()
    watch["run"]()
    assert [v.split(" (")[0] for v in verdicts(tmp)] == [observability.SHARE_VERDICT_PRESENT]
    (tmp / "mounts").write_text("")
    watch["run"]()
    watch["run"]()
    assert [v.split(" (")[0] for v in verdicts(tmp)] == [observability.SHARE_VERDICT_PRESENT] + [observability.SHARE_VERDICT_MISSING] * 2
