"""Shared helpers: the project root, a valid settings mapping to break, and the loaded environments."""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers.boot_script import Deployed
from apim_active_active.settings import Settings, load_environments
from scripts.local_stack import tool_env  # noqa: F401 (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / "environments"
EXAMPLES = ROOT / "examples"

# Stand-ins for what only an applied stack knows, for renderer tests.
DEPLOYED = Deployed(
    efs_id="fs-0123456789abcdef0",
    db_host="apim-local-db.abc.us-east-1.rds.amazonaws.com",
    db_port=3306,
    db_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf",
    admin_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/apim-admin-AbCdEf",
    keystore_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/keystore-AbCdEf",
    # The public name when apim.hostname is unset; longer than a certificate's CN may be.
    lb_dns_name="internal-apim-local-alb-1234567890.us-east-1.elb.amazonaws.com",
    db_app_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/database-app-AbCdEf",
    stack_key_arn="arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
    boot_bucket="apim-local-boot-20261128020304050600000001",  # bucket_prefix's: the prefix and 26 characters
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_settings_dict() -> dict:
    return tomllib.loads((ENVIRONMENTS / "local.toml").read_text())


@pytest.fixture
def local_dict() -> dict:
    return copy.deepcopy(local_settings_dict())


@pytest.fixture(scope="session")
def environments() -> dict[str, Settings]:
    return load_environments(ENVIRONMENTS, environ={})


@pytest.fixture(scope="session")
def examples() -> dict[str, Settings]:
    return load_environments(EXAMPLES, environ={})


# Synthesized once per test session (real cdktf, real jsii); used by tests/synth and tests/policy.


def synthesize(outdir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        env=tool_env(**{"CDKTF_OUTDIR": str(outdir), "APIM_STATE_DIR": str(outdir / "state"), **env}),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _synthesized(tmp_path_factory, name: str, **env: str) -> Path:
    outdir = tmp_path_factory.mktemp(name)
    result = synthesize(outdir, **env)
    assert result.returncode == 0, result.stderr
    return outdir


def _stacks(outdir: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sorted((outdir / "stacks").glob("*/cdk.tf.json"))}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    return _synthesized(tmp_path_factory, "synth")


@pytest.fixture(scope="session")
def stacks(synth_dir) -> dict[str, dict]:
    return _stacks(synth_dir)


@pytest.fixture(scope="session")
def example_synth_dir(tmp_path_factory) -> Path:
    """The examples (examples/*.toml), synthesized as environments of their own."""
    return _synthesized(tmp_path_factory, "examples", APIM_ENVIRONMENTS_DIR=str(EXAMPLES))


@pytest.fixture(scope="session")
def example_stacks(example_synth_dir) -> dict[str, dict]:
    return _stacks(example_synth_dir)


# The gateway scale-out group beside `local`'s (on): API-M 4.7 (WSO2's Universal Gateway pack) scaled by requests, and
# `local` with the group off. Synthesized as environments of their own (tests/synth/test_gateway_group.py, tests/policy).
GATEWAY_47 = "gateway-4-7"
GATEWAY_OFF = "gateway-off"


@pytest.fixture(scope="session")
def gateway_environments(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gateway-environments")
    gateway = '[gateway_scale_out]\narchive_url = "s3://example-wso2-artifacts/wso2am-universal-gw-4.7.0.zip"\nscaling = "requests"\n'
    (folder / f"{GATEWAY_47}.toml").write_text((EXAMPLES / "apim-4-7.toml").read_text() + "\n" + gateway)
    local = (ENVIRONMENTS / "local.toml").read_text()
    off, count = re.subn(r"\n\[gateway_scale_out\][^\n]*\n(?:[^\[\n].*\n|\n)*", "\n", local)
    assert count == 1, "local.toml turns the gateway group on"
    (folder / f"{GATEWAY_OFF}.toml").write_text(off.replace('name_prefix = "apim-local"', 'name_prefix = "apim-gw-off"'))
    return folder


@pytest.fixture(scope="session")
def gateway_synth_dir(tmp_path_factory, gateway_environments) -> Path:
    return _synthesized(tmp_path_factory, "gateway-synth", APIM_ENVIRONMENTS_DIR=str(gateway_environments))


@pytest.fixture(scope="session")
def gateway_stacks(gateway_synth_dir) -> dict[str, dict]:
    return _stacks(gateway_synth_dir)


@pytest.fixture(scope="session")
def gateway_settings(gateway_environments) -> dict[str, Settings]:
    return load_environments(gateway_environments, environ={})


# The order of a whole run: the rsync mode's e2e checks first (its destroy then runs beside the other tests), then the
# others, the roll (it replaces both nodes), the teardown, and last the boot rehearsals' checks, whose runs started in
# the background at collection so that their waits overlap everything before.
# status reads the pair before the tests that stop a node or delete a mount target.
RUN_ORDER = {"test_rsync_mode.py": 0, "test_status.py": 0.5, "test_roll.py": 2, "test_teardown.py": 3, "test_rehearsal.py": 4}


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: RUN_ORDER.get(item.path.name, 1))


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if os.geteuid() == 0 and any(item.path.name == "test_rehearsal.py" for item in session.items):
        from tests.rehearsal import background

        background.start()
