"""scripts/restore.py against the real local AWS emulator (one moto server on a free loopback port for the module): the
plan it finds for a restore of `local` (its database, the secrets its pair generated and their key; for a restore of
a restore, the secrets its [restore] names), the settings file it would write (printed by --dry-run, nothing written,
and valid settings; the share's recovery point recorded), what it refuses before anything is created, its share step
(a STAND-IN for AWS Backup's restore job, the emulator's real SSM parameter: "restored", or "failed"), the snapshot
and share point it finds (STAND-INs for RDS's and AWS Backup's listings), and --write-only then --resume (the deploy
and the steps after it stood in)."""

from __future__ import annotations

import argparse
import copy
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from apim_active_active import names
from apim_active_active.constructs.restore_signal import FAILED
from apim_active_active.settings import parse_settings
from scripts import restore
from scripts.local_stack import client
from tests.conftest import ENVIRONMENTS, local_settings_dict
from tests.helpers import RESTORED_PREFIX, restored_local, restored_local_dict

SOURCE = "apim-local"
SECRETS = {"admin_arn": "apim-admin", "keystore_arn": "keystore", "database_app_arn": "database-app"}


def _source(url: str, prefix: str, secrets: tuple[str, ...]) -> dict:
    """What the source's deploy and first boot leave in the account: its key, the generated secrets (under that key),
    its RDS instance. The ARNs by [restore.secrets] key, and the key's ARN."""
    key = client("kms", url).create_key(Description=f"{prefix}: stack key")["KeyMetadata"]
    client("kms", url).create_alias(AliasName=f"alias/{prefix}", TargetKeyId=key["KeyId"])
    manager = client("secretsmanager", url)
    arns = {k: manager.create_secret(Name=f"{prefix}/{SECRETS[k]}", KmsKeyId=key["Arn"])["ARN"] for k in secrets}
    _database(url, f"{prefix}-db")
    return {"secrets": arns, "key": key["Arn"]}


def _database(url: str, identifier: str) -> None:
    """An RDS instance as the stack makes it (its master password managed by RDS)."""
    client("rds", url).create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="mysql",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=20,
        MasterUsername="wso2admin",
        ManageMasterUserPassword=True,
    )


@pytest.fixture(scope="module")
def source(emulator) -> dict:
    return _source(emulator, SOURCE, tuple(SECRETS))


@pytest.fixture()
def folder(tmp_path, monkeypatch, emulator) -> Path:
    """APIM_ENVIRONMENTS_DIR: a copy of environments/local.toml only; the emulator's address for the scripts."""
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "local.toml").write_text((ENVIRONMENTS / "local.toml").read_text())
    monkeypatch.setenv("APIM_ENVIRONMENTS_DIR", str(environments))
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator)
    return environments


def _printed_settings(out: str, path: Path) -> str:
    head = f"--dry-run: would write {path}:\n\n"
    assert head in out, out
    return out.split(head, 1)[1].split("\nthen: deploy it", 1)[0]


def test_dry_run_prints_the_plan_and_valid_settings_and_writes_nothing(folder, source, capsys):
    assert restore.main(["local", "local-r1", "--latest", "--dry-run", "--no-share"]) == 0
    out = capsys.readouterr().out
    for line in (
        f"database_source: {SOURCE}-db",
        "share: False",
        *(f"secret {key}: {arn}" for key, arn in source["secrets"].items()),
        f"the secrets' key (the nodes may decrypt with it): {source['key']}",
        "share recovery point: (none)",
    ):
        assert f"   {line}\n" in out, f"{line!r} not in:\n{out}"
    text = _printed_settings(out, folder / "local-r1.toml")
    assert text.startswith("# Written by scripts/restore.py: a restore of local (")
    target = parse_settings(tomllib.loads(text), "local-r1.toml", environ={})
    assert target.name_prefix == f"{SOURCE}-r1" == RESTORED_PREFIX
    assert target.restore is not None and (target.restore.source_prefix, target.restore.generation) == (SOURCE, 1)
    assert (target.restore.database_source, target.restore.database_time, target.restore.share) == (f"{SOURCE}-db", None, False)
    assert target.restore.secrets.model_dump(exclude_none=True) == source["secrets"]
    # The nodes may decrypt the source's secrets; the public name's record stays the source's (created twice, it fails).
    assert target.encryption.node_decrypt_key_arns == (source["key"],)
    assert target.load_balancer.route53_zone is None and target.apim.hostname == "apim.local.test"
    assert sorted(p.name for p in folder.iterdir()) == ["local.toml"], "--dry-run writes nothing"
    assert "find what to restore from (local)" in out and "in all" in out


def test_a_point_in_time_is_checked_against_the_latest_restorable_time(folder, source, emulator, capsys):
    (instance,) = client("rds", emulator).describe_db_instances(DBInstanceIdentifier=f"{SOURCE}-db")["DBInstances"]
    latest = instance.get("LatestRestorableTime")
    assert latest is not None, "moto answers LatestRestorableTime (else this case cannot be checked)"
    later = (latest + timedelta(hours=1)).astimezone(UTC)
    assert restore.main(["local", "local-r1", "--time", later.strftime("%Y-%m-%dT%H:%M:%SZ"), "--dry-run", "--no-share"]) == 1
    err = capsys.readouterr().err
    # (moto answers the time of each describe as the latest restorable time: a second later here than above, maybe.)
    assert re.search(rf"--time {later:%FT%TZ} is after {SOURCE}-db's latest restorable time 20\d\d-\d\d-\d\dT[\d:]{{8}}Z$", err), err
    earlier = (latest - timedelta(minutes=5)).astimezone(UTC).replace(microsecond=0)
    assert restore.main(["local", "local-r1", "--time", earlier.isoformat(), "--dry-run", "--no-share"]) == 0
    target = parse_settings(tomllib.loads(_printed_settings(capsys.readouterr().out, folder / "local-r1.toml")), environ={})
    assert target.restore.database_time == earlier and target.restore.database_source == f"{SOURCE}-db"


def test_an_existing_target_is_refused_naming_it(folder, source, capsys):
    (folder / "local-r1.toml").write_text("# the running one\n")
    assert restore.main(["local", "local-r1", "--latest", "--dry-run", "--no-share"]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'local-r1.toml'} exists: a restore goes into a new environment" in err
    assert (folder / "local-r1.toml").read_text() == "# the running one\n"


def test_a_missing_secret_is_named(folder, emulator, capsys):
    _source(emulator, "apim-other", ("admin_arn",))  # its first boot never wrote the keystore, say
    (folder / "other.toml").write_text(
        (folder / "local.toml").read_text().replace('name_prefix = "apim-local"', 'name_prefix = "apim-other"')
    )
    assert restore.main(["other", "other-r1", "--latest", "--dry-run", "--no-share"]) == 1
    err = capsys.readouterr().err
    assert "secret apim-other/keystore not found in us-east-1: a restore reads the source's secrets" in err
    assert sorted(p.name for p in folder.iterdir()) == ["local.toml", "other.toml"]


def test_another_region_needs_a_snapshot(folder, source, capsys):
    argv = ["local", "local-r1", "--latest", "--region", "us-west-2", "--zones", "us-west-2a,us-west-2b", "--dry-run", "--no-share"]
    assert restore.main(argv) == 1
    assert "--time/--latest restore in us-east-1 only; in us-west-2 give --snapshot (a copy there)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        restore.main(["local", "local-r1", "--latest", "--region", "us-west-2", "--dry-run"])
    assert refused.value.code == 2 and "--region and --zones go together" in capsys.readouterr().err


# The target's settings, from the source's text (no emulator) -----------------------------------------------------------
def _args(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"prefix": None, "generation": 1, "region": None, "zones": None, "node_host_number": None, **given})


def test_a_lost_regions_settings_drop_what_the_source_kept_there():
    """prod restored into its copy region (a lost region): no copy into the region itself, no Route 53 record twice,
    never the source's state object; the source's key and its copy-region key both decryptable."""
    prod = (
        (ENVIRONMENTS / "prod.toml")
        .read_text()
        .replace('lock_table = "example-apim-terraform-locks"', 'lock_table = "example-apim-terraform-locks"\nkey = "prod/apim.tfstate"')
    )
    assert parse_settings(tomllib.loads(prod), environ={}).state.key == "prod/apim.tfstate"
    secrets = {k: f"arn:aws:secretsmanager:eu-central-1:123456789012:secret:apim-prod/{v}-Ab12Cd" for k, v in SECRETS.items()}
    keys = ["arn:aws:kms:eu-central-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"]
    restored = {
        "source_prefix": "apim-prod",
        "generation": 2,
        "database_snapshot": "arn:aws:rds:eu-central-1:123456789012:snapshot:awsbackup:job-1",
    }
    args = _args(generation=2, region="eu-central-1", zones="eu-central-1a,eu-central-1b")
    text = restore.target_settings_text(prod, "prod", args, {**restored, "share": True, "secrets": secrets}, keys)
    target = parse_settings(tomllib.loads(text), environ={})
    assert (target.name_prefix, target.region, target.availability_zones) == (
        "apim-prod-r2",
        "eu-central-1",
        ("eu-central-1a", "eu-central-1b"),
    )
    assert target.backup.copy_region is None and target.backup.replicate_secrets is False
    assert target.state.key is None and target.state.state_key("prod-r2") == "wso2-apim-active-active/prod-r2.tfstate"
    assert target.load_balancer.route53_zone is None and target.encryption.node_decrypt_key_arns == tuple(keys)
    assert target.restore.database_snapshot == restored["database_snapshot"] and target.restore.generation == 2


def test_the_decrypt_keys_are_added_to_the_sources_own_once():
    source = (
        (ENVIRONMENTS / "local.toml")
        .read_text()
        .replace("[encryption]\n", '[encryption]\nnode_decrypt_key_arns = ["arn:aws:kms:us-east-1:210987654321:key/aa"]\n')
    )
    keys = ["arn:aws:kms:us-east-1:123456789012:key/bb", "arn:aws:kms:us-east-1:210987654321:key/aa"]
    text = restore.target_settings_text(
        source, "local", _args(), {"source_prefix": SOURCE, "database_source": f"{SOURCE}-db", "share": False, "secrets": {}}, keys
    )
    assert tomllib.loads(text)["encryption"]["node_decrypt_key_arns"] == ["arn:aws:kms:us-east-1:210987654321:key/aa", keys[0]]


def test_existing_subnets_need_other_node_addresses():
    with pytest.raises(restore.RestoreError, match="--node-host-number"):
        restore.target_settings_text((ENVIRONMENTS / "legacy32.toml").read_text(), "legacy32", _args(), {})
    text = restore.target_settings_text((ENVIRONMENTS / "legacy32.toml").read_text(), "legacy32", _args(node_host_number=30), {})
    assert tomllib.loads(text)["network"]["node_host_number"] == 30


# The share step ------------------------------------------------------------------------------------------------------
class BackupStandIn:
    """STAND-IN for AWS Backup's StartRestoreJob and DescribeRestoreJob, which the emulator (moto) lacks: records the
    request, and answers the job's states in turn (the last one again; bounded, so a loop that never ends fails)."""

    def __init__(self, *states: str, message: str = "") -> None:
        self.states, self.message = list(states), message
        self.started: list[dict] = []
        self.described = 0

    def start_restore_job(self, **request) -> dict:
        self.started.append(request)
        return {"RestoreJobId": "job-1"}

    def describe_restore_job(self, RestoreJobId: str) -> dict:  # noqa: N803 (boto3's name)
        assert RestoreJobId == "job-1"
        self.described += 1
        assert self.described < 100, "polled without end"
        state = self.states[min(self.described, len(self.states)) - 1]
        return {"RestoreJobId": RestoreJobId, "Status": state, **({"StatusMessage": self.message} if self.message else {})}


OUTPUTS = {
    names.OUTPUT_BACKUP_ROLE: f"arn:aws:iam::123456789012:role/{RESTORED_PREFIX}-backup",
    names.OUTPUT_EFS_ID: "fs-0123456789abcdef0",
}
POINT = "arn:aws:backup:us-east-1:123456789012:recovery-point:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


class RecordedSsm:
    """The emulator's SSM client, each put_parameter request recorded (moto keeps a parameter's key when a put
    overwrites it without one; AWS does not: the request itself is checked)."""

    def __init__(self, ssm) -> None:
        self.ssm, self.puts = ssm, []

    def put_parameter(self, **request) -> dict:
        self.puts.append({k: v for k, v in request.items() if k != "Value"})
        return self.ssm.put_parameter(**request)

    def __getattr__(self, name: str):
        return getattr(self.ssm, name)


@pytest.fixture()
def signal(emulator, monkeypatch):
    """The target's restore parameter as Terraform makes it (SecureString under the stack key, "waiting")."""
    monkeypatch.setattr(restore, "JOB_POLL_SECONDS", 0)
    kms, ssm = client("kms", emulator), client("ssm", emulator)
    if not any(a["AliasName"] == f"alias/{RESTORED_PREFIX}" for a in kms.list_aliases()["Aliases"]):
        kms.create_alias(AliasName=f"alias/{RESTORED_PREFIX}", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    name = names.restore_share_parameter(RESTORED_PREFIX)
    ssm.put_parameter(Name=name, Value="waiting", Type="SecureString", KeyId=f"alias/{RESTORED_PREFIX}", Overwrite=True)

    def value() -> tuple[str, str]:
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        return parameter["Value"], parameter["Type"]

    return RecordedSsm(ssm), value


# What restore.py's put_parameter asks: the target's parameter, a SecureString under the target's stack key (as
# Terraform made it), overwritten.
PUT = {
    "Name": names.restore_share_parameter(RESTORED_PREFIX),
    "Type": "SecureString",
    "KeyId": f"alias/{RESTORED_PREFIX}",
    "Overwrite": True,
}


def test_the_share_is_restored_into_the_targets_file_system_then_the_nodes_are_told(signal):
    ssm, value = signal
    backup = BackupStandIn("RUNNING", "RUNNING", "COMPLETED")
    assert restore.restore_share(backup, ssm, OUTPUTS, restored_local(), POINT, 60) == "job-1"
    assert backup.started == [
        {
            "RecoveryPointArn": POINT,
            "IamRoleArn": OUTPUTS[names.OUTPUT_BACKUP_ROLE],
            "ResourceType": "EFS",
            # One job per target and point: a --resume gets the same job back, not a second copy of the share.
            "IdempotencyToken": f"{RESTORED_PREFIX}-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
            "Metadata": {"file-system-id": OUTPUTS[names.OUTPUT_EFS_ID], "newFileSystem": "false"},
        }
    ]
    assert backup.described == 3
    assert value() == ("restored", "SecureString")
    assert ssm.puts == [PUT]


@pytest.mark.parametrize("state", ["FAILED", "ABORTED"])
def test_a_failed_share_restore_tells_the_nodes_it_failed(signal, state):
    """The nodes stop waiting at once ("failed"), rather than for restore.share_wait_minutes."""
    ssm, value = signal
    backup = BackupStandIn("RUNNING", state, message="Access denied to the file system")
    with pytest.raises(restore.RestoreError, match=f"share restore job job-1: {state} Access denied to the file system"):
        restore.restore_share(backup, ssm, OUTPUTS, restored_local(), POINT, 60)
    assert value() == (FAILED, "SecureString") and FAILED == "failed"  # the boot step's word (restore-share.sh)
    assert ssm.puts == [PUT]


def test_a_share_restore_past_its_wait_tells_the_nodes_nothing(signal):
    """Still running: the nodes wait on (the job may yet finish); a --resume later waits for the same job."""
    ssm, value = signal
    with pytest.raises(restore.RestoreError, match="share restore job job-1 still RUNNING: run restore.py with --resume later"):
        restore.restore_share(BackupStandIn("RUNNING"), ssm, OUTPUTS, restored_local(), POINT, 0)
    assert value() == ("waiting", "SecureString") and ssm.puts == []


def test_the_share_restores_token_is_cut_to_what_aws_backup_takes(signal):
    ssm, _ = signal
    backup = BackupStandIn("COMPLETED")
    long_point = f"{POINT.rsplit(':', 1)[0]}:{'f' * 60}"
    restore.restore_share(backup, ssm, OUTPUTS, restored_local(), long_point, 60)
    token = backup.started[0]["IdempotencyToken"]
    assert token == f"{RESTORED_PREFIX}-{'f' * 60}"[:64] and len(token) == 64


def test_a_given_share_point_is_restored_and_the_settings_are_the_restored_local_helpers(folder, source, capsys):
    """restore.py's settings for a restore of local with its share have the shape of tests.helpers.restored_local
    (the synth and boot tests' restored environment); the recovery point is the one given."""
    assert restore.main(["local", "local-r1", "--latest", "--share-point", POINT, "--dry-run"]) == 0
    out = capsys.readouterr().out
    target = parse_settings(tomllib.loads(_printed_settings(out, folder / "local-r1.toml")), environ={})
    assert f"   share recovery point: {POINT}\n" in out and target.restore.share is True
    assert target.restore.share_recovery_point == POINT, "recorded: a --resume restores it"
    helper, other = restored_local(), {"restore", "encryption", "load_balancer", "emulator"}
    assert target.model_dump(exclude=other) == helper.model_dump(exclude=other)
    recorded = {"secrets", "share_recovery_point"}
    assert target.restore.model_dump(exclude=recorded) == helper.restore.model_dump(exclude=recorded)


# The share's recovery point, found (the emulator has no recovery points: AWS Backup's listings stood in for) ----------
class NotFound(Exception):
    pass


class Listing:
    """STAND-IN for boto3's paginators of AWS Backup's ListRecoveryPointsByResource / ByBackupVault (moto has
    neither): the points in one page; or, for a vault that does not exist, AWS's ResourceNotFoundException."""

    def __init__(self, points: list[dict] | None) -> None:
        self.points, self.asked = points, []

    def paginate(self, **request):
        self.asked.append(request)
        if self.points is None:
            raise NotFound(request)
        yield {"RecoveryPoints": self.points}


class Clients:
    """STAND-IN for scripts.ops.Aws: the source's file system (or none), its recovery points by resource and by vault."""

    def __init__(self, region: str, systems: list[dict], by_resource: list[dict], by_vault: list[dict] | None) -> None:
        self.region = region
        self.listings = {
            "list_recovery_points_by_resource": Listing(by_resource),
            "list_recovery_points_by_backup_vault": Listing(by_vault),
        }
        backup = argparse.Namespace(
            get_paginator=self.listings.__getitem__, exceptions=argparse.Namespace(ResourceNotFoundException=NotFound)
        )
        self.tokens: list[str] = []

        def describe_file_systems(CreationToken: str) -> dict:  # noqa: N803 (boto3's name)
            self.tokens.append(CreationToken)
            return {"FileSystems": [s for s in systems if s["CreationToken"] == CreationToken]}

        efs = argparse.Namespace(describe_file_systems=describe_file_systems)
        self.clients = {"backup": backup, "efs": efs}

    def client(self, service: str):
        return self.clients[service]


def _point(name: str, hour: int, status: str = "COMPLETED") -> dict:
    return {"RecoveryPointArn": name, "Status": status, "CreationDate": datetime(2026, 11, 27, hour, tzinfo=UTC)}


SHARE = {"CreationToken": "apim-local-share", "FileSystemArn": "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-1"}
POINTS = [_point("p03", 3), _point("p09", 9), _point("p11", 11), _point("p12", 12, "PARTIAL")]


@pytest.mark.parametrize("at, expected", [(None, "p11"), (datetime(2026, 11, 27, 10, tzinfo=UTC), "p09")])
def test_the_shares_point_is_the_newest_completed_at_or_before_the_time(at, expected):
    local = parse_settings(tomllib.loads((ENVIRONMENTS / "local.toml").read_text()), environ={})
    aws = Clients("us-east-1", [{"CreationToken": "apim-other-share"}, SHARE], POINTS, None)
    assert restore.share_point(aws, local, argparse.Namespace(no_share=False, share_point=None, time=at)) == expected
    assert aws.tokens == ["apim-local-share"], "the source's file system, asked for by its creation token"
    assert aws.listings["list_recovery_points_by_resource"].asked == [{"ResourceArn": SHARE["FileSystemArn"]}]


def test_a_lost_regions_share_point_is_its_copy_and_none_is_refused_naming_the_share():
    local = parse_settings(tomllib.loads((ENVIRONMENTS / "local.toml").read_text()), environ={})
    args = argparse.Namespace(no_share=False, share_point=None, time=None)
    copies = Clients("us-west-2", [SHARE], [], [_point("copy", 4)])
    assert restore.share_point(copies, local, args) == "copy"
    assert copies.listings["list_recovery_points_by_backup_vault"].asked == [{"BackupVaultName": SOURCE, "ByResourceType": "EFS"}]
    for aws in (Clients("us-west-2", [], [], None), Clients("us-east-1", [SHARE], [_point("p", 3, "EXPIRED")], None)):
        with pytest.raises(
            restore.RestoreError, match=f"no completed recovery point of apim-local-share in {aws.region}: give --share-point"
        ):
            restore.share_point(aws, local, args)


# A restore of a restore, a database restore.py does not own, a snapshot --------------------------------------------
def test_a_restore_of_a_restore_reads_the_secrets_its_restore_names(folder, emulator, capsys):
    """local-r1 (itself a restore of local) restored again: its pair generated no secret of its own (no
    apim-local-r1/apim-admin ...): the target reads what local-r1's [restore.secrets] names, under their key."""
    kms = client("kms", emulator)
    key = kms.create_key(Description="apim-first: stack key")["KeyMetadata"]
    manager = client("secretsmanager", emulator)
    named = {k: manager.create_secret(Name=f"apim-first/{SECRETS[k]}", KmsKeyId=key["KeyId"])["ARN"] for k in SECRETS}
    _database(emulator, f"{RESTORED_PREFIX}-db")
    (folder / "local-r1.toml").write_text(tomli_w.dumps(restored_local_dict(secrets=named)))
    assert restore.main(["local-r1", "local-r2", "--latest", "--generation", "2", "--no-share", "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    target = parse_settings(tomllib.loads(_printed_settings(out, folder / "local-r2.toml")), environ={})
    assert target.name_prefix == f"{RESTORED_PREFIX}-r2" and target.restore.source_prefix == RESTORED_PREFIX
    assert target.restore.secrets.model_dump(exclude_none=True) == named
    assert target.restore.database_source == f"{RESTORED_PREFIX}-db" and target.restore.generation == 2
    assert target.encryption.node_decrypt_key_arns == (key["Arn"],), "the key ARN, though the secrets name its id"


class Refuses:
    """STAND-IN for scripts.ops.Aws where nothing may be asked of AWS."""

    region = "us-east-1"

    def client(self, service: str):
        raise AssertionError(f"asked {service}")


def test_a_source_with_an_existing_database_is_refused_naming_it():
    data = copy.deepcopy(local_settings_dict())
    data["database"]["existing"] = {
        "host": "db.example.internal",
        "port": 3306,
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared-db-AbCdEf",
        "cidr": "10.50.0.0/24",
    }
    source = parse_settings(data, environ={})
    with pytest.raises(restore.RestoreError) as refused:
        restore.database_source(Refuses(), source, argparse.Namespace(snapshot=None, time=None))
    assert str(refused.value).startswith("apim-local uses database.existing (db.example.internal): its owner restores it.")


class SnapshotNotFound(Exception):
    pass


class Snapshots:
    """STAND-IN for RDS's DescribeDBSnapshots: finds a snapshot only when asked for its type (as RDS does for an
    automated or AWS Backup snapshot); records what it was asked."""

    def __init__(self, kinds: dict[str, dict]) -> None:
        self.kinds, self.asked = kinds, []
        self.exceptions = argparse.Namespace(DBSnapshotNotFoundFault=SnapshotNotFound)

    def describe_db_snapshots(self, DBSnapshotIdentifier: str, SnapshotType: str) -> dict:  # noqa: N803 (boto3's names)
        self.asked.append((DBSnapshotIdentifier, SnapshotType))
        if SnapshotType not in self.kinds:
            raise SnapshotNotFound(SnapshotType)
        return {"DBSnapshots": [self.kinds[SnapshotType]]}


class SnapshotClients(Clients):
    def __init__(self, rds: Snapshots) -> None:
        super().__init__("us-east-1", [SHARE], POINTS, None)
        self.clients["rds"] = rds


SNAPSHOT_ID = "awsbackup:job-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


@pytest.mark.parametrize("kind", ["manual", "awsbackup", "automated"])
def test_a_snapshot_of_any_kind_is_found_and_the_share_point_is_the_newest_at_or_before_it(kind):
    taken = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    rds = Snapshots({kind: {"DBSnapshotIdentifier": SNAPSHOT_ID, "SnapshotType": kind, "SnapshotCreateTime": taken}})
    aws = SnapshotClients(rds)
    local = parse_settings(local_settings_dict(), environ={})
    args = argparse.Namespace(snapshot=SNAPSHOT_ID, time=None, no_share=False, share_point=None)
    assert restore.database_source(aws, local, args) == {"database_snapshot": SNAPSHOT_ID}
    kinds = ["manual", "awsbackup", "automated"]
    assert rds.asked == [(SNAPSHOT_ID, k) for k in kinds[: kinds.index(kind) + 1]]
    assert args.time == taken, "the share's point: at or before the database's"
    assert restore.share_point(aws, local, args) == "p09"  # p11 is newer than the snapshot


def test_a_snapshot_not_found_is_refused_naming_it():
    rds = Snapshots({})
    local = parse_settings(local_settings_dict(), environ={})
    with pytest.raises(restore.RestoreError, match=f"RDS snapshot {SNAPSHOT_ID} not found in us-east-1"):
        restore.database_source(SnapshotClients(rds), local, argparse.Namespace(snapshot=SNAPSHOT_ID, time=None))
    assert [k for _, k in rds.asked] == ["manual", "awsbackup", "automated"]


def test_the_default_target_prefix_never_ends_in_a_double_dash():
    source = (ENVIRONMENTS / "local.toml").read_text().replace('name_prefix = "apim-local"', 'name_prefix = "apim-production-euw-1"')
    restored = {"source_prefix": "apim-production-euw-1", "database_source": "apim-production-euw-1-db", "share": False}
    text = restore.target_settings_text(source, "local", _args(generation=3), {**restored, "secrets": {}})
    assert tomllib.loads(text)["name_prefix"] == "apim-production-euw-r3"  # its first 20: "apim-production-euw-"
    short = restore.target_settings_text((ENVIRONMENTS / "local.toml").read_text(), "local", _args(), {})
    assert tomllib.loads(short)["name_prefix"] == "apim-local-r1"


def test_a_share_point_without_the_targets_backup_plan_is_refused_before_anything_is_written(folder, source, capsys):
    """The share is restored with the target's AWS Backup role, which backup.plan = false does not make."""
    local = folder / "local.toml"
    local.write_text(local.read_text().replace("[backup]\n", "[backup]\nplan = false\n"))
    assert restore.main(["local", "local-r1", "--latest", "--share-point", POINT, "--write-only"]) == 1
    err = capsys.readouterr().err
    assert "the share is restored with the target's AWS Backup role: the target needs backup.plan (or --no-share)" in err
    assert sorted(p.name for p in folder.iterdir()) == ["local.toml"]
    assert restore.main(["local", "local-r1", "--latest", "--no-share", "--dry-run"]) == 0, "no share: no role needed"


# --write-only, --resume, a failed deploy -------------------------------------------------------------------------------
OTHER_POINT = "arn:aws:backup:us-east-1:123456789012:recovery-point:9f8e7d6c-5b4a-4938-8271-605f4e3d2c1b"


@pytest.fixture()
def no_deploy(monkeypatch):
    def deploy(target: str, outputs_file: Path, resume: str = "") -> dict:
        raise AssertionError(f"deployed {target}")

    monkeypatch.setattr(restore, "deploy", deploy)


DEPLOYED_OUTPUTS = {**OUTPUTS, names.OUTPUT_TARGET_GROUPS: {"https": "arn:aws:elasticloadbalancing:us-east-1:123456789012:tg/a"}}


def after_the_deploy(monkeypatch) -> list[tuple]:
    """restore.py's steps after the settings, stood in: the deploy (answers the target's outputs), the share's restore
    and the wait for health record what they were given; finding what to restore from fails the test."""
    calls: list[tuple] = []

    def refuse(args):
        raise AssertionError("--resume looked for what to restore from again")

    monkeypatch.setattr(restore, "plan", refuse)
    monkeypatch.setattr(
        restore, "deploy", lambda target, outputs_file, resume: calls.append(("deploy", target, outputs_file)) or DEPLOYED_OUTPUTS
    )
    monkeypatch.setattr(
        restore,
        "restore_share",
        lambda backup, ssm, given, settings, point, wait: calls.append(("restore_share", given, settings.name_prefix, point, wait)),
    )
    monkeypatch.setattr(restore, "wait_healthy", lambda elbv2, given, wait: calls.append(("wait_healthy", given, wait)))
    return calls


def test_write_only_writes_the_settings_and_says_how_to_go_on_then_resume_goes_on_from_the_deploy(
    folder, source, no_deploy, tmp_path, monkeypatch, capsys
):
    assert restore.main(["local", "local-r1", "--latest", "--share-point", POINT, "--write-only"]) == 0
    out = capsys.readouterr().out
    written = folder / "local-r1.toml"
    target = parse_settings(tomllib.loads(written.read_text()), environ={})
    assert target.name_prefix == RESTORED_PREFIX and target.restore.share_recovery_point == POINT
    assert f"--write-only: edit {written} if needed, then: scripts/restore.py local local-r1 --resume" in out
    assert "cdktf deploy" not in out
    # Edited (another point, a shorter wait), then resumed: from the deploy on, with the file as it now is.
    written.write_text(written.read_text().replace(POINT, OTHER_POINT).replace("[restore]\n", "[restore]\nshare_wait_minutes = 30\n"))
    calls = after_the_deploy(monkeypatch)
    outputs_file = tmp_path / "outputs.json"
    assert restore.main(["local", "local-r1", "--resume", "--outputs-file", str(outputs_file)]) == 0, capsys.readouterr().err
    assert calls == [
        ("deploy", "local-r1", outputs_file),
        ("restore_share", DEPLOYED_OUTPUTS, RESTORED_PREFIX, OTHER_POINT, 30 * 60),
        ("wait_healthy", DEPLOYED_OUTPUTS, 30 * 60),
        ("deploy", "local-r1", outputs_file),
    ]
    assert f"read {written}" in capsys.readouterr().out


def test_resume_without_a_share_to_restore_waits_for_health_only(folder, monkeypatch, tmp_path):
    (folder / "local-r1.toml").write_text(tomli_w.dumps(restored_local_dict(share=False)))
    calls = after_the_deploy(monkeypatch)
    assert restore.main(["local", "local-r1", "--resume", "--outputs-file", str(tmp_path / "o.json")]) == 0
    assert [c[0] for c in calls] == ["deploy", "wait_healthy", "deploy"] and calls[1][2] == 720 * 60  # the default wait


def test_resume_needs_the_targets_settings_with_their_restore_table(folder, monkeypatch, capsys):
    calls = after_the_deploy(monkeypatch)
    target = folder / "local-r1.toml"
    assert restore.main(["local", "local-r1", "--resume"]) == 1
    assert f"{target}: no such environment to resume (run without --resume first)" in capsys.readouterr().err
    target.write_text((folder / "local.toml").read_text().replace('name_prefix = "apim-local"', f'name_prefix = "{RESTORED_PREFIX}"'))
    assert restore.main(["local", "local-r1", "--resume"]) == 1
    assert f"{target} has no [restore] table: not a restore" in capsys.readouterr().err
    assert calls == [], "nothing deployed"


def test_resume_refuses_a_share_to_restore_without_its_recovery_point(folder, monkeypatch, capsys):
    import tomli_w

    from tests.helpers import restored_local_dict

    calls = after_the_deploy(monkeypatch)
    data = restored_local_dict()
    data["restore"].pop("share_recovery_point", None)
    (folder / "local-r1.toml").write_text(tomli_w.dumps(data))
    assert restore.main(["local", "local-r1", "--resume"]) == 1
    assert "restore.share is on but no restore.share_recovery_point names what to restore" in capsys.readouterr().err
    assert calls == [], "nothing deployed: the nodes would wait for a share nobody restores"


def test_when_to_restore_to_is_required_unless_resuming(capsys):
    with pytest.raises(SystemExit) as refused:
        restore.main(["local", "local-r1", "--dry-run"])
    assert refused.value.code == 2 and "one of --latest, --time, --snapshot is required (or --resume)" in capsys.readouterr().err


def test_a_failed_deploy_says_how_to_go_on(monkeypatch, tmp_path):
    from scripts import commands

    def fails(argv, **options):
        raise commands.CommandFailed(argv, "exited with status 1", "", "Error: creating RDS DB Instance: InvalidParameterCombination")

    monkeypatch.setattr(commands, "run", fails)
    with pytest.raises(restore.RestoreError) as failed:
        restore.deploy("local-r1", tmp_path / "outputs.json", "scripts/restore.py local local-r1 --resume")
    message = str(failed.value)
    assert "InvalidParameterCombination" in message and "cdktf deploy local-r1" in message
    assert message.endswith("\nmend, then: scripts/restore.py local local-r1 --resume"), message
