"""Issue 17, items 2-3, on the synthesized stacks: a restored environment (examples/restored.toml, prod restored to a
point in time; variants synthesized in this process) restores its database from the source's backup (never asking
for a key or a database name, never changing either afterwards), makes no secret and reads exactly the source's, may
read its restore parameter and write no secret, ships the restore parts to its nodes; an environment that is not a
restore has none of it."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest
from cdktf import Testing as CdktfTesting

from apim_active_active import names
from apim_active_active.settings import Settings, parse_settings
from apim_active_active.stacks.active_active import ActiveActiveStack
from apim_active_active.terraform_text import template_of_base64gzip
from tests.conftest import EXAMPLES
from tests.helpers import (
    ENVS,
    RESTORED_PREFIX,
    SOURCE_SECRETS,
    boot_steps,
    named,
    node_user_data,
    only,
    ref,
    resources,
    restored_local,
    stack_key,
)

STATE = Path("/tmp/unused-state")  # a local backend's path only; nothing is written at synth
PREFIX = "apim-prod-r1"
PROD_KEY = "arn:aws:kms:eu-west-1:123456789012:key/3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
SOURCE_ARNS = [
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apim-prod/apim-admin-Ab12Cd",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apim-prod/keystore-Ef34Gh",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apim-prod/database-app-Ij56Kl",
]
RESTORE_IGNORED = ["kms_key_id", "engine_version", "restore_to_point_in_time", "snapshot_identifier"]
# A restore replays logs or reads a snapshot: far longer than a creation (the provider records the instance only once
# it is available: a time-out would leave it outside the state).
RESTORE_TIMEOUTS = {"create": "300m", "update": "300m"}


def synth(settings: Settings) -> dict:
    return json.loads(CdktfTesting.synth(ActiveActiveStack(CdktfTesting.app(), "variant", settings, state_dir=STATE)))


def example_with(**restore) -> Settings:
    """examples/restored.toml with other [restore] settings (None removes one)."""
    data = copy.deepcopy(tomllib.loads((EXAMPLES / "restored.toml").read_text()))
    data["restore"] = {k: v for k, v in {**data["restore"], **restore}.items() if v is not None}
    return parse_settings(data, environ={})


@pytest.fixture(scope="module")
def snapshot_stack() -> dict:
    return synth(example_with(database_source=None, database_time=None, database_snapshot="rds:apim-prod-db-2026-11-27-03-00"))


@pytest.fixture(scope="module")
def latest_stack() -> dict:
    """local restored to its latest restorable time, without its share (restore.share = false)."""
    return synth(restored_local(share=False))


def policy_statements(stack: dict, name: str = "use-secrets") -> dict[str, dict]:
    _, grant = named(stack, "aws_iam_role_policy", name)
    return {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}


def node_env(stack: dict) -> list[str]:
    """Both nodes' user data templates (node.env, deployment.toml, the boot step among their files)."""
    texts = [template_of_base64gzip(node_user_data(stack, i)) for i in resources(stack, "aws_instance").values()]
    assert len(texts) == 2
    return texts


def lines(text: str) -> set[str]:
    """A user data template's lines, without the cloud-config indentation of the files' content."""
    return {line.strip() for line in text.splitlines()}


def restore_parameters(stack: dict) -> dict[str, dict]:
    return {n: p for n, p in resources(stack, "aws_ssm_parameter").items() if p["name"].endswith("/restore/share")}


# the database --------------------------------------------------------------------------------------------------------
def test_the_database_is_restored_to_the_point_in_time_without_a_key_or_a_name(example_stacks):
    stack = example_stacks["restored"]
    _, db = only(stack, "aws_db_instance")
    assert db["restore_to_point_in_time"] == {"source_db_instance_identifier": "apim-prod-db", "restore_time": "2026-11-27T10:00:00Z"}
    # RDS keeps the key of what it restores from, and takes no database name for a MySQL or PostgreSQL restore; the
    # engine version is the restored one's (a major-only version would be a modify RDS refuses after a snapshot's).
    assert "kms_key_id" not in db and "db_name" not in db and "snapshot_identifier" not in db and "engine_version" not in db
    assert db["engine"] == "postgres" and db["timeouts"] == RESTORE_TIMEOUTS
    assert db["storage_encrypted"] is True and db["identifier"] == f"{PREFIX}-db"
    # The new master user secret (RDS's) is under this stack's own key.
    assert db["master_user_secret_kms_key_id"] == ref("aws_kms_key", stack_key(stack)[0], "arn")
    # Neither the key, the engine version nor the restore's source is changed afterwards (the key and the source would
    # replace the instance); prod's continuous backup owns the retention as before.
    assert db["lifecycle"]["ignore_changes"] == ["backup_retention_period", *RESTORE_IGNORED]


def test_the_latest_restorable_time_when_none_is_given(latest_stack):
    _, db = only(latest_stack, "aws_db_instance")
    assert db["restore_to_point_in_time"] == {"source_db_instance_identifier": "apim-local-db", "use_latest_restorable_time": True}
    assert db["lifecycle"]["ignore_changes"] == RESTORE_IGNORED  # local: no continuous backup (no selections)
    assert "engine_version" not in db and db["timeouts"] == RESTORE_TIMEOUTS


def test_a_snapshot_restore_gives_the_snapshot_identifier(snapshot_stack):
    _, db = only(snapshot_stack, "aws_db_instance")
    assert db["snapshot_identifier"] == "rds:apim-prod-db-2026-11-27-03-00"
    assert "restore_to_point_in_time" not in db and "kms_key_id" not in db and "db_name" not in db
    assert db["lifecycle"]["ignore_changes"] == ["backup_retention_period", *RESTORE_IGNORED]
    assert "engine_version" not in db and db["timeouts"] == RESTORE_TIMEOUTS


# the secrets, the grants ---------------------------------------------------------------------------------------------
def test_no_secret_is_made_the_nodes_read_exactly_the_sources(example_stacks):
    stack = example_stacks["restored"]
    assert not resources(stack, "aws_secretsmanager_secret") and not resources(stack, "aws_secretsmanager_secret_version")
    statements = policy_statements(stack)
    db_name = only(stack, "aws_db_instance")[0]
    assert statements["ReadSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["ReadSecrets"]["Resource"] == [f"${{aws_db_instance.{db_name}.master_user_secret[0].secret_arn}}", *SOURCE_ARNS]
    assert "GenerateOnce" not in statements and "ReplicaKey" not in statements, "the nodes write no secret, none is replicated"
    every_policy = " ".join(p["policy"] for p in resources(stack, "aws_iam_role_policy").values())
    assert "secretsmanager:PutSecretValue" not in every_policy
    # prod's key encrypts prod's secrets: the nodes may decrypt with it (and nothing else besides their own key).
    assert statements["OtherKeys"]["Resource"] == [PROD_KEY] and statements["OtherKeys"]["Action"] == "kms:Decrypt"


def test_the_nodes_may_read_the_restore_parameter_only(example_stacks):
    stack = example_stacks["restored"]
    ((name, parameter),) = restore_parameters(stack).items()
    assert parameter["name"] == names.restore_share_parameter(PREFIX) == f"/{PREFIX}/restore/share"
    assert (parameter["type"], parameter["value"]) == ("SecureString", "waiting")
    assert parameter["key_id"] == ref("aws_kms_key", stack_key(stack)[0], "arn")
    assert parameter["lifecycle"]["ignore_changes"] == ["value"], "scripts/restore.py sets it; a deploy leaves it"
    assert policy_statements(stack)["RestoredShare"] == {
        "Sid": "RestoredShare",
        "Effect": "Allow",
        "Action": "ssm:GetParameter",
        "Resource": ref("aws_ssm_parameter", name, "arn"),
    }


def test_no_share_to_restore_no_parameter(latest_stack):
    assert not restore_parameters(latest_stack) and "RestoredShare" not in policy_statements(latest_stack)
    assert not resources(latest_stack, "aws_secretsmanager_secret")
    read = policy_statements(latest_stack)["ReadSecrets"]["Resource"]
    assert read[1:] == list(SOURCE_SECRETS.values())


def test_the_restored_nodes_boot_with_the_sources_secrets_and_the_restore_parts(example_stacks):
    for text in node_env(example_stacks["restored"]):
        for line in (
            f"ADMIN_SECRET_ARN={SOURCE_ARNS[0]}",
            f"KEYSTORE_SECRET_ARN={SOURCE_ARNS[1]}",
            f"DB_APP_SECRET_ARN={SOURCE_ARNS[2]}",
            "ENCRYPTION_KEY_SECRET_ARN=''",
            "RESTORE_GENERATION=1",
            f"RESTORE_SHARE_PARAMETER=/{PREFIX}/restore/share",
            "RESTORE_WAIT_SECONDS=43200",  # restore.share_wait_minutes: 720 unless set
        ):
            assert line in lines(text), line
        assert "re_indexing = 1" in lines(text)
    assert {"adopt_restored_share() {", "rebuild_after_restore() {"} <= lines(boot_steps(example_stacks["restored"]))


def test_the_backup_role_is_an_output_for_the_share_restore(example_stacks):
    stack = example_stacks["restored"]
    role = named(stack, "aws_iam_role", f"{PREFIX}-backup")[0]
    assert stack["output"][names.OUTPUT_BACKUP_ROLE]["value"] == ref("aws_iam_role", role, "arn")


# an environment that is not a restore --------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_an_environment_that_is_not_a_restore_has_none_of_it(stacks, env):
    stack = stacks[env]
    assert not restore_parameters(stack)
    statements = policy_statements(stack)
    assert "RestoredShare" not in statements and statements["GenerateOnce"]["Action"] == "secretsmanager:PutSecretValue"
    assert len(resources(stack, "aws_secretsmanager_secret")) >= 2
    for db in resources(stack, "aws_db_instance").values():
        assert "restore_to_point_in_time" not in db and "snapshot_identifier" not in db
        assert db["kms_key_id"] and db["db_name"] and db["engine_version"] and "timeouts" not in db
        assert not set(RESTORE_IGNORED) & set((db.get("lifecycle") or {}).get("ignore_changes", []))
    for text in node_env(stack):
        assert not [line for line in lines(text) if line.startswith("RESTORE_") or "re_indexing" in line]
    assert not {"adopt_restored_share() {", "rebuild_after_restore() {"} & lines(boot_steps(stack)), "no restore part is shipped"


def test_a_restored_rsync_environment_has_no_share_to_wait_for():
    stack = synth(restored_local("rsync"))
    assert not restore_parameters(stack) and "RestoredShare" not in policy_statements(stack)
    assert names.restore_share_parameter(RESTORED_PREFIX) not in json.dumps(stack)
    for text in node_env(stack):
        assert "RESTORE_GENERATION=1" in lines(text) and "RESTORE_SHARE_PARAMETER" not in text
    assert "rebuild_after_restore() {" in lines(boot_steps(stack)) and "adopt_restored_share" not in boot_steps(stack)
