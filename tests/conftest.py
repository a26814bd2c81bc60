"""Shared helpers: the project root, a valid settings mapping to break, and the loaded environments."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from apim_active_active.settings import Settings, load_environments
from scripts.local_stack import tool_env  # noqa: F401 (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / "environments"

def local_settings_dict() -> dict:
    return tomllib.loads((ENVIRONMENTS / "local.toml").read_text())


@pytest.fixture
def local_dict() -> dict:
    return copy.deepcopy(local_settings_dict())


@pytest.fixture(scope="session")
def environments() -> dict[str, Settings]:
    return load_environments(ENVIRONMENTS, environ={})
