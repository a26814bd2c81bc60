#!/usr/bin/env python3
"""The pair at a glance: run any time after a deploy.

  scripts/status.py <environment> --outputs <file> [--json]

One table (or JSON) of both nodes (state, status checks, zone, address, the update level each was booted with, its
last boot's result from the boot log in CloudWatch Logs), each node's health in every target group, the stack's
alarms in ALARM, the database and the share; with gateway_scale_out, the gateway group (sizes, launch template, launch
and termination hooks), each of its nodes (zone, lifecycle state, health in the gateway and websocket target groups),
its newest failed scaling activity of the last hour and its latest instance refresh. Read-only. Exits 1 when anything
is not as it should be (a node not running or not healthy, an alarm firing, the database or the share not available, a
gateway node not in service or not healthy, a hook missing, a scaling activity failed and not since made good, an
instance refresh that failed), 0 otherwise.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from apim_active_active import names, observability  # noqa: E402
from apim_active_active.renderers import rsync  # noqa: E402
from apim_active_active.settings import Settings  # noqa: E402
from apim_active_active.traffic import GATEWAY_ROUTES  # noqa: E402
from scripts import gateway_group, node_drift  # noqa: E402
from scripts.ops import Aws, environment_parser, load_environment  # noqa: E402

LOG_PAGES = 5  # at most this many pages of boot-log events read per window and line looked for
# The boot log is searched from now backwards, window by window (days), so that a node up for months still finds its
# last boot's line without reading everything since: CloudWatch Logs' filtering reads forward only.
WINDOW_DAYS = (1, 7, 30, 90, 365, 3650)
DAY_MS = 86_400_000


@dataclass
class Row:
    part: str  # node 1, node 2, target group, alarm, database, share
    what: str
    state: str
    detail: str = ""
    ok: bool = True


def boot_log_group(settings: Settings) -> str:
    return observability.log_group_name(settings.name_prefix, "node/boot")


def latest_in(logs, group: str, instance_id: str, text: str, start_ms: int, end_ms: int) -> dict | None:
    """The latest event of the node's stream holding `text` between start and end (bounded in pages)."""
    latest, token = None, None
    for _ in range(LOG_PAGES):
        page = logs.filter_log_events(
            logGroupName=group,
            logStreamNames=[instance_id],
            filterPattern=f'"{text}"',
            startTime=start_ms,
            endTime=end_ms,
            **({"nextToken": token} if token else {}),
        )
        for event in page.get("events", []):
            if latest is None or event["timestamp"] >= latest["timestamp"]:
                latest = event
        token = page.get("nextToken")
        if not token:
            break
    return latest


def latest_line(logs, group: str, instance_id: str, text: str, since_ms: int, now_ms: int) -> dict | None:
    """The latest event holding `text` since the node's launch: the newest window that has one."""
    end = now_ms
    for days in WINDOW_DAYS:
        start = max(since_ms, now_ms - days * DAY_MS)
        if start >= end:
            break
        found = latest_in(logs, group, instance_id, text, start, end)
        if found:
            return found
        end = start
    return None


def last_boot(aws: Aws, settings: Settings, instance_id: str, launched: datetime) -> tuple[str, bool]:
    """The node's last boot step's result, from the boot log the agent ships (stream = instance id)."""
    if not settings.observability.agent:
        return "not shipped (observability.agent is off)", True
    logs, group, since = aws.client("logs"), boot_log_group(settings), int(launched.timestamp() * 1000)
    now = int(datetime.now(UTC).timestamp() * 1000) + 60_000  # events stamped a little ahead of this clock too
    try:
        done = latest_line(logs, group, instance_id, observability.BOOT_DONE, since, now)
        failed = latest_line(logs, group, instance_id, observability.BOOT_FAILED, since, now)
    except logs.exceptions.ResourceNotFoundException:
        return f"no boot log yet ({group})", False
    if failed and (not done or failed["timestamp"] >= done["timestamp"]):
        return f"FAILED at {_time(failed['timestamp'])}: {failed['message'].strip()[-200:]}", False
    if done:
        return f"done at {_time(done['timestamp'])}", True
    return "no result in the boot log yet", False


def _time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nodes(aws: Aws, settings: Settings, outputs: dict) -> list[Row]:
    ec2, rows = aws.client("ec2"), []
    ids = outputs[names.OUTPUT_INSTANCE_IDS]
    statuses = {s["InstanceId"]: s for s in ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)["InstanceStatuses"]}
    described = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    for number, instance_id in enumerate(ids, 1):
        part, instance, status = f"node {number}", described.get(instance_id), statuses.get(instance_id, {})
        if instance is None:
            rows.append(Row(part, instance_id, "missing", ok=False))
            continue
        state = instance["State"]["Name"]
        checks = (status.get("InstanceStatus", {}).get("Status", "-"), status.get("SystemStatus", {}).get("Status", "-"))
        where = f"{instance['Placement']['AvailabilityZone']}, {instance.get('PrivateIpAddress', '-')}"
        rows.append(
            Row(part, instance_id, state, f"status checks {checks[0]}/{checks[1]}, {where}", state == "running" and checks == ("ok", "ok"))
        )
        running = node_drift.running_node(ec2, instance_id)
        level = node_drift.update_level(node_drift.cloud_config_files(running.user_data))
        rows.append(Row(part, "update level", level))
        result, ok = last_boot(aws, settings, instance_id, instance["LaunchTime"])
        rows.append(Row(part, "last boot", "done" if ok else "not done", result, ok))
    return rows


def target_health(aws: Aws, outputs: dict) -> list[Row]:
    elb, ids, rows = aws.client("elbv2"), outputs[names.OUTPUT_INSTANCE_IDS], []
    for route, arn in outputs[names.OUTPUT_TARGET_GROUPS].items():
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states = {h["Target"]["Id"]: h["TargetHealth"] for h in health}
        for number, instance_id in enumerate(ids, 1):
            seen = states.get(instance_id, {"State": "not registered"})
            detail = seen.get("Description", "")
            rows.append(Row("target group", f"{route}: node {number}", seen["State"], detail, seen["State"] == "healthy"))
    return rows


def alarms(aws: Aws, settings: Settings) -> list[Row]:
    cloudwatch, found = aws.client("cloudwatch"), []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{settings.name_prefix}-", StateValue="ALARM", PaginationConfig={"MaxItems": 200}
    ):
        # Filtered here too: the emulator (moto 5.2) ignores StateValue when a prefix is given.
        found += [a for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []) if a["StateValue"] == "ALARM"]
    if not found:
        return [Row("alarms", f"{settings.name_prefix}-*", "none in ALARM")]
    return [Row("alarm", a["AlarmName"], "ALARM", a.get("StateReason", "")[:200], False) for a in found]


def database(aws: Aws, settings: Settings) -> list[Row]:
    existing = settings.database.existing
    if existing:
        return [Row("database", existing.host, "existing", "not made by the stack: watch it where it is run")]
    identifier = names.resource_name(settings.name_prefix, "db")
    instance = aws.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    state = instance["DBInstanceStatus"]
    engine = f"{instance['Engine']} {instance.get('EngineVersion', '')}"
    detail = f"{engine}, multi-AZ {instance.get('MultiAZ')}, {instance.get('AllocatedStorage')} GiB"
    return [Row("database", identifier, state, detail, state in ("available", "backing-up", "modifying"))]


def share(aws: Aws, settings: Settings, outputs: dict) -> list[Row]:
    if not settings.uses_efs:
        ssm, rows = aws.client("ssm"), []
        for what in (rsync.MANAGER_KEY, rsync.WORKER_HOST_KEY):
            name = names.rsync_parameter(settings.name_prefix, what)
            value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            handed = value.startswith("ssh-ed25519 ")
            rows.append(Row("share", name, "key handed over" if handed else "waiting", "rsync: node 1 pushes to node 2", handed))
        return rows
    efs, file_system_id = aws.client("efs"), outputs[names.OUTPUT_EFS_ID]
    system = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]
    targets = efs.describe_mount_targets(FileSystemId=file_system_id)["MountTargets"]
    available = sorted(t["AvailabilityZoneName"] for t in targets if t["LifeCycleState"] == "available")
    ok = system["LifeCycleState"] == "available" and len(available) == len(settings.availability_zones)
    detail = f"{system.get('ThroughputMode', '-')} throughput, mount targets available in {', '.join(available) or 'no zone'}"
    return [Row("share", file_system_id, system["LifeCycleState"], detail, ok)]


def gateway_rows(aws: Aws, settings: Settings, outputs: dict) -> list[Row]:
    """gateway_scale_out: the group (sizes, launch template), each node (zone, lifecycle state, health in the gateway's
    target groups) and its latest instance refresh."""
    group = gateway_group.read_group(aws, settings, outputs)
    if group is None:
        return [Row("gateway group", gateway_group.group_name(outputs), "missing", ok=False)]
    wanted = settings.gateway_scale_out
    assert wanted is not None
    serving = len(group.serving())
    sized = (group.min_size, group.max_size) == (wanted.min_size, wanted.max_size) and serving >= group.min_size
    template = f"launch template {group.template_id} version {group.version} (latest {group.latest})"
    rows = [
        Row(
            "gateway group",
            group.name,
            f"{group.desired} desired",
            f"min {group.min_size}, max {group.max_size}, {serving} InService; {template}",
            sized and group.version == group.latest,
        )
    ]
    rows += [
        hook_row("launch hook", group.ready_hook, "a new node would join the target groups before it is ready"),
        hook_row("termination hook", group.drain_hook, "a scale-in would not wait for API-M to stop"),
    ]
    states = gateway_group.target_states(aws, outputs)
    for instance in group.instances:
        rows.append(gateway_node_row(group, instance, states))
    rows.append(activity_row(*gateway_group.failed_activity(aws, group)))
    rows.append(refresh_row(aws, settings, group.name))
    return rows


def hook_row(what: str, hook: dict | None, without: str) -> Row:
    if hook is None:
        return Row("gateway group", what, "missing", without, False)
    return Row("gateway group", what, "present", f"{hook['HeartbeatTimeout']} s, then {hook['DefaultResult']}")


def activity_row(failed: dict | None, made_good: bool) -> Row:
    """The newest scaling activity of the last hour that failed: why a node the group wanted is not there."""
    if failed is None:
        return Row("gateway group", "scaling activity", "none failed", "in the last hour")
    detail = gateway_group.activity_text(failed)
    if made_good:
        detail += "; since then one succeeded and the group is at its desired size"
    return Row("gateway group", "scaling activity", failed["StatusCode"], detail, made_good)


def gateway_node_row(group: gateway_group.Group, instance: dict, states: dict[str, dict[str, dict]]) -> Row:
    instance_id, lifecycle = instance["InstanceId"], instance["LifecycleState"]
    health = [(route, states.get(route, {}).get(instance_id, {"State": "not registered"})["State"]) for route in GATEWAY_ROUTES]
    version = group.instance_version(instance)
    # A node on an older version is one an instance refresh has yet to replace (its row below says whether one runs).
    older = f" (the group's is {group.version})" if version != group.version else ""
    detail = f"{instance['AvailabilityZone']}, {instance['HealthStatus']}, launch template version {version}{older}; " + ", ".join(
        f"{route} {state}" for route, state in health
    )
    if lifecycle in gateway_group.LEAVING:
        return Row("gateway node", instance_id, lifecycle, detail)  # on its way out: drained, then its hook
    if lifecycle in gateway_group.ARRIVING:  # booting; one never ready is replaced, a failed scaling activity says so
        return Row("gateway node", instance_id, lifecycle, f"{detail} (out of the target groups until it is ready)")
    ok = lifecycle == "InService" and instance["HealthStatus"] == "Healthy" and all(state == "healthy" for _, state in health)
    return Row("gateway node", instance_id, lifecycle, detail, ok)


def refresh_row(aws: Aws, settings: Settings, name: str) -> Row:
    try:
        refresh = gateway_group.latest_refresh(aws, name)
    except (BotoCoreError, ClientError, NotImplementedError):
        if not settings.emulator:
            raise
        return Row("gateway group", "instance refresh", "unknown", "the emulator (moto) has no DescribeInstanceRefreshes")
    if refresh is None:
        return Row("gateway group", "instance refresh", "none")
    state, done = refresh["Status"], refresh.get("PercentageComplete", 0)
    started = refresh["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ") if "StartTime" in refresh else "-"
    detail = f"started {started}, {done}% done, {refresh.get('InstancesToUpdate', 0)} node(s) to replace"
    if refresh.get("StatusReason"):
        detail += f": {refresh['StatusReason'][:200]}"
    return Row("gateway group", "instance refresh", state, detail, state not in gateway_group.REFRESH_FAULTS)


def status(settings: Settings, outputs: dict) -> list[Row]:
    aws, rows = Aws(settings), []
    for part, read in (
        ("nodes", lambda: nodes(aws, settings, outputs)),
        ("target group", lambda: target_health(aws, outputs)),
        ("alarms", lambda: alarms(aws, settings)),
        ("database", lambda: database(aws, settings)),
        ("share", lambda: share(aws, settings, outputs)),
        *([("gateway group", lambda: gateway_rows(aws, settings, outputs))] if settings.gateway_scale_out else []),
    ):
        try:
            rows += read()
        except (BotoCoreError, ClientError, KeyError, IndexError) as error:
            rows.append(Row(part, "(could not read)", "unknown", f"{type(error).__name__}: {error}", False))
    return rows


def show(title: str, rows: list[Row], as_json: bool) -> int:
    healthy = all(r.ok for r in rows)
    if as_json:
        print(json.dumps({"title": title, "healthy": healthy, "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        widths = [max(len(getattr(r, f)) for r in rows) for f in ("part", "what", "state")]
        print(title)
        for row in rows:
            mark = "  " if row.ok else "! "
            print(f"{mark}{row.part:{widths[0]}}  {row.what:{widths[1]}}  {row.state:{widths[2]}}  {row.detail}".rstrip())
        print("healthy" if healthy else f"NOT healthy: {sum(not r.ok for r in rows)} row(s) marked !")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="file written by cdktf deploy --outputs-file")
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    outputs = json.loads(args.outputs.read_text())[args.environment]
    return show(f"status {args.environment} ({settings.region})", status(settings, outputs), args.json)


if __name__ == "__main__":
    sys.exit(main())
