"""What the nodes may do with the stack's secrets and keys (one inline policy of the node role, exact ARNs)."""

from __future__ import annotations

from apim_active_active.constructs.database import Database
from apim_active_active.constructs.encryption import StackKey
from apim_active_active.constructs.generated_secrets import GeneratedSecrets, SourceSecrets
from apim_active_active.constructs.rsync_channel import RsyncChannel
from apim_active_active.keystore_settings import KeystoreSettings, secret_policy_resource


def secret_statements(
    database: Database,
    secrets: GeneratedSecrets | SourceSecrets,
    key: StackKey,
    channel: RsyncChannel | None,
    decrypt_key_arns: tuple[str, ...],
    replica: tuple[str, str] | None = None,
    restore_parameter_arn: str | None = None,
) -> list[dict]:
    """What the nodes may do with the secrets: read them all, write the ones they generate; with rsync, hand
    over the public keys (SecureString parameters under the stack key); decrypt with the other keys the settings
    name (what they encrypt was made outside the stack). With replicas (region, key ARN): the value a node writes is
    replicated under the replica's key as the writer, so the node may encrypt with that key through Secrets Manager
    there (secretsmanager/latest/userguide/replicate-secrets_troubleshoot.html: "No permissions available on the KMS
    key"). A restored environment's nodes only read the source's secrets, and the parameter that says its share was
    restored."""
    generated = [arn for arn in (secrets.admin_arn, secrets.keystore_arn, secrets.db_app_arn, secrets.encryption_key_arn) if arn]
    return [
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [database.secret_arn, *generated]},
        *(
            [{"Sid": "GenerateOnce", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": generated}]
            if secrets.generated
            else []
        ),
        *(
            [{"Sid": "RestoredShare", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": restore_parameter_arn}]
            if restore_parameter_arn
            else []
        ),
        {"Sid": "StackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key.key_arn},
        *(
            [{"Sid": "OtherKeys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": list(decrypt_key_arns)}]
            if decrypt_key_arns
            else []
        ),
        *(channel.statements(key.key_arn) if channel else []),
        *(
            [
                {
                    "Sid": "ReplicaKey",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": replica[1],
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{replica[0]}.amazonaws.com"}},
                }
            ]
            if replica and secrets.generated  # a restored environment's nodes write no secret, so none is replicated
            else []
        ),
    ]


def gateway_secret_statements(
    database: Database, secrets: GeneratedSecrets | SourceSecrets, key: StackKey, decrypt_key_arns: tuple[str, ...]
) -> list[dict]:
    """What a gateway scale-out node may do with them: read what its boot writes for API-M (the admin, the keystore,
    the database user API-M logs in as, 4.7's encryption key), never put (the pair generates them); decrypt with the
    stack's key and the other keys the settings name. Not the RDS master user: a gateway makes no schema or user."""
    readable = [secrets.admin_arn, secrets.keystore_arn, secrets.db_app_arn or database.secret_arn, secrets.encryption_key_arn]
    return [
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [a for a in readable if a]},
        {"Sid": "StackKey", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key.key_arn},
        *(
            [{"Sid": "OtherKeys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": list(decrypt_key_arns)}]
            if decrypt_key_arns
            else []
        ),
    ]


def brought_keystore_statements(keystore: KeystoreSettings) -> list[dict]:
    """What the pair's nodes may do to make its keystore from brought material (keystore.source): read the brought
    secret (its KMS key, when not the stack's, goes in encryption.node_decrypt_key_arns), or have the private CA issue
    an end-entity certificate (its BlankEndEntityCertificate_APIPassthrough/V1 template only: never a CA certificate)
    and fetch it, on that CA only. A gateway node reads the pair's keystore only (gateway_secret_statements)."""
    if keystore.source == "secrets_manager":
        assert keystore.secret_arn, "settings require the brought secret"
        resource = secret_policy_resource(keystore.secret_arn)
        return [{"Sid": "BroughtKeystore", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resource}]
    if keystore.source == "private_ca":
        ca = keystore.certificate_authority_arn
        assert ca, "settings require the private CA"
        return [
            {
                "Sid": "PrivateCaIssues",
                "Effect": "Allow",
                "Action": "acm-pca:IssueCertificate",
                "Resource": ca,
                "Condition": {"StringEquals": {"acm-pca:TemplateArn": end_entity_template(ca)}},
            },
            {"Sid": "PrivateCaCertificate", "Effect": "Allow", "Action": "acm-pca:GetCertificate", "Resource": ca},
        ]
    return []


def end_entity_template(certificate_authority_arn: str) -> str:
    """ACM Private CA's template of an end-entity certificate, in the CA's partition (the one the node asks for)."""
    return f"arn:{certificate_authority_arn.split(':')[1]}:acm-pca:::template/BlankEndEntityCertificate_APIPassthrough/V1"
