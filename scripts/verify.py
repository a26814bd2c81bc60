#!/usr/bin/env python3
"""Verify a deployment: run after `cdktf deploy <environment> --outputs-file <file>`.

  scripts/verify.py <environment> --outputs <file> [--synth-dir cdktf.out] [--json]
                    [--wait --timeout 900 --interval 15] [--skip-http] [--connect-to HOST:PORT:ADDRESS:PORT ...]

Checks: both instances running with status checks ok; each node running the user data, AMI and instance type the
settings give (and the update level each runs); an available EFS mount target in each zone (with
content_sync = "rsync": both nodes' public keys handed over through their SSM parameters);
every security group of the stack holds exactly the rules synthesized for it (none missing, none
extra); both nodes healthy in every target group; the management and gateway endpoints answer under
the public name (any HTTP answer below 500 from the dev portal and the gateway; skipped with --skip-http, or against the
emulator unless --connect-to says where). With gateway_scale_out: the gateway group has the settings' min and max and
its launch and termination lifecycle hooks, launches (and its nodes run) its launch template's latest version, none of
its scaling activities failed in the last hour (unless a later one succeeded and the group is at its desired size), its
nodes are InService and healthy, and healthy in the gateway and websocket target groups.
Exits 1 on any failure; --wait retries until all pass or the timeout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from apim_active_active import names  # noqa: E402
from apim_active_active.renderers import rsync  # noqa: E402
from apim_active_active.settings import Settings  # noqa: E402
from apim_active_active.traffic import GATEWAY_ROUTES  # noqa: E402
from scripts import gateway_group, node_drift  # noqa: E402
from scripts.ops import ROOT, Aws, Result, environment_parser, load_environment, passed, report  # noqa: E402

GATEWAY_GROUP_CHECK = "gateway group as set (min and max, launch and termination lifecycle hooks)"
GATEWAY_TEMPLATE_CHECK = "gateway group and its nodes on the launch template's latest version"
GATEWAY_ACTIVITY_CHECK = "gateway group's scaling activities (none failed in the last hour)"
GATEWAY_NODES_CHECK = "gateway nodes InService and healthy"
GATEWAY_TARGETS_CHECK = "gateway nodes healthy in the gateway and websocket target groups"
KEYS_CHECK = "rsync keys handed over (both SSM parameters hold a public key)"
NODES_CHECK = "each node runs what the settings give (user data, AMI, instance type)"
Rule = tuple[str, str, str, int, int, str]  # group name, direction, protocol, from, to, peer (CIDR or group name)


def instances(aws: Aws, outputs: dict) -> Result:
    ids = outputs[names.OUTPUT_INSTANCE_IDS]
    ec2 = aws.client("ec2")
    statuses = ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)["InstanceStatuses"]
    seen = {
        s["InstanceId"]: (s["InstanceState"]["Name"], s.get("InstanceStatus", {}).get("Status"), s.get("SystemStatus", {}).get("Status"))
        for s in statuses
    }
    bad = {i: seen.get(i, ("missing", None, None)) for i in ids if seen.get(i) != ("running", "ok", "ok")}
    return passed(
        "both instances running, status checks ok",
        not bad,
        "; ".join(f"{i}: state {s}, instance {a}, system {b}" for i, (s, a, b) in bad.items()),
    )


def mount_targets(aws: Aws, settings: Settings, outputs: dict) -> Result:
    targets = aws.client("efs").describe_mount_targets(FileSystemId=outputs[names.OUTPUT_EFS_ID])["MountTargets"]
    available = {t["AvailabilityZoneName"] for t in targets if t["LifeCycleState"] == "available"}
    missing = [z for z in settings.availability_zones if z not in available]
    return passed(
        "EFS mount target available in both zones",
        not missing,
        f"none available in {', '.join(missing)}" if missing else ", ".join(sorted(available)),
    )


def key_parameters(aws: Aws, settings: Settings) -> Result:
    """content_sync = "rsync": both nodes have published their public key (node 1 last, once its first boot is done)."""
    ssm = aws.client("ssm")
    waiting = []
    for what in (rsync.MANAGER_KEY, rsync.WORKER_HOST_KEY):
        name = names.rsync_parameter(settings.name_prefix, what)
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        if not value.startswith("ssh-ed25519 "):
            waiting.append(name)
    return passed(KEYS_CHECK, not waiting, f"no public key yet in {', '.join(waiting)}" if waiting else "both")


def intended_rules(stack: dict) -> tuple[set[str], set[Rule]]:
    """The stack's security groups (by name) and the rules synthesized for them."""
    groups = {key: group["name"] for key, group in stack["resource"].get("aws_security_group", {}).items()}
    by_ref = {f"${{aws_security_group.{key}.id}}": name for key, name in groups.items()}
    rules = set()
    for rule in stack["resource"].get("aws_security_group_rule", {}).values():
        peers = rule.get("cidr_blocks") or [by_ref[rule["source_security_group_id"]]]
        for peer in peers:
            rules.add((by_ref[rule["security_group_id"]], rule["type"], rule["protocol"], rule["from_port"], rule["to_port"], peer))
    return set(groups.values()), rules


def actual_rules(aws: Aws, vpc_id: str, group_names: set[str]) -> tuple[set[str], set[Rule]]:
    groups = aws.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    name_of = {g["GroupId"]: g["GroupName"] for g in groups}
    rules = set()
    for group in (g for g in groups if g["GroupName"] in group_names):
        for direction, permissions in (("ingress", group["IpPermissions"]), ("egress", group["IpPermissionsEgress"])):
            for permission in permissions:
                protocol = permission["IpProtocol"]
                ports = (permission.get("FromPort", -1), permission.get("ToPort", -1))
                peers = (
                    [r["CidrIp"] for r in permission.get("IpRanges", [])]
                    + [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
                    + [name_of.get(p["GroupId"], p["GroupId"]) for p in permission.get("UserIdGroupPairs", [])]
                )
                rules |= {(group["GroupName"], direction, protocol, *ports, peer) for peer in peers}
    return {g["GroupName"] for g in groups}, rules


def security_groups(aws: Aws, outputs: dict, stack: dict) -> Result:
    names_, intended = intended_rules(stack)
    present, actual = actual_rules(aws, outputs[names.OUTPUT_VPC_ID], names_)
    missing_groups = sorted(names_ - present)
    missing, extra = sorted(intended - actual), sorted(actual - intended)
    describe = lambda rule: f"{rule[0]} {rule[1]} {rule[2]}/{rule[3]}-{rule[4]} {rule[5]}"  # noqa: E731
    problems = (
        [f"group missing: {g}" for g in missing_groups]
        + [f"missing: {describe(r)}" for r in missing]
        + [f"extra: {describe(r)}" for r in extra]
    )
    return passed(
        "security-group rules exactly as synthesized", not problems, "; ".join(problems) or f"{len(intended)} rules in {len(names_)} groups"
    )


def nodes_as_set(aws: Aws, outputs: dict) -> Result:
    """Each node runs the user data, image and instance type the deployed settings give it (a held deploy leaves a
    node on what it had until scripts/roll.py replaces it), and the update level each runs."""
    ec2, problems, levels = aws.client("ec2"), [], []
    wanted = zip(outputs[names.OUTPUT_NODE_USER_DATA_SHA256], outputs[names.OUTPUT_NODE_AMIS], outputs[names.OUTPUT_NODE_INSTANCE_TYPE])
    for number, (instance_id, (digest, ami, instance_type)) in enumerate(zip(outputs[names.OUTPUT_INSTANCE_IDS], wanted), 1):
        running = node_drift.running_node(ec2, instance_id)
        levels.append(f"node {number} update level {node_drift.update_level(node_drift.cloud_config_files(running.user_data))}")
        if node_drift.user_data_sha256(running.user_data) != digest:
            problems.append(f"node {number} runs other user data")
        if running.ami_id != ami:
            problems.append(f"node {number} runs AMI {running.ami_id}, not {ami}")
        if running.instance_type != instance_type:
            problems.append(f"node {number} is a {running.instance_type}, not a {instance_type}")
    detail = "; ".join(problems + ["scripts/roll.py --check shows what differs"] if problems else levels)
    return passed(NODES_CHECK, not problems, detail)


def target_health(aws: Aws, outputs: dict) -> Result:
    elb, ids = aws.client("elbv2"), set(outputs[names.OUTPUT_INSTANCE_IDS])
    problems = []
    for route, arn in outputs[names.OUTPUT_TARGET_GROUPS].items():
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states = {h["Target"]["Id"]: h["TargetHealth"]["State"] for h in health}
        problems += [f"{route}: {i} {states.get(i, 'not registered')}" for i in sorted(ids) if states.get(i) != "healthy"]
    return passed("both nodes healthy in every target group", not problems, "; ".join(problems))


def gateway_checks(aws: Aws, settings: Settings, outputs: dict) -> list[Result]:
    """gateway_scale_out: the group as the settings give it, on its latest launch template, its nodes in service and
    healthy in the gateway's target groups (a deploy does not wait for their boots: this does)."""
    group = gateway_group.read_group(aws, settings, outputs)
    if group is None:
        return [passed(GATEWAY_GROUP_CHECK, False, f"no Auto Scaling group {gateway_group.group_name(outputs)}")]
    return [
        group_as_set(group, settings),
        group_template(group, outputs),
        group_activities(*gateway_group.failed_activity(aws, group)),
        group_nodes(group),
        group_targets(group, gateway_group.target_states(aws, outputs)),
    ]


def group_as_set(group: gateway_group.Group, settings: Settings) -> Result:
    wanted, problems = settings.gateway_scale_out, []
    assert wanted is not None
    for what, seen, want in (("min_size", group.min_size, wanted.min_size), ("max_size", group.max_size, wanted.max_size)):
        if seen != want:
            problems.append(f"{what} {seen}, gateway_scale_out.{what} says {want}")
    hooks = (
        (names.gateway_ready_hook_name(settings.name_prefix), group.ready_hook, (names.LAUNCHING, wanted.ready_seconds,
         "ABANDON"), "ready_seconds", "a new node would join the target groups before it is ready"),
        (names.gateway_lifecycle_hook_name(settings.name_prefix), group.drain_hook, (names.TERMINATING,
         wanted.drain_seconds, "CONTINUE"), "drain_seconds", "a scale-in would not wait for API-M to stop"),
    )  # fmt: skip
    for hook_name, hook, (transition, seconds, result), setting, without in hooks:
        if hook is None:
            problems.append(f"no lifecycle hook {hook_name}: {without}")
            continue
        found = (hook["LifecycleTransition"], hook["HeartbeatTimeout"], hook["DefaultResult"])
        if found != (transition, seconds, result):
            problems.append(
                f"lifecycle hook {hook_name} on {found[0]} with {found[1]} s, then {found[2]}; not on {transition} with "
                f"gateway_scale_out.{setting} {seconds}, then {result}"
            )
    detail = f"{group.name}: min {group.min_size}, max {group.max_size}, desired {group.desired}, hooks {', '.join(h[0] for h in hooks)}"
    return passed(GATEWAY_GROUP_CHECK, not problems, "; ".join(problems) or detail)


def group_template(group: gateway_group.Group, outputs: dict) -> Result:
    """A launch template change starts an instance refresh: until it is done, the group (or some of its nodes) is on an
    older version."""
    problems, stack_template = [], outputs.get(names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE)
    if stack_template and group.template_id != stack_template:
        problems.append(f"the group launches from {group.template_id}, the stack's launch template is {stack_template}")
    elif group.version != group.latest:
        problems.append(
            f"the group launches version {group.version} of {group.template_id}, the latest is {group.latest}: "
            "an instance refresh is pending"
        )
    older = [i["InstanceId"] for i in group.staying() if group.instance_version(i) != group.version]
    if older:
        problems.append(
            f"{', '.join(older)} on another version than the group's {group.version}: an instance refresh is pending or "
            "under way (scripts/status.py shows it)"
        )
    return passed(GATEWAY_TEMPLATE_CHECK, not problems, "; ".join(problems) or f"{group.template_id} version {group.version}")


def group_activities(failed: dict | None, made_good: bool) -> Result:
    """A launch the group could not make (a deploy does not wait for it) says why only in its scaling activity."""
    if failed is None:
        return passed(GATEWAY_ACTIVITY_CHECK, True, "none failed in the last hour")
    said = gateway_group.activity_text(failed)
    if made_good:
        return passed(GATEWAY_ACTIVITY_CHECK, True, f"{said}; since then one succeeded and the group is at its desired size")
    return passed(GATEWAY_ACTIVITY_CHECK, False, said)


def group_nodes(group: gateway_group.Group) -> Result:
    problems = [
        f"{i['InstanceId']} ({i['AvailabilityZone']}) {i['LifecycleState']}, {i['HealthStatus']}"
        for i in group.staying()
        if (i["LifecycleState"], i["HealthStatus"]) != ("InService", "Healthy")
    ]
    serving = group.serving()
    if len(serving) < group.min_size:
        problems.append(f"{len(serving)} InService, fewer than min_size {group.min_size}")
    zones = sorted({i["AvailabilityZone"] for i in serving})
    return passed(GATEWAY_NODES_CHECK, not problems, "; ".join(problems) or f"{len(serving)} InService in {', '.join(zones)}")


def group_targets(group: gateway_group.Group, states: dict[str, dict[str, dict]]) -> Result:
    serving = [i["InstanceId"] for i in group.serving()]
    if not serving:
        return Result(GATEWAY_TARGETS_CHECK, "skip", "no gateway node InService")
    problems = []
    for route in GATEWAY_ROUTES:
        if route not in states:
            problems.append(f"no {route} target group in the outputs")
            continue
        for instance_id in serving:
            health = states[route].get(instance_id, {"State": "not registered"})
            if health["State"] != "healthy":
                reason = health.get("Description") or health.get("Reason") or ""
                problems.append(f"{route}: {instance_id} {health['State']}" + (f" ({reason})" if reason else ""))
    for route in sorted(states.keys() - set(GATEWAY_ROUTES)):
        problems += [f"{route}: {i} registered (the pair's only)" for i in serving if i in states[route]]
    return passed(GATEWAY_TARGETS_CHECK, not problems, "; ".join(problems) or f"{len(serving)} node(s) healthy in both")


class _ConnectTo(urllib.request.HTTPSHandler):
    """curl's --connect-to: HOST:PORT is reached at ADDRESS:PORT; TLS and HTTP still see HOST."""

    def __init__(self, mapping: dict[tuple[str, int], tuple[str, int]], context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.mapping = mapping

    def https_open(self, request):
        mapping = self.mapping

        class Connection(http.client.HTTPSConnection):
            def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
                super().__init__(*args, **kwargs)
                self._create_connection = lambda address, *rest, **options: socket.create_connection(
                    mapping.get(address, address), *rest, **options
                )

        return self.do_open(Connection, request, context=self._context)


def endpoints(outputs: dict, connect_to: dict, verify_tls: bool) -> list[Result]:
    context = ssl.create_default_context()
    if not verify_tls:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    # With --connect-to the address is given: no proxy may stand in between.
    no_proxy = [urllib.request.ProxyHandler({})] if connect_to else []
    opener = urllib.request.build_opener(_ConnectTo(connect_to, context), *no_proxy)
    results = []
    for check, url, wanted in (
        ("management answers through the load balancer", outputs["devportal_url"], "any"),
        ("gateway answers through the load balancer", outputs["gateway_url"] + "/", "any"),
    ):
        try:
            code = str(opener.open(url, timeout=10).status)
        except urllib.error.HTTPError as error:
            code = str(error.code)
        except OSError as error:
            results.append(passed(check, False, f"{url}: {error}"))
            continue
        ok = code == wanted or (wanted == "any" and code.isdigit() and int(code) < 500)
        results.append(passed(check, ok, f"{url}: HTTP {code}"))
    return results


def parse_connect_to(values: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    mapping = {}
    for value in values:
        host, port, address, target = value.rsplit(":", 3)
        mapping[(host, int(port))] = (address, int(target))
    return mapping


def run(settings: Settings, outputs: dict, stack: dict, args: argparse.Namespace) -> list[Result]:
    aws = Aws(settings)
    results = []
    content = (
        ("EFS mount target available in both zones", lambda: mount_targets(aws, settings, outputs))
        if settings.uses_efs
        else (KEYS_CHECK, lambda: key_parameters(aws, settings))
    )
    for name, check in (
        ("both instances running, status checks ok", lambda: instances(aws, outputs)),
        content,
        ("security-group rules exactly as synthesized", lambda: security_groups(aws, outputs, stack)),
        (NODES_CHECK, lambda: nodes_as_set(aws, outputs)),
        ("both nodes healthy in every target group", lambda: target_health(aws, outputs)),
    ):
        try:
            results.append(check())
        except (BotoCoreError, ClientError, KeyError) as error:
            results.append(passed(name, False, f"{type(error).__name__}: {error}"))
    if settings.gateway_scale_out is not None:
        try:
            results += gateway_checks(aws, settings, outputs)
        except (BotoCoreError, ClientError, KeyError, IndexError) as error:
            results.append(passed(GATEWAY_GROUP_CHECK, False, f"{type(error).__name__}: {error}"))
    connect_to = parse_connect_to(args.connect_to)
    if args.skip_http:
        results.append(Result("endpoints answer", "skip", "--skip-http"))
    elif settings.emulator and not connect_to:
        results.append(Result("endpoints answer", "skip", "the emulator serves no HTTPS; --connect-to says where to"))
    else:
        results += endpoints(outputs, connect_to, verify_tls=not settings.emulator)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="file written by cdktf deploy --outputs-file")
    parser.add_argument("--synth-dir", type=Path, default=ROOT / "cdktf.out", help="cdktf's output folder")
    parser.add_argument("--wait", action="store_true", help="retry until every check passes or --timeout")
    parser.add_argument("--timeout", type=int, default=900, help="seconds --wait may take (default 900)")
    parser.add_argument("--interval", type=int, default=15, help="seconds between --wait rounds (default 15)")
    parser.add_argument("--skip-http", action="store_true", help="do not call the endpoints (not reachable from here)")
    parser.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDRESS:PORT",
        help="reach HOST:PORT at ADDRESS:PORT (as curl's --connect-to)",
    )
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    outputs = json.loads(args.outputs.read_text())[args.environment]
    stack = json.loads((args.synth_dir / "stacks" / args.environment / "cdk.tf.json").read_text())
    deadline = time.monotonic() + args.timeout
    while True:
        results = run(settings, outputs, stack, args)
        done = all(r.status != "fail" for r in results)
        if done or not args.wait or time.monotonic() + args.interval > deadline:
            break
        time.sleep(args.interval)
    return report(f"verify {args.environment} ({settings.region})", results, args.json)


if __name__ == "__main__":
    sys.exit(main())
