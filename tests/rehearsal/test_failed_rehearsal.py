"""A rehearsal step that fails reports the command's own words, and leaves nothing behind (issue: a failed
mariadb-install-db showed only its exit status and left its work folder)."""

from __future__ import annotations

import os
import subprocess

import pytest

from scripts.rehearsal.database import MariaDbStandIn
from scripts.rehearsal.run import Rehearsal

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the rehearsal needs root (network and mount namespaces); CI has it"),
]


class DatabaseFails(Rehearsal):
    """A rehearsal whose first step, the database stand-in, fails: no stack is deployed (the failure comes first)."""

    def deploy(self) -> None:
        pass

    def open_lab(self) -> None:
        self.lab.open_network()
        self.database = MariaDbStandIn(self.lab, self.work, "10.99.0.200")
        self.database.start("master", "not-a-secret", "WSO2AM_DB")


def _bridges() -> set[str]:
    return set(subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout.split())


@pytest.mark.parametrize("keep", [False, True])
def test_a_failed_step_shows_its_stderr_and_leaves_nothing_unless_kept(keep, monkeypatch):
    # The real mariadb-install-db, its bootstrap server swapped for one that fails (the script's own hook).
    monkeypatch.setenv("MYSQLD_BOOTSTRAP", "/bin/false")
    # A tag of its own: the background EFS rehearsal of the same process has the default one (its bridge's name).
    rehearsal = DatabaseFails(keep=keep, tag="rf")
    checks = rehearsal.run()
    (failed,) = [c for c in checks if not c.passed]
    assert failed.name == "rehearsal ran to the end"
    assert "mariadb-install-db" in failed.detail and "exited with status 1" in failed.detail, failed.detail
    assert "Installation of system tables failed!" in failed.detail, "the command's own words"
    assert rehearsal.lab.bridge not in _bridges()
    assert not rehearsal.lab.namespaces
    kept = rehearsal.work.is_dir()
    subprocess.run(["rm", "-rf", str(rehearsal.work)], check=True)
    if keep:
        assert kept and any(str(rehearsal.work) in note for note in rehearsal.notes)
    else:
        assert not kept, f"left behind: {rehearsal.work}"
