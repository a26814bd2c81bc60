"""Changes without downtime, against the emulator (the shared deployment, before the teardown): a deploy that would
replace the nodes refuses and names the roll; the roll's --check says what differs; a roll whose node 1 fails its
gate leaves node 2 as it was, and run again it resumes: node 2 is replaced only after node 1's gate passed (read from
the emulator's launch times and target health)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from apim_active_active import names
from tests.conftest import ROOT
from tests.e2e.conftest import STACK, cdktf, client
from tests.helpers import results_of, verify

pytestmark = pytest.mark.e2e
ROLL_SECONDS = 600
GATE_SECONDS = 10  # the roll's gate in this test (the local environment's is 120)


# The emulator's answer to a resent CreateMountTarget (docs/local-emulator.md): the first call made the mount target
# the verify tests deleted, outside the state; the roll's held apply then fails before touching a node.
EMULATOR_MOUNT_TARGET_RESENT = "MountTargetConflict: mount target already exists in this AZ"


def roll(deployment, *args: str) -> subprocess.CompletedProcess:
    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "roll.py"), STACK, "--outdir", str(deployment["outdir"]), "--json", *args],
            env=deployment["env"],
            capture_output=True,
            text=True,
            timeout=ROLL_SECONDS,
            cwd=ROOT,
        )

    result = run()
    if result.returncode != 0 and EMULATOR_MOUNT_TARGET_RESENT in result.stdout + result.stderr:
        print(f"[emulator] {EMULATOR_MOUNT_TARGET_RESENT}: deleting the mount target outside the state, then the roll once more")
        forget_orphan_mount_targets(deployment)
        result = run()
    return result


def forget_orphan_mount_targets(deployment) -> None:
    """Delete the mount targets of the stack's file system that the Terraform state does not hold."""
    state = json.loads((deployment["work"] / "state" / f"{STACK}.tfstate").read_text())
    held = {i["attributes"]["id"] for r in state["resources"] if r["type"] == "aws_efs_mount_target" for i in r["instances"]}
    efs = client("efs", deployment["env"]["AWS_ENDPOINT_URL"])
    for target in efs.describe_mount_targets(FileSystemId=deployment["outputs"][names.OUTPUT_EFS_ID])["MountTargets"]:
        if target["MountTargetId"] not in held:
            efs.delete_mount_target(MountTargetId=target["MountTargetId"])


def instances(emulator) -> dict[str, dict]:
    """Every instance of the pair ever launched, by id."""
    reservations = client("ec2", emulator).describe_instances()["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def node_of(instance: dict) -> str:
    return next(t["Value"] for t in instance.get("Tags", []) if t["Key"] == "Name")


def in_service(emulator, deployment, instance_id: str) -> bool:
    elb = client("elbv2", emulator)
    for arn in deployment["outputs"][names.OUTPUT_TARGET_GROUPS].values():
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        if [h["TargetHealth"]["State"] for h in health if h["Target"]["Id"] == instance_id] != ["healthy"]:
            return False
    return True


def change_user_data(deployment) -> None:
    """A setting every node's user data carries (node.env), and a short gate for this test."""
    path = deployment["environments"] / "local.toml"
    text = path.read_text().replace("[apim]\n", "[apim]\nfirst_start_wait_seconds = 600\n", 1)
    path.write_text(re.sub(r"gate_seconds = \d+", f"gate_seconds = {GATE_SECONDS}", text))


@pytest.fixture(scope="module", autouse=True)
def a_pair_in_service(deployment, emulator):
    """The pair as a roll starts from it: the node the verify tests stopped started again (the mount target they
    deleted is made again by the roll's held apply)."""
    stopped = [i for i in deployment["outputs"][names.OUTPUT_INSTANCE_IDS] if instances(emulator)[i]["State"]["Name"] == "stopped"]
    if stopped:
        client("ec2", emulator).start_instances(InstanceIds=stopped)


def test_a_deploy_that_would_replace_a_node_refuses_and_names_the_roll(deployment, emulator):
    before = {i for i, x in instances(emulator).items() if x["State"]["Name"] == "running"}
    change_user_data(deployment)
    result, _ = cdktf(["deploy", STACK, *deployment["common"]], deployment["env"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "scripts/roll.py local" in output and "never replaces or stops a node" in output, output[-3000:]
    assert {i for i, x in instances(emulator).items() if x["State"]["Name"] == "running"} == before


def test_the_rolls_check_says_what_differs_on_each_node(deployment):
    result = roll(deployment, "--check")
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr[-3000:]
    assert [n["number"] for n in report["nodes"]] == [1, 2]
    for node in report["nodes"]:
        assert node["update_level"] == "GA"
        assert node["differences"] == ["user data: /etc/wso2am/node.env: FIRST_START_WAIT_SECONDS '900' -> '600'"]


def test_a_failed_gate_leaves_node_2_as_it_was_and_a_second_run_resumes(deployment, emulator):
    ec2 = client("ec2", emulator)
    old_1, old_2 = deployment["outputs"][names.OUTPUT_INSTANCE_IDS]
    stopped: list[str] = []

    def stop_node_1s_replacement() -> None:
        """A fault: node 1's new instance stops once it is in service (as a node whose API-M dies would leave it)."""
        deadline = time.monotonic() + ROLL_SECONDS
        while time.monotonic() < deadline and not stopped:
            for instance_id, instance in instances(emulator).items():
                fresh = instance_id != old_1 and node_of(instance).endswith("-node-1")
                if fresh and instance["State"]["Name"] == "running" and in_service(emulator, deployment, instance_id):
                    ec2.stop_instances(InstanceIds=[instance_id])
                    stopped.append(instance_id)
            time.sleep(0.2)

    fault = threading.Thread(target=stop_node_1s_replacement, daemon=True)
    fault.start()
    failed = roll(deployment)
    fault.join(timeout=5)
    report = json.loads(failed.stdout)
    print(
        "\n[roll timeline, node 1's gate failing] "
        + " | ".join(f"{e['at'][11:23]} node {e['node']}: {e['event']}" for e in report["events"])
    )
    assert failed.returncode == 1 and stopped, report["failed"] or failed.stderr[-3000:]
    assert report["failed"].startswith("node 1 failed its gate"), report
    assert not any(e["node"] == 2 for e in report["events"]), "node 2 was touched"
    assert instances(emulator)[old_2]["State"]["Name"] == "running" and in_service(emulator, deployment, old_2)

    ec2.start_instances(InstanceIds=stopped)  # the fault mended: the same command resumes
    resumed = roll(deployment)
    report = json.loads(resumed.stdout)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = report["events"]
    assert not any("replacing" in e["event"] for e in events if e["node"] == 1), "node 1 already runs the settings"
    gate_1 = next(e for e in events if e["node"] == 1 and e["event"].startswith("gate passed"))
    (drained_2,) = [e for e in events if e["node"] == 2 and e["event"].startswith("draining")]
    new_1, new_2 = (n["instance_id"] for n in report["nodes"])
    assert new_1 == stopped[0] and new_2 != old_2 and not any(n["differences"] for n in report["nodes"])
    launched = instances(emulator)
    # The emulator gives launch times in whole seconds.
    assert launched[new_2]["LaunchTime"].timestamp() >= int(datetime.fromisoformat(gate_1["at"]).timestamp())
    assert gate_1["at"] < drained_2["at"]
    assert launched[old_1]["State"]["Name"] == launched[old_2]["State"]["Name"] == "terminated"
    assert in_service(emulator, deployment, new_1) and in_service(emulator, deployment, new_2)
    print("\n[roll timeline, resumed] " + " | ".join(f"{e['at'][11:23]} node {e['node']}: {e['event']}" for e in events))
    deployment["replaced_instance_ids"] = [old_1, old_2]
    deployment["outputs"][names.OUTPUT_INSTANCE_IDS] = [new_1, new_2]


def test_after_the_roll_a_deploy_changes_nothing_and_verify_sees_the_nodes_as_set(deployment):
    result, _ = cdktf(["deploy", STACK, *deployment["common"], "--outputs-file", str(deployment["outputs_file"])], deployment["env"])
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    checks = results_of(verify(deployment)[0])
    nodes = checks["each node runs what the settings give (user data, AMI, instance type)"]
    assert nodes["status"] == "pass" and nodes["detail"] == "node 1 update level GA; node 2 update level GA", nodes
