"""Database: the shared WSO2AM_DB and WSO2SHARED_DB host, an RDS instance or an existing database.

Defaults (RDS): MySQL 8 (or PostgreSQL 16), in the nodes' subnets, TLS required of every client and
slow queries logged (`database.parameter_group`), encrypted with the stack's key,
not public, its own security group admitting the engine's port only from the nodes; the master
password managed by RDS in Secrets Manager (encrypted with the stack's key); Multi-AZ, deletion
protection, a final snapshot when it is deleted (`database.final_snapshot`), 7 days of backups, logs to CloudWatch,
IAM authentication, Performance Insights, enhanced monitoring: settings under `database`.
Existing: the nodes may reach `database.existing.cidr` on its port; its secret is named in the settings.
Restored (`restore`): created from the source's point in time or snapshot. RDS keeps the encryption key of what it
restores from (RestoreDBInstanceToPointInTime and RestoreDBInstanceFromDBSnapshot take no key), so the stack's key is
not asked for, and neither that nor the restore's source is ever changed afterwards (each would replace the instance);
the engine version is the restored one's (the provider would otherwise modify a snapshot's to the settings' major-only
version, which RDS refuses: terraform-aws-modules/terraform-aws-rds#385).
With AWS Backup's continuous backup of the database, its backup retention period is set at creation (equal to the
continuous rule's) and then left to AWS Backup.
Exposes: host, port, secret_arn, arn (None with an existing database), security_group_id (None with an existing
database: the nodes reach its `database.existing.cidr`); admit(id, group_id) opens its port to another group (RDS only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from apim_active_active import aws
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.engines import ENGINES
from apim_active_active.iam_documents import assume_role_policy
from apim_active_active.names import resource_name
from apim_active_active.settings import DatabaseSettings, RestoreSettings

MASTER_USERNAME = "wso2admin"
MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class DatabaseProps:
    name_prefix: str
    database: DatabaseSettings
    vpc_id: str
    subnet_ids: list[str]
    node_group_id: str  # the nodes' security group: the database is reached from there only
    kms_key_arn: str
    # AWS Backup keeps the database continuously: it then owns the instance's backup retention period (RDS refuses
    # another value than the current one while a continuous recovery point is associated, terraform-aws-modules/
    # terraform-aws-rds-aurora#411; hashicorp/terraform-provider-aws#33465), so Terraform sets it at creation only.
    retention_owned_by_backup: bool = False
    restore: RestoreSettings | None = None  # a restored environment: the database from the source's backup


class Database(Construct):
    def __init__(self, scope: Construct, id_: str, props: DatabaseProps) -> None:
        super().__init__(scope, id_)
        prefix, database, restore = props.name_prefix, props.database, props.restore
        engine = ENGINES[database.engine]
        self.port: int = engine.port
        self.security_group_id: str | None = None
        self.identifier: str | None = None  # RDS's, when the stack makes the database
        self.arn: str | None = None  # RDS's, when the stack makes the database
        if database.existing:
            existing = database.existing
            self.host: str = existing.host
            self.secret_arn: str = existing.secret_arn
            self.port = existing.port
            return
        group = aws.security_group.SecurityGroup(
            self,
            "group",
            name=resource_name(prefix, "db"),
            description="WSO2 API-M database",
            vpc_id=props.vpc_id,
            tags={"Name": resource_name(prefix, "db")},
        )
        tcp_rule(self, "from_nodes", group.id, "ingress", engine.port, "Database from the API-M nodes", peer_group=props.node_group_id)
        self.security_group_id = group.id
        subnets = aws.db_subnet_group.DbSubnetGroup(
            self,
            "subnets",
            name=resource_name(prefix, "db"),
            subnet_ids=props.subnet_ids,
            tags={"Name": resource_name(prefix, "db")},
        )
        parameters = None
        if database.parameter_group:
            parameters = aws.db_parameter_group.DbParameterGroup(
                self,
                "parameters",
                name=resource_name(prefix, "db"),
                family=engine.parameter_family,
                parameter=[aws.db_parameter_group.DbParameterGroupParameter(name=n, value=v) for n, v in engine.parameters],
                tags={"Name": resource_name(prefix, "db")},
            )
        instance = aws.db_instance.DbInstance(
            self,
            "instance",
            identifier=resource_name(prefix, "db"),
            engine=engine.rds_engine,
            engine_version=None if restore else engine.rds_version,  # a snapshot's own (a major-only one fails its modify)
            instance_class=database.instance_class,
            allocated_storage=database.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=None if restore else props.kms_key_arn,
            db_name=None if restore else engine.apim_db,  # RDS takes no database name for MySQL or PostgreSQL restores
            username=MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=props.kms_key_arn,
            db_subnet_group_name=subnets.name,
            parameter_group_name=parameters.name if parameters else None,
            vpc_security_group_ids=[group.id],
            publicly_accessible=False,
            multi_az=database.multi_az,
            deletion_protection=database.deletion_protection,
            skip_final_snapshot=not database.final_snapshot,
            final_snapshot_identifier=resource_name(prefix, "db-final") if database.final_snapshot else None,
            backup_retention_period=database.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            iam_database_authentication_enabled=True,
            enabled_cloudwatch_logs_exports=list(engine.log_exports),
            performance_insights_enabled=database.performance_insights,
            performance_insights_kms_key_id=props.kms_key_arn if database.performance_insights else None,
            monitoring_interval=database.enhanced_monitoring_seconds,
            monitoring_role_arn=self._monitoring_role(prefix) if database.enhanced_monitoring_seconds else None,
            tags={"Name": resource_name(prefix, "db")},
            lifecycle=_lifecycle(props.retention_owned_by_backup, restore is not None),
            **_restored_from(restore),
            # A restore replays logs or reads a snapshot: far longer than a creation, and the provider records the
            # instance only once it is available (a time-out would leave it outside the state).
            timeouts=aws.db_instance.DbInstanceTimeouts(create="300m", update="300m") if restore else None,
        )
        self.host = instance.address
        self.secret_arn = instance.master_user_secret.get(0).secret_arn
        self.identifier = instance.identifier
        self.arn = instance.arn

    def admit(self, id_: str, group_id: str, description: str) -> None:
        """The engine's port from another security group (a gateway scale-out group's): RDS only."""
        assert self.security_group_id, "an existing database's rules are its owner's"
        tcp_rule(self, id_, self.security_group_id, "ingress", self.port, description, peer_group=group_id)

    def _monitoring_role(self, prefix: str) -> str:
        role = aws.iam_role.IamRole(
            self,
            "monitoring",
            name=resource_name(prefix, "db-monitoring"),
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
        )
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(self, "monitoring_policy", role=role.name, policy_arn=MONITORING_POLICY)
        return role.arn


def _lifecycle(retention_owned_by_backup: bool, restored: bool) -> TerraformResourceLifecycle | None:
    ignored = [
        *(["backup_retention_period"] if retention_owned_by_backup else []),
        *(["kms_key_id", "engine_version", "restore_to_point_in_time", "snapshot_identifier"] if restored else []),
    ]
    return TerraformResourceLifecycle(ignore_changes=ignored) if ignored else None


def _restored_from(restore: RestoreSettings | None) -> dict:
    if restore is None:
        return {}
    if restore.database_snapshot:
        return {"snapshot_identifier": restore.database_snapshot}
    time = restore.database_time
    return {
        "restore_to_point_in_time": aws.db_instance.DbInstanceRestoreToPointInTime(
            source_db_instance_identifier=restore.database_source,
            restore_time=(time.astimezone(UTC) if time.tzinfo else time).strftime("%Y-%m-%dT%H:%M:%SZ") if time else None,
            use_latest_restorable_time=None if time else True,
        )
    }
