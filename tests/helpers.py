"""Helpers the tests share (one module, so no test file imports another): reading synthesized Terraform JSON and
running the operations scripts, settings variants, user data read back, servers on loopback. Fixtures live in
the conftest files."""

from __future__ import annotations

import copy
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from apim_active_active.customization_settings import CustomizationSettings
from apim_active_active.policy import through_local
from apim_active_active.settings import Settings, parse_settings
from apim_active_active.versions import gateway_distribution
from scripts.local_account import self_signed_certificate
from tests.conftest import ROOT, local_settings_dict

# Synthesized Terraform JSON ------------------------------------------------------------------------------------------
ENVS = ["local", "dev", "legacy32", "prod"]


def resources(stack: dict, kind: str) -> dict[str, dict]:
    return stack.get("resource", {}).get(kind, {})


def ref(kind: str, name: str, attribute: str = "id") -> str:
    return f"${{{kind}.{name}.{attribute}}}"


def stack_key(stack: dict) -> tuple[str, dict]:
    """The stack's own KMS key; with backup.copy_region a second one is made through the copy provider."""
    found = [(name, key) for name, key in resources(stack, "aws_kms_key").items() if "provider" not in key]
    assert len(found) == 1, f"expected one stack key, found {[name for name, _ in found]}"
    return found[0]


def only(stack: dict, kind: str) -> tuple[str, dict]:
    found = resources(stack, kind)
    assert len(found) == 1, f"expected one {kind}, found {list(found)}"
    return next(iter(found.items()))


def named(stack: dict, kind: str, name: str) -> tuple[str, dict]:
    found = [(key, r) for key, r in resources(stack, kind).items() if r.get("name") == name]
    assert len(found) == 1, f"expected one {kind} named {name}"
    return found[0]


def group_named(stack: dict, suffix: str) -> str:
    for name, group in resources(stack, "aws_security_group").items():
        if group["name"].endswith(f"-{suffix}"):
            return name
    raise AssertionError(f"no security group *-{suffix}")


# The operations scripts ------------------------------------------------------------------------------------------------
SCRIPT_SECONDS = 120


def run_script(script: str, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args], env=env, capture_output=True, text=True, timeout=SCRIPT_SECONDS, cwd=ROOT
    )
    return result, time.monotonic() - started


def verify(deployment: dict, *args: str, stack: str = "local") -> tuple[subprocess.CompletedProcess, float]:
    return run_script(
        "verify.py",
        stack,
        "--outputs",
        str(deployment["outputs_file"]),
        "--synth-dir",
        str(deployment["outdir"]),
        "--json",
        *args,
        env=deployment["env"],
    )


def results_of(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {r["check"]: r for r in json.loads(result.stdout)["results"]}


# Settings and user data ------------------------------------------------------------------------------------------------
CLOUD_INIT = os.environ.get("CLOUD_INIT_PYTHONPATH", str(ROOT / ".tools/cloud-init/usr/lib/python3/dist-packages"))


def at_version(data: dict, version: str, jdk: int = 11, **apim) -> dict:
    """Settings data moved to another API-M version, its archive and JDK with it; the local gateway group kept where
    the version has one (with the Universal Gateway pack from 4.5: versions.gateway_distribution), dropped on 3.2."""
    data = copy.deepcopy(data)
    data["apim"] |= {"version": version, "archive_url": f"s3://a/wso2am-{version}.zip", "jdk": jdk, **apim}
    gateway = data.get("gateway_scale_out")
    if gateway is not None:
        if version.startswith("3."):
            del data["gateway_scale_out"]
        elif gateway_distribution(version) == "universal":
            gateway["archive_url"] = f"s3://a/wso2am-universal-gw-{version}.zip"
        else:
            gateway.pop("archive_url", None)
    return data


def local_settings(version: str = "4.3.0", scope: str | None = None, tenants: bool = False) -> Settings:
    """The local environment's settings at another version (its archive and JDK with it), share scope or tenants."""
    data = at_version(local_settings_dict(), version, tenants=tenants)
    if scope:
        data["shared_fs"]["scope"] = scope
    return parse_settings(data, environ={})


def rsync_local(**apim) -> Settings:
    """The local environment's settings with content_sync = "rsync" (and these apim settings)."""
    data = copy.deepcopy(local_settings_dict())
    del data["shared_fs"]
    data["content_sync"] = "rsync"
    data["apim"] |= {"tenants": False, **apim}
    return parse_settings(data, environ={})


# A restored environment: local restored into apim-local-r1 ([restore], scripts/restore.py's shape).
RESTORED_PREFIX = "apim-local-r1"
SOURCE_SECRETS = {
    "admin_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/apim-admin-Ab12Cd",
    "keystore_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/keystore-Ef34Gh",
    "database_app_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/database-app-Ij56Kl",
}


def restored_local_dict(content_sync: str = "efs", **restore) -> dict:
    """The local environment's settings as a restore of local (point in time), with these [restore] settings;
    content_sync = "rsync" has no share to restore."""
    data = copy.deepcopy(local_settings_dict())
    data["name_prefix"] = RESTORED_PREFIX
    if content_sync == "rsync":
        del data["shared_fs"]
        data["content_sync"] = "rsync"
        data["apim"]["tenants"] = False
    data["restore"] = {
        "source_prefix": "apim-local",
        "database_source": "apim-local-db",
        "share": content_sync == "efs",
        "secrets": dict(SOURCE_SECRETS),
        **restore,
    }
    return data


def restored_local(content_sync: str = "efs", **restore) -> Settings:
    return parse_settings(restored_local_dict(content_sync, **restore), environ={})


def without_customization(settings: Settings) -> Settings:
    """These settings with [customization] unset (local's turns every escape hatch on)."""
    return settings.model_copy(update={"customization": CustomizationSettings()})


def cloud_config_files(user_data: str) -> dict[str, dict]:
    """The write_files entries of a cloud-config, by path."""
    assert user_data.startswith("#cloud-config\n")
    return {entry["path"]: entry for entry in yaml.safe_load(user_data)["write_files"]}


def cloud_init_schema(path) -> subprocess.CompletedProcess:
    """The real `cloud-init schema` on a cloud-config file."""
    return subprocess.run(
        [sys.executable, "-m", "cloudinit.cmd.main", "schema", "--config-file", str(path)],
        env={**os.environ, "PYTHONPATH": CLOUD_INIT},
        capture_output=True,
        text=True,
        timeout=120,
    )


# Servers on loopback -----------------------------------------------------------------------------------------------
LOOPBACK = "127.0.0.1"


def self_signed_files(tmp_path, name: str) -> tuple[str, str]:
    """(certificate PEM path, key PEM path) for 127.0.0.1, its own CA."""
    certificate, key = self_signed_certificate(name, ip=LOOPBACK, ca=True)
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate)
    key_path.write_bytes(key)
    return str(cert_path), str(key_path)


class _Services(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/services/" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextmanager
def key_manager(port: int, cert: str, key: str, *, after_seconds: float = 0.0):
    """An HTTPS server on loopback standing in for a Key Manager's /services/, answering after `after_seconds`."""
    servers = []

    def serve() -> None:
        server = http.server.ThreadingHTTPServer((LOOPBACK, port), _Services)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        server.serve_forever(poll_interval=0.1)

    timer = threading.Timer(after_seconds, serve)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        for server in servers:
            server.shutdown()
            server.server_close()
        timer.join(timeout=5)


def node_user_data(stack: dict, instance: dict) -> str:
    """An instance's user data expression in the synthesized JSON (the instance names it through a local)."""
    reference = instance["user_data_base64"]
    assert reference.startswith("${local."), reference
    return through_local(stack, reference)


@contextmanager
def listening(address: str, ports: list[int] | None = None, count: int = 4):
    """TCP listeners at address: on these ports, or on count free ones (their ports yielded)."""
    sockets = []
    try:
        for port in ports or [0] * count:
            sock = socket.socket()
            sock.bind((address, port))
            sock.listen()
            sockets.append(sock)
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def boot_steps(stack: dict) -> str:
    """The boot steps in the stack's boot bucket (constructs/boot_assets.py), as a node gets them, one after the other."""
    return "\n".join(o["content"].replace("$${", "${").replace("%%{", "%{") for o in resources(stack, "aws_s3_object").values())


def synth_main(environments_dir: Path, outdir: Path) -> subprocess.CompletedProcess:
    """main.py as `cdktf synth` runs it, on the environment files of that folder, into outdir."""
    return subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "main.py")],
        env={"APIM_ENVIRONMENTS_DIR": str(environments_dir), "CDKTF_OUTDIR": str(outdir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
