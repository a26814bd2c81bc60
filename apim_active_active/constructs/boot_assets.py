"""Boot assets: the nodes' boot step as objects in an S3 bucket of the stack's.

EC2 takes at most 16 KB of user data (raw, before base64), and the boot step alone is twice that before gzip; so the user
data carries a loader that fetches the step by its SHA-256 (renderers/boot_loader.py) and checks it before running it.
The bucket: versioned, encrypted with the stack's key, public access blocked, owner-enforced, TLS only; old versions
expire. Its objects are the toolkit's own text, made again by every deploy: `cdktf destroy` empties it.
Exposes: bucket_name, object_arns, objects (what a node's boot waits for); boot_step_statement() for the node roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import deny_without_tls, policy_document
from apim_active_active.terraform_text import escape_template

NONCURRENT_DAYS = 30  # a node reads its step once, at its first boot


@dataclass(frozen=True)
class BootAssetsProps:
    name_prefix: str
    kms_key_arn: str
    # whose (pair, gateway) -> its key (renderers/boot_loader.asset_key) and text. By whose, not by position: a changed
    # step replaces its own object (a new key); two objects swapping places could delete each other's new key.
    objects: dict[str, tuple[str, str]]
    tls_only: bool = True  # False only on the emulator (plain http): emulator.boot_bucket_tls_only


class BootAssets(Construct):
    def __init__(self, scope: Construct, id_: str, props: BootAssetsProps) -> None:
        super().__init__(scope, id_)
        bucket = aws.s3_bucket.S3Bucket(self, "bucket", bucket_prefix=f"{props.name_prefix}-boot-", force_destroy=True)
        aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
            self,
            "public_access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
            self, "ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
        )
        aws.s3_bucket_versioning.S3BucketVersioningA(self, "versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"})
        encryption = aws.s3_bucket_server_side_encryption_configuration.S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket.id,
            rule=[
                {
                    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": props.kms_key_arn},
                    "bucketKeyEnabled": True,
                }
            ],
        )
        aws.s3_bucket_lifecycle_configuration.S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=bucket.id,
            rule=[
                {
                    "id": "old-versions",
                    "status": "Enabled",
                    "filter": [{}],
                    "noncurrentVersionExpiration": [{"noncurrentDays": NONCURRENT_DAYS}],
                    "abortIncompleteMultipartUpload": [{"daysAfterInitiation": 1}],
                }
            ],
        )
        if props.tls_only:
            aws.s3_bucket_policy.S3BucketPolicy(
                self,
                "tls_only",
                bucket=bucket.id,
                policy=policy_document([deny_without_tls("TlsOnly", "*", "s3:*", [bucket.arn, f"{bucket.arn}/*"])]),
            )
        self.objects = [
            aws.s3_object.S3Object(
                self,
                f"object_{whose}",
                bucket=bucket.id,
                key=key,
                content=escape_template(text),  # a literal for Terraform, not a template
                content_type="text/x-shellscript",
                kms_key_id=props.kms_key_arn,
                depends_on=[encryption],
            )
            for whose, (key, text) in sorted(props.objects.items())
        ]
        self.bucket_name: str = bucket.bucket
        self.object_arns = [f"{bucket.arn}/{key}" for key, _ in sorted(props.objects.values())]


def boot_step_statement(assets: BootAssets) -> dict:
    """A node role's read of exactly the boot steps (decrypting them is the stack key's grant the nodes already have)."""
    return {"Sid": "ReadBootStep", "Effect": "Allow", "Action": "s3:GetObject", "Resource": assets.object_arns}
