"""AWS provider: the account's region and default tags, or in `local` the emulator on loopback."""

from __future__ import annotations

from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import default_tags
from apim_active_active.settings import Settings

# Services the stacks call; each gets the emulator endpoint in `local`.
EMULATED_SERVICES = (
    "acm",
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


def configure_provider(scope: Construct, settings: Settings, environment: str) -> aws.provider.AwsProvider:
    tags = [aws.provider.AwsProviderDefaultTags(tags=default_tags(settings, environment))]
    if settings.emulator is None:
        return aws.provider.AwsProvider(scope, "aws", region=settings.region, default_tags=tags)
    url = settings.emulator.endpoint_url
    return aws.provider.AwsProvider(
        scope,
        "aws",
        region=settings.region,
        default_tags=tags,
        access_key="test",  # the emulator's fixed dummy credentials, not a secret
        secret_key="test",
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check="true",
        s3_use_path_style=True,
        endpoints=[aws.provider.AwsProviderEndpoints(**{service: url for service in EMULATED_SERVICES})],
    )
