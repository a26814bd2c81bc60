"""STAND-IN for how API-M resolves deployment.toml's placeholders at start (the config mapper): `$env{NAME}` from its
environment, and with WSO2's Secure Vault `$secret{alias}` from [secrets], decrypted with the primary keystore's key
(carbon-kernel's secure vault: repository/conf/security/secret-conf.properties names the keystore; the keystore password
is read from <home>/password-tmp, which is then overwritten and deleted: DefaultSecretCallbackHandler; a value still
in brackets stops the start: "Secret references can't be plain text"). Crypto through the openssl and keytool commands.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from pathlib import Path

PLACEHOLDER = re.compile(r"\$(env|secret)\{([^}]+)\}")
PASSWORD_ENV = "STANDIN_VAULT_PASSWORD"


class CannotStart(Exception):
    pass


def read_password_file(home: Path) -> str:
    """The real handler's order: `password` (renamed to password-tmp, kept), `password-tmp` (deleted), `password-persist`
    (kept); otherwise the console, which a service does not have."""
    for name, keep in (("password", True), ("password-tmp", False), ("password-persist", True)):
        path = home / name
        if path.exists():
            password = path.read_text().splitlines()[0] if path.read_text() else ""
            if name == "password":
                path.rename(home / "password-tmp")
            elif not keep:
                path.write_text("x" * len(password))
                try:
                    path.unlink()
                except OSError as error:
                    raise CannotStart(f"Error deleting Password config File: {error}") from error
            return password
    raise CannotStart("[Enter KeyStore and Private Key Password :] no console: the keystore password is null")


def private_key(store: str, store_type: str, alias: str, password: str, folder: str) -> str:
    env = {**os.environ, PASSWORD_ENV: password}
    pkcs12 = f"{folder}/key.p12"
    for command in (
        [
            "keytool",
            "-importkeystore",
            "-srckeystore",
            store,
            "-srcstoretype",
            store_type,
            "-srcstorepass:env",
            PASSWORD_ENV,
            "-srcalias",
            alias,
            "-destkeystore",
            pkcs12,
            "-deststoretype",
            "PKCS12",
            "-deststorepass:env",
            PASSWORD_ENV,
        ],
        ["openssl", "pkcs12", "-in", pkcs12, "-nocerts", "-nodes", "-passin", f"env:{PASSWORD_ENV}", "-out", f"{folder}/key.pem"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CannotStart(f"cannot open the vault's keystore {store} (alias {alias}): {done.stderr.strip() or done.stdout.strip()}")
    return f"{folder}/key.pem"


def decrypted_secrets(home: Path, secrets: dict) -> dict[str, str]:
    properties_file = home / "repository" / "conf" / "security" / "secret-conf.properties"
    properties = dict(
        line.split("=", 1) for line in (properties_file.read_text().splitlines() if properties_file.exists() else []) if "=" in line
    )
    if properties.get("secVault.enabled") != "true":
        raise CannotStart(f"$secret{{}} used but {properties_file} does not enable the secure vault (run the cipher tool)")
    clear = [alias for alias, value in secrets.items() if value.startswith("[") and value.endswith("]")]
    if clear:
        raise CannotStart(f"Secret references can't be plain text: {', '.join(clear)}")
    password = read_password_file(home)
    plain = {}
    with tempfile.TemporaryDirectory() as folder:
        key = private_key(
            properties["keystore.identity.location"],
            properties["keystore.identity.type"],
            properties["keystore.identity.alias"],
            password,
            folder,
        )
        for alias, value in secrets.items():
            opened = subprocess.run(
                ["openssl", "pkeyutl", "-decrypt", "-inkey", key, "-pkeyopt", "rsa_padding_mode:pkcs1"],
                input=base64.b64decode(value),
                capture_output=True,
            )
            if opened.returncode != 0:
                raise CannotStart(f"cannot decrypt the secret {alias}: {opened.stderr.decode().strip()}")
            plain[alias] = opened.stdout.decode()
    return plain


def resolve(home: Path, config: dict) -> tuple[dict, dict]:
    """The config with its placeholders replaced, and what the vault did (names and counts only)."""
    secrets = decrypted_secrets(home, config.get("secrets", {})) if "$secret{" in repr(config) else {}

    def value(kind: str, name: str) -> str:
        if kind == "env":
            return os.environ.get(name, "")
        if name not in secrets:
            raise CannotStart(f"$secret{{{name}}} has no entry in [secrets]")
        return secrets[name]

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k != "secrets"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: value(*m.groups()), node)
        return node

    return walk(config), {"enabled": bool(secrets), "decrypted": sorted(secrets), "password_file_left": (home / "password-tmp").exists()}
