"""What the operations scripts (preflight, verify, bootstrap_state) share: the environment's settings,
boto3 clients for its account (or the emulator), and the pass/fail report they print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apim_active_active.settings import Settings, SettingsError, load_settings  # noqa: E402

# Bounded: a few retries with AWS's standard back-off, short timeouts.
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=20)


def environments_dir() -> Path:
    return Path(os.environ.get("APIM_ENVIRONMENTS_DIR", ROOT / "environments"))


def environment_parser(doc: str | None) -> argparse.ArgumentParser:
    """The scripts' common arguments: the environment's name and --json."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environment", help="name of environments/<name>.toml")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    return parser


def load_environment(name: str) -> Settings:
    """The settings of environments/<name>.toml; exits 2 naming each bad setting."""
    path = environments_dir() / f"{name}.toml"
    if not path.exists():
        raise SystemExit(f"{path}: no such environment")
    try:
        return load_settings(path)
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None


class Aws:
    """boto3 clients for the environment: its region; the emulator's address and dummy credentials in `local`."""

    def __init__(self, settings: Settings, region: str | None = None) -> None:
        self.region = region or settings.region
        self.endpoint = settings.emulator.endpoint_url if settings.emulator else None
        credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"} if settings.emulator else {}
        self.session = boto3.Session(region_name=self.region, **credentials)

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, config=BOTO_CONFIG)


@dataclass
class Result:
    check: str
    status: str  # pass | fail | skip
    detail: str = ""


def passed(check: str, ok: bool, detail: str = "") -> Result:
    return Result(check, "pass" if ok else "fail", detail)


def report(title: str, results: list[Result], as_json: bool) -> int:
    """Print the results as a table (or JSON); 1 when any failed."""
    failed = [r for r in results if r.status == "fail"]
    if as_json:
        print(json.dumps({"title": title, "passed": not failed, "results": [asdict(r) for r in results]}, indent=2))
    else:
        width = max(len(r.check) for r in results)
        print(title)
        for result in results:
            print(f"  {result.status.upper():4}  {result.check:{width}}  {result.detail}")
        print(f"{len(results) - len(failed)} of {len(results)} passed" + (f", {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0
