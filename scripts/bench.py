#!/usr/bin/env python3
"""Synth benchmark: `python main.py` (every environment) with our provider loading vs the stock import.

Runs both in the same session, alternating, and checks the targets:
  our synth median <= 6.0 s wall, ratio ours/stock <= 0.35, byte-identical cdk.tf.json.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 6.0
TARGET_RATIO = 0.35
# Runs one synth and reports the peak RSS of it and its children (the jsii Node process).
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def synth_once(outdir: Path, stock: bool) -> tuple[float, int]:
    env = {
        **os.environ,
        "CDKTF_OUTDIR": str(outdir),
        "APIM_STATE_DIR": str(ROOT / ".state"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "APIM_STOCK_PROVIDER_IMPORT": "1" if stock else "0",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, str(ROOT / "main.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"synth failed (stock={stock}):\n{result.stderr[-3000:]}")
    return seconds, int(result.stdout.split()[-1]) // 1024


def stack_bytes(outdir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((outdir / "stacks").glob("*/cdk.tf.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant (default 3)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"ours": [], "stock": []}
    memory: dict[str, list[int]] = {"ours": [], "stock": []}
    outputs: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for variant in ("ours", "stock"):
                outdir = Path(tmp) / f"{variant}-{run}"
                seconds, peak_mib = synth_once(outdir, stock=variant == "stock")
                times[variant].append(seconds)
                memory[variant].append(peak_mib)
                outputs.setdefault(variant, stack_bytes(outdir))
    ours, stock = statistics.median(times["ours"]), statistics.median(times["stock"])
    ratio = ours / stock
    identical = outputs["ours"] == outputs["stock"]
    print(f"synth of {len(outputs['ours'])} stacks ({', '.join(outputs['ours'])}), {args.runs} runs each, median wall time")
    print(f"{'variant':10} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MiB':>9}")
    for variant in ("ours", "stock"):
        values = times[variant]
        print(f"{variant:10} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f} {max(memory[variant]):9d}")
    checks = [
        (f"our synth <= {TARGET_SECONDS:.1f} s", ours <= TARGET_SECONDS, f"{ours:.2f} s"),
        (f"ratio ours/stock <= {TARGET_RATIO}", ratio <= TARGET_RATIO, f"{ratio:.3f}"),
        ("cdk.tf.json byte-identical", identical, "yes" if identical else "NO"),
    ]
    for name, passed, value in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {value}")
    return 0 if all(passed for _, passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
