"""Driving the `local` stack against the emulator: cdktf with the project's tool environment, boto3 clients."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3

from scripts import commands

ROOT = Path(__file__).resolve().parent.parent
STACK = "local"
REGION = "us-east-1"
CDKTF_TIMEOUT = 600
EMULATOR_DUPLICATE = "InvalidPermission.Duplicate"
EMULATOR_GONE_TARGET = "InvalidTarget: The specified target does not exist"
# A resent DeleteVpcEndpoints: the first call already took the endpoint's routes away (a second destroy finds it gone).
EMULATOR_GONE_ROUTE = "InvalidRoute.NotFound"
# The tool environment the Makefile exports (tests and the rehearsal may run without make).
TOOL_ENV = {
    "TF_CLI_CONFIG_FILE": str(ROOT / ".tools" / "terraformrc"),
    "CHECKPOINT_DISABLE": "1",
    "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


def without_table(text: str, table: str) -> str:
    """Settings text without one of its top-level tables."""
    return re.sub(rf"\n\[{table}\][^\n]*\n(?:[^\[\n].*\n|\n)*", "\n", text)


def rsync_variant(text: str, prefix: str, interval_seconds: int | None = None) -> str:
    """The `local` settings switched to content_sync = "rsync": no [shared_fs], its own name prefix, no alias
    record (a deployment of `local` beside it has that name). No gateway group: it does not depend on the content sync
    (`local` deploys and rehearses it), and every deploy here shares the test run's two cores. No secure vault: `local`
    rehearses it; this variant keeps the secrets file's way rehearsed."""
    text = without_table(without_table(without_table(text, "shared_fs"), "gateway_scale_out"), "secure_vault")
    text = text.replace('name_prefix = "apim-local"', f'name_prefix = "{prefix}"\ncontent_sync = "rsync"')
    text = re.sub(r"\nroute53_zone = .*\n", "\n", text)
    if interval_seconds is not None:
        text += f"\n[rsync]\ninterval_seconds = {interval_seconds}\n"
    return text


def tool_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**env, **TOOL_ENV, **extra}


def aws_env(endpoint: str, **extra: str) -> dict[str, str]:
    """Environment for a cdktf or AWS CLI run against the emulator (its fixed dummy credentials)."""
    return tool_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        **extra,
    )


def client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")


def cdktf(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run the pinned cdktf CLI in the project; returns the result and the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(
        ["npx", "--no-install", "cdktf", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CDKTF_TIMEOUT,
    )
    return result, time.monotonic() - started


def _once_more_after(
    args: list[str], env: dict[str, str], answer: str, remedy: str, mend: Callable[[], object]
) -> tuple[subprocess.CompletedProcess, float]:
    """`cdktf ARGS`, run once more after mend() when it failed with exactly the emulator's answer to a resent call.

    Now and then the provider's HTTP client resends a call moto had already applied, and moto answers it as a
    second call; what the first one did is then out of line with the state, so a plain second run would fail the
    same way. Anything else fails at once.
    """
    result, seconds = cdktf(args, env)
    if result.returncode != 0 and answer in result.stdout + result.stderr:
        print(f"[emulator] {answer}: {remedy}, then `cdktf {' '.join(args[:2])}` once more")
        mend()
        result, more = cdktf(args, env)
        seconds += more
    return result, seconds


def deploy(stack: str, flags: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """`cdktf deploy`; a resent AuthorizeSecurityGroup* leaves a rule outside the state: destroy first."""
    return _once_more_after(
        ["deploy", stack, *flags], env, EMULATOR_DUPLICATE, "destroying", lambda: cdktf(["destroy", stack, *flags], env)
    )


def roll(stack: str, outdir: Path, outputs_file: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """`scripts/roll.py` as the pipeline runs it (a first deploy included), with its report as JSON; a resent
    AuthorizeSecurityGroup* leaves a rule outside the state: destroy, then once more (as deploy())."""

    def run() -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        argv = [sys.executable, str(ROOT / "scripts" / "roll.py"), stack, "--outdir", str(outdir), "--outputs-file", str(outputs_file)]
        result = subprocess.run([*argv, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=CDKTF_TIMEOUT)
        return result, time.monotonic() - started

    result, seconds = run()
    if result.returncode != 0 and EMULATOR_DUPLICATE in result.stdout + result.stderr:
        print(f"[emulator] {EMULATOR_DUPLICATE}: destroying, then the roll once more")
        cdktf(["destroy", stack, *cdktf_flags(outdir)], env)
        result, more = run()
        seconds += more
    return result, seconds


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_text(result: subprocess.CompletedProcess, limit: int = 3000) -> str:
    """What a failed cdktf command said that matters: Terraform's error blocks (the lines from each "Error:" on), else
    the end of its output; without the terminal's escape codes."""
    text = ANSI.sub("", result.stdout + result.stderr)
    errors = re.findall(r"(?ms)^[^\n]*\bError: .*?(?=^[^\n]*\bError: |\Z)", text)
    said = "\n".join(block.strip()[:1200] for block in errors[:5]) if errors else text
    return said[-limit:]


def cdktf_flags(outdir: Path) -> list[str]:
    return ["--auto-approve", "--skip-provider-lock", "--output", str(outdir)]


def destroy(stack: str, flags: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """`cdktf destroy`; a resent DeregisterTargets leaves an attachment in the state whose target is gone: forget
    the attachments left (their target groups are destroyed with the stack) first."""
    stack_dir = Path(flags[flags.index("--output") + 1]) / "stacks" / stack

    def forget_attachments() -> None:
        listed = commands.run(["terraform", "state", "list"], cwd=stack_dir, env=env, text=True, timeout=CDKTF_TIMEOUT)
        attachments = [a for a in listed.stdout.split() if a.startswith("aws_lb_target_group_attachment.")]
        if attachments:
            commands.run(["terraform", "state", "rm", *attachments], cwd=stack_dir, env=env, text=True, timeout=CDKTF_TIMEOUT)

    args = ["destroy", stack, *flags]
    result, seconds = _once_more_after(args, env, EMULATOR_GONE_TARGET, "forgetting the attachments", forget_attachments)
    if result.returncode != 0 and EMULATOR_GONE_ROUTE in result.stdout + result.stderr:
        result, more = _once_more_after(args, env, EMULATOR_GONE_ROUTE, "the endpoint's routes are gone", lambda: None)
        seconds += more
    return result, seconds
