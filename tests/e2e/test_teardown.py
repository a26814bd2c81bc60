"""`cdktf destroy local`, last: refused while a protective setting is on (nothing deleted), then, once
the settings lift the protections and a deploy applies that, complete."""

from __future__ import annotations

import json
import subprocess

import pytest

from apim_active_active import names
from tests.e2e.conftest import (
    DEPLOY_SECONDS,
    RSYNC_PREFIX,
    STACK,
    cdktf,
    client,
    destroy,
    destroy_rsync_deployment,
    write_local_settings,
)

pytestmark = pytest.mark.e2e


def _refresh(deployment) -> None:
    """Bring the state in line with the emulator first (the verify faults deleted a mount target)."""
    result = subprocess.run(
        ["terraform", "apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"],
        cwd=deployment["outdir"] / "stacks" / STACK,
        env=deployment["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def _state_resources(deployment) -> list[str]:
    state = json.loads((deployment["work"] / "state" / f"{STACK}.tfstate").read_text())
    return sorted(f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed")


def test_the_rsync_deployment_is_destroyed_completely(rsync_deployment, rsync_emulator):
    """Started in the background by test_rsync_mode.py."""
    result, seconds = destroy_rsync_deployment(rsync_deployment).result(timeout=2 * DEPLOY_SECONDS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"\n[timing] cdktf destroy {STACK} (rsync, beside other tests): {seconds:.1f}s")
    parameters = client("ssm", rsync_emulator).describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"/{RSYNC_PREFIX}/"]}]
    )["Parameters"]
    assert parameters == []
    ec2 = client("ec2", rsync_emulator)
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
    instances = ec2.describe_instances()["Reservations"]
    assert {i["State"]["Name"] for r in instances for i in r["Instances"]} == {"terminated"}
    assert client("rds", rsync_emulator).describe_db_instances()["DBInstances"] == []
    assert client("efs", rsync_emulator).describe_file_systems()["FileSystems"] == []


def test_destroy_of_a_protected_environment_is_refused_and_deletes_nothing(deployment, emulator):
    _refresh(deployment)
    before = _state_resources(deployment)
    assert "terraform_data.destroy_guard" in " ".join(before)
    result, seconds = cdktf(["destroy", STACK, *deployment["common"]], deployment["env"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # Only the share: local's backup vault has no selections, so it never holds a point to protect.
    assert "set shared_fs.retain_on_destroy = false in environments/local.toml" in output, output[-3000:]
    assert "refused" in output and "Nothing was deleted" in output
    assert _state_resources(deployment) == before, "a refused destroy deleted something"
    outputs, ec2 = deployment["outputs"], client("ec2", emulator)
    reservations = ec2.describe_instances(InstanceIds=outputs[names.OUTPUT_INSTANCE_IDS])["Reservations"]
    assert {i["State"]["Name"] for r in reservations for i in r["Instances"]} <= {"running", "stopped"}
    assert client("efs", emulator).describe_file_systems(FileSystemId=outputs[names.OUTPUT_EFS_ID])["FileSystems"]
    print(f"\n[timing] refused cdktf destroy {STACK}: {seconds:.1f}s")


def test_destroy_leaves_nothing_of_the_stack_once_unprotected(deployment, emulator, environments):
    outputs = deployment["outputs"]
    write_local_settings(deployment["environments"], protected=False)
    # The protections lifted with the nodes held (TF_VAR_roll): they are about to go, rolling them first would be waste.
    lifted, _ = cdktf(["deploy", STACK, *deployment["common"]], {**deployment["env"], "TF_VAR_roll": "true"})
    assert lifted.returncode == 0, lifted.stdout[-3000:] + lifted.stderr[-3000:]
    ec2, efs = client("ec2", emulator), client("efs", emulator)
    in_group = [{"Name": "tag:aws:autoscaling:groupName", "Values": [outputs[names.OUTPUT_GATEWAY_GROUP]]}]
    gateways = [i["InstanceId"] for r in ec2.describe_instances(Filters=in_group)["Reservations"] for i in r["Instances"]]
    assert gateways, "the gateway group's nodes, the ones its instance refreshes replaced included"
    result, seconds = destroy(STACK, deployment["common"], deployment["env"])
    deployment["destroyed"] = result.returncode == 0
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"\n[timing] cdktf destroy {STACK}: {seconds:.1f}s")
    instance_ids = outputs[names.OUTPUT_INSTANCE_IDS] + deployment.get("replaced_instance_ids", []) + gateways
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    assert {i["State"]["Name"] for r in reservations for i in r["Instances"]} == {"terminated"}
    # moto keeps a terminated instance's primary interface (AWS deletes it with the instance): allow only that.
    for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        attachment = eni.get("Attachment", {})
        assert attachment.get("InstanceId") in instance_ids and attachment.get("DeviceIndex") == 0, eni
    assert efs.describe_file_systems()["FileSystems"] == []
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"], "only the emulator's default VPC group may remain"
    assert outputs[names.OUTPUT_VPC_ID] not in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert client("rds", emulator).describe_db_instances()["DBInstances"] == []
    assert client("autoscaling", emulator).describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    left = [s["Name"] for s in client("secretsmanager", emulator).list_secrets()["SecretList"]]
    # The keystore local brings is the operator's (scripts/local_account.py puts it): the stack never owned it.
    keystore = environments["local"].keystore
    brought = keystore.secret_arn.split(":secret:", 1)[1] if keystore.secret_arn else None
    assert not [name for name in left if name.startswith("apim-local/") and name != brought], left
    assert client("backup", emulator).list_backup_vaults()["BackupVaultList"] == []
    assert client("logs", emulator).describe_log_groups(logGroupNamePrefix="/apim-local/")["logGroups"] == []
    assert client("cloudwatch", emulator).describe_alarms(AlarmNamePrefix="apim-local-")["MetricAlarms"] == []
