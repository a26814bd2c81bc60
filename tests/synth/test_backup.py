"""Issue 17, item 1, on the synthesized stacks: the AWS Backup vault under the stack's key, the backup role with AWS's
managed policies, the daily and the continuous plans per settings, what they select, the copy region (its provider,
key and vault), vault lock, the generated secrets' replicas, and the interplay with RDS's and EFS's own backups."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest
from cdktf import Testing as CdktfTesting

from apim_active_active import names
from apim_active_active.constructs.backup import BACKUP_POLICIES, COMPLIANCE_CHANGEABLE_DAYS
from apim_active_active.protection import protections_on
from apim_active_active.settings import parse_settings
from apim_active_active.stacks.active_active import ActiveActiveStack
from tests.conftest import ENVIRONMENTS
from tests.helpers import ENVS, only, ref, resources, stack_key

STATE = Path("/tmp/unused-state")  # a local backend's path only; nothing is written at synth
BACKUP_KINDS = ("aws_backup_vault", "aws_backup_plan", "aws_backup_selection", "aws_backup_vault_lock_configuration")


def synth_dev(**changes) -> dict:
    """dev (an AWS environment: selections on) with other settings, synthesized in this process.
    changes: top-level sections to merge, e.g. backup={...}; content_sync="rsync" drops [shared_fs]."""
    data = tomllib.loads((ENVIRONMENTS / "dev.toml").read_text())
    data = copy.deepcopy(data)
    if changes.get("content_sync") == "rsync":
        data.pop("shared_fs", None)
    for section, value in changes.items():
        data[section] = {**data.get(section, {}), **value} if isinstance(value, dict) else value
    settings = parse_settings(data, environ={})
    app = CdktfTesting.app()
    return json.loads(CdktfTesting.synth(ActiveActiveStack(app, "variant", settings, state_dir=STATE)))


def stack_key_arn(stack: dict) -> str:
    return ref("aws_kms_key", stack_key(stack)[0], "arn")


def plans(stack: dict) -> dict[str, dict]:
    return {plan["name"]: plan for plan in resources(stack, "aws_backup_plan").values()}


def selected(stack: dict) -> dict[str, list[str]]:
    """What each plan selects, by plan name."""
    by_id = {ref("aws_backup_plan", name): plan["name"] for name, plan in resources(stack, "aws_backup_plan").items()}
    return {by_id[s["plan_id"]]: sorted(s["resources"]) for s in resources(stack, "aws_backup_selection").values()}


def database_arn(stack: dict) -> str:
    return ref("aws_db_instance", only(stack, "aws_db_instance")[0], "arn")


def share_arn(stack: dict) -> str:
    return ref("aws_efs_file_system", only(stack, "aws_efs_file_system")[0], "arn")


@pytest.fixture(scope="module")
def rsync_stack() -> dict:
    return synth_dev(content_sync="rsync")


@pytest.fixture(scope="module")
def compliance_stack() -> dict:
    return synth_dev(backup={"copy_region": "eu-central-1", "vault_lock": "compliance", "retention_days": 14, "retain_on_destroy": True})


# The vault and the role -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_vault_is_the_prefix_under_the_stack_key(stacks, environments, env):
    stack, prefix = stacks[env], environments[env].name_prefix
    vaults = [v for v in resources(stack, "aws_backup_vault").values() if "provider" not in v]
    assert [(v["name"], v["kms_key_arn"]) for v in vaults] == [(prefix, stack_key_arn(stack))]
    output = stack["output"][names.OUTPUT_BACKUP_VAULTS]["value"]
    assert output["primary"] == ref(
        "aws_backup_vault", next(n for n, v in resources(stack, "aws_backup_vault").items() if v in vaults), "name"
    )


@pytest.mark.parametrize("env", ENVS)
def test_a_destroy_takes_the_recovery_points_only_where_they_are_not_retained(stacks, environments, env):
    """retain_on_destroy (a protection: `cdktf destroy` refuses while it is on) or force_destroy on every vault."""
    backup = environments[env].backup
    forced = backup.holds_recovery_points and not backup.retain_on_destroy
    assert {v.get("force_destroy") for v in resources(stacks[env], "aws_backup_vault").values()} == {forced}
    protected = "backup.retain_on_destroy" in protections_on(environments[env])
    assert protected is (backup.holds_recovery_points and backup.retain_on_destroy)
    # local: no selections, so nothing is ever in its vault: neither protected nor forced (the emulator has no
    # ListRecoveryPointsByBackupVault, which a forced delete calls).
    if env == "local":
        assert not forced and not protected


@pytest.mark.parametrize("env", ENVS)
def test_the_stack_key_leaves_aws_backup_to_the_role_s_iam_policies(stacks, env):
    """AWS Backup uses a vault's key as the backup role: IAM and key policy must agree (aws-backup/latest/devguide/encryption.html)."""
    key = next(k for k in resources(stacks[env], "aws_kms_key").values() if "provider" not in k)
    (account,) = [s for s in json.loads(key["policy"])["Statement"] if s["Sid"] == "AccountIamPolicies"]
    assert account["Principal"]["AWS"].endswith(":root") and account["Action"] == "kms:*"


@pytest.mark.parametrize("env", ENVS)
def test_aws_backup_assumes_a_role_with_aws_s_managed_backup_and_restore_policies(stacks, environments, env):
    stack, prefix = stacks[env], environments[env].name_prefix
    roles = {name: r for name, r in resources(stack, "aws_iam_role").items() if r["name"] == f"{prefix}-backup"}
    ((role_name, role),) = roles.items()
    (trust,) = json.loads(role["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    attached = sorted(
        a["policy_arn"]
        for a in resources(stack, "aws_iam_role_policy_attachment").values()
        if a["role"] == ref("aws_iam_role", role_name, "name")
    )
    assert attached == sorted(BACKUP_POLICIES)
    assert all(s["iam_role_arn"] == ref("aws_iam_role", role_name, "arn") for s in resources(stack, "aws_backup_selection").values())


# The plans --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_daily_rule_follows_schedule_and_retention(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    (rule,) = plans(stack)[f"{settings.name_prefix}-daily"]["rule"]
    assert rule["schedule"] == settings.backup.schedule
    assert rule["lifecycle"] == {"delete_after": settings.backup.retention_days}
    assert rule["target_vault_name"].startswith("${aws_backup_vault.")
    assert ("copy_action" in rule) == (settings.backup.copy_region is not None)


def test_prod_copies_each_daily_point_to_the_vault_in_the_copy_region(stacks, environments):
    stack, settings = stacks["prod"], environments["prod"]
    (rule,) = plans(stack)["apim-prod-daily"]["rule"]
    (copy_vault_name,) = [n for n, v in resources(stack, "aws_backup_vault").items() if v.get("provider") == "aws.copy"]
    copy_key = next(n for n, k in resources(stack, "aws_kms_key").items() if k.get("provider") == "aws.copy")
    assert rule["copy_action"] == [
        {
            "destination_vault_arn": ref("aws_backup_vault", copy_vault_name, "arn"),
            "lifecycle": {"delete_after": settings.backup.copy_retention_days},
        }
    ]
    copy_vault = resources(stack, "aws_backup_vault")[copy_vault_name]
    assert (copy_vault["name"], copy_vault["kms_key_arn"]) == ("apim-prod", ref("aws_kms_key", copy_key, "arn"))
    assert stack["output"][names.OUTPUT_BACKUP_VAULTS]["value"]["copy"] == ref("aws_backup_vault", copy_vault_name, "name")


def test_the_copy_region_has_a_provider_of_its_own_with_the_same_tags(stacks, environments):
    main, copy_provider = stacks["prod"]["provider"]["aws"]
    assert (main["region"], "alias" not in main) == ("eu-west-1", True)
    assert (copy_provider["alias"], copy_provider["region"]) == ("copy", environments["prod"].backup.copy_region)
    assert copy_provider["default_tags"] == main["default_tags"]
    assert [len(stacks[env]["provider"]["aws"]) for env in ("local", "dev", "legacy32")] == [1, 1, 1]


@pytest.mark.parametrize("env", ["local", "prod"])
def test_continuous_database_rule_keeps_the_database_s_point_in_time_window(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    (rule,) = plans(stack)[f"{settings.name_prefix}-database-continuous"]["rule"]
    assert rule["enable_continuous_backup"] is True
    assert rule["lifecycle"] == {"delete_after": settings.database.backup_retention_days}
    assert stack["output"][names.OUTPUT_BACKUP_PLANS]["value"] == {
        name: ref("aws_backup_plan", key) for key, plan in resources(stack, "aws_backup_plan").items() for name in [plan["name"]]
    }


def test_no_continuous_plan_without_rds_made_here_or_with_it_off(stacks):
    assert sorted(plans(stacks["legacy32"])) == ["apim-legacy-daily"]  # an existing database: not the stack's to back up
    assert sorted(plans(stacks["dev"])) == ["apim-dev-daily"]  # dev: backup.continuous_database = false


def test_prod_selects_the_database_and_the_share_daily_and_the_database_continuously(stacks):
    stack = stacks["prod"]
    assert selected(stack) == {
        "apim-prod-daily": sorted([database_arn(stack), share_arn(stack)]),
        "apim-prod-database-continuous": [database_arn(stack)],
    }


def test_with_rsync_there_is_no_share_and_the_database_alone_is_selected(rsync_stack):
    assert selected(rsync_stack) == {"apim-dev-daily": [database_arn(rsync_stack)]}


def test_an_existing_database_leaves_the_share_alone_selected(stacks):
    assert selected(stacks["legacy32"]) == {"apim-legacy-daily": [share_arn(stacks["legacy32"])]}


def test_local_makes_the_vault_and_plans_but_no_selection(stacks):
    """moto 5.2.5's backup backend has no CreateBackupSelection (backup.selections = false there)."""
    local = stacks["local"]
    assert resources(local, "aws_backup_vault") and len(plans(local)) == 2
    assert not resources(local, "aws_backup_selection")


def test_plan_off_makes_nothing_of_aws_backup_and_keeps_efs_own_backups():
    stack = synth_dev(backup={"plan": False})
    assert not any(resources(stack, kind) for kind in BACKUP_KINDS)
    assert not [r for r in resources(stack, "aws_iam_role").values() if r["name"] == "apim-dev-backup"]
    assert names.OUTPUT_BACKUP_PLANS not in stack["output"] and names.OUTPUT_BACKUP_VAULTS not in stack["output"]
    assert resources(stack, "aws_efs_backup_policy"), "with no plan, EFS's automatic backups are the share's only ones"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_efs_automatic_backups_are_off_where_the_daily_plan_covers_the_share(stacks, env):
    assert not resources(stacks[env], "aws_efs_backup_policy")


# The database's own retention -------------------------------------------------------------------------------------------
def test_rds_retention_is_left_to_aws_backup_only_where_it_keeps_the_database_continuously(stacks, environments):
    for env in ("prod", "dev", "local"):
        ((_, instance),) = resources(stacks[env], "aws_db_instance").items()
        assert instance["backup_retention_period"] == environments[env].database.backup_retention_days
        ignored = instance.get("lifecycle", {}).get("ignore_changes", [])
        # prod: continuous and selected; dev: no continuous rule; local: no selection, so AWS Backup manages nothing.
        assert ("backup_retention_period" in ignored) == (env == "prod"), env


# Vault lock -------------------------------------------------------------------------------------------------------------
def locks(stack: dict) -> dict[str, dict]:
    """Each lock by the provider of its vault: main or copy."""
    return {lock.get("provider", "main"): lock for lock in resources(stack, "aws_backup_vault_lock_configuration").values()}


def test_governance_lock_on_both_vaults_with_the_shortest_retention_going_in(stacks, environments):
    stack, settings = stacks["prod"], environments["prod"]
    found = locks(stack)
    # The continuous rule keeps database.backup_retention_days (7) in the vault: a longer minimum would fail its jobs.
    expected_main = min(settings.backup.retention_days, settings.database.backup_retention_days)
    assert {p: (lock["min_retention_days"], lock.get("changeable_for_days")) for p, lock in found.items()} == {
        "main": (expected_main, None),
        "aws.copy": (settings.backup.copy_retention_days, None),
    }


def test_compliance_lock_becomes_immutable_after_aws_backup_s_three_day_cooling_off(compliance_stack):
    found = locks(compliance_stack)
    assert {p: (lock["min_retention_days"], lock["changeable_for_days"]) for p, lock in found.items()} == {
        "main": (14, COMPLIANCE_CHANGEABLE_DAYS),  # dev has no continuous rule: the daily retention alone
        "aws.copy": (35, COMPLIANCE_CHANGEABLE_DAYS),
    }
    assert COMPLIANCE_CHANGEABLE_DAYS == 3


@pytest.mark.parametrize("env", ["local", "dev", "legacy32"])
def test_no_lock_by_default(stacks, env):
    assert not resources(stacks[env], "aws_backup_vault_lock_configuration")


# The generated secrets in the copy region -------------------------------------------------------------------------------
def test_prod_replicates_every_generated_secret_under_the_copy_region_key_and_still_no_value(stacks, environments):
    stack, settings = stacks["prod"], environments["prod"]
    (copy_key,) = [n for n, k in resources(stack, "aws_kms_key").items() if k.get("provider") == "aws.copy"]
    secrets = resources(stack, "aws_secretsmanager_secret").values()
    assert secrets and all(
        s["replica"] == [{"region": settings.backup.copy_region, "kms_key_id": ref("aws_kms_key", copy_key, "arn")}] for s in secrets
    )
    assert not resources(stack, "aws_secretsmanager_secret_version"), "values are generated at boot, in no plan or state"


def test_a_copy_region_without_replicate_secrets_leaves_the_secrets_in_one_region(compliance_stack, stacks):
    assert all("replica" not in s for s in resources(compliance_stack, "aws_secretsmanager_secret").values())
    assert all("replica" not in s for s in resources(stacks["dev"], "aws_secretsmanager_secret").values())


def test_the_copy_region_key_rotates_and_leaves_access_to_the_account(stacks):
    (key,) = [k for k in resources(stacks["prod"], "aws_kms_key").values() if k.get("provider") == "aws.copy"]
    assert key["enable_key_rotation"] is True
    assert [s["Sid"] for s in json.loads(key["policy"])["Statement"]] == ["AccountIamPolicies"]


def test_only_the_emulator_ignores_backup_tag_drift(stacks):
    """moto 5.2.5 reads backup tags back only on a ListTags path ending in "/" (docs/local-emulator.md)."""
    for env in ENVS:
        for kind in ("aws_backup_vault", "aws_backup_plan"):
            for made in resources(stacks[env], kind).values():
                assert (made.get("lifecycle", {}).get("ignore_changes") == ["tags", "tags_all"]) == (env == "local"), (env, kind)


def test_nodes_may_encrypt_with_the_copy_key_through_secrets_manager_there_for_the_replicas(stacks, environments):
    """The value a node writes is replicated under the replica's key as the writer (Secrets Manager's replication
    troubleshooting: "No permissions available on the KMS key"): prod's node role may encrypt with that key, only
    through Secrets Manager in the copy region; dev, which replicates nothing, gets no such statement."""

    def replica_statements(stack: dict) -> list[dict]:
        policies = [json.loads(p["policy"]) for p in resources(stack, "aws_iam_role_policy").values()]
        return [s for p in policies for s in p["Statement"] if s.get("Sid") == "ReplicaKey"]

    (statement,) = replica_statements(stacks["prod"])
    copy_key = next(n for n, k in resources(stacks["prod"], "aws_kms_key").items() if "provider" in k)
    assert statement["Resource"] == ref("aws_kms_key", copy_key, "arn")
    assert statement["Action"] == ["kms:Encrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{environments['prod'].backup.copy_region}.amazonaws.com"}
    }
    assert replica_statements(stacks["dev"]) == []


def test_the_continuous_job_runs_apart_from_the_daily_one(stacks, environments):
    """AWS Backup runs one job per resource at a time; a second one waiting past its start window fails."""
    rules = {name: plan["rule"][0] for name, plan in plans(stacks["prod"]).items()}
    backup = environments["prod"].backup
    assert rules["apim-prod-daily"]["schedule"] == backup.schedule
    assert rules["apim-prod-database-continuous"]["schedule"] == backup.continuous_schedule != backup.schedule


def test_a_compliance_lock_is_never_replaced_by_a_later_retention_change(compliance_stack):
    """Every argument of the lock replaces it (the provider), and a compliance lock past its cooling-off cannot go."""
    for lock in resources(compliance_stack, "aws_backup_vault_lock_configuration").values():
        assert set(lock["lifecycle"]["ignore_changes"]) == {"min_retention_days", "max_retention_days", "changeable_for_days"}
