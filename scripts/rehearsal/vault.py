"""The rehearsal's secure vault checks (secure_vault on in `local`; the rsync variant keeps it off): each node's
deployment.toml sealed by the boot step with the STAND-IN cipher tool, read back by the STAND-IN (the keystore's key
opened with password-tmp, which it deletes), both nodes resolving the same secrets."""

from __future__ import annotations

import json
import re
import tomllib

from apim_active_active.renderers.boot_script import SECRETS_FILE
from apim_active_active.renderers.deployment_toml import SECRETS

SEALED = "secure vault: no secrets file; deployment.toml holds its secrets only encrypted ([secrets], $secret{}), none in clear"
READ = "API-M read its sealed secrets (the keystore password from password-tmp, gone once read), opened its keystore, reached the database"
AGREE = "both nodes resolved the same secrets from their own sealed files"
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class SecureVault:
    def check_sealed(self, node, number: str) -> None:
        conf = node.path(f"{self.settings.apim.home}/repository/conf/deployment.toml")
        text = conf.read_text() if conf.exists() else ""
        sealed = tomllib.loads(text).get("secrets", {}) if text else {}
        problems = ["a secrets file"] if node.path(SECRETS_FILE).exists() else []
        problems += [f"not encrypted: {alias}" for alias, value in sealed.items() if not BASE64.fullmatch(value)]
        problems += [f"in clear: {name}" for name, value in self.secret_values().items() if value in text]
        problems += [f"$env{{{name}}} left" for name in SECRETS.values() if f"$env{{{name}}}" in text]
        if len(sealed) < 4 or not set(sealed) <= set(SECRETS):
            problems.append(f"[secrets] has {sorted(sealed)}")
        self.check(SEALED, number, not problems, "; ".join(problems) or f"{len(sealed)} sealed: {sorted(sealed)}")

    def check_read_sealed(self, node, number: str) -> None:
        status = self.status(node)
        vault = status.get("vault", {})
        password_file = node.path(f"{self.settings.apim.home}/password-tmp")
        self.check(
            READ,
            number,
            vault.get("enabled") is True
            and len(vault.get("decrypted", [])) >= 4
            and not vault.get("password_file_left")
            and not password_file.exists()
            and not any(status.get("secrets_in_environment", {}).values())
            and status.get("keystore_opens") is True
            and status.get("database_reached") == "ok",
            json.dumps({k: status.get(k) for k in ("vault", "secrets_in_environment", "keystore_opens", "database_reached")}),
        )

    def check_nodes_agree(self) -> None:
        digests = [self.status(node).get("secrets_digest") for node in self.nodes]
        self.check(AGREE, "both", digests[0] is not None and digests[0] == digests[1], "the same" if digests[0] == digests[1] else "differ")
