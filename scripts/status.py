#!/usr/bin/env python3
"""The pair at a glance: run any time after a deploy.

  scripts/status.py <environment> --outputs <file> [--json]

One table (or JSON) of both nodes (state, status checks, zone, address, the update level each was booted with, its
last boot's result from the boot log in CloudWatch Logs), each node's health in every target group, the stack's
alarms in ALARM, the database and the share. Read-only. Exits 1 when anything is not as it should be (a node not
running or not healthy, an alarm firing, the database or the share not available), 0 otherwise.
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
from scripts import node_drift  # noqa: E402
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


def status(settings: Settings, outputs: dict) -> list[Row]:
    aws, rows = Aws(settings), []
    for part, read in (
        ("nodes", lambda: nodes(aws, settings, outputs)),
        ("target group", lambda: target_health(aws, outputs)),
        ("alarms", lambda: alarms(aws, settings)),
        ("database", lambda: database(aws, settings)),
        ("share", lambda: share(aws, settings, outputs)),
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
