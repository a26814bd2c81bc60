"""The rehearsal of a brought keystore (keystore.source = "secrets_manager", local's): the operator's part played here, a
key and certificate made with openssl at run time as a PKCS#12 under a password and an alias of its own ("brought", not
the pair's wso2carbon), put into the brought secret (keystore.secret_arn) before the nodes boot; then both nodes hold that
certificate under wso2carbon, in a keystore re-stored under the pair's own password, which API-M (the stand-in) opens."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from pathlib import Path

from apim_active_active.renderers.boot_script import brings_keystore
from apim_active_active.renderers.deployment_toml import KEYSTORE_ALIAS, KEYSTORE_FILE
from scripts.local_stack import client

BROUGHT_ALIAS = "brought"
BROUGHT_CHECK = (
    "brought keystore: the PKCS#12's certificate (its own alias and password) is the node's wso2carbon, re-stored under "
    "the pair's password, and API-M opens it"
)
PASSWORD_ENV = "REHEARSAL_STORE_PASSWORD"  # keytool's -storepass:env: no password in a command's arguments


def sha256_of(certificate_pem: str) -> str:
    """The SHA-256 fingerprint openssl gives a PEM certificate, as lower-case hex."""
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=certificate_pem, capture_output=True, text=True, check=True
    ).stdout
    return shown.split("=", 1)[1].strip().replace(":", "").lower()


class BroughtKeystore:
    brought: dict[str, str] = {}  # the PKCS#12 put: its certificate's fingerprint, its password

    def put_brought_keystore(self, name: str = "brought") -> dict[str, str]:
        """A new key and self-signed certificate (the pair's name, valid apim.keystore_validity_days as a generated one
        would be) as a PKCS#12 into the brought secret; its fingerprint and password. Also what a rotation of a brought
        keystore puts first (a new certificate to rotate to)."""
        folder = self.work / name
        folder.mkdir(mode=0o700)
        password = secrets.token_hex(12)
        (folder / "pass").write_text(password)
        name_on = self.settings.apim.hostname or self.settings.name_prefix
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
             "-days", str(self.settings.apim.keystore_validity_days), "-subj", f"/CN={name_on}"],
            cwd=folder, capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-name", BROUGHT_ALIAS,
             "-passout", "file:pass", "-out", "brought.p12"],
            cwd=folder, capture_output=True, check=True,
        )  # fmt: skip
        value = {"pkcs12": base64.b64encode((folder / "brought.p12").read_bytes()).decode(), "password": password, "alias": BROUGHT_ALIAS}
        client("secretsmanager", self.endpoint).put_secret_value(SecretId=self.settings.keystore.secret_arn, SecretString=json.dumps(value))
        return {"fingerprint": sha256_of((folder / "cert.pem").read_text()), "password": password}

    def bring_keystore(self) -> None:
        """Before the nodes boot: the operator's brought keystore in its secret (local's [keystore])."""
        if not (brings_keystore(self.settings) and self.settings.keystore.source == "secrets_manager"):
            return
        self.brought = self.put_brought_keystore()
        self.notes.append(
            f"brought keystore: a PKCS#12 made with openssl (alias {BROUGHT_ALIAS}, a password of its own) put into "
            f"keystore.secret_arn; certificate SHA-256 {self.brought['fingerprint']}"
        )

    def brought_secret_values(self) -> dict[str, str]:
        """What check_no_secret_anywhere also looks for."""
        values = {"brought keystore password": self.brought["password"]} if self.brought else {}
        rotated = getattr(self, "rotated_to", None)  # rotation.py's: the brought keystore a rotation went to
        return values | ({"rotated-to keystore password": rotated["password"]} if rotated else {})

    def check_brought_keystore(self) -> None:
        """After the first boot: each node's keystore holds the brought certificate under wso2carbon, opens with the
        pair's password (not the brought one), and the stand-in opened it."""
        if not self.brought:
            return
        secret = f"{self.settings.name_prefix}/keystore"
        password = json.loads(client("secretsmanager", self.endpoint).get_secret_value(SecretId=secret)["SecretString"])["password"]
        for index, node in enumerate(self.nodes):
            store = node.path(f"{self.settings.apim.home}/repository/resources/security/{KEYSTORE_FILE}")
            fingerprint = self._certificate_in(store, password)
            opens = self.status(node).get("keystore_opens")
            self.check(
                BROUGHT_CHECK,
                str(index + 1),
                fingerprint == self.brought["fingerprint"] and opens is True and password != self.brought["password"],
                json.dumps({"wso2carbon": fingerprint, "brought": self.brought["fingerprint"], "keystore_opens": opens}),
            )

    @staticmethod
    def _certificate_in(store: Path, password: str) -> str:
        exported = subprocess.run(
            ["keytool", "-exportcert", "-rfc", "-alias", KEYSTORE_ALIAS, "-keystore", str(store), "-storepass:env", PASSWORD_ENV],
            env={**os.environ, PASSWORD_ENV: password},
            capture_output=True,
            text=True,
        )
        return sha256_of(exported.stdout) if exported.returncode == 0 else f"none: {exported.stdout.strip()}"
