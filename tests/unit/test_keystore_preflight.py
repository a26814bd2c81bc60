"""Pre-flight of a brought keystore (scripts/preflight.py brought_keystore) against the real local AWS emulator (moto,
one server for the module): the brought secret exists with a value, under a key the nodes may decrypt with (it is never
read); the private CA is ACTIVE, general-purpose, RSA, valid long enough. moto makes every CA a short-lived one (its
UsageMode is not implemented): the passing CA is the emulator's answer with UsageMode GENERAL_PURPOSE, as AWS's
default is."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from apim_active_active.settings import Settings, parse_settings
from scripts.local_stack import client
from scripts.ops import Aws
from scripts.preflight import brought_keystore
from tests.conftest import local_settings_dict


def settings(emulator: str, keystore: dict, **encryption) -> Settings:
    data = copy.deepcopy(local_settings_dict())
    data["keystore"] = keystore
    data["emulator"]["endpoint_url"] = emulator
    data["encryption"] |= encryption
    return parse_settings(data, environ={})


def results(emulator: str, keystore: dict, **encryption) -> dict[str, tuple[str, str]]:
    found = brought_keystore(Aws(settings(emulator, keystore, **encryption)), settings(emulator, keystore, **encryption))
    return {r.check: (r.status, r.detail) for r in found}


def test_a_generated_keystore_has_nothing_to_check(emulator):
    assert results(emulator, {"source": "generated"}) == {}


def test_the_brought_secret_has_a_value_under_a_key_the_nodes_may_decrypt_with(emulator):
    manager, kms = client("secretsmanager", emulator), client("kms", emulator)
    plain = manager.create_secret(Name="brought/plain", SecretString="{}")["ARN"]
    assert results(emulator, {"source": "secrets_manager", "secret_arn": plain}) == {
        "brought keystore secret has a value": ("pass", f"keystore.secret_arn {plain}")
    }
    empty = manager.create_secret(Name="brought/empty")["ARN"]
    assert results(emulator, {"source": "secrets_manager", "secret_arn": empty})["brought keystore secret has a value"][0] == "fail"
    key = kms.create_key(Description="the team's key")["KeyMetadata"]["Arn"]
    theirs = manager.create_secret(Name="brought/theirs", SecretString="{}", KmsKeyId=key)["ARN"]
    refused = results(emulator, {"source": "secrets_manager", "secret_arn": theirs})
    assert refused["the nodes may decrypt the brought keystore secret"] == ("fail", f"{key}: add it to encryption.node_decrypt_key_arns")
    granted = results(emulator, {"source": "secrets_manager", "secret_arn": theirs}, node_decrypt_key_arns=[key])
    assert granted["the nodes may decrypt the brought keystore secret"] == ("pass", key)


def test_a_missing_brought_secret_fails_naming_the_setting(emulator):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:brought/nowhere-AbCdEf"
    ((check, (status, detail)),) = results(emulator, {"source": "secrets_manager", "secret_arn": arn}).items()
    assert (check, status) == ("brought keystore (keystore.secret_arn)", "fail")
    assert detail.startswith(f"{arn}: ResourceNotFoundException")


def _ca(emulator: str, key_algorithm: str = "RSA_2048", activate: bool = True) -> str:
    pca = client("acm-pca", emulator)
    configuration = {"KeyAlgorithm": key_algorithm, "SigningAlgorithm": "SHA256WITHRSA", "Subject": {"CommonName": "pair CA"}}
    arn = pca.create_certificate_authority(CertificateAuthorityConfiguration=configuration, CertificateAuthorityType="ROOT")
    arn = arn["CertificateAuthorityArn"]
    if activate:
        csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root = "arn:aws:acm-pca:::template/RootCACertificate/V1"
        validity = {"Value": 3650, "Type": "DAYS"}
        issued = pca.issue_certificate(
            CertificateAuthorityArn=arn, Csr=csr.encode(), SigningAlgorithm="SHA256WITHRSA", TemplateArn=root, Validity=validity
        )
        certificate = pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=issued["CertificateArn"])["Certificate"]
        pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=certificate.encode())
    return arn


def test_a_private_ca_that_cannot_issue_the_pairs_certificate_fails_saying_why(emulator):
    arn = _ca(emulator, "EC_prime256v1", activate=False)
    status, detail = results(emulator, {"source": "private_ca", "certificate_authority_arn": arn})[
        "private CA issues the pair's certificate"
    ]
    assert status == "fail" and detail.startswith(f"keystore.certificate_authority_arn {arn}: ")
    for problem in ("status PENDING_CERTIFICATE (ACTIVE needed)", "a short-lived certificate CA", "key EC_prime256v1 (RSA needed"):
        assert problem in detail, detail
    # moto's CA certificate is valid a year: short of apim.keystore_validity_days (3650 by default).
    status, detail = results(emulator, {"source": "private_ca", "certificate_authority_arn": _ca(emulator)})[
        "private CA issues the pair's certificate"
    ]
    assert status == "fail" and "before apim.keystore_validity_days' end" in detail


def test_an_active_general_purpose_rsa_ca_valid_long_enough_passes(emulator, monkeypatch):
    arn = _ca(emulator)
    described = client("acm-pca", emulator).describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    answer = {**described, "UsageMode": "GENERAL_PURPOSE", "NotAfter": datetime.now(UTC) + timedelta(days=3700)}

    class GeneralPurpose:  # the emulator's answer, with what AWS answers for a general-purpose CA valid ten years more
        def describe_certificate_authority(self, CertificateAuthorityArn: str) -> dict:  # noqa: N803 (boto3's name)
            assert CertificateAuthorityArn == arn
            return {"CertificateAuthority": answer}

    aws = Aws(settings(emulator, {"source": "private_ca", "certificate_authority_arn": arn}))
    monkeypatch.setattr(aws, "client", lambda service: GeneralPurpose())
    (result,) = brought_keystore(aws, settings(emulator, {"source": "private_ca", "certificate_authority_arn": arn}))
    assert (result.status, result.detail) == (
        "pass",
        f"keystore.certificate_authority_arn {arn}: ACTIVE, RSA_2048, valid until {answer['NotAfter']:%F}",
    )
