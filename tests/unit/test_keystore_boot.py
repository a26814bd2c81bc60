"""The pair's keystore at boot, the boot step's own functions run with bash, the real keytool, openssl and AWS CLI:
check_keystore (every node, every boot) on keystores made here, and the first node filling the empty pair secret from
brought material (keystore-brought.sh with its source's part) against the real local AWS emulator's Secrets Manager
and ACM Private CA (moto, one server for the module): a PKCS#12 under an alias of its own, PEM key and certificates, a
certificate the CA issues; and each bad brought keystore refused with one line naming what is wrong and the setting, the
pair secret left empty."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from apim_active_active.renderers.boot_script import KEYSTORE_PARTS, boot_part, boot_script_source, boot_script_text, render_node_env
from apim_active_active.settings import Settings, parse_settings
from scripts.local_stack import client
from tests.conftest import DEPLOYED, ROOT, local_settings_dict

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
KEYSTORE, ALIAS = "wso2carbon.jks", "wso2carbon"
BROUGHT = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/brought-keystore"  # local.toml's (partial)


# Keys and certificates ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Issued:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def key_pem(self, form=serialization.PrivateFormat.PKCS8, encryption=None) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, form, encryption or serialization.NoEncryption()).decode()


def issue(name: str, issuer: Issued | None = None, *, ca: bool = False, start=NOW - DAY, end=NOW + 30 * DAY, key=None) -> Issued:
    """A certificate for CN=name, signed by issuer (itself when None), valid from start to end."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment"), False)
        builder = builder.add_extension(
            x509.KeyUsage(**usage, key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
    return Issued(key, builder.sign((issuer or Issued(key, None)).key, hashes.SHA256()))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chain() -> tuple[Issued, Issued, Issued]:
    """A leaf issued by an intermediate CA issued by a root CA."""
    root = issue("root", ca=True, end=NOW + 90 * DAY)
    intermediate = issue("intermediate", root, ca=True, end=NOW + 60 * DAY)
    return issue("apim.local.test", intermediate), intermediate, root


def p12(leaf: Issued, cas: list[Issued], password: str, alias: str = "brought") -> bytes:
    """A PKCS#12 (openssl 3's modern encryption) with leaf's key and its CA certificates under alias."""
    encryption = serialization.BestAvailableEncryption(password.encode())
    return pkcs12.serialize_key_and_certificates(alias.encode(), leaf.key, leaf.certificate, [c.certificate for c in cas], encryption)  # type: ignore[arg-type]


def two_keys(folder: Path, password: str) -> bytes:
    """A PKCS#12 with two keys (first, second), made by keytool."""
    for alias in ("first", "second"):
        keytool(folder, "-genkeypair", "-alias", alias, "-keyalg", "RSA", "-keysize", "2048", "-dname", f"CN={alias}",
                "-storetype", "PKCS12", "-keystore", "two.p12", "-storepass", password)  # fmt: skip
    return (folder / "two.p12").read_bytes()


def jks(folder: Path, leaf: Issued, cas: list[Issued], password: str = "store-pass-1234") -> Path:
    """folder/wso2carbon.jks holding leaf's key and its chain under wso2carbon (as the pair's keystore), folder/store.pass."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "store.pass").write_text(password)
    (folder / "in.p12").write_bytes(p12(leaf, cas, password, ALIAS))
    source = ("-srckeystore", "in.p12", "-srcstoretype", "PKCS12", "-srcstorepass:file", "store.pass")
    destination = (
        "-destkeystore",
        KEYSTORE,
        "-deststoretype",
        "JKS",
        "-deststorepass:file",
        "store.pass",
        "-destkeypass:file",
        "store.pass",
    )
    keytool(folder, "-importkeystore", *source, *destination)
    return folder


def keytool(folder: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["keytool", "-noprompt", *args], cwd=folder, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def stored_chain(store: Path, password: str) -> list[str]:
    """The SHA-256 fingerprints of the chain under wso2carbon in a JKS, leaf first."""
    listed = subprocess.run(
        ["keytool", "-list", "-rfc", "-alias", ALIAS, "-keystore", str(store), "-storepass", password],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "Entry type: PrivateKeyEntry" in listed
    blocks = [f"-----BEGIN CERTIFICATE-----{b.split('-----END CERTIFICATE-----')[0]}-----END CERTIFICATE-----\n"
              for b in listed.split("-----BEGIN CERTIFICATE-----")[1:]]  # fmt: skip
    return [x509.load_pem_x509_certificate(b.encode()).fingerprint(hashes.SHA256()).hex() for b in blocks]


# A pair node's boot step against the emulator ------------------------------------------------------------------------


def keystore_settings(**keystore: str) -> Settings:
    """The local environment's settings with this [keystore] (none: generated)."""
    data = copy.deepcopy(local_settings_dict())
    data.pop("keystore", None)
    if keystore:
        data["keystore"] = keystore
    return parse_settings(data, environ={})


class Node:
    """A pair node's boot step in tmp_path (sourced, it only defines its steps) with its node.env, whose pair secrets
    are new and empty in the emulator; the real aws, keytool and openssl."""

    def __init__(self, tmp_path: Path, emulator: str, settings: Settings):
        self.root, self.emulator = tmp_path, emulator
        manager = client("secretsmanager", emulator)
        made = {
            field: manager.create_secret(Name=f"pair-{uuid.uuid4().hex[:8]}/{field}")["ARN"]
            for field in ("admin_secret_arn", "keystore_secret_arn", "db_app_secret_arn")
        }
        self.pair_secret = made["keystore_secret_arn"]
        (tmp_path / "node.env").write_text(render_node_env(settings, dataclasses.replace(DEPLOYED, **made), 0))
        self.script = tmp_path / "wso2am-boot"
        self.script.write_text(boot_script_text("efs", keystore=settings.keystore.source))
        self.boot_log = tmp_path / "boot.log"

    def run(self, commands: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
            "NODE_ENV": str(self.root / "node.env"),
            "BOOT_LOG": str(self.boot_log),
            "TMPDIR": str(self.root),
            "HOME": str(self.root),
            "AWS_ENDPOINT_URL": self.emulator,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        script = f'. "{self.script}"\nLOCK_DIR="$TMPDIR"\n{commands}'
        return subprocess.run(["bash", "-c", script], env=env, cwd=self.root, capture_output=True, text=True, timeout=300)

    def keystore_lines(self) -> list[str]:
        text = self.boot_log.read_text() if self.boot_log.exists() else ""
        return [line.split("wso2am-boot: ", 1)[1] for line in text.splitlines() if "wso2am-boot: keystore: " in line]

    def pair_keystore(self) -> tuple[str, Path]:
        """The pair secret's password and its keystore, written to tmp_path."""
        value = json.loads(client("secretsmanager", self.emulator).get_secret_value(SecretId=self.pair_secret)["SecretString"])
        store = self.root / "pair.jks"
        store.write_bytes(base64.b64decode(value["keystore"]))
        return value["password"], store

    def pair_secret_is_empty(self) -> bool:
        manager = client("secretsmanager", self.emulator)
        try:
            manager.get_secret_value(SecretId=self.pair_secret)
        except manager.exceptions.ResourceNotFoundException:
            return True
        return False


def brought_secret(emulator: str, name: str, value: dict | str) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return client("secretsmanager", emulator).create_secret(Name=f"brought/{name}-{uuid.uuid4().hex[:8]}", SecretString=text)["ARN"]


def bring(tmp_path: Path, emulator: str, value: dict | str) -> tuple[Node, subprocess.CompletedProcess, str]:
    """The first node making the pair's keystore from a brought secret holding value."""
    arn = brought_secret(emulator, tmp_path.name, value)
    node = Node(tmp_path, emulator, keystore_settings(source="secrets_manager", secret_arn=arn))
    return node, node.run('work=$(mktemp -d); bring_keystore_secret "$work"; ls -A "$work"'), arn


def made(node: Node, result: subprocess.CompletedProcess, arn: str, wanted: list[str], brought_password: str = "") -> None:
    """The pair secret holds a JKS under a fresh password with the brought chain under wso2carbon; nothing left behind."""
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", "the brought material is removed once put"
    password, store = node.pair_keystore()
    assert len(password) == 32 and password != brought_password
    assert stored_chain(store, password) == wanted
    assert f"wso2am-boot: made the keystore of the pair from keystore.secret_arn {arn} into Secrets Manager" in result.stderr


@pytest.mark.slow
def test_a_pkcs12_under_an_alias_of_its_own_becomes_the_pairs_keystore_with_its_chain(tmp_path, emulator, chain):
    leaf, intermediate, root = chain
    bundle = base64.b64encode(p12(leaf, [intermediate, root], "brought-pass")).decode()
    value = {"pkcs12": bundle, "password": "brought-pass", "alias": "brought"}
    node, result, arn = bring(tmp_path, emulator, value)
    made(node, result, arn, [leaf.fingerprint, intermediate.fingerprint, root.fingerprint], "brought-pass")
    assert any(line.startswith("keystore: wso2carbon valid until ") and line.endswith(" days left") for line in node.keystore_lines())


@pytest.mark.slow
def test_a_pkcs12_without_an_alias_gives_its_only_key(tmp_path, emulator):
    alone = issue("apim.local.test")  # self-signed, as a generated one
    value = {"pkcs12": base64.b64encode(p12(alone, [], "brought-pass", "whatever")).decode(), "password": "brought-pass"}
    node, result, arn = bring(tmp_path, emulator, value)
    made(node, result, arn, [alone.fingerprint], "brought-pass")


@pytest.mark.slow
@pytest.mark.parametrize(
    "form, newline",
    [
        (serialization.PrivateFormat.PKCS8, "\n"),
        (serialization.PrivateFormat.TraditionalOpenSSL, "\n"),
        (serialization.PrivateFormat.PKCS8, "\r\n"),
    ],
    ids=["pkcs8", "rsa", "pkcs8 with CRLF lines"],
)
def test_a_pem_key_and_certificate_with_their_chain_become_the_pairs_keystore(tmp_path, emulator, chain, form, newline):
    leaf, intermediate, root = chain
    value = {"certificate": leaf.pem, "private_key": leaf.key_pem(form), "chain": intermediate.pem + root.pem}
    value = {name: pem.replace("\n", newline) for name, pem in value.items()}
    node, result, arn = bring(tmp_path, emulator, value)
    made(node, result, arn, [leaf.fingerprint, intermediate.fingerprint, root.fingerprint])


@pytest.mark.slow
def test_a_certificate_without_its_last_newline_still_joins_its_chain(tmp_path, emulator, chain):
    """A PEM cut of its last newline (as a hand-made secret often is) before a chain: `cat` would join the END and BEGIN
    lines and openssl's export fail (found in review)."""
    leaf, intermediate, root = chain
    value = {"certificate": leaf.pem.rstrip("\n"), "private_key": leaf.key_pem(), "chain": intermediate.pem + root.pem}
    node, result, arn = bring(tmp_path, emulator, value)
    made(node, result, arn, [leaf.fingerprint, intermediate.fingerprint, root.fingerprint])


@pytest.mark.slow
def test_the_first_node_brings_the_keystore_under_the_lock_once_and_generates_the_rest(tmp_path, emulator, chain):
    leaf, intermediate, root = chain
    arn = brought_secret(emulator, tmp_path.name, {"certificate": leaf.pem, "private_key": leaf.key_pem(), "chain": intermediate.pem})
    node = Node(tmp_path, emulator, keystore_settings(source="secrets_manager", secret_arn=arn))
    first = node.run("ensure_generated_secrets")
    assert first.returncode == 0, first.stderr
    assert "made the keystore of the pair from keystore.secret_arn" in first.stderr
    assert "generated the keystore" not in first.stderr and "generated the API-M admin password" in first.stderr
    before = node.pair_keystore()[0]
    again = node.run("ensure_generated_secrets")  # the other node, or a reboot: the secret has its value
    assert again.returncode == 0 and "keystore of the pair" not in again.stderr and node.pair_keystore()[0] == before


@pytest.mark.slow
def test_a_refused_brought_keystore_stops_the_boot_under_the_lock(tmp_path, emulator):
    arn = brought_secret(emulator, tmp_path.name, "not JSON")
    node = Node(tmp_path, emulator, keystore_settings(source="secrets_manager", secret_arn=arn))
    result = node.run("ensure_generated_secrets\necho 'the boot went on'")
    assert result.returncode != 0 and "the boot went on" not in result.stdout
    assert node.pair_secret_is_empty() and "generated the keystore" not in result.stderr


@pytest.mark.slow
def test_a_generated_keystore_is_still_generated_and_passes_the_check(tmp_path, emulator):
    node = Node(tmp_path, emulator, keystore_settings())
    result = node.run(
        "ensure_generated_secrets\n"
        'mkdir "$TMPDIR/k"; secret_string "$KEYSTORE_SECRET_ARN" | json_field password >"$TMPDIR/k/store.pass"\n'
        'secret_string "$KEYSTORE_SECRET_ARN" | json_field keystore | base64 -d >"$TMPDIR/k/$KEYSTORE_FILE"\n'
        'check_keystore "$TMPDIR/k"'
    )
    assert result.returncode == 0, result.stderr
    assert "generated the keystore of the pair into Secrets Manager" in result.stderr
    assert any(line.endswith(("3649 days left", "3650 days left")) for line in node.keystore_lines()), node.keystore_lines()


# Bad brought material: one line naming what is wrong and the setting; the pair secret stays empty ---------------------
def _expired(chain):
    leaf, intermediate, _ = chain
    return issue("apim.local.test", intermediate, start=NOW - 30 * DAY, end=NOW - DAY), [intermediate]


def _not_yet(chain):
    leaf, intermediate, _ = chain
    return issue("apim.local.test", intermediate, start=NOW + DAY, end=NOW + 30 * DAY), [intermediate]


def _foreign_issuer(chain):
    """The leaf with an intermediate of the same name that did not sign it (a CA re-keyed, the old certificate given)."""
    leaf, intermediate, root = chain
    return leaf, [issue("intermediate", root, ca=True)]


def _unrelated(chain):
    leaf, _, root = chain
    return leaf, [root]  # the intermediate left out: the root issued none of what is given


PEM_CASES = {
    "expired": (_expired, "certificate has expired"),
    "not yet valid": (_not_yet, "certificate is not yet valid"),
    "chain broken (signature)": (_foreign_issuer, "certificate signature failure"),
    "chain broken (missing link)": (_unrelated, "its chain is broken: of its 2 certificates only 1 issue one another"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", PEM_CASES)
def test_a_bad_brought_certificate_is_refused_and_nothing_is_put(tmp_path, emulator, chain, case):
    make, said = PEM_CASES[case]
    leaf, cas = make(chain)
    value = {"certificate": leaf.pem, "private_key": leaf.key_pem(), "chain": "".join(c.pem for c in cas)}
    node, result, arn = bring(tmp_path, emulator, value)
    refused(node, result, arn, said)


def refused(node: Node, result: subprocess.CompletedProcess, arn: str, said: str) -> None:
    assert result.returncode != 0
    lines = [line for line in node.keystore_lines() if not line.startswith("keystore: wso2carbon valid until")]
    assert len(lines) == 1 and said in lines[0] and lines[0].endswith(f"(keystore.secret_arn {arn})"), lines
    assert node.pair_secret_is_empty()
    assert not list(node.root.glob("tmp.*/brought")), "the brought material is removed"


KEY_CASES = {
    "an EC key": (lambda leaf: issue("apim.local.test", key=ec.generate_private_key(ec.SECP256R1())), "not an unencrypted RSA key"),
    "an encrypted key": (None, "not an unencrypted RSA key"),
    "another certificate's key": (lambda leaf: Issued(issue("other").key, leaf.certificate), "its private key is not the certificate's"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", KEY_CASES)
def test_a_key_the_pair_cannot_sign_with_is_refused(tmp_path, emulator, case):
    change, said = KEY_CASES[case]
    alone = issue("apim.local.test")
    brought = change(alone) if change else alone
    key = alone.key_pem(encryption=serialization.BestAvailableEncryption(b"secret")) if change is None else brought.key_pem()
    node, result, arn = bring(tmp_path, emulator, {"certificate": brought.pem, "private_key": key})
    refused(node, result, arn, said)


SHAPES = {
    "not JSON": ("-----BEGIN CERTIFICATE-----", 'it is not JSON with "pkcs12" (base64) and "password"'),
    "no key": ({"certificate": "x"}, 'it is not JSON with "pkcs12" (base64) and "password"'),
    "no password": ({"pkcs12": "AAAA"}, 'it is not JSON with "pkcs12" (base64) and "password"'),
    "not base64": ({"pkcs12": "not base64!", "password": "x"}, 'it is not JSON with "pkcs12" (base64) and "password"'),
    "no certificate": ({"certificate": "", "private_key": "x"}, "no certificate"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", SHAPES)
def test_a_secret_of_another_shape_is_refused(tmp_path, emulator, case):
    value, said = SHAPES[case]
    node, result, arn = bring(tmp_path, emulator, value)
    refused(node, result, arn, said)


@pytest.mark.slow
def test_a_pkcs12_is_refused_with_a_wrong_password_a_missing_alias_or_two_keys_unnamed(tmp_path, emulator, chain):
    leaf, intermediate, root = chain
    bundle = base64.b64encode(p12(leaf, [intermediate, root], "brought-pass")).decode()
    two = base64.b64encode(two_keys(tmp_path, "two-pass")).decode()
    cases = [
        (
            {"pkcs12": bundle, "password": "wrong-password"},
            "its PKCS#12: keytool error: java.io.IOException: keystore password was incorrect",
        ),
        (
            {"pkcs12": bundle, "password": "brought-pass", "alias": "gone"},
            "its PKCS#12: keytool error: java.lang.Exception: Alias <gone> does not",
        ),
        ({"pkcs12": two, "password": "two-pass"}, 'its PKCS#12 holds several keys: name one ("alias")'),
    ]
    for index, (value, said) in enumerate(cases):
        folder = tmp_path / str(index)
        folder.mkdir()
        node, result, arn = bring(folder, emulator, value)
        refused(node, result, arn, said)


@pytest.mark.slow
def test_a_secret_the_node_cannot_read_is_refused(tmp_path, emulator):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:brought/nowhere-AbCdEf"
    node = Node(tmp_path, emulator, keystore_settings(source="secrets_manager", secret_arn=arn))
    result = node.run('work=$(mktemp -d); bring_keystore_secret "$work"')
    refused(node, result, arn, "cannot read it: An error occurred (ResourceNotFoundException)")


# ACM Private CA ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_ca(emulator) -> tuple[str, str]:
    """An ACTIVE root CA in the emulator (its own certificate issued and imported, as an operator activates one): its
    ARN and certificate."""
    pca = client("acm-pca", emulator)
    configuration = {"KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA", "Subject": {"CommonName": "pair CA"}}
    arn = pca.create_certificate_authority(CertificateAuthorityConfiguration=configuration, CertificateAuthorityType="ROOT")
    arn = arn["CertificateAuthorityArn"]
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    issued = pca.issue_certificate(
        CertificateAuthorityArn=arn,
        Csr=csr.encode(),
        SigningAlgorithm="SHA256WITHRSA",
        TemplateArn="arn:aws:acm-pca:::template/RootCACertificate/V1",
        Validity={"Value": 3650, "Type": "DAYS"},
    )["CertificateArn"]
    certificate = pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=issued)["Certificate"]
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=certificate.encode())
    return arn, certificate


@pytest.mark.slow
def test_the_private_ca_issues_the_pairs_certificate_for_its_names_and_the_key_stays_on_the_node(tmp_path, emulator, private_ca):
    arn, ca_certificate = private_ca
    node = Node(tmp_path, emulator, keystore_settings(source="private_ca", certificate_authority_arn=arn))
    result = node.run('work=$(mktemp -d); bring_keystore_secret "$work"; ls -A "$work"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"made the keystore of the pair from keystore.certificate_authority_arn {arn} into Secrets Manager" in result.stderr
    password, store = node.pair_keystore()
    ca = x509.load_pem_x509_certificate(ca_certificate.encode())
    leaf_fingerprint, ca_fingerprint = stored_chain(store, password)
    assert ca_fingerprint == ca.fingerprint(hashes.SHA256()).hex()
    exported = subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-alias", ALIAS, "-keystore", str(store), "-storepass", password],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    leaf = x509.load_pem_x509_certificate(exported.encode())
    assert leaf.fingerprint(hashes.SHA256()).hex() == leaf_fingerprint
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "apim.local.test"
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"apim.local.test", "localhost"}
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {"10.0.1.10", "10.0.2.10"}
    assert any(line.startswith(f"keystore: {arn}/certificate/") for line in node.keystore_lines())


@pytest.mark.slow
def test_a_private_ca_that_does_not_issue_is_refused_and_nothing_is_put(tmp_path, emulator):
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"
    node = Node(tmp_path, emulator, keystore_settings(source="private_ca", certificate_authority_arn=arn))
    result = node.run('work=$(mktemp -d); bring_keystore_secret "$work"')
    assert result.returncode != 0
    (line,) = node.keystore_lines()
    assert line.startswith("keystore: it did not issue a certificate: An error occurred (ResourceNotFoundException)")
    assert line.endswith(f"(keystore.certificate_authority_arn {arn})")
    assert node.pair_secret_is_empty()


# check_keystore: every node, every boot ------------------------------------------------------------------------------
def checked(tmp_path: Path, emulator: str, folder: Path) -> tuple[subprocess.CompletedProcess, list[str], str]:
    tmp_path.mkdir(exist_ok=True)
    node = Node(tmp_path, emulator, keystore_settings())
    result = node.run(f'check_keystore "{folder}"')
    return result, node.keystore_lines(), node.pair_secret


def test_check_keystore_passes_the_pairs_keystore_and_logs_its_days_left(tmp_path, emulator, chain):
    leaf, intermediate, root = chain
    result, lines, _ = checked(tmp_path, emulator, jks(tmp_path / "k", leaf, [intermediate, root]))
    assert result.returncode == 0, result.stderr
    assert lines == [f"keystore: wso2carbon valid until {leaf.certificate.not_valid_after_utc:%b %e %H:%M:%S %Y GMT}, 29 days left"]


BAD_KEYSTORES = {
    "expired": (lambda c: (_expired(c)[0], [c[1], c[2]]), "certificate has expired"),
    "not yet valid": (lambda c: (_not_yet(c)[0], [c[1], c[2]]), "certificate is not yet valid"),
    "chain broken": (lambda c: _foreign_issuer(c), "certificate signature failure"),
}


@pytest.mark.parametrize("case", BAD_KEYSTORES)
def test_check_keystore_stops_the_boot_naming_what_is_wrong(tmp_path, emulator, chain, case):
    make, said = BAD_KEYSTORES[case]
    leaf, cas = make(chain)
    result, lines, pair = checked(tmp_path, emulator, jks(tmp_path / "k", leaf, cas))
    assert result.returncode != 0
    (line,) = lines
    shown = "%b %e %H:%M:%S %Y GMT"  # openssl's
    dates = f"notBefore={leaf.certificate.not_valid_before_utc:{shown}}, notAfter={leaf.certificate.not_valid_after_utc:{shown}}"
    assert line.startswith(f"keystore: the certificate under wso2carbon ({dates}): error ") and said in line, line
    assert line.endswith(f"(the keystore secret of the pair {pair})")


def test_the_installed_keystore_out_of_its_dates_does_not_stop_a_boot_but_a_broken_chain_does(tmp_path, emulator, chain):
    """A node replaced (or a gateway launched) after the pair's certificate expired still boots: the expiry alarm warned,
    rotate_keystore.py mends it; what was brought is refused for its dates (the cases above)."""
    leaf, cas = BAD_KEYSTORES["expired"][0](chain)
    (tmp_path / "n").mkdir()
    node = Node(tmp_path / "n", emulator, keystore_settings())
    result = node.run(f'check_keystore "{jks(tmp_path / "k", leaf, cas)}" installed')
    assert result.returncode == 0, result.stderr
    assert node.keystore_lines()[0].startswith("keystore: wso2carbon valid until ") and " -" in node.keystore_lines()[0]
    leaf, cas = BAD_KEYSTORES["chain broken"][0](chain)
    (tmp_path / "m").mkdir()
    node = Node(tmp_path / "m", emulator, keystore_settings())
    assert node.run(f'check_keystore "{jks(tmp_path / "j", leaf, cas)}" installed').returncode != 0


def test_check_keystore_stops_the_boot_with_another_password_or_without_a_key(tmp_path, emulator, chain):
    leaf, intermediate, root = chain
    folder = jks(tmp_path / "k", leaf, [intermediate, root])
    (folder / "store.pass").write_text("another-password")
    result, lines, _ = checked(tmp_path / "node-1", emulator, folder)
    assert result.returncode != 0
    assert lines == [l for l in lines if l.startswith("keystore: cannot read wso2carbon with its password: keytool error: ")]  # noqa: E741
    assert len(lines) == 1 and "password was incorrect" in lines[0]
    trusted = tmp_path / "t"
    trusted.mkdir()
    (trusted / "store.pass").write_text("store-pass-1234")
    (trusted / "leaf.pem").write_text(leaf.pem)
    keytool(trusted, "-importcert", "-alias", ALIAS, "-file", "leaf.pem", "-keystore", KEYSTORE, "-storepass:file", "store.pass")
    result, lines, pair = checked(tmp_path / "node-2", emulator, trusted)
    assert result.returncode != 0 and lines == [f"keystore: no private key under wso2carbon (the keystore secret of the pair {pair})"]


def test_each_node_checks_the_keystore_it_installs_at_every_boot():
    """As soon as install_keystores has written it from the secret, before it is installed where API-M reads it: on a
    pair node of either mode and on a gateway node."""
    for mode in ("efs", "rsync", "gateway"):
        script = boot_script_text(mode)
        body = script[script.index("install_keystores() {") :]
        body = body[: body.index("\n}\n")]
        written = body.index('base64 -d >"$dir/$KEYSTORE_FILE"')
        assert written < body.index('check_keystore "$dir"') < body.index('install -m 0640 -o root -g "$OS_USER" "$dir/$KEYSTORE_FILE"')


@pytest.mark.parametrize("source", sorted(KEYSTORE_PARTS))
@pytest.mark.parametrize("mode", ["efs", "rsync"])
def test_a_brought_keystores_boot_step_is_shellcheck_clean_and_loses_only_comments_when_shipped(mode, source, tmp_path):
    assert shutil.which("shellcheck"), "shellcheck is installed by `make install`"
    for text in (boot_script_source(mode, keystore=source), boot_script_text(mode, keystore=source)):
        script = tmp_path / "wso2am-boot"
        script.write_text(text)
        result = subprocess.run(["shellcheck", "-S", "style", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout
    for part in KEYSTORE_PARTS[source]:  # comment lines are stripped: none may be inside a heredoc
        heredocs = re.findall(r"<<'([A-Z]+)'.*?\n(.*?)\n\1\n", boot_part(part), re.S)
        assert all(not line.lstrip().startswith("#") for _, body in heredocs for line in body.splitlines())
