"""A moto server on a free loopback port, started and stopped by the tests themselves."""
from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import ROOT, tool_env

CDKTF_TIMEOUT = 600


def _emulator_module():
    spec = importlib.util.spec_from_file_location("emulator", ROOT / "scripts" / "emulator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> str:
    url = f"http://127.0.0.1:{_free_loopback_port()}"
    state_dir = tmp_path_factory.mktemp("moto")
    module = _emulator_module()
    process = module.start(url, state_dir)
    yield url
    process.terminate()
    process.wait(timeout=30)


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    return tool_env(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1", **extra,
    )


def client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def cdktf(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        ["npx", "--no-install", "cdktf", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=CDKTF_TIMEOUT,
    )
    return result, time.monotonic() - started


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path
