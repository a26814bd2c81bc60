"""Where Terraform keeps a stack's state: S3 with a DynamoDB lock for every environment that names `state`
(the emulator's S3 and DynamoDB for `local` when it names one), else a local file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformStack

from apim_active_active.settings import Settings


def configure_backend(stack: TerraformStack, settings: Settings, environment: str, state_dir: Path) -> None:
    state = settings.state
    if state is None:
        LocalBackend(stack, path=str(state_dir / f"{environment}.tfstate"))
        return
    emulator: dict[str, Any] = {}
    if settings.emulator:
        url = settings.emulator.endpoint_url
        emulator = dict(
            endpoints={"s3": url, "dynamodb": url, "sts": url, "iam": url},
            use_path_style=True,
            access_key="test",
            secret_key="test",  # the emulator's fixed dummy credentials
            skip_credentials_validation=True,
            skip_requesting_account_id=True,
            skip_metadata_api_check=True,
        )
    S3Backend(
        stack,
        bucket=state.bucket,
        key=state.state_key(environment),
        region=state.region,
        encrypt=True,
        dynamodb_table=state.lock_table,
        **emulator,
    )
