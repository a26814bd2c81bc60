"""Settings: every example environment loads; bad settings fail naming the setting, before anything runs."""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Address

import pytest

from apim_active_active.settings import SettingsError, load_environments, parse_settings
from tests.conftest import ENVIRONMENTS, local_settings_dict
from tests.helpers import RESTORED_PREFIX, SOURCE_SECRETS, at_version, restored_local, restored_local_dict, synth_main


def test_examples_load_with_fixed_node_addresses(environments):
    assert set(environments) == {"local", "dev", "legacy32", "prod"}
    local = environments["local"]
    assert [local.network.node_ip(i) for i in (0, 1)] == [IPv4Address("10.0.1.10"), IPv4Address("10.0.2.10")]
    assert local.apim.home == "/opt/wso2/wso2am-4.3.0"
    assert environments["legacy32"].network.node_ip(1) == IPv4Address("172.31.32.20")


def test_only_local_talks_to_the_emulator(environments):
    assert environments["local"].is_local
    assert not any(environments[name].is_local for name in ("dev", "legacy32", "prod"))
    prod = environments["prod"].database
    assert prod.multi_az and prod.deletion_protection and environments["prod"].encryption.secret_recovery_days == 30


def test_endpoint_comes_from_aws_endpoint_url():
    settings = parse_settings(local_settings_dict(), environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:5999"})
    assert settings.emulator.endpoint_url == "http://127.0.0.1:5999"


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    if value is _DELETE:
        del data[leaf]
    else:
        data[leaf] = value


_DELETE = object()

BAD_SETTINGS = [
    # (case, setting to change, new value, words the error must contain)
    ("same zone twice", "availability_zones", ["us-east-1a", "us-east-1a"], ["availability_zones", "same zone twice"]),
    ("zone of another region", "availability_zones", ["us-east-1a", "eu-west-1b"], ["availability_zones", "eu-west-1b"]),
    ("subnet outside the VPC", "network.subnet_cidrs", ["10.0.1.0/24", "10.9.2.0/24"], ["network", "10.9.2.0/24", "outside the VPC"]),
    ("bad CIDR", "network.vpc_cidr", "10.0.0.0/33", ["network.vpc_cidr"]),
    ("overlapping subnets", "network.subnet_cidrs", ["10.0.1.0/24", "10.0.1.128/25"], ["network", "overlap"]),
    ("unknown key", "node.instnce_type", "m6i.large", ["node.instnce_type", "unknown setting"]),
    ("missing required value", "apim.version", _DELETE, ["apim.version", "required"]),
    ("unsupported version", "apim.version", "5.0.0", ["apim", "not supported"]),
    ("JDK the version does not accept", "apim.jdk", 8, ["apim", "jdk 8", "11-21"]),
    ("archive not a zip URL", "apim.archive_url", "ftp://host/x.zip", ["apim.archive_url", "s3://"]),
    ("https archive with a new VPC", "apim.archive_url", "https://h.example/wso2am-4.3.0.zip", ["apim.archive_url", "egress"]),
    ("both AMI id and parameter", "node.ami.id", "ami-0123456789abcdef0", ["node.ami", "exactly one"]),
    ("bad instance type", "node.instance_type", "huge", ["node.instance_type"]),
    ("emulator off loopback", "emulator.endpoint_url", "http://10.1.2.3:4566", ["emulator.endpoint_url", "loopback"]),
    ("new and existing VPC", "network.vpc_id", "vpc-0a1b2c3d4e5f60718", ["network", "not both"]),
    ("node address beyond subnet", "network.node_host_number", 300, ["network", "does not fit"]),
    ("bad name prefix", "name_prefix", "APIM_Local", ["name_prefix"]),
    ("bad region", "region", "mars-1", ["region"]),
    (
        "internet-facing without public subnets",
        "network.public_subnet_cidrs",
        _DELETE,
        ["load_balancer.scheme internet-facing", "public_subnet_cidrs"],
    ),
    (
        "public subnet ids with a new VPC",
        "network.public_subnet_ids",
        ["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
        ["network", "public_subnet_ids are for an existing VPC"],
    ),
    ("public subnet overlapping a node subnet", "network.public_subnet_cidrs", ["10.0.1.128/25", "10.0.102.0/24"], ["network", "overlap"]),
    (
        "two certificates",
        "load_balancer.certificate_arn",
        "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        ["load_balancer", "exactly one of load_balancer.certificate_arn or load_balancer.certificate_domain"],
    ),
    ("TLS 1.0 policy", "load_balancer.ssl_policy", "ELBSecurityPolicy-2016-08", ["load_balancer.ssl_policy", "TLS 1.2+"]),
    ("hostname outside the DNS zone", "apim.hostname", "apim.other.test", ["apim.hostname apim.other.test", "route53_zone"]),
    ("DNS zone without a hostname", "apim.hostname", _DELETE, ["load_balancer.route53_zone needs apim.hostname"]),
    ("external key manager without its address", "key_manager.type", "wso2-is", ["key_manager", "needs url and cidr"]),
    ("key manager over plain HTTP", "key_manager.url", "http://is.example.com", ["key_manager.url"]),
    ("AWS environment without remote state", "emulator", _DELETE, ["state: an AWS environment", "bootstrap_state"]),
    ("state key without .tfstate", "state", {"bucket": "b-state", "region": "us-east-1", "key": "x/y"}, ["state.key"]),
    ("resident key manager with a URL", "key_manager.url", "https://is.example.com", ["key_manager", "external key manager"]),
    ("unknown content sync", "content_sync", "nfs", ["content_sync", "'efs' or 'rsync'"]),
    ("rsync with a shared file system section", "content_sync", "rsync", ["shared_fs", 'content_sync = "rsync" has no shared file system']),
    ("rsync settings with efs", "rsync.interval_seconds", 60, ["rsync: only with content_sync"]),
    ("rsync every second", "rsync", {"interval_seconds": 1}, ["rsync.interval_seconds", "greater than or equal to 15"]),
    (
        "a decrypt key that is not a KMS key ARN",
        "encryption.node_decrypt_key_arns",
        ["alias/artifacts"],
        ["encryption.node_decrypt_key_arns", "'alias/artifacts' is not a KMS key ARN"],
    ),
    ("a keystore valid for a month", "apim.keystore_validity_days", 30, ["apim.keystore_validity_days", "greater than or equal to 365"]),
    (
        "a load balancer idle timeout past ALB's 4000 s",
        "load_balancer.idle_timeout_seconds",
        5000,
        ["load_balancer.idle_timeout_seconds", "less than or equal to 4000"],
    ),
    ("backup schedule not a cron", "backup.schedule", "0 3 * * *", ["backup.schedule", "not an AWS cron expression"]),
    ("backup schedule with a rate", "backup.schedule", "rate(1 day)", ["backup.schedule", "not an AWS cron expression"]),
    ("backup copied into the stack's own region", "backup.copy_region", "us-east-1", ["backup.copy_region", "a second region"]),
    ("secrets replicated nowhere", "backup.replicate_secrets", True, ["backup.replicate_secrets", "needs backup.copy_region"]),
    ("unknown vault lock mode", "backup.vault_lock", "strict", ["backup.vault_lock"]),
    (
        "a locked vault whose recovery points a destroy would delete",
        "backup",
        {"vault_lock": "governance", "retain_on_destroy": False},
        ["backup", "a locked vault keeps its recovery points"],
    ),
    ("continuous backup past AWS Backup's 35 days", "database.backup_retention_days", 36, ["database.backup_retention_days"]),
    (
        "node 2 never waiting for node 1",
        "apim.first_start_wait_seconds",
        0,
        ["apim.first_start_wait_seconds", "greater than or equal to 60"],
    ),
]


@pytest.mark.parametrize("case, setting, value, words", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_settings_name_the_setting(local_dict, case, setting, value, words):
    _set(local_dict, setting, value)
    with pytest.raises(SettingsError) as caught:
        parse_settings(local_dict, "local.toml", environ={})
    message = str(caught.value)
    assert message.startswith("local.toml: invalid settings")
    for word in words:
        assert word in message, f"{case}: {word!r} missing from:\n{message}"


def test_every_error_of_every_file_is_reported(tmp_path):
    (tmp_path / "a.toml").write_text((ENVIRONMENTS / "local.toml").read_text().replace('"us-east-1b"', '"us-east-1a"'))
    (tmp_path / "b.toml").write_text("region = [")
    (tmp_path / "Bad_Name.toml").write_text((ENVIRONMENTS / "dev.toml").read_text())
    with pytest.raises(SettingsError) as caught:
        load_environments(tmp_path, environ={})
    message = str(caught.value)
    assert "a.toml: invalid settings" in message and "same zone twice" in message
    assert "b.toml: not valid TOML" in message
    assert "Bad_Name.toml: the file name is the stack name" in message


def test_app_exits_non_zero_before_synthesizing(tmp_path):
    bad = tmp_path / "environments"
    bad.mkdir()
    (bad / "local.toml").write_text((ENVIRONMENTS / "local.toml").read_text().replace("m6i.large", "huge"))
    out = tmp_path / "out"
    result = synth_main(bad, out)
    assert result.returncode == 2
    assert "node.instance_type" in result.stderr
    assert not out.exists(), "nothing may be synthesized from bad settings"


def test_every_cross_check_error_of_a_file_comes_at_once_each_under_its_field(local_dict):
    _set(local_dict, "network.subnet_cidrs", ["10.9.1.0/24", "10.9.1.128/25"])
    _set(local_dict, "network.public_subnet_cidrs", ["10.8.101.0/24", "10.0.102.0/24"])
    _set(local_dict, "apim.jdk", 8)
    _set(local_dict, "key_manager.url", "https://is.example.com")
    with pytest.raises(SettingsError) as caught:
        parse_settings(local_dict, "local.toml", environ={})
    lines = str(caught.value).splitlines()[1:]
    assert sorted(lines) == sorted(
        [
            "  network.subnet_cidrs: subnets overlap: 10.9.1.0/24 and 10.9.1.128/25",
            "  network.subnet_cidrs: subnet 10.9.1.0/24 is outside the VPC 10.0.0.0/16",
            "  network.subnet_cidrs: subnet 10.9.1.128/25 is outside the VPC 10.0.0.0/16",
            "  network.public_subnet_cidrs: public subnet 10.8.101.0/24 is outside the VPC 10.0.0.0/16",
            "  apim.jdk: jdk 8 is not accepted by API-M 4.3.0 (needs 11-21)",
            '  key_manager.url: url, cidr and ca_certificate are for an external key manager (type = "wso2-is")',
        ]
    )


def test_every_top_level_cross_check_error_comes_at_once(local_dict):
    _set(local_dict, "availability_zones", ["us-east-1a", "us-east-1a"])
    _set(local_dict, "apim.hostname", "apim.other.test")
    _set(local_dict, "emulator", _DELETE)
    with pytest.raises(SettingsError) as caught:
        parse_settings(local_dict, "local.toml", environ={})
    fields = [line.split(":")[0].strip() for line in str(caught.value).splitlines()[1:]]
    assert sorted(fields) == ["apim.hostname", "availability_zones", "backup.selections", "roll.node_checks", "state"]


def test_backup_plans_without_selections_only_in_the_emulator(local_dict):
    """An AWS environment with backup.selections = false would back nothing up; local may (moto has no CreateBackupSelection)."""
    dev = tomllib.loads((ENVIRONMENTS / "dev.toml").read_text())
    _set(dev, "backup.selections", False)
    with pytest.raises(SettingsError) as caught:
        parse_settings(dev, "dev.toml", environ={})
    lines = str(caught.value).splitlines()[1:]
    assert lines == ["  backup.selections: only the local environment (the emulator) may leave the backup plans without selections"]
    assert parse_settings(local_dict, "local.toml", environ={}).backup.selections is False


def test_a_copy_region_with_replicated_secrets_is_accepted(local_dict):
    _set(local_dict, "backup", {"copy_region": "eu-central-1", "replicate_secrets": True, "vault_lock": "compliance"})
    backup = parse_settings(local_dict, "local.toml", environ={}).backup
    assert (backup.copy_region, backup.replicate_secrets, backup.vault_lock) == ("eu-central-1", True, "compliance")


# A restored environment ([restore], scripts/restore.py) ---------------------------------------------------------------
EXISTING_DB = {
    "host": "db.example.internal",
    "port": 3306,
    "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared-db-AbCdEf",
    "cidr": "10.50.0.0/24",
}
APIM_4_7 = {"version": "4.7.0", "jdk": 21}


def _existing_database(data: dict) -> None:
    data["database"] = {**data["database"], "existing": EXISTING_DB}


def _version_4_7(data: dict) -> None:
    data.update(at_version(data, **APIM_4_7))


def _restore_errors(data: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(data, "r.toml", environ={})
    message = str(caught.value)
    assert message.startswith("r.toml: invalid settings")
    return message.splitlines()[1:]


def test_the_examples_load_and_one_is_a_restore_of_prod(examples, environments):
    assert set(examples) == {"apim-4-7", "rsync", "restored"}
    restored, prod = examples["restored"], environments["prod"]
    assert restored.restore is not None and restored.restore.source_prefix == prod.name_prefix != restored.name_prefix
    assert restored.restore.database_source == f"{prod.name_prefix}-db" and restored.restore.database_time is not None
    assert restored.restore.secrets.database_app_arn and restored.restore.secrets.encryption_key_arn is None  # RDS, 4.3
    assert restored.restore.share and restored.restore.share_recovery_point.startswith(f"arn:aws:backup:{restored.region}:")
    # The restored nodes read prod's secrets, under prod's key; the public name's Route 53 record stays prod's.
    assert restored.encryption.node_decrypt_key_arns and restored.load_balancer.route53_zone is None
    assert restored.apim.hostname == prod.apim.hostname
    assert [restored.network.node_ip(i) for i in (0, 1)] == [prod.network.node_ip(i) for i in (0, 1)]  # another VPC


def test_a_restored_environment_loads():
    settings = restored_local()
    restore = settings.restore
    # A large share's restore takes hours: the nodes wait 12 hours unless told otherwise.
    assert restore is not None and (restore.generation, restore.share, restore.share_wait_minutes) == (1, True, 720)
    assert restore.share_recovery_point is None, "a record only: restore.py writes it"
    point = "arn:aws:backup:us-east-1:123456789012:recovery-point:0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
    assert restored_local(share_recovery_point=point, share_wait_minutes=2880).restore.share_recovery_point == point
    assert restore.secrets.admin_arn == SOURCE_SECRETS["admin_arn"] and settings.name_prefix == RESTORED_PREFIX
    assert restored_local("rsync").restore.share is False
    snapshot = restored_local(database_source=None, database_snapshot="rds:apim-local-db-2026-11-27-03-00")
    assert snapshot.restore.database_snapshot and snapshot.restore.database_source is None
    existing = restored_local_dict()
    _existing_database(existing)  # restored outside the stack: no database source, no API-M database user's secret
    del existing["restore"]["database_source"], existing["restore"]["secrets"]["database_app_arn"]
    assert parse_settings(existing, environ={}).restore.secrets.database_app_arn is None
    version_4_7 = restored_local_dict()
    _version_4_7(version_4_7)
    version_4_7["restore"]["secrets"]["encryption_key_arn"] = SOURCE_SECRETS["admin_arn"].replace("apim-admin", "encryption-key")
    assert parse_settings(version_4_7, environ={}).restore.secrets.encryption_key_arn


BAD_RESTORES = [
    # (case, change of restored_local_dict(), the error lines, exactly)
    (
        "restored into the source's own prefix",
        lambda d: d["restore"].update(source_prefix=RESTORED_PREFIX),
        ["  restore.source_prefix: a restore goes into a new environment: name_prefix must differ from the source's"],
    ),
    (
        "RDS restored from nothing",
        lambda d: d["restore"].pop("database_source"),
        ["  restore.database_source: RDS the stack makes is restored: set database_source (point in time) or database_snapshot"],
    ),
    (
        "both a point in time and a snapshot",
        lambda d: d["restore"].update(database_snapshot="rds:apim-local-db-2026-11-27-03-00"),
        ["  restore.database_snapshot: database_source (point in time) or database_snapshot, not both"],
    ),
    (
        "a time without the instance restored to it",
        lambda d: d["restore"].update(database_source=None, database_snapshot="snap-1", database_time="2026-11-27T10:00:00Z"),
        ["  restore.database_time: database_time needs database_source (the instance restored to that time)"],
    ),
    (
        "RDS without API-M's database user's secret",
        lambda d: d["restore"]["secrets"].pop("database_app_arn"),
        ["  restore.secrets.database_app_arn: set it exactly when the stack makes RDS (API-M's own database user)"],
    ),
    (
        "an existing database with a database user's secret and an RDS source",
        _existing_database,
        [
            "  restore.database_source: database.existing is restored outside the stack: remove database_source and database_snapshot",
            "  restore.secrets.database_app_arn: set it exactly when the stack makes RDS (API-M's own database user)",
        ],
    ),
    (
        "an encryption key 4.3 does not have",
        lambda d: d["restore"]["secrets"].update(encryption_key_arn=SOURCE_SECRETS["admin_arn"].replace("apim-admin", "encryption-key")),
        ["  restore.secrets.encryption_key_arn: set it exactly when API-M 4.3.0 encrypts with the pair's key (4.7+)"],
    ),
    (
        "4.7 without its encryption key",
        _version_4_7,
        ["  restore.secrets.encryption_key_arn: set it exactly when API-M 4.7.0 encrypts with the pair's key (4.7+)"],
    ),
    (
        "a share restored into rsync",
        lambda d: (d.pop("shared_fs"), d.update(content_sync="rsync")),
        ['  restore.share: content_sync = "rsync" has no share to restore into: set share = false'],
    ),
]


@pytest.mark.parametrize("case, change, lines", BAD_RESTORES, ids=[c[0] for c in BAD_RESTORES])
def test_bad_restore_settings_name_the_setting(case, change, lines):
    data = restored_local_dict()
    change(data)
    data["restore"] = {k: v for k, v in data["restore"].items() if v is not None}
    assert _restore_errors(data) == lines, case


@pytest.mark.parametrize(
    "setting, value, words",
    [
        ("admin_arn", "apim-local/apim-admin", ["restore.secrets.admin_arn", "should match pattern"]),
        ("share_wait_minutes", 1, ["restore.share_wait_minutes", "greater than or equal to 5"]),
        ("share_wait_minutes", 2881, ["restore.share_wait_minutes", "less than or equal to 2880"]),
        ("share_recovery_point", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", ["restore.share_recovery_point", "should match pattern"]),
        (  # an RDS snapshot's recovery point is not the share's
            "share_recovery_point",
            "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0a1b2c3d",
            ["restore.share_recovery_point", "should match pattern"],
        ),
        ("generation", 0, ["restore.generation", "greater than or equal to 1"]),
        ("database_source", "Apim_Local_DB", ["restore.database_source", "should match pattern"]),
        ("source", "apim-local", ["restore.source", "unknown setting"]),
    ],
)
def test_bad_restore_values_name_the_setting(setting, value, words):
    data = restored_local_dict()
    (data["restore"]["secrets"] if setting.endswith("_arn") else data["restore"])[setting] = value
    message = "\n".join(_restore_errors(data))
    for word in words:
        assert word in message, message
