"""Generated secrets: the API-M admin password, the pair's keystore and (with RDS) the password of API-M's own
database user, in Secrets Manager.

Terraform creates the two secrets without a value, so no value is ever in its plan or state; the
first node to take the lock on the share generates each value at boot and puts it there, and both
nodes read them (the boot step). Encrypted with the stack's key. With `backup.replicate_secrets`, each is replicated to
`backup.copy_region` under the stack's key there: Secrets Manager copies the value the node put, so a replica holds no
value from Terraform either (secretsmanager/latest/userguide/create-manage-multi-region-secrets.html).
Exposes: admin_arn, keystore_arn, db_app_arn (None with an existing database), encryption_key_arn (None unless the
version's internal crypto is symmetric: the pair's [encryption] key).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws


@dataclass(frozen=True)
class GeneratedSecretsProps:
    name_prefix: str
    kms_key_arn: str
    recovery_window_days: int
    db_app_user: bool  # RDS: API-M's own database user (an existing database brings its own)
    encryption_key: bool  # the version's internal crypto is symmetric (4.7): the pair's [encryption] key
    replica_region: str | None = None  # backup.copy_region, with backup.replicate_secrets
    replica_kms_key_arn: str | None = None  # the stack's key in that region


@dataclass(frozen=True)
class SourceSecrets:
    """A restored environment's secrets: the source's, read by the nodes and never generated (no construct: the stack
    makes none)."""

    admin_arn: str
    keystore_arn: str
    db_app_arn: str | None
    encryption_key_arn: str | None
    generated: bool = False


class GeneratedSecrets(Construct):
    generated = True  # the nodes put the values (once)

    def __init__(self, scope: Construct, id_: str, props: GeneratedSecretsProps) -> None:
        super().__init__(scope, id_)

        replicas = None
        if props.replica_region:
            assert props.replica_kms_key_arn, "a replica is encrypted with the stack's key in its region"
            replicas = [
                aws.secretsmanager_secret.SecretsmanagerSecretReplica(region=props.replica_region, kms_key_id=props.replica_kms_key_arn)
            ]

        def secret(name: str, what: str) -> str:
            return aws.secretsmanager_secret.SecretsmanagerSecret(
                self,
                name,
                name=f"{props.name_prefix}/{name}",
                description=f"{what}: generated once, at first boot, by the first API-M node",
                kms_key_id=props.kms_key_arn,
                recovery_window_in_days=props.recovery_window_days,
                replica=replicas,
            ).arn

        self.admin_arn = secret("apim-admin", "API-M admin user (JSON username, password)")
        self.keystore_arn = secret("keystore", "Keystore of the pair (JSON password, base64 JKS keystore)")
        # RDS rotates its master password; API-M logs in as a user of its own whose password nothing rotates.
        self.db_app_arn = secret("database-app", "API-M's own database user (JSON username, password)") if props.db_app_user else None
        self.encryption_key_arn = (
            secret("encryption-key", "API-M's internal encryption key of the pair (JSON key)") if props.encryption_key else None
        )
