"""What several unit test modules share."""

from __future__ import annotations

import pytest

from scripts.emulator import free_loopback_url, start


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A private moto server on loopback, for the module (a boot function's or a script's AWS calls)."""
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp("moto"))
    yield url
    if process is not None:
        process.terminate()
        process.wait(timeout=30)
