"""A moto server on a free loopback port, started and stopped by the tests themselves."""
from __future__ import annotations

import pytest

from scripts.emulator import free_loopback_url, start
from scripts.local_stack import aws_env, cdktf, cdktf_flags, client  # noqa: F401 (re-exported for tests)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> str:
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp("moto"))
    yield url
    process.terminate()
    process.wait(timeout=30)
