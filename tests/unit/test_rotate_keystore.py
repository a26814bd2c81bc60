"""scripts/rotate_keystore.py's order with a stand-in node shell (the phase script's answers, a secret's state kept
here): stage, roll (node 1 rekeyed and gated before node 2 is touched), switch, roll; node 2 never touched while node 1
fails its gate; every step a secret shows done skipped, a node already on the secret not restarted; finish refused
before the grace period's end and on a staged secret; the gateway group rolled after the pair; the settings it refuses;
the gateway group's instance refresh (a stand-in of AWS's clients)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from scripts.on_node import Outcome
from scripts.rotate_keystore import (
    FINISH,
    STAGE,
    STATUS,
    SWITCH,
    Bounds,
    GatewayGroupRefresh,
    RekeyNode,
    Rotation,
    StepFailed,
    main,
    refusal,
)

FAST = Bounds(step_seconds=5, gate_seconds=0.05, poll_seconds=0, streak=2, refresh_seconds=0.05)
CERT = {"alias": "wso2carbon", "sha256": "ab" * 32, "not_before": "Jan 1 00:00:00 2026 GMT", "not_after": "Jan 1 00:00:00 2036 GMT"}


@dataclass
class FakeNodes:
    """The nodes as the phase script and the gate answer them: the secret's state, which nodes run it, which fail."""

    state: str = "base"
    current: set[int] = field(default_factory=set)  # nodes running the secret as it stands
    failing_gate: set[int] = field(default_factory=set)
    refuse_finish: bool = False
    calls: list[tuple[int, str]] = field(default_factory=list)

    def run(self, node: int, script: str, seconds: float) -> Outcome:
        if script.endswith(" gate"):
            self.calls.append((node, "gate"))
            failed = node in self.failing_gate
            return Outcome(
                "Failed" if failed else "Success", 1 if failed else 0, "", "wso2am-boot: gate: FAILED: 8243 refused" if failed else ""
            )
        phase = re.search(r'^bash "\$script" (\w+) ', script, re.M).group(1)
        self.calls.append((node, phase))
        return self.answer(node, phase)

    def answer(self, node: int, phase: str) -> Outcome:
        said: dict = {"ok": True, "phase": phase}
        if phase == STATUS:
            secret = {"signing": CERT, "api_key_alias": "gateway_certificate_alias", "trusted": {}, "grace_until": None}
            said |= {
                "state": self.state,
                "source": "generated",
                "node": {"current": node in self.current, "active": True},
                "secret": secret,
            }
        elif phase == STAGE:
            said |= {"done": self.state == "base", "alias": "signing-1", "next": CERT}
            self.state, self.current = ("staged", set()) if self.state == "base" else (self.state, self.current)
        elif phase == SWITCH:
            said |= {"done": self.state == "staged", "switched": {"api_key_alias": "signing-1", "grace_until": "2030-01-01T00:00:00Z"}}
            self.state, self.current = ("switched", set()) if self.state == "staged" else (self.state, self.current)
        elif phase == FINISH and self.refuse_finish:
            said = {"ok": False, "saw": "the grace period runs until 2030-01-01T00:00:00Z: ..."}
        elif phase == FINISH:
            said |= {"done": self.state == "switched", "finished": {"removed": ["gateway_certificate_alias"]}}
            self.state, self.current = ("base", set()) if self.state == "switched" else (self.state, self.current)
        elif phase == "rekey":
            self.current.add(node)
            said |= {"api_key_alias": "signing-1"}
        return Outcome("Success" if said["ok"] else "Failed", 0 if said["ok"] else 1, json.dumps(said) + "\n", "")


def roll(node: int) -> list[tuple[int, str]]:
    return [(node, STATUS), (node, "rekey"), (node, "gate"), (node, "gate")]


def test_a_rotation_stages_rolls_switches_and_rolls_node_1_first():
    nodes = FakeNodes()
    results = Rotation(nodes, FAST, 30, say=lambda _: None).rotate()
    assert [r.status for r in results] == ["pass"] * len(results), results
    assert [r.check for r in results] == [
        STATUS,
        STAGE,
        "roll after stage: node 1",
        "roll after stage: node 2",
        SWITCH,
        "roll after switch: node 1",
        "roll after switch: node 2",
    ]
    ready = [(1, STATUS), (2, STATUS)]
    assert nodes.calls == [*ready, (1, STAGE), *roll(1), *roll(2), (1, SWITCH), *roll(1), *roll(2), (1, STATUS)]


def test_node_2_is_never_touched_while_node_1_fails_its_gate():
    nodes = FakeNodes(failing_gate={1})
    results = Rotation(nodes, FAST, 30, say=lambda _: None).rotate()
    assert results[-1].status == "fail" and results[-1].check == "roll after stage: node 1"
    assert "node 1 failed its gate" in results[-1].detail and "8243 refused" in results[-1].detail
    after_stage = nodes.calls[nodes.calls.index((1, STAGE)) :]
    assert [call for call in after_stage if call[0] == 2] == []
    assert (1, SWITCH) not in nodes.calls and nodes.state == "staged"


def test_a_run_again_skips_what_the_secret_shows_done_and_restarts_no_node_already_on_it():
    nodes = FakeNodes(state="switched", current={1, 2})
    results = Rotation(nodes, FAST, 30, say=lambda _: None).rotate()
    assert all(r.status == "pass" for r in results)
    assert {r.check: r.detail for r in results}[STAGE].startswith("already done")
    assert {r.check: r.detail for r in results}[SWITCH].startswith("already done")
    assert not [call for call in nodes.calls if call[1] in (STAGE, SWITCH, "rekey")]


def test_a_rotation_stopped_after_the_stage_resumes_with_the_roll():
    nodes = FakeNodes(state="staged", current={1})  # node 1 rolled, node 2 not yet
    results = Rotation(nodes, FAST, 30, say=lambda _: None).rotate()
    assert all(r.status == "pass" for r in results)
    assert (1, STAGE) not in nodes.calls
    first_roll = nodes.calls[2 : nodes.calls.index((1, SWITCH))]
    assert first_roll == [(1, STATUS), (1, "gate"), (1, "gate"), *roll(2)]


def test_finish_is_refused_on_a_staged_secret_and_before_the_grace_periods_end():
    nodes = FakeNodes(state="staged")
    results = Rotation(nodes, FAST, 30, say=lambda _: None).finish(force=False)
    assert (results[-1].check, results[-1].status) == (FINISH, "fail") and "run without --finish first" in results[-1].detail
    assert (1, FINISH) not in nodes.calls
    nodes = FakeNodes(state="switched", refuse_finish=True)
    results = Rotation(nodes, FAST, 30, say=lambda _: None).finish(force=False)
    assert (results[-1].check, results[-1].status) == (FINISH, "fail") and "grace period runs until" in results[-1].detail
    assert "rekey" not in [phase for _, phase in nodes.calls]


def test_finish_forced_removes_the_old_key_and_rolls():
    nodes = FakeNodes(state="switched", current={1, 2})
    results = Rotation(nodes, FAST, 30, say=lambda _: None).finish(force=True)
    assert all(r.status == "pass" for r in results) and nodes.state == "base"
    assert nodes.calls[2:] == [(1, FINISH), *roll(1), *roll(2)]


def test_the_gateway_nodes_roll_after_the_pair():
    nodes = FakeNodes()
    rotation = Rotation(nodes, FAST, 30, say=lambda _: None)
    rotation.gateways = RekeyNode(rotation, 3)
    results = rotation.rotate()
    assert [r.check for r in results if "gateway" in r.check] == ["roll after stage: gateway group", "roll after switch: gateway group"]
    stage_roll = nodes.calls[nodes.calls.index((1, STAGE)) + 1 : nodes.calls.index((1, SWITCH))]
    assert stage_roll == [*roll(1), *roll(2), *roll(3)]


# What it refuses --------------------------------------------------------------------------------------------------------
def test_it_refuses_what_it_cannot_rotate(environments, examples):
    assert "rehearsal" in refusal(environments["local"], True, False)
    assert "restored environment" in refusal(examples["restored"], True, False)
    dev = environments["dev"]  # 4.3
    assert "--accept-internal-key-change" in refusal(dev, False, False)
    assert refusal(dev, True, False) == "" and refusal(dev, False, True) == ""  # finishing: the switch was accepted
    assert refusal(examples["apim-4-7"], False, False) == ""  # 4.7's internal key is the pair's [encryption] key


def test_main_exits_2_on_what_it_refuses(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    assert main(["local", "--outputs", str(outputs)]) == 2
    assert "rehearsal" in capsys.readouterr().err


# The gateway group's instance refresh -----------------------------------------------------------------------------------
class FakeAws:
    def __init__(self, launched: list[datetime], refresh_states: list[str], changed: datetime) -> None:
        self.launched, self.states, self.changed = launched, refresh_states, changed
        self.started: list[dict] = []

    def client(self, service: str):
        return self

    def describe_secret(self, SecretId):  # noqa: N803 (boto3's names)
        return {"LastChangedDate": self.changed}

    def describe_instance_refreshes(self, AutoScalingGroupName, InstanceRefreshIds=None, MaxRecords=None):  # noqa: N803
        if InstanceRefreshIds is None:
            return {"InstanceRefreshes": []}
        return {
            "InstanceRefreshes": [{"InstanceRefreshId": "r-1", "Status": self.states.pop(0) if len(self.states) > 1 else self.states[0]}]
        }

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):  # noqa: N803
        instances = [
            {"InstanceId": f"i-{n}", "LifecycleState": "InService", "AvailabilityZone": "us-east-1a"} for n in range(len(self.launched))
        ]
        group = {"MinSize": 1, "MaxSize": 2, "DesiredCapacity": 1, "Instances": instances, "LaunchTemplate": {}}
        return {"AutoScalingGroups": [group]}

    def describe_lifecycle_hooks(self, AutoScalingGroupName):  # noqa: N803
        return {"LifecycleHooks": []}

    def describe_instances(self, InstanceIds):  # noqa: N803
        return {"Reservations": [{"Instances": [{"InstanceId": f"i-{n}", "LaunchTime": t} for n, t in enumerate(self.launched)]}]}

    def start_instance_refresh(self, **asked):
        self.started.append(asked)
        return {"InstanceRefreshId": "r-1"}


NOW = datetime(2026, 1, 1, tzinfo=UTC)
OUTPUTS = {"gateway_group_name": "apim-local-gateways"}


def test_the_gateway_group_is_refreshed_when_a_node_launched_before_the_secrets_last_change(environments):
    aws = FakeAws([NOW - timedelta(hours=1), NOW + timedelta(minutes=5)], ["InProgress", "InProgress", "Successful"], NOW)
    said = GatewayGroupRefresh(aws, environments["local"], OUTPUTS, FAST, sleep=lambda _: None).roll("roll")
    assert "r-1 replaced 1 node(s)" in said
    (asked,) = aws.started
    gateway = environments["local"].gateway_scale_out
    assert asked["AutoScalingGroupName"] == "apim-local-gateways" and asked["Strategy"] == "Rolling"
    assert asked["Preferences"]["MinHealthyPercentage"] == gateway.refresh_min_healthy_percent


def test_a_gateway_group_launched_after_the_change_is_left_alone(environments):
    aws = FakeAws([NOW + timedelta(minutes=5)], ["Successful"], NOW)
    said = GatewayGroupRefresh(aws, environments["local"], OUTPUTS, FAST, sleep=lambda _: None).roll("roll")
    assert "nothing to refresh" in said and aws.started == []


@pytest.mark.parametrize(
    ("states", "saw"),
    [(["Failed"], "r-1 of apim-local-gateways: Failed$"), (["InProgress"], "r-1 of apim-local-gateways still InProgress after")],
)
def test_a_refresh_that_fails_or_does_not_end_stops_the_rotation(environments, states, saw):
    aws = FakeAws([NOW - timedelta(hours=1)], states, NOW)
    with pytest.raises(StepFailed, match=saw):
        GatewayGroupRefresh(aws, environments["local"], OUTPUTS, FAST, sleep=lambda _: None).roll("roll")
