"""A moto server on a free loopback port, started and stopped by the tests themselves, and one deployment
of `local` to it that the e2e modules share (tests/e2e/test_teardown.py destroys it, last)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from apim_active_active.settings import load_settings
from scripts.emulator import free_loopback_url, start
from scripts.local_account import prepare
from scripts.local_stack import ROOT, aws_env, cdktf, cdktf_flags, client  # noqa: F401 (re-exported for tests)

ENVIRONMENTS = ROOT / "environments"
STACK = "local"
# The shared deployment is protected (as prod is), so the teardown can show a refused destroy first.
# (Only this protection: moto ignores an instance's termination protection, so a plan would show drift.)
PROTECTIONS = {"retain_on_destroy = false": "retain_on_destroy = true"}


def pytest_collection_modifyitems(items):
    """The teardown runs after every other e2e test, whatever the file order."""
    items.sort(key=lambda item: item.path.name == "test_teardown.py")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> str:
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp("moto"))
    prepare(url, load_settings(ENVIRONMENTS / "local.toml", environ={}))
    yield url
    process.terminate()
    process.wait(timeout=30)


def write_local_settings(folder: Path, protected: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (ENVIRONMENTS / "local.toml").read_text()
    for off, on in PROTECTIONS.items():
        assert off in text, off
        text = text.replace(off, on) if protected else text
    (folder / "local.toml").write_text(text)
    return folder


@pytest.fixture(scope="session")
def deployment(emulator, tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy")
    environments = write_local_settings(work / "environments", protected=True)
    env = aws_env(emulator, APIM_STATE_DIR=str(work / "state"), APIM_ENVIRONMENTS_DIR=str(environments))
    outdir = work / "cdktf.out"
    common = cdktf_flags(outdir)
    outputs_file = work / "outputs.json"
    result, seconds = cdktf(["deploy", STACK, *common, "--outputs-file", str(outputs_file)], env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"\n[timing] cdktf deploy {STACK}: {seconds:.1f}s")
    state = {
        "env": env, "work": work, "environments": environments, "outdir": outdir, "common": common,
        "destroyed": False, "outputs_file": outputs_file, "outputs": json.loads(outputs_file.read_text())[STACK],
    }
    yield state
    if not state["destroyed"]:
        write_local_settings(environments, protected=False)
        cdktf(["deploy", STACK, *common], env)
        cdktf(["destroy", STACK, *common], env)
