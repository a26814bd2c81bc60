"""A failed outside command says why: its standard error and the tail of its output travel with the error
(the rehearsal and the e2e fixtures run every outside command through scripts.commands)."""

from __future__ import annotations

import pytest

from scripts import commands


def test_a_failed_command_carries_its_stderr_and_the_tail_of_its_output():
    script = "for i in $(seq 1 3000); do echo line-$i; done; echo 'the real cause' >&2; exit 3"
    with pytest.raises(commands.CommandFailed) as failed:
        commands.run(["sh", "-c", script], text=True, timeout=30)
    message = str(failed.value)
    assert "exited with status 3" in message
    assert "the real cause" in message
    assert "line-3000" in message and "line-1\n" not in message, "only the tail of a long output"


def test_a_command_out_of_time_carries_what_it_said_so_far():
    with pytest.raises(commands.CommandFailed) as failed:
        commands.run(["sh", "-c", "echo started >&2; sleep 30"], text=True, timeout=1)
    assert "did not finish within 1s" in str(failed.value)


def test_a_command_that_succeeds_returns_its_output():
    assert commands.run(["sh", "-c", "echo fine"], text=True, timeout=30).stdout == "fine\n"
