"""The stand-in's JWT API keys and JWKS (scripts/rehearsal/standin/standin_jwt.py, and standin_api's use of them), with
keytool-made stores: a key signed under the configured api_key_alias verifies only against the truststore certificate
under that alias, the truststore as it was at start; the JWKS lists every private key entry of the keystore as it is now,
kid as the Resident Key Manager makes it; the gateway answers 401 to a key it cannot verify and 403 to an API the key was
not issued for; the DevPortal's generate call; the node's tables outlive a restart."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parent.parent.parent / "scripts" / "rehearsal" / "standin"
sys.path.insert(0, str(STANDIN))

import standin_api  # noqa: E402
import standin_jwt  # noqa: E402

pytestmark = pytest.mark.slow  # keytool, a second or so a call
PASSWORD = "store-password-1"


def keytool(*args: str) -> None:
    subprocess.run(["keytool", *args, "-storepass", PASSWORD], check=True, capture_output=True)


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    """A product home: a keystore with the signing key (wso2carbon) and a second (next); a truststore with wso2carbon's
    certificate under gateway_certificate_alias and next's under signing-2."""
    home = tmp_path_factory.mktemp("home")
    security = home / "repository" / "resources" / "security"
    security.mkdir(parents=True)
    keystore, truststore = security / "wso2carbon.jks", security / "client-truststore.jks"
    for alias, trusted in (("wso2carbon", "gateway_certificate_alias"), ("next", "signing-2")):
        keytool("-genkeypair", "-alias", alias, "-keyalg", "RSA", "-dname", f"CN={alias}", "-keystore", str(keystore), "-keypass", PASSWORD)
        keytool("-exportcert", "-alias", alias, "-keystore", str(keystore), "-file", str(security / alias))
        keytool("-importcert", "-noprompt", "-alias", trusted, "-file", str(security / alias), "-keystore", str(truststore))
    return home


def config(alias: str = "gateway_certificate_alias") -> dict:
    store = {"file_name": "wso2carbon.jks", "type": "JKS", "password": PASSWORD, "alias": "wso2carbon", "key_password": PASSWORD}
    return {
        "keystore": {"tls": store, "primary": store},
        "truststore": {"file_name": "client-truststore.jks", "password": PASSWORD},
        "apim": {"devportal": {"api_key_alias": alias}},
    }


def der_sha256(home: Path, alias: str) -> bytes:
    der = (home / "repository" / "resources" / "security" / alias).read_bytes()
    return hashlib.sha256(der).digest()


def test_a_key_verifies_only_against_the_certificate_its_kid_names(stores):
    keys = standin_jwt.Keys(stores, config())
    token = keys.sign({"sub": "admin", "iat": 1})
    header = json.loads(standin_jwt.unb64url(token.split(".")[0]))
    assert (header["alg"], header["kid"]) == ("RS256", "gateway_certificate_alias")
    assert keys.verify(token) == ({"sub": "admin", "iat": 1}, "")
    # Signed by wso2carbon's key but naming signing-2 (next's certificate): refused, no try-all.
    other = standin_jwt.Keys(stores, config("signing-2")).sign({"sub": "admin"})
    assert keys.verify(other) == (None, "the signature does not verify with the certificate under signing-2")
    claims, why = keys.verify(standin_jwt.Keys(stores, config("missing")).sign({"sub": "admin"}))
    assert claims is None and "no certificate under alias 'missing'" in why
    tampered = token.rsplit(".", 1)[0] + "." + standin_jwt.b64url(b"x" * 256)
    assert keys.verify(tampered)[0] is None
    assert keys.verify(keys.sign({"exp": int(time.time()) - 5})) == (None, "expired")


def test_the_truststore_is_read_at_start_only(stores, tmp_path):
    home = tmp_path / "home"
    subprocess.run(["cp", "-a", str(stores), str(home)], check=True)
    keys = standin_jwt.Keys(home, config())
    truststore = home / "repository" / "resources" / "security" / "client-truststore.jks"
    keytool("-delete", "-alias", "gateway_certificate_alias", "-keystore", str(truststore))
    token = keys.sign({"sub": "admin"})
    assert keys.verify(token)[0] is not None  # as the gateway: a truststore change needs a restart
    assert set(json.loads((home / standin_jwt.SHOWN).read_text())["trusted_at_start"]) == {"gateway_certificate_alias", "signing-2"}
    assert standin_jwt.Keys(home, config()).verify(token)[0] is None
    assert set(json.loads((home / standin_jwt.SHOWN).read_text())["trusted_at_start"]) == {"signing-2"}  # what the restart read


def test_the_jwks_lists_every_private_key_with_the_resident_key_managers_kid(stores):
    kids = sorted(key["kid"] for key in standin_jwt.Keys(stores, config()).jwks()["keys"])
    # OAuth2Util.getThumbPrint: base64url (no padding) of the lower-case hex SHA-256 of the DER, then "_RS256".
    hexes = [der_sha256(stores, alias).hex() for alias in ("wso2carbon", "next")]
    wanted = sorted(base64.urlsafe_b64encode(h.encode()).decode().rstrip("=") + "_RS256" for h in hexes)
    assert kids == wanted


class Handler:
    """What standin_api reads of a request and writes back."""

    def __init__(self, port: int, path: str, headers: dict[str, str], body: dict | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.server = type("Server", (), {"server_address": ("0.0.0.0", port)})()
        self.path, self.headers = path, {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
        self.rfile, self.wfile, self.status = io.BytesIO(data), io.BytesIO(), None

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, *_: str) -> None:
        pass

    def end_headers(self) -> None:
        pass

    def answer(self) -> dict:
        return json.loads(self.wfile.getvalue() or b"{}")


def test_the_devportal_signs_and_the_gateway_checks_api_keys(stores, tmp_path, monkeypatch):
    home = tmp_path / "home"
    subprocess.run(["cp", "-a", str(stores), str(home)], check=True)
    monkeypatch.setattr(standin_api, "tables", {name: {} for name in standin_api.TABLES})
    standin_api.configure(home, config())
    standin_api.put("tokens", standin_api.digest("rest-token"), {"kind": "rest", "client": "c"})
    api = {"name": "a", "context": "/a", "version": "1.0.0", "state": "PUBLISHED", "deployed": ["Default"]}
    standin_api.put("apis", "api-1", api | {"endpointConfig": {"production_endpoints": {"url": "http://127.0.0.1:1"}}})
    standin_api.put("apis", "api-2", api | {"context": "/b"})
    standin_api.put("applications", "app-1", {"name": "app", "policy": "Unlimited"})
    standin_api.put("subscriptions", "s-1", {"api": "api-1", "application": "app-1"})
    path = "/api/am/devportal/v3/applications/app-1/api-keys/PRODUCTION/generate"
    generated = Handler(9443, path, {"Authorization": "Bearer rest-token"}, {"validityPeriod": 600})
    assert standin_api.handle(generated, "POST") and generated.status == 200
    key = generated.answer()["apikey"]
    claims = json.loads(standin_jwt.unb64url(key.split(".")[1]))
    assert [s["context"] for s in claims["subscribedAPIs"]] == ["/a/1.0.0"] and claims["exp"] - claims["iat"] == 600
    assert (
        standin_api.admitted(Handler(8243, "/a/1.0.0/Version", {"apikey": key}), "GET", "/a/1.0.0/Version") == "http://127.0.0.1:1/Version"
    )
    refused = Handler(8243, "/a/1.0.0/Version", {"apikey": key[:-8] + "AAAAAAAA"})
    assert standin_api.admitted(refused, "GET", "/a/1.0.0/Version") is True and refused.status == 401
    other_api = Handler(8243, "/b/1.0.0/Version", {"apikey": key})
    assert standin_api.admitted(other_api, "GET", "/b/1.0.0/Version") is True and other_api.status == 403
    jwks = Handler(9443, "/oauth2/jwks", {})
    assert standin_api.handle(jwks, "GET") and len(jwks.answer()["keys"]) == 2
    # What the node keeps outlives its restart (as the database does).
    monkeypatch.setattr(standin_api, "tables", {name: {} for name in standin_api.TABLES})
    standin_api.configure(home, config())
    assert "app-1" in standin_api.tables["applications"] and "api-1" in standin_api.tables["apis"]
