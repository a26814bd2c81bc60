"""Typed, validated settings: one TOML file per environment (environments/<name>.toml).

No cdktf import here. Every field carries a description; docs/settings.md is generated
from this model (`make docs`) and a test fails when it is stale.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apim_active_active import ports
from apim_active_active.customization_settings import CustomizationSettings
from apim_active_active.gateway_settings import GatewayScaleOutSettings, gateway_checks
from apim_active_active.keystore_settings import KeystoreSettings, keystore_checks
from apim_active_active.vault_settings import SecureVaultSettings
from apim_active_active.versions import traits

ENDPOINT_ENV = "AWS_ENDPOINT_URL"
NamePart = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,23}$")]


class SettingsError(Exception):
    """Bad settings: the message names each setting and what is wrong with it."""


class CrossCheckErrors(ValueError):
    """Every cross-check a model failed, each under the field it is about (relative to the model)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


class _Problems:
    """Collects a model's cross-check failures, so that all of them are reported at once."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.found.append((field, message))

    def raise_any(self) -> None:
        if self.found:
            raise CrossCheckErrors(self.found)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(_Strict):
    id: str | None = Field(None, pattern=r"^ami-[0-9a-f]{8,17}$", description="AMI id. Set this or `ssm_parameter`.")
    ssm_parameter: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9_./-]+$",
        description="SSM parameter holding the AMI id (e.g. Amazon Linux 2023's public parameter). Set this or `id`.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AmiSettings:
        if (self.id is None) == (self.ssm_parameter is None):
            raise ValueError("set exactly one of node.ami.id or node.ami.ssm_parameter")
        return self


class NetworkSettings(_Strict):
    vpc_cidr: IPv4Network | None = Field(
        None, description="CIDR of a NEW VPC the stack creates. Leave unset to use an existing VPC (`vpc_id`)."
    )
    vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]{8,17}$", description="Existing VPC id (instead of `vpc_cidr`).")
    subnet_ids: tuple[str, str] | None = Field(
        None, description="Existing subnets, one per availability zone, in zone order (with `vpc_id`)."
    )
    subnet_cidrs: tuple[IPv4Network, IPv4Network] = Field(
        description="One subnet CIDR per availability zone, in zone order: created for a new VPC, "
        "or the CIDRs of `subnet_ids` (pre-flight checks they match)."
    )
    node_host_number: int = Field(
        10, ge=4, description="Host number of each node's fixed private address inside its subnet (10 -> 10.0.1.10)."
    )
    public_subnet_cidrs: tuple[IPv4Network, IPv4Network] | None = Field(
        None,
        description="New VPC only: one public subnet per zone (with an internet gateway) for an internet-facing "
        "load balancer. The nodes stay in the private subnets.",
    )
    public_subnet_ids: tuple[str, str] | None = Field(
        None, description="Existing VPC only: public subnets, one per zone, for an internet-facing load balancer."
    )
    flow_logs_retention_days: int = Field(
        365, ge=0, description="A new VPC's flow logs (all traffic) kept this many days in CloudWatch Logs; 0: no flow logs."
    )

    @field_validator("subnet_ids", "public_subnet_ids")
    @classmethod
    def _subnet_ids(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            for subnet in value:
                if not subnet.startswith("subnet-"):
                    raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
            if value[0] == value[1]:
                raise ValueError("the two subnets must differ")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NetworkSettings:
        problems = _Problems()
        new_vpc = self.vpc_cidr is not None
        if new_vpc and (self.vpc_id or self.subnet_ids):
            problems.add("vpc_id", "set either vpc_cidr (new VPC) or vpc_id + subnet_ids (existing), not both")
        if not new_vpc and not (self.vpc_id and self.subnet_ids):
            problems.add("vpc_cidr", "set vpc_cidr for a new VPC, or both vpc_id and subnet_ids for an existing one")
        if new_vpc and self.public_subnet_ids:
            problems.add("public_subnet_ids", "public_subnet_ids are for an existing VPC; a new VPC takes public_subnet_cidrs")
        if not new_vpc and self.public_subnet_cidrs:
            problems.add("public_subnet_cidrs", "public_subnet_cidrs are for a new VPC; an existing VPC takes public_subnet_ids")
        cidrs = [("subnet_cidrs", c) for c in self.subnet_cidrs] + [("public_subnet_cidrs", c) for c in self.public_subnet_cidrs or ()]
        for index, (_, first) in enumerate(cidrs):
            for field, second in cidrs[index + 1 :]:
                if first.overlaps(second):
                    problems.add(field, f"subnets overlap: {first} and {second}")
        for field, cidr in cidrs:
            if self.vpc_cidr is not None and not cidr.subnet_of(self.vpc_cidr):
                kind = "public subnet" if field.startswith("public") else "subnet"
                problems.add(field, f"{kind} {cidr} is outside the VPC {self.vpc_cidr}")
        for cidr in self.subnet_cidrs:
            # AWS reserves the first four addresses and the last one of every subnet.
            if self.node_host_number > cidr.num_addresses - 2:
                problems.add("node_host_number", f"node_host_number {self.node_host_number} does not fit in subnet {cidr}")
        problems.raise_any()
        return self

    def node_ip(self, index: int) -> IPv4Address:
        return self.subnet_cidrs[index].network_address + self.node_host_number

    @property
    def has_public_subnets(self) -> bool:
        return bool(self.public_subnet_cidrs or self.public_subnet_ids)


class NodeSettings(_Strict):
    instance_type: str = Field("m6i.large", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", description="EC2 instance type of both nodes.")
    ami: AmiSettings = Field(description="Image of both nodes (Amazon Linux 2023 expected: dnf, systemd).")
    root_volume_gb: int = Field(30, ge=20, le=1024, description="Size of the encrypted gp3 root volume, GiB.")
    detailed_monitoring: bool = Field(True, description="EC2 detailed (1-minute) monitoring.")
    termination_protection: bool = Field(True, description="EC2 termination protection; `cdktf destroy` refuses while it is on.")
    heap_percent: int = Field(50, ge=10, le=80, description="JVM heap (Xms = Xmx) as a share of the node's memory, computed at boot.")


class ApimSettings(_Strict):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="API-M version, e.g. 4.3.0 or 3.2.0.")
    archive_url: str = Field(
        description="Where each node gets the product zip: s3://bucket/key (read with the instance role) or https://..."
    )
    install_dir: str = Field("/opt/wso2", pattern=r"^(/[A-Za-z0-9._-]+)+$", description="Folder the product is unpacked into.")
    jdk: int = Field(description="JDK major version (Amazon Corretto); must be one the version's start script accepts.")
    hostname: str | None = Field(
        None,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="The public name clients use (`[server] hostname`), served by the load balancer's certificate. "
        "Unset: the load balancer's DNS name.",
    )
    os_user: str = Field("wso2carbon", pattern=r"^[a-z_][a-z0-9_-]{0,30}$", description="Dedicated user that runs API-M.")
    os_uid: int = Field(
        802, ge=500, le=60000, description="Fixed uid/gid of that user, the same on both nodes so files on the share match."
    )
    tenants: bool = Field(False, description="Tenants are used: `repository/tenants` is kept the same on both nodes too.")
    keystore_validity_days: int = Field(
        3650,
        ge=365,
        le=36500,
        description="Validity of the pair's generated keystore certificate, in days. Long, as WSO2 asks: a new "
        "keystore later means re-encrypting what the product encrypted with it (a registry and user-store migration).",
    )
    first_start_wait_seconds: int = Field(
        900,
        ge=60,
        le=3600,
        description="How long node 2's first start waits for node 1's API-M to answer (node 1 fills the empty "
        "databases on its first start); later starts do not wait.",
    )
    update_level: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="The WSO2 Updates 2.0 level of the pack at `archive_url` (its updates/config.json). The pack is "
        "then named as WSO2 names an updated pack, `wso2am-<version>.<level>.zip`, and each node refuses to start a "
        "pack at another level. Unset: the GA pack. Changing it rolls the nodes (scripts/roll.py).",
    )

    @field_validator("archive_url")
    @classmethod
    def _archive_url(cls, value: str) -> str:
        return _artifact_url(value, ".zip")

    @model_validator(mode="after")
    def _version_and_jdk(self) -> ApimSettings:
        problems = _Problems()
        try:
            low, high = traits(self.version).jdk_range
        except ValueError as err:
            problems.add("version", str(err))
        else:
            if not low <= self.jdk <= high:
                problems.add("jdk", f"jdk {self.jdk} is not accepted by API-M {self.version} (needs {low}-{high})")
        pack = self.archive_url.rsplit("/", 1)[-1]
        if self.update_level is not None and pack != f"wso2am-{self.version}.{self.update_level}.zip":
            problems.add(
                "archive_url",
                f"{pack} does not carry update level {self.update_level}: name the updated "
                f"pack wso2am-{self.version}.{self.update_level}.zip (WSO2's naming), so that each level has "
                "its own object and a level change rolls the nodes",
            )
        problems.raise_any()
        return self

    @property
    def home(self) -> str:
        return f"{self.install_dir}/wso2am-{self.version}"

    @property
    def server_dir(self) -> str:
        """<API-M_HOME>/repository/deployment/server: what the nodes keep the same (EFS or rsync)."""
        return f"{self.home}/repository/deployment/server"

    @property
    def tenants_dir(self) -> str:
        return f"{self.home}/repository/tenants"


class SharedFsSettings(_Strict):
    scope: Literal["server", "artifacts"] | None = Field(
        None,
        description="What is on the file system. `server`: the whole `repository/deployment/server` (the seed), so "
        "everything dropped there is shared, but the product's own files there (web applications, default "
        "configurations) are shared too and an in-place product update on one node changes them under the other. "
        "`artifacts`: only the subfolders WSO2's own tools share (3.2: `synapse-configs`, `executionplans`, "
        "`userstores`; 4.x: `userstores`), the rest stays per node and in-place updates work; anything dropped "
        "elsewhere in the folder is not shared. Unset: `server` for 3.2, `artifacts` for 4.x. "
        "`repository/tenants` is shared too with `apim.tenants`.",
    )
    throughput_mode: Literal["elastic", "bursting"] = Field(
        "elastic", description="EFS throughput mode; elastic avoids burst-credit exhaustion."
    )
    backup: bool = Field(
        True,
        description="EFS's own automatic backups (AWS Backup's default vault, 35 days), made only while the stack's "
        "backup plan does not cover the file system (`backup.plan` off, or no selections).",
    )
    tls_only_policy: bool = Field(
        True,
        description="File system policy: only the node role may mount, only through a mount target, only over TLS.",
    )
    retain_on_destroy: bool = Field(True, description="Keep the shared artifacts: `cdktf destroy` refuses while this is on.")


class RollSettings(_Strict):
    gate_seconds: int = Field(
        1800,
        ge=10,
        le=7200,
        description="How long scripts/roll.py waits for a replaced node to pass its gate (running, in service in every "
        "target group, its own checks) before it stops, leaving the other node as it was.",
    )
    node_checks: bool = Field(
        True,
        description="The gate also runs the boot step's own checks on the node through Session Manager (API-M's "
        "management and gateway answers, the peer ports, the share). Off only in the local environment: the emulator "
        "runs no command.",
    )


class RsyncSettings(_Strict):
    interval_seconds: int = Field(
        60, ge=15, le=3600, description="How often node 1 (the manager) pushes its artifacts to node 2 (systemd timer)."
    )
    wait_seconds: int = Field(
        900,
        ge=60,
        le=3600,
        description="How long a booting node waits for its peer's SSH key in SSM (node 1 publishes its key once "
        "the secrets and the schema exist).",
    )


def _artifact_url(value: str, suffix: str) -> str:
    url = urlparse(value)
    if url.scheme not in ("s3", "https") or not url.netloc or not url.path.endswith(suffix):
        raise ValueError(f"must be s3://bucket/key{suffix} or https://host/path{suffix}")
    return value


SECRET_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"


class ExistingDatabase(_Strict):
    host: str = Field(pattern=r"^[A-Za-z0-9.-]+$", description="Address of a database the nodes can reach.")
    port: int = Field(ge=1, le=65535, description="Its port.")
    secret_arn: str = Field(
        pattern=SECRET_ARN,
        description="Secrets Manager secret with JSON `username` and `password` of a user that may create the two databases.",
    )
    cidr: IPv4Network = Field(description="Network the database is in: the nodes may reach its port there.")


class DatabaseSettings(_Strict):
    engine: Literal["mysql", "postgres"] = Field("mysql", description="MySQL 8 (default) or PostgreSQL 16.")
    existing: ExistingDatabase | None = Field(None, description="Use this database instead of creating RDS.")
    instance_class: str = Field("db.m6g.large", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", description="RDS instance class.")
    allocated_storage_gb: int = Field(50, ge=20, le=65536, description="RDS storage (gp3, encrypted), GiB.")
    multi_az: bool = Field(True, description="RDS standby in a second zone.")
    deletion_protection: bool = Field(True, description="RDS refuses deletion until this is turned off; so does `cdktf destroy`.")
    final_snapshot: bool = Field(True, description="Take a final snapshot when the database is deleted (kept after `cdktf destroy`).")
    backup_retention_days: int = Field(7, ge=1, le=35, description="RDS automated backups kept this many days.")
    performance_insights: bool = Field(True, description="RDS Performance Insights (encrypted with the stack's key).")
    parameter_group: bool = Field(
        True, description="RDS parameter group: TLS required of every client, slow queries (PostgreSQL: and DDL) logged."
    )
    enhanced_monitoring_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = Field(
        60, description="RDS enhanced monitoring interval; 0 turns it off."
    )
    jdbc_driver_url: str = Field(
        description="Where the nodes get the JDBC driver jar (s3://... read with the instance role, or https://...); "
        "it goes to repository/components/lib."
    )

    @field_validator("jdbc_driver_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        return _artifact_url(value, ".jar")


KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$")
TLS_POLICY = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]-|TLS-1-2-|FS-1-2-)[A-Za-z0-9-]+$")


class LoadBalancerSettings(_Strict):
    scheme: Literal["internal", "internet-facing"] = Field(
        "internal", description="`internet-facing` needs public subnets (`network.public_subnet_*`)."
    )
    client_cidrs: tuple[IPv4Network, ...] = Field(
        (), description="CIDRs that may reach the load balancer (its listeners only; never the nodes). Empty: nobody."
    )
    admin_cidrs: tuple[IPv4Network, ...] = Field(
        (),
        max_length=2,
        description="CIDRs (at most 2) that may reach the Carbon console and admin services (/carbon, /services) "
        "through the load balancer; everyone else gets 403. Empty: nobody.",
    )
    certificate_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        description="ACM certificate of the HTTPS listeners. Set this or `certificate_domain`.",
    )
    certificate_domain: str | None = Field(
        None,
        pattern=r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="Use the newest ISSUED ACM certificate for this domain (looked up at plan time). Set this or `certificate_arn`.",
    )
    ssl_policy: str = Field("ELBSecurityPolicy-TLS13-1-2-2021-06", description="Listener TLS policy; only TLS 1.2+ policies are accepted.")
    stickiness_seconds: int = Field(
        86400, ge=1, le=604800, description="Management (9443) session stickiness: load-balancer cookie lifetime."
    )
    gateway_stickiness: bool = Field(False, description="Sticky sessions on the gateway (8243) too.")
    deletion_protection: bool = Field(
        True, description="The load balancer refuses deletion until this is turned off; so does `cdktf destroy`."
    )
    route53_zone: str | None = Field(
        None,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="Hosted zone (by name) that gets an alias record `apim.hostname` -> load balancer; "
        "private zone for an internal load balancer, public otherwise. Unset: no DNS record.",
    )
    access_logs_bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="Existing S3 bucket (SSE-S3, ELB log delivery allowed) for access logs. Unset: no access logs.",
    )
    web_acl_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/.+$",
        description="WAFv2 web ACL associated with the load balancer. Unset: none.",
    )
    deregistration_delay_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="How long a node leaving the target groups (a roll, a scale-in) keeps serving the requests it has "
        "(the target groups' deregistration delay; scripts/roll.py waits for it before replacing a node).",
    )
    idle_timeout_seconds: int = Field(
        300,
        ge=1,
        le=4000,
        description="Seconds a connection may stay idle before the load balancer closes it (AWS's default of 60 drops "
        "idle WebSocket connections on 8099; clients idle for longer must ping). The nodes keep their side of a "
        "connection open 5 s longer (9443's keepAliveTimeout, the gateway's socket timeout), as AWS asks, so the load "
        "balancer never sends on a connection a node is closing (a 502).",
    )

    @field_validator("ssl_policy")
    @classmethod
    def _tls12_or_later(cls, value: str) -> str:
        if not TLS_POLICY.match(value):
            raise ValueError(f"{value!r} is not a TLS 1.2+ ELBSecurityPolicy (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06)")
        return value

    @model_validator(mode="after")
    def _one_certificate(self) -> LoadBalancerSettings:
        if (self.certificate_arn is None) == (self.certificate_domain is None):
            raise ValueError("set exactly one of load_balancer.certificate_arn or load_balancer.certificate_domain")
        return self


class KeyManagerSettings(_Strict):
    type: Literal["resident", "wso2-is"] = Field(
        "resident",
        description="`resident`: each node's own Key Manager. `wso2-is`: an external WSO2 Identity Server "
        "(the seed's hybrid pattern), started before the nodes.",
    )
    url: str | None = Field(
        None,
        pattern=r"^https://[A-Za-z0-9.-]+(:\d{1,5})?$",
        description="wso2-is: its base URL (https://host[:port]); `/services/` is appended for API-M.",
    )
    cidr: IPv4Network | None = Field(None, description="wso2-is: network it is in; the nodes may reach its port there.")
    ca_certificate: str | None = Field(
        None,
        description="wso2-is: PEM of the CA that signed its certificate (added to both nodes' truststore). "
        "Unset: its certificate must chain to a public CA.",
    )
    wait_seconds: int = Field(900, ge=30, le=3600, description="wso2-is: how long a node waits at boot for it to answer before giving up.")

    @model_validator(mode="after")
    def _external_needs(self) -> KeyManagerSettings:
        problems = _Problems()
        external = self.type != "resident"
        for field in ("url", "cidr"):
            if external and getattr(self, field) is None:
                problems.add(field, "key_manager type wso2-is needs url and cidr")
        for field in ("url", "cidr", "ca_certificate"):
            if not external and getattr(self, field):
                problems.add(field, 'url, cidr and ca_certificate are for an external key manager (type = "wso2-is")')
        if self.ca_certificate is not None and not self.ca_certificate.strip().startswith("-----BEGIN CERTIFICATE-----"):
            problems.add("ca_certificate", "ca_certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
        problems.raise_any()
        return self

    @property
    def port(self) -> int:
        parsed = urlparse(self.url or "")
        return parsed.port or ports.HTTPS


class EncryptionSettings(_Strict):
    deletion_window_days: int = Field(30, ge=7, le=30, description="Days a deleted KMS key waits before it is gone (its data with it).")
    secret_recovery_days: int = Field(
        30, ge=0, le=30, description="Days a deleted secret can be restored; 0 deletes at once (lets a stack be re-created)."
    )
    node_decrypt_key_arns: tuple[str, ...] = Field(
        (),
        description="KMS keys besides the stack's that the nodes may decrypt with: the keys of the artifacts' S3 "
        "objects, of an existing database's secret, of a JDBC driver (pre-flight checks each is enabled).",
    )

    @field_validator("node_decrypt_key_arns")
    @classmethod
    def _key_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not KMS_KEY_ARN.match(arn):
                raise ValueError(f"{arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        return value

    @field_validator("secret_recovery_days")
    @classmethod
    def _recovery(cls, value: int) -> int:
        if 0 < value < 7:
            raise ValueError("Secrets Manager takes 0 (delete at once) or 7-30 days")
        return value


AWS_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")


class BackupSettings(_Strict):
    """AWS Backup of what the pair keeps: the database and the share (docs/backup-and-restore.md)."""

    plan: bool = Field(True, description="AWS Backup plans of the stack, in a vault encrypted with the stack's key.")
    schedule: str = Field(
        "cron(0 3 * * ? *)",
        description="When the daily recovery points are taken (AWS Backup's cron, UTC): the database's and the share's.",
    )
    retention_days: int = Field(35, ge=1, le=36500, description="Days a daily recovery point is kept.")
    continuous_schedule: str = Field(
        "cron(0 15 * * ? *)",
        description="When the continuous plan's job runs (AWS Backup's cron, UTC): apart from `schedule`, since AWS Backup "
        "runs one job per resource at a time and a second one waiting past its start window fails.",
    )
    continuous_database: bool = Field(
        True,
        description="Continuous backup of the database (point-in-time restore to any second within "
        "`database.backup_retention_days`), besides the daily snapshots. RDS the stack makes only.",
    )
    copy_region: str | None = Field(
        None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="A second region each daily recovery point is copied to (a vault there)."
    )
    copy_retention_days: int = Field(35, ge=1, le=36500, description="Days a copy is kept in `copy_region`.")
    vault_lock: Literal["off", "governance", "compliance"] = Field(
        "off",
        description="AWS Backup Vault Lock on the stack's vaults: recovery points cannot be deleted before `retention_days`. "
        "`governance`: users with the right IAM permission can still remove the lock; `compliance`: nobody can, three days "
        "after it is set (then the vault cannot be deleted while it holds recovery points).",
    )
    replicate_secrets: bool = Field(
        False,
        description="Replicate the secrets the pair generated (admin, keystore, database user, encryption key) to "
        "`copy_region`: a restore there cannot decrypt what the product encrypted without them.",
    )
    selections: bool = Field(
        True, description="Which resources the plans back up. Off only in the local environment: the emulator lacks the API."
    )
    retain_on_destroy: bool = Field(
        True,
        description="Keep the recovery points: `cdktf destroy` refuses while this is on. Off: a destroy deletes the "
        "stack's vaults with every recovery point in them (for environments that are re-created, such as dev).",
    )

    @property
    def holds_recovery_points(self) -> bool:
        """Whether the stack's vaults receive recovery points (no selections: nothing is ever backed up into them)."""
        return self.plan and self.selections

    @model_validator(mode="after")
    def _lock_keeps(self) -> BackupSettings:
        if not self.retain_on_destroy and self.vault_lock != "off":
            raise ValueError('a locked vault keeps its recovery points: backup.retain_on_destroy = false needs vault_lock = "off"')
        return self

    @field_validator("schedule", "continuous_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not AWS_CRON.match(value):
            raise ValueError(f"{value!r} is not an AWS cron expression: cron(minutes hours day-of-month month day-of-week year)")
        return value


class RestoredSecrets(_Strict):
    """The source environment's secrets, which the restored nodes read and never generate: what the restored database
    and share were encrypted and signed with (docs/backup-and-restore.md)."""

    admin_arn: str = Field(pattern=SECRET_ARN, description="The source's `<prefix>/apim-admin` secret (or its replica here).")
    keystore_arn: str = Field(pattern=SECRET_ARN, description="The source's `<prefix>/keystore` secret (or its replica here).")
    database_app_arn: str | None = Field(
        None, pattern=SECRET_ARN, description="The source's `<prefix>/database-app` secret: RDS the stack makes only."
    )
    encryption_key_arn: str | None = Field(
        None,
        pattern=SECRET_ARN,
        description="The source's `<prefix>/encryption-key` secret: versions with symmetric internal encryption (4.7) only.",
    )


class RestoreSettings(_Strict):
    """This environment is a restore of another (written by scripts/restore.py; docs/backup-and-restore.md)."""

    source_prefix: NamePart = Field(description="`name_prefix` of the environment restored from.")
    generation: int = Field(
        1,
        ge=1,
        description="Restore number: each restored node rebuilds the registry's search index once for it "
        "(`[indexing] re_indexing`, WSO2's re-index switch, and the `solr` folder removed).",
    )
    database_source: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9-]{0,62}$", description="RDS instance restored to a point in time (same region)."
    )
    database_time: datetime | None = Field(
        None, description="With `database_source`: the time restored to (UTC); unset: its latest restorable time."
    )
    database_snapshot: str | None = Field(
        None,
        pattern=r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:snapshot:)?[A-Za-z][A-Za-z0-9:-]*$",
        description="RDS snapshot restored instead (a daily recovery point, or its copy in this region).",
    )
    share: bool = Field(
        True,
        description="A recovery point of the source's share is restored into this environment's file system after "
        "the deploy (scripts/restore.py); the first node waits for it before seeding.",
    )
    share_recovery_point: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:recovery-point:.+$",
        description="The share's recovery point restore.py restores (a record; `--resume` restores it).",
    )
    share_wait_minutes: int = Field(
        720, ge=5, le=2880, description="How long a node waits at boot for the share's restore (a large share takes hours)."
    )
    secrets: RestoredSecrets

    @model_validator(mode="after")
    def _one_database_source(self) -> RestoreSettings:
        problems = _Problems()  # each under its own field (restore.database_snapshot, restore.database_time)
        if self.database_source and self.database_snapshot:
            problems.add("database_snapshot", "database_source (point in time) or database_snapshot, not both")
        if self.database_time and not self.database_source:
            problems.add("database_time", "database_time needs database_source (the instance restored to that time)")
        problems.raise_any()
        return self


# CloudWatch Logs' accepted retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class AlarmSubscription(_Strict):
    protocol: Literal["email", "https", "sqs", "lambda"] = Field(description="SNS protocol of the subscription.")
    endpoint: str = Field(description="An e-mail address, an https:// URL, or the ARN of an SQS queue or a Lambda function.")

    @model_validator(mode="after")
    def _endpoint_fits(self) -> AlarmSubscription:
        shapes = {
            "email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address"),
            "https": (r"^https://[^\s]+$", "an https:// URL"),
            "sqs": (r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?$", "an SQS queue ARN"),
            "lambda": (r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$", "a Lambda function ARN"),
        }
        pattern, shape = shapes[self.protocol]
        if not re.match(pattern, self.endpoint):
            raise ValueError(f"{self.protocol} subscription endpoint {self.endpoint!r} is not {shape}")
        return self


class AlarmThresholds(_Strict):
    """When each alarm fires; docs/observability.md gives each alarm's reason and evaluation."""

    unhealthy_targets: int = Field(1, ge=1, le=2, description="Targets unhealthy in a target group (2 minutes running).")
    target_5xx_percent: float = Field(5.0, gt=0, le=100, description="Share of requests the nodes answered with 5xx (5 minutes).")
    response_time_p95_seconds: float = Field(2.0, gt=0, le=120, description="95th percentile of the nodes' response time (5 minutes).")
    heap_percent: int = Field(85, ge=50, le=99, description="JVM heap used, of its maximum, on a node (5 minutes).")
    disk_percent: int = Field(80, ge=50, le=99, description="Root file system used on a node.")
    memory_percent: int = Field(90, ge=50, le=99, description="Memory used on a node.")
    database_cpu_percent: int = Field(80, ge=10, le=100, description="RDS CPU (15 minutes).")
    database_free_storage_gb: int = Field(5, ge=1, description="RDS free storage below this, GiB.")
    database_connections: int = Field(
        400, ge=10, description="RDS connections above this (API-M's pools: both nodes' datasources together)."
    )
    efs_io_limit_percent: int = Field(90, ge=10, le=100, description="EFS PercentIOLimit (General Purpose mode's I/O ceiling).")
    efs_burst_credit_gb: int = Field(100, ge=1, description='shared_fs.throughput_mode = "bursting": burst credits below this, GiB.')
    certificate_days: int = Field(30, ge=1, le=365, description="The load balancer's ACM certificate expires within this many days.")


class ObservabilitySettings(_Strict):
    """Logs, metrics, alarms and the dashboard (docs/observability.md)."""

    agent: bool = Field(
        True,
        description="The CloudWatch agent on each node ships API-M's logs, the boot step's and cloud-init's to the stack's "
        "log groups, and memory, disk and JVM metrics.",
    )
    log_retention_days: int = Field(90, description="Days the stack's log groups keep events (a value CloudWatch Logs accepts).")
    correlation_log: bool = Field(False, description="API-M's correlation log on (verbose: every request's timings), and shipped.")
    local_log_days: int = Field(
        7, ge=1, le=90, description="Days a node keeps API-M's rotated log files (log4j2 deletes older ones; they are in CloudWatch)."
    )
    alarm_subscriptions: tuple[AlarmSubscription, ...] = Field(
        (), description='Who the alarm topic notifies, e.g. `[{ protocol = "email", endpoint = "ops@example.com" }]`.'
    )
    alarms: AlarmThresholds = AlarmThresholds()
    dashboard: bool = Field(True, description="A CloudWatch dashboard of the pair.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a retention CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))})")
        return value


class StateSettings(_Strict):
    """Where Terraform keeps the environment's state: S3 with a DynamoDB lock table
    (`scripts/bootstrap_state.py` creates both)."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="S3 bucket of the state.")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="Region of the bucket and the lock table.")
    lock_table: str = Field("terraform-locks", pattern=r"^[A-Za-z0-9_.-]{3,255}$", description="DynamoDB table holding the state lock.")
    key: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9!_.*'()/-]+\.tfstate$",
        description="Object key of the state; unset: `wso2-apim-active-active/<environment>.tfstate`.",
    )

    def state_key(self, environment: str) -> str:
        return self.key or f"wso2-apim-active-active/{environment}.tfstate"


class EmulatorSettings(_Strict):
    """Only for the local environment: a moto server on loopback."""

    endpoint_url: str = Field("http://127.0.0.1:4566", description=f"Emulator address (loopback only); `{ENDPOINT_ENV}` overrides it.")
    ignore_instance_sg_drift: bool = Field(
        True, description="moto drops an instance's security group ids on read-back, so every plan would show a change."
    )
    boot_bucket_tls_only: bool = Field(
        False,
        description="The boot bucket's policy denying requests without TLS: the emulator is plain http, and moto applies "
        "bucket policies, so on it the policy would refuse Terraform's own uploads. (Always on outside the emulator.)",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _loopback(cls, value: str) -> str:
        host = urlparse(value).hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback or urlparse(value).scheme != "http":
            raise ValueError(f"{value!r}: the emulator must be an http:// address on loopback")
        return value


class Settings(_Strict):
    name_prefix: NamePart = Field(description="Prefix of every resource name; keep it unique per account and region.")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region.")
    availability_zones: tuple[str, str] = Field(description="The two availability zones, node 1's first.")
    network: NetworkSettings
    node: NodeSettings
    apim: ApimSettings
    database: DatabaseSettings
    load_balancer: LoadBalancerSettings
    key_manager: KeyManagerSettings = KeyManagerSettings()
    content_sync: Literal["efs", "rsync"] = Field(
        "efs",
        description="How both nodes keep the same runtime artifacts: `efs`, a shared file system (WSO2's first "
        "preference); `rsync`, node 1 pushes to node 2 over SSH (no EFS; node 1 is then the only publisher).",
    )
    shared_fs: SharedFsSettings = SharedFsSettings()
    rsync: RsyncSettings | None = Field(None, description='With content_sync = "rsync" only (defaults apply).')
    encryption: EncryptionSettings = EncryptionSettings()
    roll: RollSettings = RollSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    backup: BackupSettings = BackupSettings()
    state: StateSettings | None = Field(
        None, description="Remote state (required outside the emulator). Unset with the emulator: a local state file."
    )
    emulator: EmulatorSettings | None = Field(None, description="Set only in the local environment.")
    restore: RestoreSettings | None = Field(None, description="Set when this environment is a restore of another (scripts/restore.py).")
    gateway_scale_out: GatewayScaleOutSettings | None = Field(
        None,
        description="API-M 4.x: an Auto Scaling group of gateway-only nodes beside the pair, in the load balancer's gateway "
        "and WebSocket target groups (docs/gateway-scale-out.md). Unset: the pair's own gateways only.",
    )
    customization: CustomizationSettings = CustomizationSettings()
    keystore: KeystoreSettings = KeystoreSettings()
    secure_vault: SecureVaultSettings = SecureVaultSettings()
    tags: dict[str, str] = Field({}, description="Tags on every resource (besides Name, Environment, ManagedBy).")

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems = _Problems()
        first, second = self.availability_zones
        if first == second:
            problems.add("availability_zones", f"the same zone twice ({first}); the nodes need two zones")
        for zone in self.availability_zones:
            if not (zone.startswith(self.region) and len(zone) == len(self.region) + 1 and zone[-1].isalpha()):
                problems.add("availability_zones", f"{zone!r} is not a zone of region {self.region}")
        for name, url in (("apim.archive_url", self.apim.archive_url), ("database.jdbc_driver_url", self.database.jdbc_driver_url)):
            if self.network.vpc_cidr is not None and not url.startswith("s3://"):
                problems.add(
                    name, "a new VPC has no internet egress (only an S3 endpoint); use s3://, or existing subnets that have egress"
                )
        if self.load_balancer.scheme == "internet-facing" and not self.network.has_public_subnets:
            problems.add(
                "load_balancer.scheme",
                "load_balancer.scheme internet-facing needs network.public_subnet_cidrs "
                "(new VPC) or network.public_subnet_ids (existing VPC)",
            )
        backup = self.backup
        if backup.copy_region == self.region:
            problems.add("backup.copy_region", f"the copy goes to a second region; {self.region} is the stack's own")
        if backup.replicate_secrets and backup.copy_region is None:
            problems.add("backup.replicate_secrets", "needs backup.copy_region (where the secrets are replicated to)")
        if self.emulator is None and not backup.selections:
            problems.add("backup.selections", "only the local environment (the emulator) may leave the backup plans without selections")
        if self.emulator is None and not self.roll.node_checks:
            problems.add("roll.node_checks", "only the local environment (the emulator) may skip the roll gate's checks on the node")
        if self.emulator is None and self.state is None:
            problems.add(
                "state",
                "an AWS environment keeps its Terraform state in S3 with a lock table: set "
                "state.bucket and state.region (scripts/bootstrap_state.py creates them)",
            )
        if self.content_sync == "rsync" and "shared_fs" in self.model_fields_set:
            problems.add("shared_fs", 'content_sync = "rsync" has no shared file system; remove [shared_fs]')
        if self.content_sync == "efs" and self.rsync is not None:
            problems.add("rsync", 'only with content_sync = "rsync"; remove [rsync] or set content_sync')
        self._restore_checks(problems)
        if self.gateway_scale_out is not None:
            for field, message in gateway_checks(self.gateway_scale_out, self.apim.version, self.apim.archive_url):
                problems.add(f"gateway_scale_out{'.' + field if field else ''}", message)
            if self.network.vpc_cidr is not None and not (self.gateway_scale_out.archive_url or "s3://").startswith("s3://"):
                problems.add("gateway_scale_out.archive_url", "a new VPC has no internet egress (only an S3 endpoint); use s3://")
        dns_zone = self.load_balancer.route53_zone
        if dns_zone is not None:
            if self.apim.hostname is None:
                problems.add("apim.hostname", "load_balancer.route53_zone needs apim.hostname (the record's name)")
            elif not self.apim.hostname.endswith("." + dns_zone):
                problems.add("apim.hostname", f"apim.hostname {self.apim.hostname} is not inside load_balancer.route53_zone {dns_zone}")
        for field, message in keystore_checks(self.keystore, self.region):
            problems.add(f"keystore.{field}", message)
        self._customization_checks(problems)
        problems.raise_any()
        return self

    def _customization_checks(self, problems: _Problems) -> None:
        customization = self.customization
        driver = self.database.jdbc_driver_url.rsplit("/", 1)[-1]
        for index, jar in enumerate(customization.extra_jars):
            if self.network.vpc_cidr is not None and not jar.url.startswith("s3://"):
                problems.add(f"customization.extra_jars.{index}.url", "a new VPC has no internet egress (only an S3 endpoint); use s3://")
            if jar.file_name == driver:
                problems.add(f"customization.extra_jars.{index}.url", f"{driver} is the JDBC driver's name (database.jdbc_driver_url)")
        hook = customization.post_boot_hook
        if hook and self.network.vpc_cidr is not None and not hook.startswith("s3://"):
            problems.add("customization.post_boot_hook", "a new VPC has no internet egress (only an S3 endpoint); use s3://")
        if customization.deployment_toml and not problems.found:  # rendered only from settings that hold together
            from apim_active_active.renderers.owned_keys import overlay_refusals  # (here: the renderers import this module)

            for key, why in overlay_refusals(self):
                problems.add(f"customization.deployment_toml.{key}", why)

    def _restore_checks(self, problems: _Problems) -> None:
        restore = self.restore
        if restore is None:
            return
        if restore.source_prefix == self.name_prefix:
            problems.add("restore.source_prefix", "a restore goes into a new environment: name_prefix must differ from the source's")
        makes_database = self.database.existing is None
        if makes_database and not (restore.database_source or restore.database_snapshot):
            problems.add(
                "restore.database_source", "RDS the stack makes is restored: set database_source (point in time) or database_snapshot"
            )
        if not makes_database and (restore.database_source or restore.database_snapshot):
            problems.add(
                "restore.database_source", "database.existing is restored outside the stack: remove database_source and database_snapshot"
            )
        if makes_database != (restore.secrets.database_app_arn is not None):
            problems.add("restore.secrets.database_app_arn", "set it exactly when the stack makes RDS (API-M's own database user)")
        symmetric = traits(self.apim.version).symmetric_internal_crypto
        if symmetric != (restore.secrets.encryption_key_arn is not None):
            problems.add(
                "restore.secrets.encryption_key_arn", f"set it exactly when API-M {self.apim.version} encrypts with the pair's key (4.7+)"
            )
        if restore.share and not self.uses_efs:
            problems.add("restore.share", 'content_sync = "rsync" has no share to restore into: set share = false')

    @property
    def is_local(self) -> bool:
        return self.emulator is not None

    @property
    def uses_efs(self) -> bool:
        return self.content_sync == "efs"

    @property
    def share_scope(self) -> str:
        """What the nodes keep the same: rsync pushes the whole folder; EFS shares the scope set or the version's."""
        if not self.uses_efs:
            return "server"
        return self.shared_fs.scope or traits(self.apim.version).default_share_scope

    @property
    def rsync_settings(self) -> RsyncSettings:
        """The rsync settings in effect (defaults when [rsync] is not given)."""
        return self.rsync or RsyncSettings()


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid settings"]
    for item in error.errors():
        where = [str(part) for part in item["loc"]]
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, CrossCheckErrors):  # one line a problem, under its own field
            lines += [f"  {'.'.join([*where, field])}: {message}" for field, message in cause.problems]
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {'.'.join(where) or '(top level)'}: {message}")
    return "\n".join(lines)


def parse_settings(data: dict, source: str = "settings", environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a settings mapping; raises SettingsError naming every bad setting."""
    variables = os.environ if environ is None else environ
    emulator = data.get("emulator")
    if isinstance(emulator, dict) and variables.get(ENDPOINT_ENV):
        data = {**data, "emulator": {**emulator, "endpoint_url": variables[ENDPOINT_ENV]}}
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise SettingsError(_describe(error, source)) from None


def load_settings(path: Path, environ: dict[str, str] | None = None) -> Settings:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    return parse_settings(data, str(path), environ)


def load_environments(folder: Path, environ: dict[str, str] | None = None) -> dict[str, Settings]:
    """Every environments/<name>.toml, keyed by name; all errors of all files reported at once."""
    settings, errors = {}, []
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise SettingsError(f"{folder}: no environment settings (*.toml) found")
    for path in files:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", path.stem):
            errors.append(f"{path}: the file name is the stack name: use lower-case letters, digits and '-'")
            continue
        try:
            settings[path.stem] = load_settings(path, environ)
        except SettingsError as error:
            errors.append(str(error))
    if errors:
        raise SettingsError("\n".join(errors))
    return settings
