"""Helpers the tests share (one module, so no test file imports another): reading synthesized Terraform JSON and
running the operations scripts. Fixtures live in the conftest files."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import ROOT

# Synthesized Terraform JSON ------------------------------------------------------------------------------------------
ENVS = ["local", "dev", "legacy32", "prod"]


def resources(stack: dict, kind: str) -> dict[str, dict]:
    return stack.get("resource", {}).get(kind, {})


def ref(kind: str, name: str, attribute: str = "id") -> str:
    return f"${{{kind}.{name}.{attribute}}}"


def only(stack: dict, kind: str) -> tuple[str, dict]:
    found = resources(stack, kind)
    assert len(found) == 1, f"expected one {kind}, found {list(found)}"
    return next(iter(found.items()))


def named(stack: dict, kind: str, name: str) -> tuple[str, dict]:
    found = [(key, r) for key, r in resources(stack, kind).items() if r.get("name") == name]
    assert len(found) == 1, f"expected one {kind} named {name}"
    return found[0]


def group_named(stack: dict, suffix: str) -> str:
    for name, group in resources(stack, "aws_security_group").items():
        if group["name"].endswith(f"-{suffix}"):
            return name
    raise AssertionError(f"no security group *-{suffix}")


# The operations scripts ------------------------------------------------------------------------------------------------
SCRIPT_SECONDS = 120


def run_script(script: str, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], env=env, capture_output=True,
                            text=True, timeout=SCRIPT_SECONDS, cwd=ROOT)
    return result, time.monotonic() - started


def verify(deployment: dict, *args: str, stack: str = "local") -> tuple[subprocess.CompletedProcess, float]:
    return run_script("verify.py", stack, "--outputs", str(deployment["outputs_file"]),
                      "--synth-dir", str(deployment["outdir"]), "--json", *args, env=deployment["env"])


def results_of(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {r["check"]: r for r in json.loads(result.stdout)["results"]}
