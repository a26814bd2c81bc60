"""Settings of WSO2's Secure Vault on the nodes (`[secure_vault]`, docs/secure-vault.md): deployment.toml holds the
secrets only encrypted (`[secrets]`, referenced as `$secret{alias}`), sealed at boot by the product's cipher tool with
the pair's keystore; the keystore password reaches API-M at each start through `<API-M home>/password-tmp`, which
the product deletes once read. Off: the values reach API-M from a root-only environment file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SecureVaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="Secure Vault on: every secret in deployment.toml encrypted by the product's cipher tool at boot, no "
        "secrets file on the node (the production examples turn it on).",
    )
