"""Running an outside command so that a failure can be read: its standard error and the tail of its output travel
with the error (a bare CalledProcessError names only the exit status)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

TAIL_CHARS = 2000


def _tail(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = (text or "").strip()
    return text if len(text) <= TAIL_CHARS else "..." + text[-TAIL_CHARS:]


class CommandFailed(RuntimeError):
    """A command that exited non-zero or ran out of time, with what it said."""

    def __init__(self, argv: Sequence[str], why: str, stdout: str | bytes | None, stderr: str | bytes | None) -> None:
        self.argv, self.why = list(argv), why
        self.stdout, self.stderr = _tail(stdout), _tail(stderr)
        super().__init__(
            f"`{' '.join(self.argv)}` {why}\n--- stderr ---\n{self.stderr or '(empty)'}\n--- stdout (tail) ---\n{self.stdout or '(empty)'}"
        )


def run(argv: Sequence[str], *, timeout: float, **options) -> subprocess.CompletedProcess:
    """subprocess.run with its output captured; raises CommandFailed (exit status, stderr, output tail) on a
    non-zero exit or a time-out."""
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, **options)
    except subprocess.TimeoutExpired as error:
        raise CommandFailed(argv, f"did not finish within {timeout:g}s", error.stdout, error.stderr) from None
    if result.returncode != 0:
        raise CommandFailed(argv, f"exited with status {result.returncode}", result.stdout, result.stderr)
    return result
