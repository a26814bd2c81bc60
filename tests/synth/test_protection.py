"""Remote state per environment, and the destroy guard: synthesized, then run for real with Terraform."""

from __future__ import annotations

import json
import subprocess

import pytest

from apim_active_active.protection import protections_on
from tests.conftest import tool_env
from tests.helpers import ENVS, only, resources


@pytest.mark.parametrize("env", ENVS)
def test_state_is_local_for_the_emulator_and_s3_with_a_lock_elsewhere(stacks, environments, env):
    backend, settings = stacks[env]["terraform"]["backend"], environments[env]
    if settings.state is None:
        assert list(backend) == ["local"] and backend["local"]["path"].endswith(f"/{env}.tfstate")
        return
    assert backend == {
        "s3": {
            "bucket": settings.state.bucket,
            "key": f"wso2-apim-active-active/{env}.tfstate",
            "region": settings.state.region,
            "dynamodb_table": settings.state.lock_table,
            "encrypt": True,
        }
    }


@pytest.mark.parametrize("env", ENVS)
def test_the_guard_depends_on_every_resource_and_names_each_protection(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    name, guard = only(stack, "terraform_data")
    managed = {f"{kind}.{key}" for kind, items in stack["resource"].items() for key in items} - {f"terraform_data.{name}"}
    assert set(guard["depends_on"]) == managed
    refusal = guard["input"]["refusal"]
    on = protections_on(settings)
    assert bool(refusal) is bool(on)
    for setting in on:
        assert f"{setting} = false" in refusal and f"environments/{env}.toml" in refusal
    (provisioner,) = guard["provisioner"]
    assert provisioner["local-exec"]["when"] == "destroy"
    for instance in resources(stack, "aws_instance").values():
        assert instance["disable_api_termination"] is settings.node.termination_protection


def test_prod_is_protected_and_dev_and_local_are_destroyable(environments):
    assert protections_on(environments["prod"]) == [
        "database.deletion_protection",
        "node.termination_protection",
        "shared_fs.retain_on_destroy",
        "load_balancer.deletion_protection",
        "backup.retain_on_destroy",
    ]
    assert protections_on(environments["dev"]) == protections_on(environments["local"]) == []
    assert "database.deletion_protection" not in protections_on(environments["legacy32"]), "its database is not ours"


def _terraform(folder, *args: str) -> subprocess.CompletedProcess:
    flags = [] if args[0] == "state" else ["-input=false", "-no-color"]
    return subprocess.run(["terraform", *args, *flags], cwd=folder, env=tool_env(), capture_output=True, text=True, timeout=120)


def test_the_guard_stops_a_real_destroy_before_anything_is_deleted(stacks, tmp_path):
    """prod's guard, exactly as synthesized, in front of a stand-in resource: Terraform itself runs it."""
    name, guard = only(stacks["prod"], "terraform_data")
    guard = {key: value for key, value in guard.items() if key != "//"} | {"depends_on": ["terraform_data.protected"]}
    config = {"resource": {"terraform_data": {"protected": {"input": "shared artifacts"}, name: guard}}}
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    assert _terraform(tmp_path, "init").returncode == 0
    assert _terraform(tmp_path, "apply", "-auto-approve").returncode == 0
    refused = _terraform(tmp_path, "destroy", "-auto-approve")
    assert refused.returncode != 0
    assert "cdktf destroy prod refused" in refused.stderr and "load_balancer.deletion_protection = false" in refused.stderr
    listed = _terraform(tmp_path, "state", "list").stdout.split()
    assert "terraform_data.protected" in listed, "the refused destroy deleted what it guards"
    # Lifting the protections (a deploy with the settings off) empties the refusal in place; then destroy runs.
    config["resource"]["terraform_data"][name]["input"]["refusal"] = ""
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    assert _terraform(tmp_path, "apply", "-auto-approve").returncode == 0
    done = _terraform(tmp_path, "destroy", "-auto-approve")
    assert done.returncode == 0, done.stderr
    assert _terraform(tmp_path, "state", "list").stdout.split() == []
