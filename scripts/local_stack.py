"""Driving the `local` stack against the emulator: cdktf with the project's tool environment, boto3 clients."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STACK = "local"
REGION = "us-east-1"
CDKTF_TIMEOUT = 600
EMULATOR_DUPLICATE = "InvalidPermission.Duplicate"
EMULATOR_GONE_TARGET = "InvalidTarget: The specified target does not exist"
# The tool environment the Makefile exports (tests and the rehearsal may run without make).
TOOL_ENV = {
    "TF_CLI_CONFIG_FILE": str(ROOT / ".tools" / "terraformrc"),
    "CHECKPOINT_DISABLE": "1",
    "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


def rsync_variant(text: str, prefix: str, interval_seconds: int | None = None) -> str:
    """The `local` settings switched to content_sync = "rsync": no [shared_fs], its own name prefix, no alias
    record (a deployment of `local` beside it has that name)."""
    text = re.sub(r"\n\[shared_fs\]\n(?:[^\[\n].*\n|\n)*", "\n", text)
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
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION, **extra,
    )


def client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def cdktf(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run the pinned cdktf CLI in the project; returns the result and the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(
        ["npx", "--no-install", "cdktf", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=CDKTF_TIMEOUT,
    )
    return result, time.monotonic() - started


def deploy(stack: str, flags: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """`cdktf deploy`, retried once (after a destroy) when the emulator answered a rule twice.

    Now and then the provider's HTTP client resends an AuthorizeSecurityGroup* call moto had already applied;
    moto then answers InvalidPermission.Duplicate and the rule is orphaned outside the state, so a plain
    second deploy would fail the same way. Anything else fails at once.
    """
    result, seconds = cdktf(["deploy", stack, *flags], env)
    if result.returncode != 0 and EMULATOR_DUPLICATE in result.stdout + result.stderr:
        print(f"[emulator] {EMULATOR_DUPLICATE} on a fresh rule: destroying and deploying {stack} once more")
        cdktf(["destroy", stack, *flags], env)
        result, more = cdktf(["deploy", stack, *flags], env)
        seconds += more
    return result, seconds


def cdktf_flags(outdir: Path) -> list[str]:
    return ["--auto-approve", "--skip-provider-lock", "--output", str(outdir)]


def destroy(stack: str, flags: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    """`cdktf destroy`, retried once when the emulator refused to deregister a target it had deregistered already.

    The same resent call as in deploy(), here a DeregisterTargets: moto answers InvalidTarget, and the attachment
    stays in the state, so a plain second destroy would fail the same way. The retry forgets the attachments left
    in the state (their target groups are destroyed with the stack) and destroys again. Anything else fails at once.
    """
    result, seconds = cdktf(["destroy", stack, *flags], env)
    if result.returncode != 0 and EMULATOR_GONE_TARGET in result.stdout + result.stderr:
        print(f"[emulator] {EMULATOR_GONE_TARGET} on deregistering: forgetting the attachments, destroying {stack} again")
        stack_dir = Path(flags[flags.index("--output") + 1]) / "stacks" / stack
        listed = subprocess.run(["terraform", "state", "list"], cwd=stack_dir, env=env, capture_output=True, text=True,
                                timeout=CDKTF_TIMEOUT, check=True)
        attachments = [a for a in listed.stdout.split() if a.startswith("aws_lb_target_group_attachment.")]
        if attachments:
            subprocess.run(["terraform", "state", "rm", *attachments], cwd=stack_dir, env=env, capture_output=True,
                           timeout=CDKTF_TIMEOUT, check=True)
        result, more = cdktf(["destroy", stack, *flags], env)
        seconds += more
    return result, seconds
