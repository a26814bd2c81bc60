"""The example pipeline (.github/workflows/environments.yml): the order a pipeline must keep, read from the file."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "environments.yml"
DEPLOY = ROOT / ".github" / "workflows" / "deploy-environment.yml"
ACTION = ROOT / ".github" / "actions" / "toolchain" / "action.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as true


def _runs(job: dict) -> list[str]:
    return [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]


def _index(runs: list[str], pattern: str) -> int:
    matches = [i for i, run in enumerate(runs) if re.search(pattern, run)]
    assert matches, f"no step runs {pattern!r}: {runs}"
    return matches[0]


def test_pull_requests_run_preflight_then_diff_for_each_environment(workflow):
    plan = workflow["jobs"]["plan"]
    assert "pull_request" in plan["if"] and plan["needs"] == "test"
    assert plan["strategy"]["matrix"]["environment"] == ["dev", "prod"]
    runs = _runs(plan)
    assert _index(runs, r"scripts/preflight\.py \$\{\{ matrix\.environment \}\}") < _index(runs, r"cdktf diff")


def test_main_deploys_dev_then_prod_each_bootstrapped_preflighted_deployed_rolled_and_verified(workflow):
    jobs = workflow["jobs"]
    assert _triggers(workflow)["push"]["branches"] == ["main"]
    assert "push" in jobs["deploy-dev"]["if"] and jobs["deploy-dev"]["needs"] == "test"
    assert jobs["deploy-prod"]["needs"] == "deploy-dev", "prod only after dev deployed and verified"
    for name, env in (("deploy-dev", "dev"), ("deploy-prod", "prod")):
        assert jobs[name]["uses"] == "./.github/workflows/deploy-environment.yml"
        assert jobs[name]["with"] == {"environment": env}
    deploy = yaml.safe_load(DEPLOY.read_text())["jobs"]["deploy"]
    runs = _runs(deploy)
    steps = (r"bootstrap_state\.py", r"preflight\.py", r"scripts/roll\.py [^|]* --outputs-file", r"verify\.py", r"scripts/prove\.py")
    order = [_index(runs, p) for p in steps]
    assert order == sorted(order), "the infrastructure with the nodes held and the roll, then verify, then prove"
    assert not [run for run in runs if "cdktf deploy" in run], "a deploy outside the roll would apply an unchecked plan"
    outputs = re.search(r"--outputs-file (\S+)", runs[order[2]]).group(1)
    assert f"--outputs {outputs}" in runs[order[3]] and "--wait" in runs[order[3]]
    assert f"--outputs {outputs}" in runs[order[4]], "the proof after verify, on the nodes the roll left"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["env"]["TF_CLI_ARGS_apply"] == "-lock-timeout=20m", "a deploy waits for a plan's lock"


def test_destroy_is_manual_for_ephemeral_environments_only_and_typed_twice(workflow):
    destroy = workflow["jobs"]["destroy"]
    assert destroy["if"] == (
        "github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main' && inputs.confirm == inputs.destroy"
    )
    assert _triggers(workflow)["workflow_dispatch"]["inputs"]["destroy"]["options"] == ["dev"], "prod is never destroyed from here"
    assert any("cdktf destroy ${{ inputs.destroy }}" in run for run in _runs(destroy))


def test_aws_access_is_oidc_and_every_action_is_pinned(workflow):
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    text = WORKFLOW.read_text() + DEPLOY.read_text() + ACTION.read_text()
    assert "aws-access-key-id" not in text and "secrets." not in text
    for action in re.findall(r"uses: (\S+)", text):
        assert action.startswith("./") or re.search(r"@v\d+$", action), f"unpinned action {action}"


def test_every_script_the_pipeline_runs_exists():
    text = WORKFLOW.read_text() + DEPLOY.read_text()
    for script in set(re.findall(r"scripts/[a-z_]+\.py", text)):
        assert (ROOT / script).exists(), script
    assert "make test" in text and ACTION.exists()
