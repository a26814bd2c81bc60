"""A moto server on a free loopback port, started and stopped by the tests themselves, and one deployment
of `local` to it that the e2e modules share (tests/e2e/test_teardown.py destroys it, last); beside it, `local`
switched to content_sync = "rsync", deployed at the same time (tests/e2e/test_rsync_mode.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apim_active_active.settings import load_settings
from scripts.emulator import free_loopback_url, start
from scripts.local_account import prepare
from scripts.local_stack import ROOT, aws_env, cdktf, cdktf_flags, client, deploy, destroy, roll, rsync_variant  # noqa: F401 (re-exported)

ENVIRONMENTS = ROOT / "environments"
STACK = "local"
# The shared deployment is protected (as prod is), so the teardown can show a refused destroy first.
# (Only this protection: moto ignores an instance's termination protection, so a plan would show drift.)
PROTECTIONS = {"retain_on_destroy = false": "retain_on_destroy = true"}
RSYNC_PREFIX = "apim-rsync"
DEPLOY_SECONDS = 900


def _emulator(tmp_path_factory, name: str):
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp(name))
    prepare(url, load_settings(ENVIRONMENTS / "local.toml", environ={}))
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> str:
    yield from _emulator(tmp_path_factory, "moto")


def write_local_settings(folder: Path, protected: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (ENVIRONMENTS / "local.toml").read_text()
    for off, on in PROTECTIONS.items():
        assert off in text, off
        text = text.replace(off, on) if protected else text
    (folder / "local.toml").write_text(text)
    return folder


@pytest.fixture(scope="session")
def rsync_emulator(tmp_path_factory) -> str:
    """A second moto server: moto gives every RDS instance the same DbiResourceId, by which the provider finds
    one, so two stacks with a database cannot share an emulator."""
    yield from _emulator(tmp_path_factory, "moto-rsync")


@pytest.fixture(scope="session")
def rsync_deployment(rsync_emulator, tmp_path_factory):
    """The rsync deployment, deployed in the background: with the shared deployment's own deploy, and its destroy
    with the tests that follow, so that the two overlap their waits (a deploy waits ~1 min on RDS)."""
    work = tmp_path_factory.mktemp("rsync")
    environments = work / "environments"
    environments.mkdir()
    (environments / "local.toml").write_text(rsync_variant((ENVIRONMENTS / "local.toml").read_text(), RSYNC_PREFIX))
    env = aws_env(rsync_emulator, APIM_STATE_DIR=str(work / "state"), APIM_ENVIRONMENTS_DIR=str(environments))
    flags = cdktf_flags(work / "cdktf.out")
    background = ThreadPoolExecutor(max_workers=1)
    state = {
        "env": env,
        "work": work,
        "flags": flags,
        "outdir": work / "cdktf.out",
        "outputs_file": work / "outputs.json",
        "background": background,
    }
    # Deployed as the pipeline deploys: scripts/roll.py (a first deploy: both nodes created, then gated in turn).
    state["deployed"] = background.submit(roll, STACK, state["outdir"], state["outputs_file"], env)
    yield state
    destroy_rsync_deployment(state)
    background.shutdown(wait=True)


def destroy_rsync_deployment(state: dict):
    """The rsync deployment's destroy, started once in the background (after its deploy: one worker)."""
    if "destroyed" not in state:
        state["destroyed"] = state["background"].submit(destroy, STACK, state["flags"], state["env"])
    return state["destroyed"]


@pytest.fixture(scope="session")
def deployment(emulator, rsync_deployment, tmp_path_factory):  # the rsync deployment starts first, in the background
    work = tmp_path_factory.mktemp("deploy")
    environments = write_local_settings(work / "environments", protected=True)
    env = aws_env(emulator, APIM_STATE_DIR=str(work / "state"), APIM_ENVIRONMENTS_DIR=str(environments))
    outdir = work / "cdktf.out"
    common = cdktf_flags(outdir)
    outputs_file = work / "outputs.json"
    result, seconds = deploy(STACK, [*common, "--outputs-file", str(outputs_file)], env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"\n[timing] cdktf deploy {STACK}: {seconds:.1f}s")
    state = {
        "env": env,
        "work": work,
        "environments": environments,
        "outdir": outdir,
        "common": common,
        "destroyed": False,
        "outputs_file": outputs_file,
        "outputs": json.loads(outputs_file.read_text())[STACK],
    }
    yield state
    if not state["destroyed"]:
        write_local_settings(environments, protected=False)
        cdktf(["deploy", STACK, *common], {**env, "TF_VAR_roll": "true"})  # nodes held: they are about to go
        destroy(STACK, common, env)
