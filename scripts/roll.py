#!/usr/bin/env python3
"""Deploy and roll the nodes: apply the settings with both nodes held, then replace each node that runs something else
than the settings give (user data, AMI, instance type), one at a time, node 1 first. (A first deploy creates both, then
gates them in turn.)

  scripts/roll.py <environment> [--check] [--json] [--outdir cdktf.out] [--outputs-file FILE]

A node is drained from every target group (the load balancer's deregistration delay) and replaced, and must pass its
gate before the other node is touched: running with status checks ok, in service in every target group, and (unless
roll.node_checks is off, the emulator only) the boot step's own `gate` on the node through Session Manager (API-M's
management and gateway answers, the peer ports, the share) -- twice in a row. Every node is gated in turn, replaced or
not, so a roll that stopped resumes where it stopped when run again. A node is never drained while the other is not in
service. `cdktf deploy` never replaces a node: it refuses at plan, naming this command.

--check reports only: what each node runs against what the settings give, and the update level it runs.
Exits 0 when done (or, with --check, when nothing differs), 1 when a node failed its gate, a command failed, or (with
--check) a node differs; 2 on bad settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.exceptions import ClientError  # noqa: E402

from apim_active_active import names  # noqa: E402
from apim_active_active.renderers.node_layout import BOOT_SCRIPT  # noqa: E402
from apim_active_active.settings import Settings  # noqa: E402
from scripts import commands, on_node  # noqa: E402
from scripts.node_drift import Drift, Wanted, compare, running_node, wanted_from_outputs  # noqa: E402
from scripts.ops import ROOT, Aws, environment_parser, load_environment  # noqa: E402

TERRAFORM_SECONDS = 3600
SYNTH_SECONDS = 300
DRAIN_MARGIN_SECONDS = 60
STREAK = 3  # gate passes in a row (a poll apart: 30 s on AWS) before the next node is touched
COMMAND_SECONDS = 120  # one Session Manager command


class RollFailed(Exception):
    pass


@dataclass
class Event:
    at: str
    node: int
    event: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Terraform:
    """The synthesized stack's folder, driven with terraform itself (cdktf deploy would apply everything at once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return commands.run(["terraform", *args], cwd=self.folder, text=True, timeout=TERRAFORM_SECONDS)

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    PLAN = "roll.tfplan"

    def plan(self, *options: str) -> dict:
        """A plan with the nodes held (and these options), saved for apply_plan(); as JSON (prior state, resource
        changes, planned outputs)."""
        self.run("plan", "-input=false", "-no-color", "-var", f"{names.ROLL_VARIABLE}=true", *options, f"-out={self.PLAN}")
        return json.loads(self.run("show", "-json", self.PLAN).stdout)

    def apply_plan(self) -> None:
        """The plan last made, exactly: nothing it did not show."""
        self.run("apply", "-input=false", "-no-color", self.PLAN)

    def forget(self, addresses: list[str]) -> None:
        if addresses:
            self.run("state", "rm", *addresses)

    def outputs(self, sensitive: bool = True) -> dict:
        every = json.loads(self.run("output", "-json").stdout)
        return {name: value["value"] for name, value in every.items() if sensitive or not value.get("sensitive")}


# What a roll never takes down with a plan of its own: the nodes (but the one it replaces) and what both depend on.
SHARED = ("aws_efs_file_system", "aws_efs_mount_target", "aws_lb", "aws_lb_target_group", "aws_lb_listener", "aws_db_instance")


def deletions(plan: dict, allowed: tuple[str, ...] = ()) -> list[str]:
    """What the plan would delete (or replace) among the nodes and what both depend on, but the allowed addresses."""
    return [
        change["address"]
        for change in plan.get("resource_changes", [])
        if "delete" in change["change"]["actions"] and change["type"] in ("aws_instance", *SHARED) and change["address"] not in allowed
    ]


def synthesize(outdir: Path) -> None:
    commands.run(
        [sys.executable, str(ROOT / "main.py")], cwd=ROOT, text=True, timeout=SYNTH_SECONDS, env={**os.environ, "CDKTF_OUTDIR": str(outdir)}
    )


def node_addresses(stack: dict, settings: Settings) -> list[tuple[str, list[str]]]:
    """Each node's aws_instance address and its target-group attachments' addresses, node 1 first."""
    instances = stack["resource"]["aws_instance"]
    nodes = []
    for number in (1, 2):
        (key,) = [k for k, i in instances.items() if i["tags"]["Name"] == f"{settings.name_prefix}-node-{number}"]
        reference = f"${{aws_instance.{key}.id}}"
        attachments = [
            f"aws_lb_target_group_attachment.{k}"
            for k, a in stack["resource"].get("aws_lb_target_group_attachment", {}).items()
            if a["target_id"] == reference
        ]
        nodes.append((f"aws_instance.{key}", attachments))
    return nodes


def prior_ids(plan: dict, addresses: list[str]) -> list[str | None]:
    resources = plan.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources", [])
    ids = {r["address"]: r["values"]["id"] for r in resources}
    return [ids.get(address) for address in addresses]


def planned_wanted(plan: dict) -> list[Wanted] | None:
    """What the settings give each node, when the plan knows it already (it does unless a node's user data refers to
    something not yet created)."""
    outputs = {k: v["value"] for k, v in plan.get("planned_values", {}).get("outputs", {}).items() if "value" in v}
    needed = (names.OUTPUT_NODE_USER_DATA, names.OUTPUT_NODE_AMIS, names.OUTPUT_NODE_INSTANCE_TYPE)
    return wanted_from_outputs(outputs) if all(n in outputs for n in needed) else None


class Roll:
    def __init__(self, settings: Settings, environment: str, outdir: Path, say=print) -> None:
        self.settings, self.environment, self.say = settings, environment, say
        self.aws = Aws(settings)
        self.ec2, self.elb = self.aws.client("ec2"), self.aws.client("elbv2")
        self.terraform = Terraform(outdir / "stacks" / environment)
        self.outdir = outdir
        self.events: list[Event] = []
        self.poll = 2 if settings.emulator else 30

    def note(self, node: int, event: str) -> None:
        self.events.append(Event(now(), node, event))
        self.say(f"{self.events[-1].at}  node {node or '-'}  {event}")

    # what runs, what should ---------------------------------------------------------------------------------------
    def prepare(self) -> tuple[dict, list[tuple[str, list[str]]], list[str]]:
        synthesize(self.outdir)
        stack = json.loads((self.terraform.folder / "cdk.tf.json").read_text())
        self.terraform.init()
        plan = self.terraform.plan()
        nodes = node_addresses(stack, self.settings)
        if taken := deletions(plan):
            # Not a roll: a change that replaces a node's other attributes (both at once) or what both depend on.
            raise RollFailed(
                "the settings' plan would replace or delete " + ", ".join(taken) + ": that takes both nodes out at once and "
                "is not something a roll does; read `cdktf diff` and apply it deliberately in a maintenance window"
            )
        return plan, nodes, prior_ids(plan, [address for address, _ in nodes])

    def drift(self, ids: list[str], wanted: list[Wanted]) -> list[Drift]:
        return [compare(n + 1, running_node(self.ec2, i), wanted[n]) for n, i in enumerate(ids)]

    # the gate ------------------------------------------------------------------------------------------------------
    def gate_problems(self, number: int, instance_id: str, outputs: dict) -> list[str]:
        statuses = self.ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
        status = (statuses["InstanceStatuses"] or [{}])[0]
        state = status.get("InstanceState", {}).get("Name", "missing")
        checks = (status.get("InstanceStatus", {}).get("Status"), status.get("SystemStatus", {}).get("Status"))
        if state != "running" or checks != ("ok", "ok"):
            return [f"instance {instance_id} {state}, status checks {checks[0]}/{checks[1]}"]
        problems = []
        for route, arn in outputs[names.OUTPUT_TARGET_GROUPS].items():
            health = self.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            states = [h["TargetHealth"]["State"] for h in health if h["Target"]["Id"] == instance_id]
            if states != ["healthy"]:
                problems.append(f"{route} target group: {states[0] if states else 'not registered'}")
        if not problems and self.settings.roll.node_checks:
            problems += self.on_node_checks(instance_id)
        return problems

    def on_node_checks(self, instance_id: str) -> list[str]:
        """The boot step's own `gate` on the node, through Session Manager (no port opened)."""
        ssm = self.aws.client("ssm")
        try:
            return self._on_node(ssm, instance_id)
        except ClientError as error:  # the agent not online yet, throttling: a problem the gate looks at again
            return [f"on the node: Session Manager: {error.response['Error'].get('Code', error)}"]

    def _on_node(self, ssm, instance_id: str) -> list[str]:
        outcome = on_node.run_on_instance(ssm, instance_id, f"{BOOT_SCRIPT} gate", COMMAND_SECONDS, self.poll)
        if outcome.succeeded:
            return []
        if outcome.status == "no answer":
            return [f"on the node: no answer from Session Manager within {COMMAND_SECONDS}s"]
        said = (outcome.stdout + outcome.stderr).strip()
        return [f"on the node: {outcome.status}: {said[-500:] or 'no output'}"]

    def gate(self, number: int, instance_id: str, outputs: dict) -> None:
        deadline, streak = time.monotonic() + self.settings.roll.gate_seconds, 0
        while True:
            problems = self.gate_problems(number, instance_id, outputs)
            streak = 0 if problems else streak + 1
            if streak >= STREAK:
                self.note(number, f"gate passed ({instance_id})")
                return
            if problems and time.monotonic() > deadline:
                raise RollFailed(f"node {number} failed its gate within {self.settings.roll.gate_seconds}s: " + "; ".join(problems))
            time.sleep(self.poll)

    # replacing one node ----------------------------------------------------------------------------------------------
    def drain(self, number: int, instance_id: str, outputs: dict) -> None:
        targets = {}
        for arn in outputs[names.OUTPUT_TARGET_GROUPS].values():
            health = self.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            targets[arn] = [h["Target"] for h in health if h["Target"]["Id"] == instance_id]
            if targets[arn]:
                self.elb.deregister_targets(TargetGroupArn=arn, Targets=targets[arn])
        self.note(number, f"draining from every target group ({instance_id})")
        deadline = time.monotonic() + self.settings.load_balancer.deregistration_delay_seconds + DRAIN_MARGIN_SECONDS
        while time.monotonic() < deadline:
            states = [
                h["TargetHealth"]["State"]
                for arn, wanted in targets.items()
                if wanted
                for h in self.elb.describe_target_health(TargetGroupArn=arn, Targets=wanted)["TargetHealthDescriptions"]
            ]
            if "draining" not in states:
                self.note(number, "drained")
                return
            time.sleep(self.poll)
        raise RollFailed(f"node {number} still draining after the deregistration delay and {DRAIN_MARGIN_SECONDS}s")

    def replace(self, number: int, address: str, attachments: list[str], instance_id: str, outputs: dict) -> str:
        other = 2 if number == 1 else 1
        other_id = outputs[names.OUTPUT_INSTANCE_IDS][other - 1]
        if problems := self.gate_problems(other, other_id, outputs):
            raise RollFailed(f"node {other} is not in service ({'; '.join(problems)}): replacing node {number} now would take both out")
        self.drain(number, instance_id, outputs)
        # Deregistered already: Terraform registers the new instance without deregistering the old one again.
        self.terraform.forget(attachments)
        plan = self.terraform.plan(f"-replace={address}")
        if taken := deletions(plan, allowed=(address,)):
            raise RollFailed(f"replacing node {number} would also replace or delete {', '.join(taken)}: not applied")
        self.note(number, f"replacing {address}")
        self.terraform.apply_plan()
        new_id = self.terraform.outputs()[names.OUTPUT_INSTANCE_IDS][number - 1]
        self.note(number, f"replaced: {instance_id} -> {new_id}")
        return new_id

    def run(self) -> list[Drift]:
        plan, nodes, prior = self.prepare()
        self.terraform.apply_plan()
        # A node missing from the state (the first deploy; a replacement whose launch failed after the old instance was
        # gone) is created by that apply, and gated below like the others.
        missing = [str(n + 1) for n, instance_id in enumerate(prior) if instance_id is None]
        self.note(0, "settings applied with both nodes held" + (f"; node {' and '.join(missing)} created" if missing else ""))
        outputs = self.terraform.outputs()
        ids = outputs[names.OUTPUT_INSTANCE_IDS]
        drifts = self.drift(ids, wanted_from_outputs(outputs))
        for drift, (address, attachments) in zip(drifts, nodes):
            instance_id = drift.instance_id
            if drift.drifted:
                self.note(drift.number, "differs: " + " | ".join(drift.differences))
                instance_id = self.replace(drift.number, address, attachments, instance_id, outputs)
                outputs = self.terraform.outputs()
            self.gate(drift.number, instance_id, outputs)
        return self.drift(outputs[names.OUTPUT_INSTANCE_IDS], wanted_from_outputs(outputs))

    def check(self) -> list[Drift] | None:
        plan, _, prior = self.prepare()
        if None in prior:
            raise RollFailed(f"{self.environment} has no nodes yet: nothing runs to compare")
        wanted = planned_wanted(plan)
        return None if wanted is None else self.drift([i for i in prior if i], wanted)

    def write_outputs(self, path: Path) -> None:
        """As `cdktf deploy --outputs-file` writes them (the sensitive ones left out), for verify."""
        path.write_text(json.dumps({self.environment: self.terraform.outputs(sensitive=False)}, indent=2))


def describe(drifts: list[Drift]) -> list[str]:
    return [
        f"node {d.number} ({d.instance_id}, update level {d.update_level}): "
        + (" | ".join(d.differences) if d.drifted else "runs what the settings give")
        for d in drifts
    ]


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    parser.add_argument("--check", action="store_true", help="report what differs; change nothing")
    parser.add_argument("--outdir", type=Path, default=ROOT / "cdktf.out", help="where to synthesize (cdktf's output)")
    parser.add_argument("--outputs-file", type=Path, help="write the stack's outputs there, as cdktf deploy does")
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    roll = Roll(settings, args.environment, args.outdir, say=(lambda _: None) if args.json else print)
    drifts, failure = None, ""
    try:
        drifts = roll.check() if args.check else roll.run()
        if args.outputs_file and not args.check:
            roll.write_outputs(args.outputs_file)
    except (RollFailed, commands.CommandFailed) as error:
        failure = str(error)
        if not args.json:
            print(f"roll stopped: {failure}", file=sys.stderr)
            print(f"the other node was left as it was; run scripts/roll.py {args.environment} again to resume", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "environment": args.environment,
                    "failed": failure,
                    "events": [asdict(e) for e in roll.events],
                    "nodes": [asdict(d) for d in drifts or []],
                },
                indent=2,
            )
        )
    elif drifts is not None:
        print("\n".join(describe(drifts)))
    elif args.check and not failure:
        print("what the nodes should run is only known once the plan's new resources exist")
    differs = bool(drifts) and any(d.drifted for d in drifts or [])
    return 1 if failure or differs else 0


if __name__ == "__main__":
    sys.exit(main())
