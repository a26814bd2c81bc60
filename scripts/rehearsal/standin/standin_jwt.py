"""STAND-IN for how API-M signs JWT API keys, checks them at the gateway, and serves the Resident Key Manager's JWKS
(stdlib and the openssl and keytool commands only: the stand-in runs with the node's own python3).

  sign          as the DevPortal (carbon-apimgt DefaultApiKeyGenerator): RS256 with the primary keystore's key
                ([keystore.primary] alias), the header's kid the configured [apim.devportal] api_key_alias (default
                gateway_certificate_alias), x5t the signing certificate's thumbprint
  verify        as the gateway (ApiKeyAuthenticator, GatewayUtils.verifyTokenSignature): the certificate under the
                truststore alias equal to the key's kid, no other; the truststore read once, at start (4.1+:
                APIManagerComponent.retrieveAndSetParentTrustStore), so a new trusted certificate needs a restart
  jwks          as /oauth2/jwks (identity-inbound-auth-oauth JwksEndpoint): every private key entry of the primary
                keystore, read at each request, kid = base64url(hex(SHA-256(certificate DER))) + "_RS256"
                (OAuth2Util.getThumbPrint, DefaultKeyIDProviderImpl)
The keystore password is the configuration's, as the product resolves it ([keystore.primary] password).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD_ENV = "STANDIN_JWT_STORE_PASSWORD"  # keytool's -storepass:env, openssl's -passin env: (never an argument)
DEFAULT_ALIAS = "gateway_certificate_alias"  # carbon-apimgt's default api_key_alias (and truststore alias)
SHOWN = "repository/logs/standin-jwt.json"  # in the product home: the alias API keys are signed under, the truststore read
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der(pem: str) -> bytes:
    return base64.b64decode("".join(line for line in pem.strip().splitlines() if "-----" not in line))


def thumbprint(pem: str) -> str:
    """OAuth2Util.getThumbPrint: base64url of the lower-case hex SHA-256 of the certificate's DER."""
    return b64url(hashlib.sha256(der(pem)).hexdigest().encode())


def sha256(pem: str) -> str:
    return hashlib.sha256(der(pem)).hexdigest()


class Keys:
    """The node's primary keystore and truststore, as the configuration names them."""

    def __init__(self, home: Path, config: dict) -> None:
        security = home / "repository" / "resources" / "security"
        primary = config.get("keystore", {}).get("primary") or config.get("keystore", {}).get("tls", {})
        self.keystore = security / primary.get("file_name", "wso2carbon.jks")
        self.signing_alias = primary.get("alias", "wso2carbon")
        self.password = primary.get("password") or os.environ.get("APIM_KEYSTORE_PASSWORD", "")
        truststore = config.get("truststore", {})
        self.truststore = security / truststore.get("file_name", "client-truststore.jks")
        self.truststore_password = truststore.get("password") or self.password
        self.api_key_alias = config.get("apim", {}).get("devportal", {}).get("api_key_alias") or DEFAULT_ALIAS
        self.trusted = self.certificates(self.truststore, self.truststore_password, "trustedCertEntry")  # once, at start
        self.signer: tuple[bytes, str] | None = None  # the signing key and certificate, once first used (as KeyStoreManager)
        if self.keystore.exists():  # a product's home: what this start read, for the rehearsal (SHOWN)
            shown = home / SHOWN
            shown.parent.mkdir(parents=True, exist_ok=True)
            shown.write_text(json.dumps(self.shown(), indent=2))

    def run(self, command: list[str], password: str, data: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(command, input=data, capture_output=True, env={**os.environ, PASSWORD_ENV: password}, timeout=60)

    def certificates(self, store: Path, password: str, kind: str) -> dict[str, str]:
        """alias -> PEM of every entry of that kind (PrivateKeyEntry, trustedCertEntry) in the store."""
        listed = self.run(["keytool", "-list", "-rfc", "-keystore", str(store), "-storepass:env", PASSWORD_ENV], password)
        if listed.returncode != 0:
            return {}
        found: dict[str, str] = {}
        for block in listed.stdout.decode().split("Alias name: ")[1:]:
            alias = block.splitlines()[0].strip()
            if f"Entry type: {kind}" in block and PEM.search(block):
                found[alias] = PEM.search(block).group(0)
        return found

    def private_key(self) -> bytes:
        """The signing alias's key, PEM (through a PKCS#12 in a private folder, removed at once)."""
        with tempfile.TemporaryDirectory() as folder:
            pkcs12 = f"{folder}/key.p12"
            moved = self.run(
                ["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(self.keystore), "-srcstorepass:env", PASSWORD_ENV,
                 "-srcalias", self.signing_alias, "-destkeystore", pkcs12, "-deststoretype", "PKCS12", "-deststorepass:env",
                 PASSWORD_ENV],
                self.password,
            )  # fmt: skip
            if moved.returncode != 0:
                raise ValueError(f"no key under {self.signing_alias}: {moved.stderr.decode().strip()[-200:]}")
            opened = self.run(["openssl", "pkcs12", "-in", pkcs12, "-nocerts", "-nodes", "-passin", f"env:{PASSWORD_ENV}"], self.password)
            return opened.stdout

    def sign(self, claims: dict) -> str:
        """A JWT API key as the DevPortal makes it: RS256, kid = api_key_alias."""
        if self.signer is None:
            certificate = self.certificates(self.keystore, self.password, "PrivateKeyEntry").get(self.signing_alias, "")
            self.signer = self.private_key(), certificate
        key_pem, certificate = self.signer
        header = {"typ": "JWT", "alg": "RS256", "kid": self.api_key_alias, "x5t": thumbprint(certificate) if certificate else ""}
        signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        with tempfile.TemporaryDirectory() as folder:
            key = Path(folder) / "key.pem"
            key.touch(mode=0o600)
            key.write_bytes(key_pem)
            signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=signed.encode(), capture_output=True)
        if signature.returncode != 0:
            raise ValueError(f"signing failed: {signature.stderr.decode().strip()[-200:]}")
        return f"{signed}.{b64url(signature.stdout)}"

    def verify(self, token: str) -> tuple[dict | None, str]:
        """(the key's claims, "") when the certificate under the alias named by its kid verifies it and it has not
        expired; else (None, why)."""
        try:
            header_part, claims_part, signature_part = token.split(".")
            header, claims = json.loads(unb64url(header_part)), json.loads(unb64url(claims_part))
        except ValueError:
            return None, "not a JWT"
        pem = self.trusted.get(str(header.get("kid", "")).lower())  # JKS aliases are lower case
        if pem is None:
            return None, f"no certificate under alias {header.get('kid')!r} in the truststore"
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "cert.pem").write_text(pem)
            Path(folder, "signature").write_bytes(unb64url(signature_part))
            key = subprocess.run(["openssl", "x509", "-in", f"{folder}/cert.pem", "-noout", "-pubkey"], capture_output=True, text=True)
            Path(folder, "public.pem").write_text(key.stdout)
            checked = subprocess.run(
                ["openssl", "dgst", "-sha256", "-verify", f"{folder}/public.pem", "-signature", f"{folder}/signature"],
                input=f"{header_part}.{claims_part}".encode(),
                capture_output=True,
            )
        if checked.returncode != 0:
            return None, f"the signature does not verify with the certificate under {header.get('kid')}"
        if claims.get("exp") and claims["exp"] < time.time():
            return None, "expired"
        return claims, ""

    def jwks(self) -> dict:
        """Every private key entry's certificate, the keystore read now (as the JWKS endpoint, per request)."""
        keys = []
        for pem in self.certificates(self.keystore, self.password, "PrivateKeyEntry").values():
            text = subprocess.run(["openssl", "x509", "-noout", "-modulus", "-text"], input=pem, capture_output=True, text=True).stdout
            modulus = re.search(r"^Modulus=([0-9A-F]+)$", text, re.M)
            exponent = re.search(r"Exponent: (\d+)", text)
            if not modulus or not exponent:
                continue
            number = int(exponent.group(1))
            keys.append({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": f"{thumbprint(pem)}_RS256",
                "n": b64url(bytes.fromhex(modulus.group(1))), "e": b64url(number.to_bytes((number.bit_length() + 7) // 8, "big")),
                "x5t#S256": b64url(hashlib.sha256(der(pem)).digest()),
            })  # fmt: skip
        return {"keys": keys}

    def shown(self) -> dict:
        """What the rehearsal looks at (public: aliases and fingerprints)."""
        return {
            "api_key_alias": self.api_key_alias,
            "trusted_at_start": {alias: sha256(pem) for alias, pem in sorted(self.trusted.items())},
        }
