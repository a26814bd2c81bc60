"""A moto server on a free loopback port, started and stopped by the tests themselves."""
from __future__ import annotations

import pytest

from apim_active_active.settings import load_settings
from scripts.emulator import free_loopback_url, start
from scripts.local_account import prepare
from scripts.local_stack import ROOT, aws_env, cdktf, cdktf_flags, client  # noqa: F401 (re-exported for tests)

ENVIRONMENTS = ROOT / "environments"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> str:
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp("moto"))
    prepare(url, load_settings(ENVIRONMENTS / "local.toml", environ={}))
    yield url
    process.terminate()
    process.wait(timeout=30)
