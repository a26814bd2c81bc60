"""Synthesize every environment once per test session (real cdktf, real jsii)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, tool_env


def synthesize(outdir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        env=tool_env(**{"CDKTF_OUTDIR": str(outdir), "APIM_STATE_DIR": str(outdir / "state"), **env}),
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("synth")
    result = synthesize(outdir)
    assert result.returncode == 0, result.stderr
    return outdir


@pytest.fixture(scope="session")
def stacks(synth_dir) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted((synth_dir / "stacks").glob("*/cdk.tf.json"))
    }
