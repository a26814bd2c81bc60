"""AWS providers: the stack's region with the default tags, and (with `backup.copy_region`) a second one there, aliased
`copy`; in `local` both reach the emulator on loopback."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import default_tags
from apim_active_active.settings import Settings

# Services the stacks call; each gets the emulator endpoint in `local`.
EMULATED_SERVICES = (
    "acm",
    "autoscaling",
    "backup",
    "cloudwatchlogs",
    "ec2",
    "efs",
    "elbv2",
    "iam",
    "kms",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "ssm",
    "sts",
    "wafv2",
)
COPY_ALIAS = "copy"


def _connection(settings: Settings) -> dict[str, Any]:
    """How the provider reaches AWS: the default chain, or the emulator with its fixed dummy credentials (not a secret)."""
    if settings.emulator is None:
        return {}
    url = settings.emulator.endpoint_url
    return {
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": "true",
        "s3_use_path_style": True,
        "endpoints": [aws.provider.AwsProviderEndpoints(**{service: url for service in EMULATED_SERVICES})],
    }


def configure_provider(scope: Construct, settings: Settings, environment: str) -> aws.provider.AwsProvider:
    tags = [aws.provider.AwsProviderDefaultTags(tags=default_tags(settings, environment))]
    return aws.provider.AwsProvider(scope, "aws", region=settings.region, default_tags=tags, **_connection(settings))


def configure_copy_provider(scope: Construct, settings: Settings, environment: str) -> aws.provider.AwsProvider | None:
    """The provider of `backup.copy_region` (the copy vault, its key, the secrets' replicas), None without one."""
    region = settings.backup.copy_region
    if region is None:
        return None
    tags = [aws.provider.AwsProviderDefaultTags(tags=default_tags(settings, environment))]
    return aws.provider.AwsProvider(scope, "aws_copy", alias=COPY_ALIAS, region=region, default_tags=tags, **_connection(settings))
