#!/usr/bin/env python3
"""Create (or bring in line) the S3 bucket and DynamoDB lock table an environment's Terraform state
lives in, as its `[state]` settings name them. Idempotent: run it before the first deploy, and again
whenever; it changes only what differs.

  scripts/bootstrap_state.py <environment> [--json]

The bucket: versioned, encrypted (SSE-KMS with a bucket key), all public access blocked, owner-enforced,
TLS-only bucket policy. The table: LockID hash key, on-demand, encrypted, point-in-time recovery.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.exceptions import ClientError  # noqa: E402

from apim_active_active.settings import StateSettings  # noqa: E402
from scripts.ops import Aws, Result, environment_parser, load_environment, report  # noqa: E402

TABLE_WAIT = {"Delay": 2, "MaxAttempts": 60}  # bounded: two minutes
PITR_ATTEMPTS = 24  # 5 s apart: two minutes


def _exists(call) -> bool:  # noqa: ANN001
    try:
        call()
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound", "ResourceNotFoundException"):
            return False
        raise


def ensure_bucket(aws: Aws, state: StateSettings) -> list[Result]:
    s3, bucket = aws.client("s3"), state.bucket
    created = not _exists(lambda: s3.head_bucket(Bucket=bucket))
    if created:
        location = {} if state.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": state.region}}
        s3.create_bucket(Bucket=bucket, **location)
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]
        },
    )
    arn = f"arn:aws:s3:::{bucket}"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    return [Result(f"state bucket {bucket}", "pass", "created" if created else "already there, settings re-applied")]


def ensure_lock_table(aws: Aws, state: StateSettings) -> list[Result]:
    dynamodb, table = aws.client("dynamodb"), state.lock_table
    created = not _exists(lambda: dynamodb.describe_table(TableName=table))
    if created:
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        )
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig=TABLE_WAIT)
    for attempt in range(PITR_ATTEMPTS):  # a table just created answers "backups are being enabled" for a while
        try:
            dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            break
        except ClientError as error:
            if error.response["Error"]["Code"] != "ContinuousBackupsUnavailableException" or attempt == PITR_ATTEMPTS - 1:
                raise
            time.sleep(5)
    return [Result(f"state lock table {table}", "pass", "created" if created else "already there, settings re-applied")]


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    if settings.state is None:
        print(f"{args.environment}: no [state] in its settings: it keeps a local state file", file=sys.stderr)
        return 2
    aws = Aws(settings, region=settings.state.region)
    results = ensure_bucket(aws, settings.state) + ensure_lock_table(aws, settings.state)
    return report(f"state of {args.environment} in {settings.state.region}", results, args.json)


if __name__ == "__main__":
    sys.exit(main())
