"""scripts/status.py against the shared deployment on the emulator: the pair at a glance, and each thing that is
not as it should be named (before the tests that stop a node or delete a mount target: tests/conftest.py's order)."""

from __future__ import annotations

import json
import time

import pytest

from apim_active_active import names, observability
from scripts.local_stack import client
from tests.helpers import run_script

PREFIX = "apim-local"
BOOT_GROUP = observability.log_group_name(PREFIX, "node/boot")


def status(deployment: dict) -> tuple[int, dict]:
    result, _ = run_script("status.py", "local", "--outputs", str(deployment["outputs_file"]), "--json", env=deployment["env"])
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def rows(report: dict, part: str) -> dict[str, dict]:
    return {row["what"]: row for row in report["rows"] if row["part"] == part}


@pytest.fixture()
def boot_logs(deployment, emulator):
    """The boot log's lines as the CloudWatch agent ships them (a STAND-IN for the agent: the emulator's nodes boot
    nothing), one stream per instance; the streams are removed afterwards."""
    logs, ids = client("logs", emulator), deployment["outputs"][names.OUTPUT_INSTANCE_IDS]
    now = int(time.time() * 1000)
    lines = {
        ids[0]: ["wso2am-boot: installing the product", observability.BOOT_DONE],
        ids[1]: [observability.BOOT_DONE, f"wso2am-boot: {observability.BOOT_FAILED}: install_config exited 1"],
    }
    for instance_id, messages in lines.items():
        logs.create_log_stream(logGroupName=BOOT_GROUP, logStreamName=instance_id)
        events = [{"timestamp": now + index * 1000, "message": message} for index, message in enumerate(messages)]
        logs.put_log_events(logGroupName=BOOT_GROUP, logStreamName=instance_id, logEvents=events)
    yield ids
    for instance_id in ids:
        logs.delete_log_stream(logGroupName=BOOT_GROUP, logStreamName=instance_id)


def test_status_shows_both_nodes_targets_database_and_share(deployment):
    code, report = status(deployment)
    ids = deployment["outputs"][names.OUTPUT_INSTANCE_IDS]
    for number, instance_id in enumerate(ids, 1):
        node = rows(report, f"node {number}")
        assert node[instance_id]["state"] == "running" and node[instance_id]["ok"], node
        assert node["update level"]["state"] == "GA"
        # Nothing shipped on the emulator: the boot's result is not known, and says where it looked.
        assert node["last boot"]["ok"] is False and "boot log" in node["last boot"]["detail"]
    targets = rows(report, "target group")
    assert len(targets) == 2 * len(deployment["outputs"][names.OUTPUT_TARGET_GROUPS])
    assert all(row["state"] == "healthy" for row in targets.values()), targets
    assert rows(report, "alarms") == {
        f"{PREFIX}-*": {"part": "alarms", "what": f"{PREFIX}-*", "state": "none in ALARM", "detail": "", "ok": True}
    }
    (database,) = rows(report, "database").values()
    assert database["what"] == f"{PREFIX}-db" and database["state"] == "available" and database["ok"]
    (share,) = rows(report, "share").values()
    assert share["what"] == deployment["outputs"][names.OUTPUT_EFS_ID] and share["ok"], share
    group = rows(report, "gateway group")
    name = deployment["outputs"][names.OUTPUT_GATEWAY_GROUP]
    assert group[name]["ok"] and group[name]["detail"].startswith("min 1, max 2, 1 InService; launch template lt-"), group
    assert all(group[hook]["state"] == "present" and group[hook]["ok"] for hook in ("launch hook", "termination hook")), group
    assert (group["scaling activity"]["state"], group["scaling activity"]["ok"]) == ("none failed", True)  # moto lists none
    # None yet (the emulator's stand-in refresh: scripts/emulator_server.py).
    assert (group["instance refresh"]["state"], group["instance refresh"]["ok"]) == ("none", True)
    (gateway,) = rows(report, "gateway node").values()
    assert gateway["state"] == "InService" and gateway["ok"], gateway
    assert gateway["detail"].endswith("Healthy, launch template version 1; gateway healthy, websocket healthy"), gateway
    assert code == 1 and report["healthy"] is False  # only the unknown boots


def test_status_reads_each_nodes_last_boot_from_the_boot_log(deployment, boot_logs):
    _, report = status(deployment)
    done, failed = rows(report, "node 1")["last boot"], rows(report, "node 2")["last boot"]
    assert done["ok"] and done["detail"].startswith("done at "), done
    assert not failed["ok"] and failed["detail"].startswith("FAILED at ") and "install_config exited 1" in failed["detail"]


def test_status_names_an_alarm_in_alarm(deployment, emulator):
    cloudwatch = client("cloudwatch", emulator)
    alarm = cloudwatch.describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"][0]["AlarmName"]
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="a test put it there")
    try:
        code, report = status(deployment)
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="a test put it back")
    assert code == 1
    assert rows(report, "alarm")[alarm] == {"part": "alarm", "what": alarm, "state": "ALARM", "detail": "a test put it there", "ok": False}
