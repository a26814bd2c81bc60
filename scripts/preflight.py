#!/usr/bin/env python3
"""Pre-flight: can this account take a deploy of the environment? Run before `cdktf deploy`.

  scripts/preflight.py <environment> [--json]

Checks credentials and account; the region and both zones; the instance type in both zones; the AMI
(or its SSM parameter); what the settings name that must already exist (VPC, subnets and their CIDRs
and zones, the database secret, the brought keystore's secret or private CA, the certificate, the hosted zone, the
state bucket and lock table, the artifacts in S3: the archive, the driver, the customization's jars and hook); with
gateway_scale_out, its instance
type in both zones and (4.5+) its Universal Gateway pack in S3. Prints a pass/fail table; exits 1 on any failure, 2 on bad settings.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from apim_active_active.renderers.boot_script import brings_keystore  # noqa: E402
from apim_active_active.settings import Settings  # noqa: E402
from apim_active_active.traffic import CERTIFICATE_KEY_TYPES  # noqa: E402
from apim_active_active.versions import gateway_distribution  # noqa: E402
from scripts.ops import Aws, Result, environment_parser, load_environment, passed, report  # noqa: E402


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{error.response['Error'].get('Code')}: {error.response['Error'].get('Message')}"
    return str(error)


def credentials(aws: Aws) -> Result:
    identity = aws.client("sts").get_caller_identity()
    return passed("credentials and account", True, f"account {identity['Account']} as {identity['Arn']}")


def region_and_zones(aws: Aws, settings: Settings) -> Result:
    ec2 = aws.client("ec2")
    ec2.describe_regions(RegionNames=[settings.region])
    zones = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": list(settings.availability_zones)}])
    found = {z["ZoneName"]: z["State"] for z in zones["AvailabilityZones"]}
    missing = [z for z in settings.availability_zones if found.get(z) != "available"]
    return passed(
        "region and both zones exist",
        not missing,
        f"{settings.region}: " + (f"missing or unavailable {missing}" if missing else ", ".join(found)),
    )


def instance_type(aws: Aws, settings: Settings, kind: str | None = None, label: str = "instance type") -> Result:
    kind = kind or settings.node.instance_type
    offerings = aws.client("ec2").describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": [kind]}, {"Name": "location", "Values": list(settings.availability_zones)}],
    )["InstanceTypeOfferings"]
    offered = {o["Location"] for o in offerings}
    missing = [z for z in settings.availability_zones if z not in offered]
    return passed(f"{label} {kind} offered in both zones", not missing, f"not offered in {', '.join(missing)}" if missing else "")


def image(aws: Aws, settings: Settings) -> Result:
    ami = settings.node.ami
    image_id, source = ami.id, ami.id
    if ami.ssm_parameter:
        image_id = aws.client("ssm").get_parameter(Name=ami.ssm_parameter)["Parameter"]["Value"]
        source = f"{ami.ssm_parameter} -> {image_id}"
    images = aws.client("ec2").describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]
    ok = bool(images) and images[0].get("State", "available") == "available"
    return passed("AMI resolves", ok, source if ok else f"{source}: no such image in {settings.region}")


def existing_network(aws: Aws, settings: Settings) -> list[Result]:
    net = settings.network
    if net.vpc_id is None:
        return []
    ec2 = aws.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])["Vpcs"]
    results = [passed(f"VPC {net.vpc_id} exists", bool(vpcs))]
    named = [(i, "subnet", s) for i, s in enumerate(net.subnet_ids)] + [
        (i, "public subnet", s) for i, s in enumerate(net.public_subnet_ids or ())
    ]
    found = {s["SubnetId"]: s for s in ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [s for _, _, s in named]}])["Subnets"]}
    for index, kind, subnet_id in named:
        subnet = found.get(subnet_id)
        zone = settings.availability_zones[index]
        problems = []
        if subnet is None:
            problems.append("does not exist")
        else:
            if subnet["VpcId"] != net.vpc_id:
                problems.append(f"in {subnet['VpcId']}")
            if subnet["AvailabilityZone"] != zone:
                problems.append(f"in zone {subnet['AvailabilityZone']}, not {zone}")
            if kind == "subnet" and subnet["CidrBlock"] != str(net.subnet_cidrs[index]):
                problems.append(f"CIDR {subnet['CidrBlock']}, settings say {net.subnet_cidrs[index]}")
        results.append(passed(f"{kind} {subnet_id} matches the settings", not problems, "; ".join(problems)))
    return results


def database_secret(aws: Aws, settings: Settings) -> list[Result]:
    existing = settings.database.existing
    if existing is None:
        return []
    try:
        aws.client("secretsmanager").describe_secret(SecretId=existing.secret_arn)
        return [passed("database secret exists", True, existing.secret_arn)]
    except ClientError as error:
        return [passed("database secret exists", False, f"{existing.secret_arn}: {_error(error)}")]


def brought_keystore(aws: Aws, settings: Settings) -> list[Result]:
    """keystore.source other than generated: the brought secret exists with a value, under a key the nodes may decrypt
    with; or the private CA is ACTIVE, general-purpose (a short-lived CA issues for 7 days at most), with an RSA key
    (the pair's certificate is SHA256WITHRSA) and valid beyond apim.keystore_validity_days. Never reads the secret."""
    if not brings_keystore(settings):
        return []
    setting, arn = settings.keystore.origin
    try:
        if settings.keystore.secret_arn:
            return brought_secret(aws, settings, arn)
        return [private_ca(aws, settings, arn)]
    except ClientError as error:
        return [passed(f"brought keystore ({setting})", False, f"{arn}: {_error(error)}")]


def brought_secret(aws: Aws, settings: Settings, arn: str) -> list[Result]:
    described = aws.client("secretsmanager").describe_secret(SecretId=arn)
    current = any("AWSCURRENT" in stages for stages in described.get("VersionIdsToStages", {}).values())
    results = [passed("brought keystore secret has a value", current, f"keystore.secret_arn {described['ARN']}")]
    key_id = described.get("KmsKeyId")
    if key_id:  # none: aws/secretsmanager, which Secrets Manager uses for whoever may read the secret
        key = aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]
        ok = key.get("KeyManager") == "AWS" or key["Arn"] in settings.encryption.node_decrypt_key_arns
        detail = key["Arn"] + ("" if ok else ": add it to encryption.node_decrypt_key_arns")
        results.append(passed("the nodes may decrypt the brought keystore secret", ok, detail))
    return results


def private_ca(aws: Aws, settings: Settings, arn: str) -> Result:
    ca = aws.client("acm-pca").describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    algorithm = ca.get("CertificateAuthorityConfiguration", {}).get("KeyAlgorithm", "")
    needed = datetime.now(UTC) + timedelta(days=settings.apim.keystore_validity_days)
    problems = [
        *([f"status {ca['Status']} (ACTIVE needed)"] if ca["Status"] != "ACTIVE" else []),
        *(["a short-lived certificate CA (7 days at most)"] if ca.get("UsageMode") == "SHORT_LIVED_CERTIFICATE" else []),
        *([f"key {algorithm} (RSA needed: SHA256WITHRSA)"] if not algorithm.startswith("RSA") else []),
        *(
            [f"valid until {ca['NotAfter']:%F}, before apim.keystore_validity_days' end ({needed:%F})"]
            if ca.get("NotAfter") and ca["NotAfter"] < needed
            else []
        ),
    ]
    until = f", valid until {ca['NotAfter']:%F}" if ca.get("NotAfter") else ""
    detail = "; ".join(problems) or f"ACTIVE, {algorithm}{until}"
    return passed("private CA issues the pair's certificate", not problems, f"keystore.certificate_authority_arn {arn}: {detail}")


def certificate(aws: Aws, settings: Settings) -> Result:
    lb = settings.load_balancer
    if settings.apim.hostname is None:
        # Clients would meet the load balancer's DNS name (under elb.amazonaws.com), which no ACM certificate covers.
        return passed(
            "load balancer certificate covers the public name",
            False,
            "apim.hostname is unset, so clients meet the load balancer's own DNS name, which no ACM "
            "certificate can cover: set apim.hostname to a name the certificate covers",
        )
    acm = aws.client("acm")
    if lb.certificate_arn:
        try:
            described = acm.describe_certificate(CertificateArn=lb.certificate_arn)["Certificate"]
        except ClientError as error:
            return passed("load balancer certificate is issued", False, f"{lb.certificate_arn}: {_error(error)}")
        names = [described["DomainName"], *described.get("SubjectAlternativeNames", [])]
        covers = any(_covers(n, settings.apim.hostname) for n in names)
        ok = described["Status"] == "ISSUED" and covers
        detail = f"{described['Status']}, for {', '.join(sorted(set(names)))}"
        if not covers:
            detail += f"; none covers apim.hostname {settings.apim.hostname}"
        return passed("load balancer certificate is issued for apim.hostname", ok, detail)
    pages = acm.get_paginator("list_certificates").paginate(
        CertificateStatuses=["ISSUED"], Includes={"keyTypes": list(CERTIFICATE_KEY_TYPES)}
    )
    match = [c for page in pages for c in page["CertificateSummaryList"] if c["DomainName"] == lb.certificate_domain]
    covers = _covers(lb.certificate_domain, settings.apim.hostname)
    detail = match[0]["CertificateArn"] if match else "none"
    if match and not covers:
        detail += f"; {lb.certificate_domain} does not cover apim.hostname {settings.apim.hostname}"
    return passed(f"an issued certificate for {lb.certificate_domain}", bool(match) and covers, detail)


def _covers(name: str, host: str) -> bool:
    if name.startswith("*."):
        return host.split(".", 1)[-1] == name[2:]
    return name == host


def decrypt_keys(aws: Aws, settings: Settings) -> list[Result]:
    """Each extra key the nodes may decrypt with exists, is enabled and decrypts (a symmetric encryption key)."""
    results = []
    for arn in settings.encryption.node_decrypt_key_arns:
        try:
            key = aws.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as error:
            results.append(passed(f"KMS key {arn} the nodes decrypt with", False, _error(error)))
            continue
        # AWS always reports KeyUsage; the emulator leaves it out (then only the state is checked).
        usage = key.get("KeyUsage", "not reported")
        ok = key["KeyState"] == "Enabled" and usage in ("ENCRYPT_DECRYPT", "not reported")
        results.append(passed(f"KMS key {arn} the nodes decrypt with", ok, f"{key['KeyState']}, usage {usage}"))
    return results


def hosted_zone(aws: Aws, settings: Settings) -> list[Result]:
    zone, private = settings.load_balancer.route53_zone, settings.load_balancer.scheme == "internal"
    if zone is None:
        return []
    zones = aws.client("route53").list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
    found = [z for z in zones if z["Name"].rstrip(".") == zone and z["Config"]["PrivateZone"] == private]
    return [passed(f"{'private' if private else 'public'} hosted zone {zone} exists", bool(found))]


def state_backend(settings: Settings) -> list[Result]:
    state = settings.state
    if state is None:
        return []
    aws = Aws(settings, region=state.region)
    results = []
    try:
        aws.client("s3").head_bucket(Bucket=state.bucket)
        results.append(passed(f"state bucket {state.bucket}", True))
    except ClientError as error:
        results.append(passed(f"state bucket {state.bucket}", False, f"{_error(error)}: run scripts/bootstrap_state.py"))
    try:
        aws.client("dynamodb").describe_table(TableName=state.lock_table)
        results.append(passed(f"state lock table {state.lock_table}", True))
    except ClientError as error:
        results.append(passed(f"state lock table {state.lock_table}", False, f"{_error(error)}: run scripts/bootstrap_state.py"))
    return results


def artifacts(aws: Aws, settings: Settings) -> list[Result]:
    customization = settings.customization
    fetched = [
        ("product archive", settings.apim.archive_url, "apim.archive_url"),
        ("JDBC driver", settings.database.jdbc_driver_url, "database.jdbc_driver_url"),
        *((f"extra jar {jar.file_name}", jar.url, f"customization.extra_jars.{i}.url") for i, jar in enumerate(customization.extra_jars)),
        *([("post-boot hook", customization.post_boot_hook, "customization.post_boot_hook")] if customization.post_boot_hook else []),
    ]
    return [in_s3(aws, name, url, setting) for name, url, setting in fetched]


def in_s3(aws: Aws, name: str, url: str, setting: str) -> Result:
    location = urlparse(url)
    if location.scheme != "s3":
        return Result(f"{name} in S3", "skip", f"{url} is fetched over HTTPS by the nodes")
    try:
        aws.client("s3").head_object(Bucket=location.netloc, Key=location.path.lstrip("/"))
        return passed(f"{name} in S3", True, url)
    except ClientError as error:
        return passed(f"{name} in S3", False, f"{setting} {url}: {_error(error)}")


def autoscaling_role(aws: Aws) -> Result:
    """The stack key's policy names EC2 Auto Scaling's service-linked role (its nodes' encrypted volumes); KMS refuses a
    policy naming a role that does not exist, and an account has it only once it ever had a group."""
    iam = aws.client("iam")
    try:
        iam.get_role(RoleName="AWSServiceRoleForAutoScaling")
    except iam.exceptions.NoSuchEntityException:
        return passed(
            "EC2 Auto Scaling's service-linked role exists",
            False,
            "gateway_scale_out: the stack key's policy names it; create it once per account: "
            "aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com",
        )
    return passed("EC2 Auto Scaling's service-linked role exists", True, "AWSServiceRoleForAutoScaling")


def gateway_group(aws: Aws, settings: Settings) -> list[Result]:
    """gateway_scale_out: its instance type in both zones, and what its nodes install: 4.5+ WSO2's Universal Gateway
    pack (gateway_scale_out.archive_url), up to 4.4 the pair's pack (checked above as the product archive)."""
    gateway = settings.gateway_scale_out
    if gateway is None:
        return []
    results = [instance_type(aws, settings, gateway.instance_type, "gateway instance type"), autoscaling_role(aws)]
    if gateway_distribution(settings.apim.version) == "profile":
        results.append(Result("gateway archive in S3", "skip", f"API-M {settings.apim.version}'s gateway is the pair's pack"))
    else:
        assert gateway.archive_url is not None  # the settings refuse 4.5+ without it
        results.append(in_s3(aws, "gateway archive", gateway.archive_url, "gateway_scale_out.archive_url"))
    return results


def run(settings: Settings) -> list[Result]:
    aws = Aws(settings)
    try:
        results = [credentials(aws)]
    except (BotoCoreError, ClientError) as error:
        return [passed("credentials and account", False, _error(error))]
    steps = {
        "region and both zones exist": lambda: [region_and_zones(aws, settings)],
        "instance type offered in both zones": lambda: [instance_type(aws, settings)],
        "AMI resolves": lambda: [image(aws, settings)],
        "existing network matches the settings": lambda: existing_network(aws, settings),
        "database secret exists": lambda: database_secret(aws, settings),
        "brought keystore": lambda: brought_keystore(aws, settings),
        "load balancer certificate is issued": lambda: [certificate(aws, settings)],
        "hosted zone exists": lambda: hosted_zone(aws, settings),
        "KMS keys the nodes decrypt with": lambda: decrypt_keys(aws, settings),
        "state bucket and lock table exist": lambda: state_backend(settings),
        "artifacts in S3": lambda: artifacts(aws, settings),
        "gateway group's instance type, Auto Scaling's role and archive": lambda: gateway_group(aws, settings),
    }
    for name, step in steps.items():
        try:
            results += step()
        except (BotoCoreError, ClientError) as error:
            results.append(passed(name, False, _error(error)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    return report(f"pre-flight of {args.environment} ({settings.region})", run(settings), args.json)


if __name__ == "__main__":
    sys.exit(main())
