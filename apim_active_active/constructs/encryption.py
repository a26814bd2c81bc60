"""Encryption: the customer-managed KMS key the stack owns (EFS, EBS root volumes, secrets, database).

Defaults: yearly automatic rotation; a key policy that leaves access to IAM policies of this account
(the node role gets exactly the grants it needs), CloudWatch Logs for this stack's log groups, and CloudWatch alarms for
the stack's alarm topic; alias `alias/<name_prefix>`.
Exposes: key_arn, key_id, account_id.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import policy_document
from apim_active_active.names import resource_name


@dataclass(frozen=True)
class StackKeyProps:
    name_prefix: str
    region: str
    deletion_window_days: int


class StackKey(Construct):
    def __init__(self, scope: Construct, id_: str, props: StackKeyProps) -> None:
        super().__init__(scope, id_)
        prefix = props.name_prefix
        account = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "account")
        statements = [
            {
                "Sid": "AccountIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsOfThisStack",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{props.region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{props.region}:{account.account_id}:log-group:/{prefix}/*"
                    }
                },
            },
            {
                # CloudWatch publishes to a topic encrypted with a customer managed key only with these two on the key,
                # AWS's statement as published, without conditions: AWS does not document which condition keys
                # CloudWatch's call carries, and one it lacks would drop every notification silently
                # (sns/latest/dg/sns-key-management.html#compatibility-with-aws-services). The topic's own policy
                # limits publishing to this stack's alarms.
                "Sid": "CloudWatchAlarmsToTheTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            },
        ]
        key = aws.kms_key.KmsKey(
            self,
            "key",
            description=f"{prefix}: WSO2 API-M shared file system, volumes, secrets, database",
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=policy_document(statements),
            tags={"Name": resource_name(prefix, "key")},
        )
        aws.kms_alias.KmsAlias(self, "alias", name=f"alias/{prefix}", target_key_id=key.key_id)
        self.key_arn: str = key.arn
        self.key_id: str = key.key_id
        self.account_id: str = account.account_id
