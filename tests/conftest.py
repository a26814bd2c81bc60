"""Shared helpers: the project root, a valid settings mapping to break, and the loaded environments."""
from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path

import pytest

from apim_active_active.settings import Settings, load_environments

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / "environments"

# Tool environment every subprocess needs (the Makefile exports the same).
TOOL_ENV = {
    "TF_CLI_CONFIG_FILE": str(ROOT / ".tools" / "terraformrc"),
    "CHECKPOINT_DISABLE": "1",
    "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


def tool_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**env, **TOOL_ENV, **extra}


def local_settings_dict() -> dict:
    return tomllib.loads((ENVIRONMENTS / "local.toml").read_text())


@pytest.fixture
def local_dict() -> dict:
    return copy.deepcopy(local_settings_dict())


@pytest.fixture(scope="session")
def environments() -> dict[str, Settings]:
    return load_environments(ENVIRONMENTS, environ={})
