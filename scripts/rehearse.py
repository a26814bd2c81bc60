#!/usr/bin/env python3
"""Boot rehearsal (`make rehearse`): both nodes' real boot artifacts, run at once on this machine.

Deploys the `local` stack to a private emulator, reads each node's user data back through boto3,
boots both nodes in network namespaces with the real cloud-init modules, prints a table of checks
(and faults), then removes everything. The EFS mode and the rsync mode (`local` switched to
content_sync = "rsync") run at the same time, each with its own emulator. Needs root.
Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.rehearsal.rsync_mode import RsyncRehearsal  # noqa: E402
from scripts.rehearsal.run import Rehearsal  # noqa: E402
from scripts.rehearsal.stage import NOT_REHEARSED  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share-delay", type=float, default=5.0, help="seconds the share is unreachable at boot")
    parser.add_argument("--mode", choices=["efs", "rsync", "both"], default="both", help="content_sync mode(s)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each mode's work folder (logs, Terraform state, the database's files); "
        "without it everything the rehearsal made is removed, whatever the result",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the rehearsal needs root (network and mount namespaces)")
    makers = {"efs": lambda: Rehearsal(share_delay=args.share_delay, keep=args.keep), "rsync": lambda: RsyncRehearsal(keep=args.keep)}
    modes = list(makers) if args.mode == "both" else [args.mode]
    rehearsals = {mode: makers[mode]() for mode in modes}
    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        results = {mode: pool.submit(r.run) for mode, r in rehearsals.items()}
        runs = {mode: future.result() for mode, future in results.items()}
    checks = [c for mode_checks in runs.values() for c in mode_checks]
    if args.json:
        print(json.dumps({mode: {"checks": [asdict(c) for c in runs[mode]], "notes": rehearsals[mode].notes} for mode in modes}, indent=2))
    else:
        for mode in modes:
            print(f"\n== content_sync = {mode}")
            for note in rehearsals[mode].notes:
                print(f"# {note}")
            width = max(len(c.name) for c in runs[mode])
            print(f"\n{'result':6}  {'node':5}  {'check':{width}}  detail")
            for c in runs[mode]:
                print(f"{'PASS' if c.passed else 'FAIL':6}  {c.node:5}  {c.name:{width}}  {c.detail}")
        print("\nNot rehearsed here (stand-ins named above):")
        for item in NOT_REHEARSED:
            print(f"  - {item}")
    failed = sum(not c.passed for c in checks)
    print(f"\n{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
