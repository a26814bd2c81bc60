#!/usr/bin/env python3
"""Start or stop the local AWS emulator (moto server) on loopback.

  scripts/emulator.py start   # idempotent; waits until it answers, then adds what the local stack
                              # expects an account to hold (scripts/local_account.py)
  scripts/emulator.py stop
The address comes from AWS_ENDPOINT_URL when set, else http://127.0.0.1:4566.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apim_active_active.settings import load_settings  # noqa: E402
from scripts.local_account import prepare  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "http://127.0.0.1:4566"
STARTUP_SECONDS = 30


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", DEFAULT_URL)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/reset-auth", timeout=1):  # noqa: S310 (loopback only)
            return True
    except OSError as error:
        return getattr(error, "code", None) is not None  # an HTTP error still means it is up


def start(url: str, state_dir: Path) -> subprocess.Popen | None:
    """Start moto on url unless something already answers there; wait (bounded) until it does."""
    if answers(url):
        return None
    parsed = urlparse(url)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(state_dir / "moto.log", "ab")  # noqa: SIM115 (kept open by the child)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "emulator_server.py"), "-H", parsed.hostname, "-p", str(parsed.port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        start_new_session=True,
    )
    (state_dir / "moto.pid").write_text(str(process.pid))
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if answers(url):
            return process
        if process.poll() is not None:
            said = (state_dir / "moto.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"moto server exited with {process.returncode}; {state_dir / 'moto.log'} ends:\n{said}")
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"moto server did not answer on {url} within {STARTUP_SECONDS}s")


def free_loopback_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def stop(state_dir: Path) -> None:
    pid_file = state_dir / "moto.pid"
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        pid_file.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".state", help="pid and log folder")
    args = parser.parse_args()
    url = endpoint()
    if urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"AWS_ENDPOINT_URL={url}: the emulator runs on loopback only")
    if args.action == "start":
        start(url, args.state_dir)
        print(f"emulator answering on {url}")
        settings = load_settings(ROOT / "environments" / "local.toml", environ={})
        for line in prepare(url, settings):
            print(f"emulator holds the {line}")
    else:
        stop(args.state_dir)
        print("emulator stopped")


if __name__ == "__main__":
    main()
