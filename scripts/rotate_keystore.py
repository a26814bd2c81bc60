#!/usr/bin/env python3
"""Rotate the pair's keystore (its signing key and certificate) with a grace period: tokens and API keys the old key
signed stay valid until they expire, the nodes rolled one at a time (docs/keystore.md, "Rotating").

  scripts/rotate_keystore.py <environment> --outputs <file> [--accept-internal-key-change] [--json]
  scripts/rotate_keystore.py <environment> --outputs <file> --finish [--force] [--json]

Without --finish, through the node shell (Session Manager; no port opened):
  stage                  on node 1: the new key into the pair's keystore secret beside the signing one ("next"), its
                         certificate trusted under a new alias; nothing signs with it yet
  roll after stage       each node in turn, node 1 first (`rekey`: keystore, truststore, deployment.toml, API-M restarted)
                         and gated (`wso2am-boot gate`, passes in a row) before the next is touched; every node's JWKS then
                         serves both keys and every truststore holds the new certificate; with a gateway group, an
                         instance refresh of it (new nodes boot on the secret as it stands), waited for
  switch                 on node 1: the new key signs, the old one stays as "previous" (its JWT access tokens still
                         verify), API keys and internal keys signed under the new alias (the old certificate still
                         trusted under its own); the grace period (keystore.rotation_grace_days) starts
  roll after switch      as above
It prints when the grace period ends and the command that finishes. With --finish, after the grace period (or at once
with --force): the old key and its certificate's alias removed, and a roll. A new key comes from where the pair's
keystore does (keystore.source): generated on node 1, the brought secret's current value (put the new key and
certificate there first), or issued by the private CA.
Each step looks at the secret first and skips what is done: run again after a failure, it resumes. A node already on
the secret as it stands is not restarted again. Never touches node 2 while node 1 fails its gate. The secret's values
stay on node 1, in a root-only folder; what is printed names aliases, fingerprints and dates.
API-M 3.2 to 4.6 encrypt what they keep encrypted (secrets of Key Managers, webhooks and APIs' backend credentials,
user store passwords) with the primary keystore's key: after the switch the old ciphertexts no longer decrypt, so
those versions need --accept-internal-key-change.
Exits 0 when every step passed, 1 naming the step that failed, 2 on bad settings or an environment it cannot rotate.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apim_active_active import names  # noqa: E402
from apim_active_active.renderers.node_layout import BOOT_SCRIPT  # noqa: E402
from apim_active_active.settings import Settings  # noqa: E402
from apim_active_active.versions import traits  # noqa: E402
from scripts import gateway_group  # noqa: E402
from scripts.on_node import NodeShell, SessionManagerShell  # noqa: E402
from scripts.ops import Aws, Result, environment_parser, load_environment, report  # noqa: E402
from scripts.prove import answer  # noqa: E402 (the node program's last stdout line, JSON)

PHASE_SCRIPT = Path(__file__).resolve().parent / "node_scripts" / "rotate-keystore.sh"
STATUS, STAGE, SWITCH, FINISH, REKEY = "status", "stage", "switch", "finish", "rekey"
GRACE = "grace period"
BASE, STAGED, SWITCHED = "base", "staged", "switched"  # the secret's states (the phase script's)
PAIR = (1, 2)
# An instance refresh's states while it runs (AWS's InstanceRefresh Status values).
REFRESHING = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")


@dataclass(frozen=True)
class Bounds:
    step_seconds: float  # one command on a node (a rekey: API-M's stop and start included)
    gate_seconds: float  # a rekeyed node's gate passing
    poll_seconds: float
    streak: int  # gate passes in a row before the next node is touched
    refresh_seconds: float  # the gateway group's instance refresh


# On AWS a node's gate is given roll.gate_seconds (settings); the stand-ins restart in seconds.
def aws_bounds(settings: Settings) -> Bounds:
    return Bounds(step_seconds=900, gate_seconds=settings.roll.gate_seconds, poll_seconds=30, streak=3, refresh_seconds=3600)


REHEARSAL_BOUNDS = Bounds(step_seconds=120, gate_seconds=120, poll_seconds=1, streak=2, refresh_seconds=300)


class StepFailed(Exception):
    def __init__(self, step: str, saw: str) -> None:
        super().__init__(f"{step}: {saw}")
        self.step, self.saw = step, saw


def node_script(phase: str, grace_days: int = 0, force: bool = False) -> str:
    """The command text for one phase: the phase script (bash) written to a root-only file on the node and run with its
    arguments (names and numbers only), whatever shell runs the text (Session Manager's AWS-RunShellScript: sh)."""
    return (
        "script=$(mktemp)\ncat >\"$script\" <<'WSO2AM_ROTATE'\n"
        f"{PHASE_SCRIPT.read_text()}WSO2AM_ROTATE\n"
        f'bash "$script" {shlex.quote(phase)} {int(grace_days)} {1 if force else 0}\ncode=$?\nrm -f "$script"\nexit $code\n'
    )


def short(fingerprint: str | None) -> str:
    return (fingerprint or "-")[:16]


class GatewayRoll(Protocol):
    def roll(self, step: str) -> str:
        """Bring the gateway nodes onto the secret as it stands; what was done, in a line (StepFailed otherwise)."""
        ...


class Rotation:
    def __init__(self, shell: NodeShell, bounds: Bounds, grace_days: int, gateways: GatewayRoll | None = None, say=print) -> None:
        self.shell, self.bounds, self.grace_days, self.gateways, self.say = shell, bounds, grace_days, gateways, say
        self.results: list[Result] = []
        self.grace_until: str | None = None  # once switched: the secret's grace_until

    def passed(self, step: str, detail: str) -> None:
        self.results.append(Result(step, "pass", detail))
        self.say(f"{step}: {detail}")

    # one command on a node ---------------------------------------------------------------------------------------
    def phase(self, step: str, node: int, phase: str, force: bool = False) -> dict:
        said = answer(self.shell.run(node, node_script(phase, self.grace_days, force), self.bounds.step_seconds))
        if not said.get("ok"):
            raise StepFailed(step, str(said.get("saw", "no detail")))
        return said

    def status(self, node: int = 1, step: str = STATUS) -> dict:
        return self.phase(step, node, STATUS)

    def gate(self, step: str, node: int) -> None:
        """`wso2am-boot gate` on the node until it passes `streak` times in a row, within gate_seconds."""
        deadline, streak, said = time.monotonic() + self.bounds.gate_seconds, 0, ""
        while True:
            outcome = self.shell.run(node, f"{BOOT_SCRIPT} gate", self.bounds.step_seconds)
            if outcome.succeeded:
                streak += 1
                if streak >= self.bounds.streak:
                    return
            else:
                streak = 0
                failed = [line.split("gate: FAILED: ", 1)[1] for line in outcome.stderr.splitlines() if "gate: FAILED: " in line]
                said = "; ".join(failed) or f"{outcome.status}: {(outcome.stderr or outcome.stdout).strip()[-300:]}"
            if time.monotonic() > deadline:
                raise StepFailed(step, f"node {node} failed its gate within {self.bounds.gate_seconds:.0f}s: {said}")
            time.sleep(self.bounds.poll_seconds)

    # a roll: node 1, then node 2, then the gateway group ---------------------------------------------------------------
    def roll(self, why: str) -> None:
        for node in PAIR:
            step = f"roll after {why}: node {node}"
            self.passed(step, self.roll_node(step, node))  # raises: node 2 is never touched while node 1 fails its gate
        if self.gateways:
            step = f"roll after {why}: gateway group"
            self.passed(step, self.gateways.roll(step))

    def roll_node(self, step: str, node: int) -> str:
        """The node rekeyed unless it already runs the secret as it stands, then gated."""
        current = self.status(node, step)["node"]
        if current["current"] and current["active"]:
            detail = "already runs the keystore as the secret holds it"
        else:
            said = self.phase(step, node, REKEY)
            detail = f"rekeyed (API keys' alias {said.get('api_key_alias')}), API-M restarted"
        self.gate(step, node)
        return f"{detail}; gate passed"

    # the two runs ------------------------------------------------------------------------------------------------
    def rotate(self) -> list[Result]:
        """Stage, roll, switch, roll; each skipped where the secret shows it done."""
        try:
            held = self.ready()
            state = held["state"]
            if state == BASE:
                said = self.phase(STAGE, 1, STAGE)
                new = said["next"]
                self.passed(STAGE, f"new key {short(new['sha256'])} (until {new['not_after']}) staged, trusted under {said['alias']}")
                state = STAGED
            else:
                self.passed(STAGE, f"already done (the secret is {state})")
            if state == STAGED:
                self.roll(STAGE)
                said = self.phase(SWITCH, 1, SWITCH)
                switched = said.get("switched") or {}
                alias, until = switched.get("api_key_alias"), switched.get("grace_until")
                self.passed(SWITCH, f"the new key signs; API keys' alias {alias}; grace period until {until}")
            else:
                self.passed(SWITCH, "already done (the secret is switched)")
            self.roll(SWITCH)
            self.grace_until = self.status()["secret"].get("grace_until")
        except StepFailed as failure:
            self.results.append(Result(failure.step, "fail", failure.saw))
        return self.results

    def finish(self, force: bool) -> list[Result]:
        """The old key removed (refused before the grace period's end unless forced), and a roll."""
        try:
            held = self.ready()
            if held["state"] == STAGED:
                raise StepFailed(FINISH, "a new key is staged, not switched: run without --finish first")
            said = self.phase(FINISH, 1, FINISH, force)
            if said.get("done"):
                finished = said.get("finished") or {}
                self.passed(FINISH, f"old key removed, and its aliases {', '.join(finished.get('removed', [])) or '(none)'}")
            else:
                self.passed(FINISH, "already done (no old key in the keystore)")
            self.roll(FINISH)
        except StepFailed as failure:
            self.results.append(Result(failure.step, "fail", failure.saw))
        return self.results

    def ready(self) -> dict:
        """The secret as node 1 reads it, and both nodes able to roll (their boot step knows the secret's format)."""
        held = self.status(1)
        self.status(2)
        secret = held["secret"]
        self.passed(
            STATUS,
            f"{held['state']}; signing {short(secret['signing']['sha256'])} until {secret['signing']['not_after']}; API keys' "
            f"alias {secret['api_key_alias']}; new keys from {held['source']}",
        )
        return held


class GatewayGroupRefresh:
    """The gateway scale-out group on AWS: an instance refresh (its nodes boot on the secret as it stands) when any node
    it keeps launched before the secret's last change; waited for, bounded."""

    def __init__(self, aws: Aws, settings: Settings, outputs: dict, bounds: Bounds, clock=time.monotonic, sleep=time.sleep) -> None:
        self.aws, self.settings, self.outputs, self.bounds, self.clock, self.sleep = aws, settings, outputs, bounds, clock, sleep

    def roll(self, step: str) -> str:
        name = gateway_group.group_name(self.outputs)
        running = gateway_group.latest_refresh(self.aws, name)
        if running and running["Status"] in REFRESHING:  # a refresh of a run that stopped, or of a deploy: its end first
            self.wait(step, name, running["InstanceRefreshId"])
        # The pair's keystore secret, by its name (constructs/generated_secrets.py).
        changed = self.aws.client("secretsmanager").describe_secret(SecretId=f"{self.settings.name_prefix}/keystore")["LastChangedDate"]
        group = gateway_group.read_group(self.aws, self.settings, self.outputs)
        if group is None:
            raise StepFailed(step, f"no gateway group {name}")
        ids = [i["InstanceId"] for i in group.staying()]
        launched = {}
        if ids:
            reservations = self.aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
            launched = {i["InstanceId"]: i["LaunchTime"] for r in reservations for i in r["Instances"]}
        stale = [i for i in ids if launched.get(i) is None or launched[i] < changed]
        if not stale:
            return f"{len(ids)} node(s), each launched after the secret's last change: nothing to refresh"
        gateway = self.settings.gateway_scale_out
        assert gateway, "only with a gateway group"
        refresh = self.aws.client("autoscaling").start_instance_refresh(
            AutoScalingGroupName=name,
            Strategy="Rolling",
            Preferences={
                "MinHealthyPercentage": gateway.refresh_min_healthy_percent,
                "MaxHealthyPercentage": gateway.refresh_max_healthy_percent,
                "InstanceWarmup": gateway.warmup_seconds,
            },
        )["InstanceRefreshId"]
        self.wait(step, name, refresh)
        return f"instance refresh {refresh} replaced {len(stale)} node(s) launched before the secret's last change"

    def wait(self, step: str, name: str, refresh: str) -> None:
        autoscaling, deadline = self.aws.client("autoscaling"), self.clock() + self.bounds.refresh_seconds
        while True:
            found = autoscaling.describe_instance_refreshes(AutoScalingGroupName=name, InstanceRefreshIds=[refresh])["InstanceRefreshes"]
            status = found[0]["Status"] if found else "missing"
            if status == "Successful":
                return
            if status not in REFRESHING:
                reason = found[0].get("StatusReason", "") if found else ""
                raise StepFailed(step, f"instance refresh {refresh} of {name}: {status} {reason}".strip())
            if self.clock() > deadline:
                raise StepFailed(step, f"instance refresh {refresh} of {name} still {status} after {self.bounds.refresh_seconds:.0f}s")
            self.sleep(self.bounds.poll_seconds)


class RekeyNode:
    """A gateway node rekeyed and gated like a pair node (the rehearsal's gateway node, node `node` of its shell)."""

    def __init__(self, rotation: Rotation, node: int) -> None:
        self.rotation, self.node = rotation, node

    def roll(self, step: str) -> str:
        return "gateway node: " + self.rotation.roll_node(step, self.node)


def refusal(settings: Settings, accept_internal_key_change: bool, finishing: bool) -> str:
    """Why these settings cannot be rotated here (empty: they can)."""
    if settings.emulator:
        return "the emulator runs no nodes: the rehearsal rotates against the stand-ins (make rehearse)"
    if settings.restore is not None:
        return (
            "a restored environment reads its source's keystore secret (restore.secrets.keystore_arn) and may not change it: "
            "rotate the source's"
        )
    if not finishing and not traits(settings.apim.version).symmetric_internal_crypto and not accept_internal_key_change:
        return (
            f"API-M {settings.apim.version} encrypts what it keeps encrypted (Key Managers' and webhooks' secrets, APIs' "
            "backend credentials, user store passwords) with the primary keystore's key: after the switch what it "
            "encrypted before no longer decrypts. Run with --accept-internal-key-change once that is planned for "
            '(docs/keystore.md, "Rotating")'
        )
    return ""


def finish_command(environment: str, outputs: Path) -> str:
    return f"scripts/rotate_keystore.py {environment} --outputs {outputs} --finish"


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="file written by cdktf deploy --outputs-file")
    parser.add_argument("--finish", action="store_true", help="remove the old key (after the grace period)")
    parser.add_argument("--force", action="store_true", help="with --finish: before the grace period's end")
    parser.add_argument(
        "--accept-internal-key-change", action="store_true", help="API-M 3.2-4.6: rotate the key internal encryption uses too"
    )
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    refused = refusal(settings, args.accept_internal_key_change, args.finish)
    if refused or (args.force and not args.finish):
        print(refused or "--force goes with --finish", file=sys.stderr)
        return 2
    outputs = json.loads(args.outputs.read_text())[args.environment]
    aws = Aws(settings)
    bounds = aws_bounds(settings)
    shell = SessionManagerShell(aws.client("ssm"), outputs[names.OUTPUT_INSTANCE_IDS])
    gateways = GatewayGroupRefresh(aws, settings, outputs, bounds) if settings.gateway_scale_out else None
    rotation = Rotation(shell, bounds, settings.keystore.rotation_grace_days, gateways, say=(lambda _: None) if args.json else print)
    results = rotation.finish(args.force) if args.finish else rotation.rotate()
    if not args.finish and all(r.status == "pass" for r in results):
        results.append(Result(GRACE, "pass", f"ends {rotation.grace_until}; then: {finish_command(args.environment, args.outputs)}"))
    done = report(f"rotate the keystore of {args.environment} ({datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ})", results, args.json)
    if done and not args.json:
        print("stopped: run the same command again to resume where it stopped", file=sys.stderr)
    return done


if __name__ == "__main__":
    sys.exit(main())
