"""The boot rehearsals (both content-sync modes at once), started in the background as soon as the session knows it
will check them, so that their minutes of waiting overlap the other tests'; tests/rehearsal/test_rehearsal.py, run
last, reads their checks."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from scripts.rehearsal.rsync_mode import RsyncRehearsal
from scripts.rehearsal.run import Check, Rehearsal

_runs: dict[str, Future] = {}


def start() -> None:
    if _runs:
        return
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rehearsal")
    # Their stacks are not destroyed before their private emulators stop (make rehearse does destroy): the e2e tests
    # destroy for real, and two more destroys would only take the 2 cores from the tests running beside them.
    _runs["efs"] = pool.submit(Rehearsal(share_delay=5.0, destroy_stack=False).run)
    _runs["rsync"] = pool.submit(RsyncRehearsal(destroy_stack=False).run)
    pool.shutdown(wait=False)


def checks() -> dict[str, dict[tuple[str, str], Check]]:
    start()
    return {mode: {(c.name, c.node): c for c in run.result()} for mode, run in _runs.items()}
