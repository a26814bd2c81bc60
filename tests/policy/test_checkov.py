"""checkov on the synthesized stacks of the real-AWS environments (`local`, the emulator, is not scanned).

checkov runs from its own virtualenv (.tools/checkov-venv, built by `make install` from requirements-checkov.lock).
It ignores skip comments inside cdk.tf.json, so every skip lives in .checkov.yaml, each with its reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

CHECKOV = ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"
SCANNED = ["dev", "legacy32", "prod"]


def skipped_checks() -> list[str]:
    return list(yaml.safe_load(CONFIG.read_text()).get("skip-check") or [])


def checkov(directory: Path, *args: str, cwd: Path) -> dict:
    """The terraform_json report of one checkov run on one stack directory (fails on a crash or a parsing error)."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install`"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", "terraform_json", "-o", "json", "--quiet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    # no check ran at all: checkov prints only a summary
    empty = {"summary": reports[0] if "passed" in reports[0] else {"passed": 0}, "results": {"failed_checks": []}}
    report = next((r for r in reports if r.get("check_type") == "terraform_json"), empty)
    assert report["summary"].get("parsing_errors", 0) == 0, report["summary"]
    return report


def describe(failed: list[dict]) -> str:
    return "\n".join(
        f"  {check['check_id']}  {check['resource']}  {check['check_name']}  "
        f"({check['file_path']}:{'-'.join(map(str, check.get('file_line_range') or []))})"
        for check in failed
    )


def opted_out(settings) -> dict[str, str]:
    """Checks an environment's own settings turn off on purpose (the defaults keep them on)."""
    database, lb = settings.database, settings.load_balancer
    choices = {
        "CKV_AWS_157": ("database.multi_az = false", not database.existing and not database.multi_az),
        "CKV_AWS_293": ("database.deletion_protection = false", not database.existing and not database.deletion_protection),
        "CKV_AWS_150": ("load_balancer.deletion_protection = false", not lb.deletion_protection),
        "CKV_AWS_91": ("load_balancer.access_logs_bucket unset", lb.access_logs_bucket is None),
        "CKV2_AWS_28": ("load_balancer.web_acl_arn unset", lb.web_acl_arn is None),
        # The web ACL is the operator's, outside this stack: checkov cannot see its rules.
        "CKV2_AWS_76": ("load_balancer.web_acl_arn names an outside web ACL", lb.web_acl_arn is not None),
        # API-M's and the nodes' logs: 90 days by default (their volume is the cost); a year is a setting away.
        "CKV_AWS_338": ("observability.log_retention_days < 365", settings.observability.log_retention_days < 365),
        # Port 80 open to everyone only redirects to 443.
        "CKV_AWS_260": ("load_balancer.client_cidrs holds 0.0.0.0/0", any(cidr.prefixlen == 0 for cidr in lb.client_cidrs)),
    }
    return {check: reason for check, (reason, off) in choices.items() if off}


@pytest.mark.parametrize("env", SCANNED)
def test_checkov_finds_nothing_that_is_not_skipped(synth_dir, environments, env):
    report = checkov(synth_dir / "stacks" / env, "--config-file", str(CONFIG), cwd=ROOT)
    assert report["summary"]["passed"] > 0, "checkov ran no check: wrong framework or empty stack?"
    allowed = opted_out(environments[env])
    failed = [check for check in report["results"]["failed_checks"] if check["check_id"] not in allowed]
    if failed:
        pytest.fail(
            f"checkov: {len(failed)} failed check(s) in the {env} stack. Fix the infrastructure or, for a deliberate"
            f" design choice only, add the id with its reason to .checkov.yaml:\n{describe(failed)}",
            pytrace=False,
        )


@pytest.mark.parametrize("example", ["rsync", "restored"])
def test_checkov_finds_nothing_in_the_rsync_and_restored_examples(example_synth_dir, examples, example):
    report = checkov(example_synth_dir / "stacks" / example, "--config-file", str(CONFIG), cwd=ROOT)
    assert report["summary"]["passed"] > 0
    allowed = opted_out(examples[example])
    failed = [check for check in report["results"]["failed_checks"] if check["check_id"] not in allowed]
    assert not failed, f"checkov: failed checks in the {example} example:\n{describe(failed)}"


def test_every_skip_still_fails_somewhere(synth_dir):
    """A skip nothing needs any more only hides regressions: delete it from .checkov.yaml once it is fixed."""
    skips = skipped_checks()
    if not skips:
        return
    still_failing: set[str] = set()
    for env in SCANNED:
        # cwd away from the repo: checkov would load .checkov.yaml from there and skip what we ask it to run
        report = checkov(synth_dir / "stacks" / env, "--check", ",".join(skips), "--skip-download", cwd=synth_dir)
        still_failing |= {check["check_id"] for check in report["results"]["failed_checks"]}
    stale = [check for check in skips if check not in still_failing]
    assert not stale, f"skipped in .checkov.yaml but no longer failing in {SCANNED}: remove {stale}"


def test_every_skip_says_why():
    skips = skipped_checks()
    lines = CONFIG.read_text().splitlines()
    for check in skips:
        assert re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check), f"not a checkov check id: {check!r}"
        line = next(line for line in lines if re.match(rf"\s*-\s*{re.escape(check)}\b", line))
        reason = line.partition("#")[2].strip()
        assert len(reason.split()) >= 3, f".checkov.yaml: give the reason for skipping {check} in a comment on its line"
    assert len(skips) == len(set(skips)), "a check is skipped twice"
