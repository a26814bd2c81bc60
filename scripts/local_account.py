"""What an AWS account already holds before a deploy, put into the emulator for the `local` stack:
the load balancer's certificate (looked up by `load_balancer.certificate_domain`), the hosted zone
(`load_balancer.route53_zone`) and, where the settings point into S3, the product archive, the JDBC
driver and the customization's jars and hook (small placeholders: only the rehearsal boots a node, and it uploads
its stand-ins), and a brought keystore's secret (keystore.secret_arn). Idempotent.

The certificate is self-signed and made here; its private key goes only to the emulator's ACM (never to
the stack, its state or a file), as a real one is imported into or issued by ACM.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import secrets
import uuid
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from apim_active_active.settings import Settings
from scripts.local_stack import client


def self_signed_certificate(domain: str, *, ip: str | None = None, ca: bool = False) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM), RSA 2048 as ACM's default key type, valid 30 days; for the domain,
    or for an IP address (`ip`); `ca` makes it its own CA (a trust anchor for clients such as curl)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    alternative = x509.IPAddress(ipaddress.ip_address(ip)) if ip else x509.DNSName(domain)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_certificate(endpoint: str, domain: str) -> str:
    acm = client("acm", endpoint)
    for summary in acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]:
        if summary["DomainName"] == domain:
            return summary["CertificateArn"]
    certificate, key = self_signed_certificate(domain)
    return acm.import_certificate(Certificate=certificate, PrivateKey=key)["CertificateArn"]


def ensure_hosted_zone(endpoint: str, zone: str, private: bool) -> str:
    route53 = client("route53", endpoint)
    for hosted in route53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]:
        if hosted["Name"].rstrip(".") == zone and hosted["Config"]["PrivateZone"] == private:
            return hosted["Id"]
    if private:
        raise SystemExit(f"{zone}: a private hosted zone needs a VPC; create it in the emulator first")
    return route53.create_hosted_zone(Name=zone, CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]


def ensure_artifact(endpoint: str, url: str) -> str:
    location = urlparse(url)
    s3, key = client("s3", endpoint), location.path.lstrip("/")
    if location.netloc not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=location.netloc)
    if s3.list_objects_v2(Bucket=location.netloc, Prefix=key).get("KeyCount", 0) == 0:
        s3.put_object(Bucket=location.netloc, Key=key, Body=b"placeholder: the rehearsal uploads a stand-in here")
    return url


BROUGHT_ALIAS = "brought"  # not the pair's alias: the first node re-stores the key under wso2carbon


def ensure_brought_keystore(endpoint: str, secret_arn: str) -> str:
    """keystore.source = "secrets_manager": the secret the operator brings, named by the settings' partial ARN (the
    emulator's own ARN adds a random suffix, as AWS's does), holding a self-signed key and certificate as a PKCS#12 under
    a password of its own (the rehearsal puts one it makes with openssl in its place)."""
    manager, name = client("secretsmanager", endpoint), secret_arn.split(":secret:", 1)[1]
    try:
        return manager.describe_secret(SecretId=name)["ARN"]
    except manager.exceptions.ResourceNotFoundException:
        pass
    certificate_pem, key_pem = self_signed_certificate(BROUGHT_ALIAS)
    password = secrets.token_hex(16)
    bundle = pkcs12.serialize_key_and_certificates(
        BROUGHT_ALIAS.encode(),
        serialization.load_pem_private_key(key_pem, None),  # type: ignore[arg-type]
        x509.load_pem_x509_certificate(certificate_pem),
        None,
        serialization.BestAvailableEncryption(password.encode()),
    )
    value = {"pkcs12": base64.b64encode(bundle).decode(), "password": password, "alias": BROUGHT_ALIAS}
    return manager.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]


AUTOSCALING_ROLE = "AWSServiceRoleForAutoScaling"


def ensure_autoscaling_role(endpoint: str) -> str:
    """EC2 Auto Scaling's service-linked role, which an account has once it ever had a group (the stack key's policy
    names it when the gateway group is on)."""
    iam = client("iam", endpoint)
    try:
        return iam.get_role(RoleName=AUTOSCALING_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")["Role"]["Arn"]


def prepare(endpoint: str, settings: Settings) -> list[str]:
    """Put the local stack's prerequisites into the emulator; returns what it holds, for the log."""
    lb = settings.load_balancer
    held = []
    if lb.certificate_domain:
        held.append(f"ACM certificate for {lb.certificate_domain}: {ensure_certificate(endpoint, lb.certificate_domain)}")
    if lb.route53_zone:
        zone_id = ensure_hosted_zone(endpoint, lb.route53_zone, lb.scheme == "internal")
        held.append(f"Route 53 zone {lb.route53_zone}: {zone_id}")
    if settings.gateway_scale_out:
        held.append(f"EC2 Auto Scaling's service-linked role {ensure_autoscaling_role(endpoint)}")
    if settings.keystore.secret_arn:
        held.append(f"brought keystore secret {ensure_brought_keystore(endpoint, settings.keystore.secret_arn)}")
    fetched = (
        ("product archive", settings.apim.archive_url),
        ("JDBC driver", settings.database.jdbc_driver_url),
        *(("customization's object", url) for url in settings.customization.fetched_urls),
    )
    for name, url in fetched:
        if url.startswith("s3://"):
            held.append(f"{name} at {ensure_artifact(endpoint, url)}")
    return held
