"""A restored environment's boot steps, run for real (the shipped boot step, sourced) with a stand-in `aws` and the
share a folder under tmp: the share's restore waited for (the parameter scripts/restore.py sets, its value or why it
is unreadable logged while waiting), what AWS Backup put under aws-backup-restore_<time>/ copied up to the share's root
once (dotfiles too, the node's own lock files kept), nothing seeded over it; a copy cut short finished by the next run;
a share restored twice refused; the wait bounded, and ended at once by a failed restore, seeding nothing; the search
index removed once per restore generation. Nothing is written outside tmp (every host path the boot step defaults to
is set)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from apim_active_active.constructs import restore_signal
from apim_active_active.names import restore_share_parameter
from apim_active_active.renderers import boot_script
from apim_active_active.renderers.shared_folders import SHARE_ROOT
from tests.conftest import DEPLOYED
from tests.helpers import RESTORED_PREFIX, restored_local

HOST_PATHS = (Path("/var/log/wso2am"), Path("/var/lib/wso2am"), Path("/run/wso2am"))
RESTORED = "aws-backup-restore_2026-11-27T10-00-00"
USER = pwd.getpwuid(os.getuid()).pw_name
WAITING_LOG = "waiting for the share's restore"


class RestoredNode:
    """One restored node's boot step, sourced: node.env rendered for a restore of local, its paths under tmp; `aws`
    answers each `ssm get-parameter` call with the next line of `answers` (the last one again once they run out); a
    line "error:<message>" is a failed call, as the AWS CLI fails: a blank line and the message on stderr, exit 254."""

    def __init__(self, tmp: Path, settings, wait_seconds: int | None = None) -> None:
        self.tmp, self.settings = tmp, settings
        self.share, self.home = tmp / "share", tmp / "home"
        self.share.mkdir()
        for name in ("userstores", "tenants"):  # the distribution's copies a new share would be seeded from
            (self.home / ".wso2am-dist" / name).mkdir(parents=True)
            (self.home / ".wso2am-dist" / name / "from-the-distribution.txt").write_text("dist\n")
        env = boot_script.render_node_env(settings, DEPLOYED, 0).replace(settings.apim.home, str(self.home))
        env = env.replace(SHARE_ROOT, str(self.share)).replace(f"OS_USER={settings.apim.os_user}", f"OS_USER={USER}")
        if wait_seconds is not None:
            lines = env.splitlines(keepends=True)
            env = "".join(f"RESTORE_WAIT_SECONDS={wait_seconds}\n" if line.startswith("RESTORE_WAIT_SECONDS=") else line for line in lines)
        self.node_env = tmp / "node.env"
        self.node_env.write_text(env)
        self.script = tmp / "wso2am-boot"
        self.script.write_text(boot_script.boot_script_text(settings.content_sync, restored=True))
        stubs = tmp / "bin"
        stubs.mkdir()
        (stubs / "aws").write_text(
            f'#!/bin/sh\necho "$*" >> {tmp}/aws-calls\nn=$(wc -l < {tmp}/aws-calls)\n'
            f'line=$(sed -n "${{n}}p" {tmp}/answers)\n[ -n "$line" ] || line=$(tail -n 1 {tmp}/answers)\n'
            'case "$line" in error:*) printf \'\\n%s\\n\' "${line#error:}" >&2; exit 254;; esac\necho "$line"\n'
        )
        (stubs / "aws").chmod(0o755)
        self.stubs = stubs
        self.answers("restored")

    def answers(self, *lines: str) -> None:
        (self.tmp / "answers").write_text("".join(f"{line}\n" for line in lines))

    def aws_calls(self) -> list[str]:
        path = self.tmp / "aws-calls"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, commands: str, poll_seconds: str = "0") -> subprocess.CompletedProcess:
        tmp = self.tmp
        return subprocess.run(
            ["bash", "-c", f'. "{self.script}"\n{commands}'],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": f"{self.stubs}:/usr/bin:/bin",
                "NODE_ENV": str(self.node_env),
                "BOOT_LOG": str(tmp / "log" / "boot.log"),
                "SHARE_SEEN": str(tmp / "lib" / "share-seen"),
                "SAID_PRESENT": str(tmp / "run" / "said-present"),
                "STOPPED_BY_WATCH": str(tmp / "lib" / "stopped-by-share-watch"),
                "BOOT_DONE": str(tmp / "lib" / "boot-done"),
                "STARTED_ONCE": str(tmp / "lib" / "started-once"),
                "LOOKED_SINCE_BOOT": str(tmp / "run" / "looked-since-boot"),
                "REBUILT": str(tmp / "lib" / "rebuilt-after-restore"),
                "RESTORE_POLL_SECONDS": poll_seconds,
            },
        )

    def restored_folder(self, name: str = RESTORED) -> Path:
        """What AWS Backup restores into an existing file system: the recovery point under aws-backup-restore_<time>/,
        the source's own lock files and seed markers with it."""
        folder = self.share / name
        (folder / "userstores").mkdir(parents=True)
        (folder / "userstores" / "SECONDARY.xml").write_text("restored user store\n")
        (folder / "tenants" / "1").mkdir(parents=True)
        (folder / "tenants" / "1" / "tenant.txt").write_text("restored tenant\n")
        for name_ in ("userstores", "tenants"):
            (folder / f".wso2am-seeded-{name_}").write_text("2026-01-01T00:00:00Z\n")
        (folder / ".wso2am-seed.lock").write_text("the source's\n")
        (folder / ".wso2am-secrets.lock").write_text("the source's\n")
        return folder


def did_not_finish(seconds: int, state: str) -> str:
    """The boot step's line when it stops waiting (the wait over, or the restore failed)."""
    return (
        f"the share's restore did not finish within {seconds}s ({restore_share_parameter(RESTORED_PREFIX)}: {state}): not seeding an "
        "empty share; once scripts/restore.py --resume has restored it, run wso2am-boot again"
    )


# Join the share as efs.sh's join_share does, with only the host steps (copies, fstab, mounts) stood in for.
JOIN = (
    "keep_distribution_copies() { :; }; ensure_fstab() { :; }; mount_share() { :; }; bind_shared_folders() { echo bound; }\n"
    "join_share\necho joined"
)


@pytest.fixture(autouse=True)
def nothing_on_the_host():
    before = {path: path.exists() for path in HOST_PATHS}
    yield
    assert {path: path.exists() for path in HOST_PATHS} == before, "the boot step wrote to the host's own folders"


def test_waits_for_the_restore_then_copies_the_restored_share_up_once_and_seeds_nothing(tmp_path):
    node = RestoredNode(tmp_path, restored_local())
    node.answers("waiting", "waiting", "restored")
    (node.share / ".wso2am-seed.lock").write_text("")  # the other node's: it may hold it open
    (node.share / ".wso2am-secrets.lock").write_text("ours\n")
    seed_lock = (node.share / ".wso2am-seed.lock").stat().st_ino
    node.restored_folder()
    first = node.run(JOIN)
    assert first.returncode == 0 and first.stdout.split() == ["bound", "joined"], first.stderr
    parameter = restore_share_parameter(RESTORED_PREFIX)
    assert (
        node.aws_calls()
        == [f"ssm get-parameter --region us-east-1 --name {parameter} --with-decryption --query Parameter.Value --output text"] * 3
    )
    assert first.stderr.count(f"{WAITING_LOG} ({parameter}: waiting)\n") == 2  # the parameter's value, each time
    # The content is at the share's root, dotfiles included; the folder is gone; the locks are the node's own.
    assert (node.share / "userstores" / "SECONDARY.xml").read_text() == "restored user store\n"
    assert (node.share / "tenants" / "1" / "tenant.txt").read_text() == "restored tenant\n"
    assert all((node.share / f".wso2am-seeded-{name}").read_text() == "2026-01-01T00:00:00Z\n" for name in ("userstores", "tenants"))
    assert not list(node.share.glob("aws-backup-restore_*"))
    assert (node.share / ".wso2am-secrets.lock").read_text() == "ours\n"
    assert (node.share / ".wso2am-seed.lock").stat().st_ino == seed_lock and "source" not in (node.share / ".wso2am-seed.lock").read_text()
    assert (node.share / ".wso2am-restored-1").exists()
    assert f"moved the restored share ({RESTORED}) to {node.share}" in first.stderr
    assert "seeded the share" not in first.stderr and not (node.share / "userstores" / "from-the-distribution.txt").exists()
    assert "moved the restored share" in (tmp_path / "log" / "boot.log").read_text()
    # Again (a reboot, or the other node): nothing asked, nothing moved, even with another restore's folder there.
    (node.share / "aws-backup-restore_later").mkdir()
    again = node.run(JOIN)
    assert again.returncode == 0 and again.stdout.split() == ["bound", "joined"], again.stderr
    assert len(node.aws_calls()) == 3 and "moved" not in again.stderr and WAITING_LOG not in again.stderr
    assert (node.share / "aws-backup-restore_later").is_dir()


def test_two_restored_folders_are_refused_naming_them(tmp_path):
    node = RestoredNode(tmp_path, restored_local())
    first, second = node.restored_folder(), node.restored_folder("aws-backup-restore_2026-11-27T11-00-00")
    result = node.run(JOIN)
    assert result.returncode != 0 and "joined" not in result.stdout
    assert "expected one aws-backup-restore_* folder on the share, found:" in result.stderr
    assert first.name in result.stderr and second.name in result.stderr
    assert first.is_dir() and second.is_dir() and (first / "userstores" / "SECONDARY.xml").exists()
    assert not (node.share / ".wso2am-restored-1").exists() and not (node.share / "userstores").exists()
    assert "seeded the share" not in result.stderr


def test_the_wait_is_bounded_and_then_nothing_is_seeded(tmp_path):
    node = RestoredNode(tmp_path, restored_local(), wait_seconds=2)
    node.answers("waiting")
    started = time.monotonic()
    result = node.run(JOIN, poll_seconds="1")
    assert time.monotonic() - started < 20
    assert result.returncode != 0 and "joined" not in result.stdout and "bound" not in result.stdout
    assert did_not_finish(2, "waiting") in result.stderr
    assert 2 <= len(node.aws_calls()) <= 5
    assert sorted(p.name for p in node.share.iterdir()) == [], "not seeded, not marked: an empty share stays empty"


def test_a_failed_restore_ends_the_wait_at_once_and_nothing_is_seeded(tmp_path):
    """restore.py sets the parameter to "failed" when AWS Backup's job fails: the node stops waiting at once (not
    after restore.share_wait_minutes), says why, and leaves the share as it is: nothing copied, seeded or marked."""
    node = RestoredNode(tmp_path, restored_local(), wait_seconds=5)
    node.answers(restore_signal.FAILED, restore_signal.RESTORED)  # asked again, it would go on: it must not ask again
    folder = node.restored_folder()  # what a job that failed half-way may leave behind
    started = time.monotonic()
    result = node.run(JOIN, poll_seconds="1")
    assert time.monotonic() - started < 4, "stopped at once, not at the end of the wait"
    assert result.returncode != 0 and "joined" not in result.stdout and "bound" not in result.stdout
    assert did_not_finish(5, "failed") in result.stderr and WAITING_LOG not in result.stderr
    assert len(node.aws_calls()) == 1
    assert sorted(p.name for p in node.share.iterdir()) == [RESTORED], "nothing copied up, seeded or marked"
    assert (folder / "userstores" / "SECONDARY.xml").exists()


def test_an_unreadable_parameter_is_waited_for_saying_why(tmp_path):
    """The node cannot read the parameter (its grant, the key, SSM itself): it waits on, logging the AWS CLI's error
    (its last line) where the parameter's value would be; once readable and "restored", the share is copied up."""
    denied = (
        "An error occurred (AccessDeniedException) when calling the GetParameter operation: User: "
        "arn:aws:sts::123456789012:assumed-role/apim-local-r1-node/i-0abc is not authorized to perform: ssm:GetParameter"
    )
    node = RestoredNode(tmp_path, restored_local())
    node.answers(f"error:{denied}", "restored")
    node.restored_folder()
    result = node.run(JOIN)
    assert result.returncode == 0 and result.stdout.split() == ["bound", "joined"], result.stderr
    parameter = restore_share_parameter(RESTORED_PREFIX)
    assert f"{WAITING_LOG} ({parameter}: unreadable: {denied})\n" in result.stderr
    assert len(node.aws_calls()) == 2 and (node.share / ".wso2am-restored-1").exists()
    assert (node.share / "userstores" / "SECONDARY.xml").read_text() == "restored user store\n"


def test_a_copy_cut_short_is_finished_by_the_next_run(tmp_path):
    """The copy up is cut short (a reboot, the node stopped): userstores copied, a tenant's file half written, the
    restored folder still there, no marker. The boot step fails, seeding nothing; the next run copies it all again
    over what is there, then marks the share and removes the folder."""
    node = RestoredNode(tmp_path, restored_local())
    node.restored_folder()
    (node.share / ".wso2am-secrets.lock").write_text("ours\n")
    cut = tmp_path / "cut"
    cut.mkdir()
    real_cp = shutil.which("cp")
    (cut / "cp").write_text(  # `cp ... -t DIR SOURCE...` cut short; any other cp is the real one
        f'#!/bin/sh\ncase " $* " in *" -t "*) ;; *) exec {real_cp} "$@";; esac\n'
        'while [ "$1" != -t ]; do shift; done\ndest=$2; shift 2\n'
        f'for source in "$@"; do case "$source" in */userstores) {real_cp} -a "$source" "$dest/";; esac; done\n'
        'mkdir -p "$dest/tenants/1" && printf "restored te" >"$dest/tenants/1/tenant.txt"\nexit 137\n'
    )
    (cut / "cp").chmod(0o755)
    first = node.run(f'PATH="{cut}:$PATH"\n{JOIN}')
    assert first.returncode != 0 and "joined" not in first.stdout and "bound" not in first.stdout, first.stderr
    assert (node.share / RESTORED).is_dir() and not (node.share / ".wso2am-restored-1").exists()
    assert (node.share / "userstores" / "SECONDARY.xml").exists(), "the stand-in copied part of it"
    assert (node.share / "tenants" / "1" / "tenant.txt").read_text() == "restored te"
    assert "seeded the share" not in first.stderr and not (node.share / "userstores" / "from-the-distribution.txt").exists()
    again = node.run(JOIN)
    assert again.returncode == 0 and again.stdout.split() == ["bound", "joined"], again.stderr
    assert (node.share / "tenants" / "1" / "tenant.txt").read_text() == "restored tenant\n"
    assert (node.share / "userstores" / "SECONDARY.xml").read_text() == "restored user store\n"
    assert all((node.share / f".wso2am-seeded-{name}").exists() for name in ("userstores", "tenants"))
    assert not list(node.share.glob("aws-backup-restore_*")) and (node.share / ".wso2am-restored-1").exists()
    assert (node.share / ".wso2am-secrets.lock").read_text() == "ours\n"
    assert f"moved the restored share ({RESTORED}) to {node.share}" in again.stderr


@pytest.mark.skipif(grp.getgrgid(os.getgid()).gr_name != USER, reason="the seed chowns to OS_USER:OS_USER")
def test_no_share_to_restore_asks_nothing_and_seeds_as_a_new_share(tmp_path):
    node = RestoredNode(tmp_path, restored_local(share=False))
    result = node.run(JOIN)
    assert result.returncode == 0 and result.stdout.split() == ["bound", "joined"], result.stderr
    assert node.aws_calls() == []
    assert "seeded the share from the distribution: userstores tenants" in result.stderr
    assert (node.share / "userstores" / "from-the-distribution.txt").exists() and not (node.share / ".wso2am-restored-1").exists()


def test_the_search_index_is_removed_once_per_restore_generation(tmp_path):
    node = RestoredNode(tmp_path, restored_local())
    solr = node.home / "solr" / "data"
    solr.mkdir(parents=True)
    (solr / "index.txt").write_text("the old index\n")
    first = node.run("rebuild_after_restore")
    assert first.returncode == 0, first.stderr
    assert not (node.home / "solr").exists() and (tmp_path / "lib" / "rebuilt-after-restore-1").exists()
    assert "search index rebuilt at the next start (restore generation 1)" in first.stderr
    solr.mkdir(parents=True)  # API-M's own new index, after its first start
    (solr / "index.txt").write_text("the new index\n")
    again = node.run("rebuild_after_restore")
    assert again.returncode == 0 and "rebuilt" not in again.stderr
    assert (solr / "index.txt").read_text() == "the new index\n", "kept: once per generation"
    # A restore of a restore (generation 2) on a disk that saw generation 1: removed again, once.
    node.node_env.write_text(node.node_env.read_text().replace("RESTORE_GENERATION=1", "RESTORE_GENERATION=2"))
    second = node.run("rebuild_after_restore")
    assert second.returncode == 0 and "restore generation 2" in second.stderr
    assert not (node.home / "solr").exists() and (tmp_path / "lib" / "rebuilt-after-restore-2").exists()
