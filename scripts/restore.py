#!/usr/bin/env python3
"""Restore an environment's backup into a NEW environment, never over the running one.

  scripts/restore.py <source> <target> (--latest | --time 2026-11-27T10:00:00Z | --snapshot ID)
                     [--share-point ARN | --no-share] [--region R --zones A,B] [--node-host-number N]
                     [--generation N] [--outputs-file F] [--dry-run | --write-only]
  scripts/restore.py <source> <target> --resume      # after --write-only (the file edited), or a step that failed

1. finds what to restore from (read-only): the source's database, the secrets its pair generated (the restored nodes
   read them: what the product encrypted and signed needs them), and the share's recovery point (the newest at or
   before --time);
2. writes environments/<target>.toml: the source's settings, its own name prefix, and a [restore] table naming all that
   (the nodes may decrypt with the secrets' keys; no state.key and no Route 53 record of the source's: the public name
   is switched to the target by hand);
3. `cdktf deploy <target>`: Terraform restores the database into a new RDS instance (point in time, or the snapshot);
   the nodes boot and wait for the share;
4. AWS Backup restores the share's recovery point into the target's own file system (encrypted with the target's
   key); the job is waited for;
5. sets the target's restore parameter to "restored": the nodes move the restored files into place, start, and
   rebuild the search index (the boot step's restore part);
6. waits until both nodes are healthy in every target group;
7. `cdktf deploy <target>` again: what RDS's restore call does not take (Performance Insights, backup retention).

Each step is printed with the seconds it took; the time until the pair serves (steps 1-6) is the restore's RTO on this
account. `--dry-run` prints the plan (the points found, the settings file it would write) and changes nothing;
`--write-only` writes the settings and stops, `--resume` goes on from the deploy with them (also after a failed step:
the share's restore job is started once per target and point). In another region (a lost region:
docs/backup-and-restore.md) give --region, --zones and --snapshot (a copy in that region's vault), then --write-only:
the secrets are the replicas there (backup.replicate_secrets), and what the source's region pinned (artifact URLs,
state, certificate) is edited before --resume. A source whose database is `database.existing` is refused: its owner
restores that database.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apim_active_active import names  # noqa: E402
from apim_active_active.constructs.restore_signal import FAILED, RESTORED  # noqa: E402
from apim_active_active.settings import Settings, SettingsError, parse_settings  # noqa: E402
from apim_active_active.versions import traits  # noqa: E402
from scripts.ops import ROOT, Aws, environments_dir  # noqa: E402

JOB_POLL_SECONDS = 30
HEALTH_POLL_SECONDS = 15


class RestoreError(RuntimeError):
    """What stops a restore, before anything is created where possible."""


@dataclass
class Plan:
    source: str
    target: str
    settings_text: str  # environments/<target>.toml
    target_settings: Settings
    share_point: str | None  # the share's recovery point ARN (None: no share to restore)
    found: list[str] = field(default_factory=list)  # what was found, for the printout


@dataclass
class Step:
    name: str
    seconds: float


# 1. what to restore from ----------------------------------------------------------------------------------------------
def source_secrets(aws: Aws, source: Settings) -> tuple[dict[str, str], list[str]]:
    """The source's generated secrets in the target's region (there: the replicas), by [restore.secrets] key, and the
    KMS keys they are encrypted with (the source's stack key, or its copy-region key for the replicas): a secret under
    a customer managed key is read only with kms:Decrypt on that key, which the restored nodes are then given
    (encryption.node_decrypt_key_arns)."""
    if source.restore is not None:  # a restore of a restore: its pair reads what its [restore] names
        wanted = source.restore.secrets.model_dump(exclude_none=True)
    else:  # the pair's own, by name
        names_of = {"admin_arn": "apim-admin", "keystore_arn": "keystore"}
        if source.database.existing is None:
            names_of["database_app_arn"] = "database-app"
        if traits(source.apim.version).symmetric_internal_crypto:
            names_of["encryption_key_arn"] = "encryption-key"
        wanted = {key: f"{source.name_prefix}/{name}" for key, name in names_of.items()}
    secrets, kms, found, keys = aws.client("secretsmanager"), aws.client("kms"), {}, []
    for key, secret_id in wanted.items():
        try:
            described = secrets.describe_secret(SecretId=secret_id)
        except secrets.exceptions.ResourceNotFoundException:
            raise RestoreError(
                f"secret {secret_id} not found in {aws.region}: a restore reads the source's secrets (in another region: "
                "their replicas, backup.replicate_secrets)"
            ) from None
        found[key] = described["ARN"]
        if described.get("KmsKeyId"):  # absent: AWS's own aws/secretsmanager key, which needs no grant
            key_arn = kms.describe_key(KeyId=described["KmsKeyId"])["KeyMetadata"]["Arn"]
            keys += [key_arn] if key_arn not in keys else []
    return found, keys


def database_source(aws: Aws, source: Settings, args: argparse.Namespace) -> dict:
    """[restore]'s database keys, checked against RDS (the instance and its restorable window, or the snapshot)."""
    if source.database.existing is not None:
        raise RestoreError(
            f"{source.name_prefix} uses database.existing ({source.database.existing.host}): its owner restores it. A restore "
            "with this script would point the new pair at that live database; restore it first, then write the target's "
            "settings by hand (docs/backup-and-restore.md)"
        )
    rds = aws.client("rds")
    if args.snapshot:
        snapshot = find_snapshot(rds, args.snapshot)
        if snapshot is None:
            raise RestoreError(f"RDS snapshot {args.snapshot} not found in {aws.region} (manual, automated or AWS Backup's)")
        args.time = args.time or snapshot.get("SnapshotCreateTime")  # the share's point: at or before the database's
        return {"database_snapshot": args.snapshot}
    if aws.region != source.region:
        raise RestoreError(f"--time/--latest restore in {source.region} only; in {aws.region} give --snapshot (a copy there)")
    identifier = names.resource_name(source.name_prefix, "db")
    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise RestoreError(f"RDS instance {identifier} not found: give --snapshot (its final snapshot or a recovery point)") from None
    if args.time:
        latest = instance.get("LatestRestorableTime")
        if latest and args.time > latest:
            raise RestoreError(f"--time {args.time:%FT%TZ} is after {identifier}'s latest restorable time {latest:%FT%TZ}")
        return {"database_source": identifier, "database_time": args.time}
    return {"database_source": identifier}


def find_snapshot(rds, identifier: str) -> dict | None:
    """The snapshot, whichever kind: DescribeDBSnapshots finds an automated or AWS Backup snapshot only when asked for
    its type (rds/latest/APIReference/API_DescribeDBSnapshots.html)."""
    for kind in ("manual", "awsbackup", "automated"):
        try:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=identifier, SnapshotType=kind)["DBSnapshots"]
        except rds.exceptions.DBSnapshotNotFoundFault:
            continue
        if found:
            return found[0]
    return None


def share_point(aws: Aws, source: Settings, args: argparse.Namespace) -> str | None:
    """The share's recovery point: the one given, or the newest completed one (at or before --time)."""
    if not source.uses_efs or args.no_share:
        return None
    if args.share_point:
        return args.share_point
    backup, token = aws.client("backup"), names.resource_name(source.name_prefix, "share")
    systems = []
    if aws.region == source.region:
        systems = aws.client("efs").describe_file_systems(CreationToken=token)["FileSystems"]
    if systems:
        pages = backup.get_paginator("list_recovery_points_by_resource").paginate(ResourceArn=systems[0]["FileSystemArn"])
        points = [p for page in pages for p in page["RecoveryPoints"]]
    else:  # a lost region: the copies in this region's vault
        pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=source.name_prefix, ByResourceType="EFS"
        )
        try:
            points = [p for page in pages for p in page["RecoveryPoints"]]
        except backup.exceptions.ResourceNotFoundException:  # no vault of the source's here: no point either
            points = []
    done = [p for p in points if p.get("Status") == "COMPLETED" and (not args.time or p["CreationDate"] <= args.time)]
    if not done:
        raise RestoreError(f"no completed recovery point of {token} in {aws.region}: give --share-point, or --no-share")
    return max(done, key=lambda p: p["CreationDate"])["RecoveryPointArn"]


# 2. the target's settings ---------------------------------------------------------------------------------------------
def target_settings_text(
    source_text: str, source_name: str, args: argparse.Namespace, restore: dict, decrypt_key_arns: Sequence[str] = ()
) -> str:
    """The source's settings as the target's: its own name prefix (and region), the [restore] table, the keys of the
    source's secrets added to the keys the nodes may decrypt with. Never the source's state object (state.key), and no
    Route 53 record of its own: the public name's record is the source's (creating it again fails), switched by hand."""
    data = tomllib.loads(source_text)
    data["name_prefix"] = args.prefix or f"{data['name_prefix'][:20].rstrip('-')}-r{args.generation}"
    data.get("state", {}).pop("key", None)  # the target's state: wso2-apim-active-active/<target>.tfstate
    data.get("load_balancer", {}).pop("route53_zone", None)
    if decrypt_key_arns:
        encryption = data.setdefault("encryption", {})
        known = list(encryption.get("node_decrypt_key_arns", []))
        encryption["node_decrypt_key_arns"] = known + [arn for arn in decrypt_key_arns if arn not in known]
    if args.region:
        data["region"], data["availability_zones"] = args.region, args.zones.split(",")
        backup = data.get("backup", {})
        if backup.get("copy_region") == args.region:  # the source's copies are here: no copy of the target's yet
            backup.pop("copy_region")
            backup.pop("replicate_secrets", None)
    if args.node_host_number is not None:
        data.setdefault("network", {})["node_host_number"] = args.node_host_number
    elif data.get("network", {}).get("subnet_ids"):
        raise RestoreError("the source runs in existing subnets: the restored nodes need other addresses there (--node-host-number)")
    data["restore"] = {k: v for k, v in restore.items() if v is not None}
    header = f"# Written by scripts/restore.py: a restore of {source_name} ({datetime.now(UTC):%FT%TZ}).\n"
    return header + tomli_w.dumps(data)


def plan(args: argparse.Namespace) -> Plan:
    folder = environments_dir()
    source_path, target_path = folder / f"{args.source}.toml", folder / f"{args.target}.toml"
    if not source_path.exists():
        raise RestoreError(f"{source_path}: no such environment")
    if target_path.exists():
        raise RestoreError(f"{target_path} exists: a restore goes into a new environment (never over a running one)")
    source_text = source_path.read_text()
    source = parse_settings(tomllib.loads(source_text), str(source_path))
    aws = Aws(source, region=args.region)
    database = database_source(aws, source, args)
    secrets, keys = source_secrets(aws, source)
    restore = {
        "source_prefix": source.name_prefix,
        "generation": args.generation,
        **database,
        "share": source.uses_efs and not args.no_share,
        "secrets": secrets,
    }
    point = share_point(aws, source, args)
    if point:
        restore["share_recovery_point"] = point
    text = target_settings_text(source_text, args.source, args, restore, keys)
    try:
        target = parse_settings(tomllib.loads(text), str(target_path))
    except SettingsError as error:
        raise RestoreError(str(error)) from None
    if point and not target.backup.plan:
        raise RestoreError("the share is restored with the target's AWS Backup role: the target needs backup.plan (or --no-share)")
    found = [f"{k}: {v}" for k, v in restore.items() if k not in ("secrets",)] + [f"secret {k}: {v}" for k, v in restore["secrets"].items()]
    found += [f"the secrets' key (the nodes may decrypt with it): {key}" for key in keys]
    return Plan(args.source, args.target, text, target, point, [*found, f"share recovery point: {point or '(none)'}"])


# 4-6. after the deploy ------------------------------------------------------------------------------------------------
def restore_share(backup, ssm, outputs: dict, settings: Settings, point: str, wait_seconds: float) -> str:
    """AWS Backup restores the point into the target's file system (under aws-backup-restore_<time>/); then the
    nodes are told ("failed": they stop waiting). Returns the job's id. One job per target and point: a re-run
    (--resume) gets the same job back (IdempotencyToken), not a second copy of the share."""
    job = backup.start_restore_job(
        RecoveryPointArn=point,
        IamRoleArn=outputs[names.OUTPUT_BACKUP_ROLE],
        ResourceType="EFS",
        IdempotencyToken=f"{settings.name_prefix}-{point.rsplit(':', 1)[-1]}"[:64],
        Metadata={"file-system-id": outputs[names.OUTPUT_EFS_ID], "newFileSystem": "false"},
    )["RestoreJobId"]
    deadline = time.monotonic() + wait_seconds
    while True:
        state = backup.describe_restore_job(RestoreJobId=job)
        if state["Status"] == "COMPLETED":
            break
        if state["Status"] in ("ABORTED", "FAILED"):
            signal(ssm, settings, FAILED)
            raise RestoreError(f"share restore job {job}: {state['Status']} {state.get('StatusMessage', '')}".strip())
        if time.monotonic() > deadline:
            raise RestoreError(f"share restore job {job} still {state['Status']}: run restore.py with --resume later (the same job)")
        time.sleep(JOB_POLL_SECONDS)
    signal(ssm, settings, RESTORED)
    return job


def signal(ssm, settings: Settings, value: str) -> None:
    ssm.put_parameter(
        Name=names.restore_share_parameter(settings.name_prefix),
        Value=value,
        Type="SecureString",
        KeyId=f"alias/{settings.name_prefix}",  # the target's stack key, as Terraform made the parameter
        Overwrite=True,
    )


def wait_healthy(elbv2, outputs: dict, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        states = [
            t["TargetHealth"]["State"]
            for arn in outputs[names.OUTPUT_TARGET_GROUPS].values()
            for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        ]
        if states and all(s == "healthy" for s in states):
            return
        if time.monotonic() > deadline:
            raise RestoreError(f"the restored pair is not healthy after {wait_seconds:.0f}s: {states}")
        time.sleep(HEALTH_POLL_SECONDS)


def deploy(target: str, outputs_file: Path, resume: str = "scripts/restore.py <source> <target> --resume") -> dict:
    from scripts.commands import CommandFailed, run
    from scripts.local_stack import tool_env

    try:
        run(
            ["npx", "--no-install", "cdktf", "deploy", target, "--auto-approve", "--outputs-file", str(outputs_file)],
            timeout=6 * 3600,
            cwd=ROOT,
            env=tool_env(),
        )
    except CommandFailed as error:
        raise RestoreError(f"{error}\nmend, then: {resume}") from None
    return json.loads(outputs_file.read_text())[target]


def timed(steps: list[Step], name: str, action: Callable[[], object]) -> object:
    print(f"== {len(steps) + 1}. {name}", flush=True)
    started = time.monotonic()
    result = action()
    steps.append(Step(name, time.monotonic() - started))
    print(f"   done in {steps[-1].seconds:.0f}s", flush=True)
    return result


def run(args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    target_path = environments_dir() / f"{args.target}.toml"
    if args.resume:  # after --write-only (the file edited), or a step that failed: from the deploy on
        settings = timed(steps, f"read {target_path}", lambda: resumed_settings(target_path))
        assert isinstance(settings, Settings) and settings.restore is not None
        point = settings.restore.share_recovery_point if settings.restore.share else None
        if settings.restore.share and not point:
            raise RestoreError(f"{target_path}: restore.share is on but no restore.share_recovery_point names what to restore")
    else:
        found = timed(steps, f"find what to restore from ({args.source})", lambda: plan(args))
        assert isinstance(found, Plan)
        for line in found.found:
            print(f"   {line}")
        if args.dry_run:
            print(f"\n--dry-run: would write {target_path}:\n\n{found.settings_text}")
            print("then: deploy it, restore the share into its file system, signal the nodes, wait for health, deploy again")
            return steps
        timed(steps, f"write {target_path}", lambda: target_path.write_text(found.settings_text))
        if args.write_only:
            print(f"\n--write-only: edit {target_path} if needed, then: scripts/restore.py {args.source} {args.target} --resume")
            return steps
        settings, point = found.target_settings, found.share_point
    outputs_file = args.outputs_file or ROOT / f"{args.target}-outputs.json"
    resume = f"scripts/restore.py {args.source} {args.target} --resume"
    outputs = timed(
        steps, f"cdktf deploy {args.target} (the database restored by Terraform)", lambda: deploy(args.target, outputs_file, resume)
    )
    assert isinstance(outputs, dict) and settings.restore is not None
    aws, wait = Aws(settings), settings.restore.share_wait_minutes * 60
    if point:
        timed(steps, "restore the share into the target's file system, tell the nodes",
              lambda: restore_share(aws.client("backup"), aws.client("ssm"), outputs, settings, point, wait))  # fmt: skip
    timed(steps, "wait until both nodes are healthy in every target group", lambda: wait_healthy(aws.client("elbv2"), outputs, wait))
    print(f"   the pair serves: {sum(s.seconds for s in steps):.0f}s since the start (the restore's time to recover)")
    timed(
        steps,
        f"cdktf deploy {args.target} again (what RDS's restore call does not take)",
        lambda: deploy(args.target, outputs_file, resume),
    )
    return steps


def resumed_settings(path: Path) -> Settings:
    if not path.exists():
        raise RestoreError(f"{path}: no such environment to resume (run without --resume first)")
    try:
        settings = parse_settings(tomllib.loads(path.read_text()), str(path))
    except SettingsError as error:
        raise RestoreError(str(error)) from None
    if settings.restore is None:
        raise RestoreError(f"{path} has no [restore] table: not a restore")
    return settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the environment restored from (environments/<source>.toml)")
    parser.add_argument("target", help="the new environment (environments/<target>.toml must not exist)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--latest", action="store_true", help="the database's latest restorable time, the newest share point")
    when.add_argument("--time", type=_utc, help="restore to this time (UTC, ISO 8601)")
    when.add_argument("--snapshot", help="restore the database from this RDS snapshot (a daily recovery point, or its copy)")
    share = parser.add_mutually_exclusive_group()
    share.add_argument("--share-point", help="the share's recovery point ARN (default: the newest at or before --time)")
    share.add_argument("--no-share", action="store_true", help="no share to restore (the nodes seed it from the distribution)")
    parser.add_argument("--region", help="restore into this region (a lost region: with --snapshot and --zones)")
    parser.add_argument("--zones", help="with --region: its two availability zones, comma-separated")
    parser.add_argument("--prefix", help="the target's name_prefix (default: the source's with -r<generation>)")
    parser.add_argument("--node-host-number", type=int, help="the nodes' host number (required in the source's subnets)")
    parser.add_argument("--generation", type=int, default=1, help="restore number (raise it for a restore of a restore)")
    parser.add_argument("--outputs-file", type=Path, help="where cdktf deploy writes the target's outputs")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the settings file; change nothing")
    parser.add_argument("--write-only", action="store_true", help="write the target's settings and stop (edit, then --resume)")
    parser.add_argument("--resume", action="store_true", help="go on from the deploy with the target's settings as written")
    args = parser.parse_args(argv)
    if not args.resume and not (args.latest or args.time or args.snapshot):
        parser.error("one of --latest, --time, --snapshot is required (or --resume)")
    if bool(args.region) != bool(args.zones):
        parser.error("--region and --zones go together")
    return args


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        steps = run(args)
    except RestoreError as error:
        print(f"restore.py: {error}", file=sys.stderr)
        return 1
    if steps:
        print("\nstep  seconds  what")
        for number, step in enumerate(steps, start=1):
            print(f"{number:>4}  {step.seconds:7.0f}  {step.name}")
        print(f"      {sum(s.seconds for s in steps):7.0f}  in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
