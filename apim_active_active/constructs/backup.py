"""Backup: AWS Backup plans of what the pair keeps, the database the stack makes and the share (docs/backup-and-restore.md).

Defaults: a vault `<prefix>` encrypted with the stack's key; a role AWS Backup assumes, with AWS's managed policies
for backup and restore; plan `<prefix>-daily` (`backup.schedule`, kept `backup.retention_days`, with
`backup.copy_region` copied to the vault `<prefix>` there, kept `backup.copy_retention_days`) selecting the database
and the file system; plan `<prefix>-database-continuous` (point-in-time recovery, kept `database.backup_retention_days`)
selecting the database, only with `backup.continuous_database` and RDS made here; `backup.vault_lock` on both vaults.
No selections with `backup.selections = false` (the emulator lacks CreateBackupSelection).
Exposes: vault_names (by role: primary, copy), plan_ids (by plan name), role_arn.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformProvider, TerraformResourceLifecycle
from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import assume_role_policy
from apim_active_active.names import resource_name
from apim_active_active.settings import BackupSettings

# AWS's managed policies for AWS Backup's service role (aws-backup/latest/devguide/iam-service-roles.html,
# security-iam-awsmanpol.html): taking recovery points (RDS snapshots, EFS backups, copies between vaults) and restoring them.
BACKUP_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)
# AWS Backup's limit for continuous backup (point-in-time recovery): 1 to 35 days
# (aws-backup/latest/devguide/point-in-time-recovery-retention-period.html); database.backup_retention_days keeps to it.
CONTINUOUS_MAX_DAYS = 35
# A day: a daily job not finished by the next day's start is abandoned (AWS Backup's default is 7 days, Terraform's 3 h).
COMPLETION_WINDOW_MINUTES = 24 * 60
# Compliance mode: AWS Backup's cooling-off before the lock is immutable is at least 72 hours (ChangeableForDays >= 3,
# aws-backup/latest/devguide/API_PutBackupVaultLockConfiguration.html); governance mode leaves it unset.
COMPLIANCE_CHANGEABLE_DAYS = 3


def continuous_database(backup: BackupSettings, makes_database: bool) -> bool:
    """Whether AWS Backup keeps the database continuously (and then owns its backup retention period)."""
    return backup.plan and backup.continuous_database and makes_database


@dataclass(frozen=True)
class CopyTarget:
    """The vault in `backup.copy_region`: reached through that region's provider, encrypted with the stack's key there."""

    provider: TerraformProvider
    kms_key_arn: str


@dataclass(frozen=True)
class BackupPlansProps:
    name_prefix: str
    backup: BackupSettings
    kms_key_arn: str
    database_arn: str | None  # RDS the stack makes; None with database.existing (not this stack's to back up)
    file_system_arn: str | None  # the share; None with content_sync = "rsync"
    continuous_retention_days: int  # database.backup_retention_days: the point-in-time window
    copy: CopyTarget | None  # with backup.copy_region
    # The emulator only: moto 5.2.5 reads a backup resource's tags back only when the ListTags path ends in "/", which
    # the provider's does not, so every plan would show the tags again (docs/local-emulator.md).
    ignore_tag_drift: bool = False


class BackupPlans(Construct):
    def __init__(self, scope: Construct, id_: str, props: BackupPlansProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        self._tagged = TerraformResourceLifecycle(ignore_changes=["tags", "tags_all"]) if props.ignore_tag_drift else None
        prefix, backup = props.name_prefix, props.backup
        continuous = continuous_database(backup, props.database_arn is not None)
        vault = aws.backup_vault.BackupVault(
            self,
            "vault",
            name=prefix,
            kms_key_arn=props.kms_key_arn,
            # A destroy takes the recovery points with it; with no selections the vault stays empty (and the emulator
            # lacks the listing a forced delete makes).
            force_destroy=backup.holds_recovery_points and not backup.retain_on_destroy,
            tags={"Name": resource_name(prefix, "backup")},
            lifecycle=self._tagged,
        )
        # A lock fails every job whose lifecycle is shorter than its minimum (API_PutBackupVaultLockConfiguration.html):
        # the minimum is the shortest retention going into the vault.
        retentions = [backup.retention_days, *([props.continuous_retention_days] if continuous else [])]
        self._lock("vault_lock", vault.name, min(retentions))
        self.vault_names: dict[str, str] = {"primary": vault.name}
        copy_action = None
        if props.copy:
            copy_vault = aws.backup_vault.BackupVault(
                self,
                "copy_vault",
                provider=props.copy.provider,
                name=prefix,
                kms_key_arn=props.copy.kms_key_arn,
                force_destroy=backup.holds_recovery_points and not backup.retain_on_destroy,
                tags={"Name": resource_name(prefix, "backup-copy")},
                lifecycle=self._tagged,
            )
            self._lock("copy_vault_lock", copy_vault.name, backup.copy_retention_days, provider=props.copy.provider)
            self.vault_names["copy"] = copy_vault.name
            copy_action = [
                aws.backup_plan.BackupPlanRuleCopyAction(
                    destination_vault_arn=copy_vault.arn,
                    lifecycle=aws.backup_plan.BackupPlanRuleCopyActionLifecycle(delete_after=backup.copy_retention_days),
                )
            ]
        role = aws.iam_role.IamRole(
            self, "role", name=resource_name(prefix, "backup"), assume_role_policy=assume_role_policy("backup.amazonaws.com")
        )
        for index, policy in enumerate(BACKUP_POLICIES):
            aws.iam_role_policy_attachment.IamRolePolicyAttachment(self, f"role_policy_{index + 1}", role=role.name, policy_arn=policy)
        self.role_arn: str = role.arn

        daily = self._plan(
            "daily",
            aws.backup_plan.BackupPlanRule(
                rule_name="daily",
                target_vault_name=vault.name,
                schedule=backup.schedule,
                completion_window=COMPLETION_WINDOW_MINUTES,
                lifecycle=aws.backup_plan.BackupPlanRuleLifecycle(delete_after=backup.retention_days),
                copy_action=copy_action,
            ),
            [arn for arn in (props.database_arn, props.file_system_arn) if arn],
        )
        self.plan_ids: dict[str, str] = {resource_name(prefix, "daily"): daily}
        if continuous and props.database_arn:
            # One continuous recovery point per database, its retention kept by AWS Backup from this rule
            # (point-in-time-recovery-retention-period.html); the rule's schedule is its maintenance cadence.
            self.plan_ids[resource_name(prefix, "database-continuous")] = self._plan(
                "database-continuous",
                aws.backup_plan.BackupPlanRule(
                    rule_name="continuous",
                    target_vault_name=vault.name,
                    schedule=backup.continuous_schedule,  # apart from the daily rule's: one job per resource at a time
                    enable_continuous_backup=True,
                    completion_window=COMPLETION_WINDOW_MINUTES,
                    lifecycle=aws.backup_plan.BackupPlanRuleLifecycle(delete_after=props.continuous_retention_days),
                ),
                [props.database_arn],
            )

    def _lock(self, id_: str, vault_name: str, min_days: int, provider: TerraformProvider | None = None) -> None:
        mode = self._props.backup.vault_lock
        if mode == "off":
            return
        aws.backup_vault_lock_configuration.BackupVaultLockConfiguration(
            self,
            id_,
            provider=provider,
            backup_vault_name=vault_name,
            min_retention_days=min_days,
            changeable_for_days=COMPLIANCE_CHANGEABLE_DAYS if mode == "compliance" else None,
            # Every argument replaces the lock (the provider's vault_lock_configuration.go), and a compliance lock past
            # its cooling-off cannot be removed: a later retention change must not plan that replacement.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["min_retention_days", "max_retention_days", "changeable_for_days"])
            if mode == "compliance"
            else None,
        )

    def _plan(self, suffix: str, rule: aws.backup_plan.BackupPlanRule, resource_arns: list[str]) -> str:
        prefix = self._props.name_prefix
        plan = aws.backup_plan.BackupPlan(
            self,
            suffix.replace("-", "_"),
            name=resource_name(prefix, suffix),
            rule=[rule],
            tags={"Name": resource_name(prefix, suffix)},
            lifecycle=self._tagged,
        )
        if self._props.backup.selections and resource_arns:
            aws.backup_selection.BackupSelection(
                self,
                f"{suffix.replace('-', '_')}_selection",
                name=resource_name(prefix, suffix),
                plan_id=plan.id,
                iam_role_arn=self.role_arn,
                resources=resource_arns,
            )
        return plan.id
