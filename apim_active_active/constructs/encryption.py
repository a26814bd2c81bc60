"""Encryption: the customer-managed KMS key the stack owns (EFS, EBS root volumes, secrets, database, the backup vault),
and with `backup.copy_region` a key of the stack's in that region (the copy vault, the secrets' replicas).

Defaults: yearly automatic rotation; a key policy that leaves access to IAM policies of this account
(the node role gets exactly the grants it needs), CloudWatch Logs for this stack's log groups, and CloudWatch alarms for
the stack's alarm topic (with the gateway group: EC2 Auto Scaling's role for its nodes' volumes); alias
`alias/<name_prefix>`.
AWS Backup needs no statement of its own: it uses a vault's key as the backup role, whose managed policies grant
kms:DescribeKey and kms:CreateGrant (for AWS resources only), which the account statement lets IAM policies give; AWS
asks that "the permissions in IAM policy and KMS key policy must be consistent" (aws-backup/latest/devguide/encryption.html).
Exposes: key_arn, key_id, account_id; CopyRegionKey: key_arn.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformProvider
from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import policy_document
from apim_active_active.names import resource_name


@dataclass(frozen=True)
class StackKeyProps:
    name_prefix: str
    region: str
    deletion_window_days: int
    # gateway_scale_out: the group launches nodes whose root volumes are encrypted with this key.
    autoscaling_volumes: bool = False


# EC2 Auto Scaling launches instances as its service-linked role, which may use a customer managed key for their
# encrypted volumes only when the key policy lets it (EC2 Auto Scaling User Guide, "Required AWS KMS key policy for
# use with encrypted volumes": these two statements). scripts/preflight.py checks that the role exists: a key policy
# naming a principal that does not exist is refused.
AUTOSCALING_ROLE = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def autoscaling_statements(account_id: str) -> list[dict]:
    role = {"AWS": f"arn:aws:iam::{account_id}:{AUTOSCALING_ROLE}"}
    return [
        {
            "Sid": "AutoScalingVolumes",
            "Effect": "Allow",
            "Principal": role,
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "AutoScalingVolumeGrants",
            "Effect": "Allow",
            "Principal": role,
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
        },
    ]


def account_statement(account_id: str) -> dict:
    return {
        "Sid": "AccountIamPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


class StackKey(Construct):
    def __init__(self, scope: Construct, id_: str, props: StackKeyProps) -> None:
        super().__init__(scope, id_)
        prefix = props.name_prefix
        account = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "account")
        statements = [
            account_statement(account.account_id),
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
        if props.autoscaling_volumes:
            statements += autoscaling_statements(account.account_id)
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


@dataclass(frozen=True)
class CopyRegionKeyProps:
    name_prefix: str
    region: str  # backup.copy_region
    account_id: str
    deletion_window_days: int
    provider: TerraformProvider  # the copy region's


class CopyRegionKey(Construct):
    """The stack's key in the copy region: the copy vault's and the replicated secrets' (a KMS key is regional)."""

    def __init__(self, scope: Construct, id_: str, props: CopyRegionKeyProps) -> None:
        super().__init__(scope, id_)
        prefix = props.name_prefix
        key = aws.kms_key.KmsKey(
            self,
            "key",
            provider=props.provider,
            description=f"{prefix}: copies of the backups and replicas of the generated secrets in {props.region}",
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=policy_document([account_statement(props.account_id)]),
            tags={"Name": resource_name(prefix, "copy-key")},
        )
        aws.kms_alias.KmsAlias(self, "alias", provider=props.provider, name=f"alias/{prefix}-copy", target_key_id=key.key_id)
        self.key_arn: str = key.arn
