"""The operations scripts against the emulator: pre-flight before a deploy, the state bootstrap and a
real S3 backend with its lock table, and verify after the deploy, including the faults it must catch."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading

import pytest

from apim_active_active import names
from scripts.local_account import self_signed_certificate
from tests.conftest import synthesize
from tests.e2e.conftest import STACK, aws_env, client, write_local_settings
from tests.helpers import results_of, run_script, verify

pytestmark = pytest.mark.e2e


@pytest.fixture()
def variant(emulator, tmp_path):
    """An environments folder holding `local` with some settings changed, and the env to run a script in it."""

    def make(*replacements: tuple[str, str], extra: str = "") -> dict[str, str]:
        folder = write_local_settings(tmp_path / "environments", protected=False)
        text = (folder / "local.toml").read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        (folder / "local.toml").write_text(text + extra)
        return {**aws_env(emulator), "APIM_ENVIRONMENTS_DIR": str(folder)}

    return make


# pre-flight ---------------------------------------------------------------------------------------
MISSING_KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0000-4000-8000-000000000000"


def test_preflight_passes_for_local(variant):
    result, seconds = run_script("preflight.py", STACK, env=variant())
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "credentials and account",
        "region and both zones exist",
        "instance type m6i.large offered in both zones",
        "AMI resolves",
        "an issued certificate for apim.local.test",
        "public hosted zone local.test exists",
        "product archive in S3",
        "JDBC driver in S3",
        "extra jar rehearsal-bundle-1.0.0.jar in S3",  # local's customization
        "post-boot hook in S3",
        "gateway instance type c6i.large offered in both zones",
        "EC2 Auto Scaling's service-linked role exists",
        "brought keystore secret has a value",  # local's keystore.secret_arn (scripts/local_account.py puts it there)
    ):
        assert f"PASS  {line}" in result.stdout, result.stdout
    assert "SKIP  gateway archive in S3" in result.stdout  # 4.3: the pair's pack, checked above
    print(f"\n[timing] preflight: {seconds:.1f}s")


@pytest.mark.parametrize(
    "case, replacement, extra, failed, words",
    [
        (
            "missing AMI",
            (
                'ami = { ssm_parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" }',
                'ami = { id = "ami-0badc0ffee0000000" }',
            ),
            "",
            "AMI resolves",
            "no such image",
        ),
        (
            "zone without the instance type",
            ('instance_type = "m6i.large"', 'instance_type = "vt1.3xlarge"'),
            "",
            "instance type vt1.3xlarge offered in both zones",
            "not offered in us-east-1b",
        ),
        (
            "missing database secret",
            (
                'engine = "mysql"',
                'engine = "mysql"\nexisting = { host = "db.example.internal", port = 3306, '
                'secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim/missing-AbCdEf", '
                'cidr = "10.9.0.0/16" }',
            ),
            "",
            "database secret exists",
            "ResourceNotFoundException",
        ),
        (
            "missing state bucket",
            ("[tags]", "[tags]"),
            '\n[state]\nbucket = "apim-no-such-state"\nregion = "us-east-1"\n',
            "state bucket apim-no-such-state",
            "bootstrap_state",
        ),
        (
            "a certificate that does not cover the public name",
            ('hostname = "apim.local.test"', 'hostname = "portal.local.test"'),
            "",
            "an issued certificate for apim.local.test",
            "does not cover apim.hostname portal.local.test",
        ),
        (
            "no public name: clients would meet the load balancer's DNS name",
            ('hostname = "apim.local.test"\n', ""),
            "",
            "load balancer certificate covers the public name",
            "set apim.hostname",
        ),
        (
            "a post-boot hook not in S3",
            ('post_boot_hook = "s3://apim-local-artifacts/post-boot-hook.sh"', 'post_boot_hook = "s3://apim-local-artifacts/missing.sh"'),
            "",
            "post-boot hook in S3",
            "customization.post_boot_hook s3://apim-local-artifacts/missing.sh",
        ),
        (
            "a KMS key the nodes decrypt with that does not exist",
            ("secret_recovery_days = 0", f'secret_recovery_days = 0\nnode_decrypt_key_arns = ["{MISSING_KEY}"]'),
            "",
            f"KMS key {MISSING_KEY} the nodes decrypt with",
            "NotFound",
        ),
    ],
)
def test_preflight_fails_naming_what_is_missing(variant, case, replacement, extra, failed, words):
    replacements = [replacement]
    if replacement[0] == 'hostname = "apim.local.test"\n':  # the alias record needs a name: none either
        replacements.append(('route53_zone = "local.test"\n', ""))
    result, _ = run_script("preflight.py", STACK, "--json", env=variant(*replacements, extra=extra))
    assert result.returncode == 1, result.stdout + result.stderr
    checks = results_of(result)
    assert checks[failed]["status"] == "fail", checks
    assert words in checks[failed]["detail"], checks[failed]
    assert checks["credentials and account"]["status"] == "pass"


def test_preflight_passes_an_enabled_key_the_nodes_decrypt_with(emulator, variant):
    arn = client("kms", emulator).create_key(Description="artifacts of another team")["KeyMetadata"]["Arn"]
    env = variant(("secret_recovery_days = 0", f'secret_recovery_days = 0\nnode_decrypt_key_arns = ["{arn}"]'))
    result, _ = run_script("preflight.py", STACK, "--json", env=env)
    assert results_of(result)[f"KMS key {arn} the nodes decrypt with"]["status"] == "pass", result.stdout


def test_preflight_checks_existing_subnets_against_the_settings(emulator, variant):
    ec2 = client("ec2", emulator)
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.60.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    try:
        network = (
            f'vpc_id = "{vpc}"\nsubnet_ids = {json.dumps(subnets)}\nsubnet_cidrs = ["10.60.1.0/24", "10.60.9.0/24"]\n'
            f"public_subnet_ids = {json.dumps(subnets[::-1])}\n"
        )
        env = variant(
            (
                'vpc_cidr = "10.0.0.0/16"\nsubnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]\n'
                'public_subnet_cidrs = ["10.0.101.0/24", "10.0.102.0/24"]\n',
                network,
            )
        )
        result, _ = run_script("preflight.py", STACK, "--json", env=env)
        checks = results_of(result)
        assert result.returncode == 1
        assert checks[f"VPC {vpc} exists"]["status"] == "pass"
        assert checks[f"subnet {subnets[0]} matches the settings"]["status"] == "pass"
        assert "CIDR 10.60.2.0/24, settings say 10.60.9.0/24" in checks[f"subnet {subnets[1]} matches the settings"]["detail"]
        assert "in zone us-east-1b, not us-east-1a" in checks[f"public subnet {subnets[1]} matches the settings"]["detail"]
    finally:
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)


# remote state -------------------------------------------------------------------------------------
STATE = '\n[state]\nbucket = "apim-e2e-terraform-state"\nregion = "us-east-1"\nlock_table = "apim-e2e-locks"\n'


def test_state_bootstrap_is_idempotent_and_locks_down_the_bucket(emulator, variant):
    env = variant(extra=STATE)
    first, _ = run_script("bootstrap_state.py", STACK, env=env)
    second, _ = run_script("bootstrap_state.py", STACK, env=env)
    assert first.returncode == second.returncode == 0, first.stdout + first.stderr + second.stderr
    assert "created" in first.stdout and "already there" in second.stdout
    s3, dynamodb = client("s3", emulator), client("dynamodb", emulator)
    bucket = "apim-e2e-terraform-state"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    table = dynamodb.describe_table(TableName="apim-e2e-locks")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    backups = dynamodb.describe_continuous_backups(TableName="apim-e2e-locks")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_state_lives_in_s3_under_the_lock_table(emulator, variant, tmp_path):
    """A real `terraform init` and a targeted apply/destroy through the synthesized S3 backend."""
    env = variant(extra=STATE)
    assert run_script("bootstrap_state.py", STACK, env=env)[0].returncode == 0
    s3 = client("s3", emulator)
    # The bootstrap's TLS-only policy holds: the emulator speaks plain HTTP, so it refuses even reading it.
    with pytest.raises(s3.exceptions.ClientError) as denied:
        s3.head_object(Bucket="apim-e2e-terraform-state", Key="wso2-apim-active-active/local.tfstate")
    assert denied.value.response["Error"]["Code"] in ("403", "AccessDenied"), denied.value.response["Error"]
    s3.delete_bucket_policy(Bucket="apim-e2e-terraform-state")  # for this plain-HTTP round trip only
    out = tmp_path / "out"
    synthesized = synthesize(out, APIM_ENVIRONMENTS_DIR=env["APIM_ENVIRONMENTS_DIR"], AWS_ENDPOINT_URL=emulator)
    assert synthesized.returncode == 0, synthesized.stderr
    stack_dir = out / "stacks" / STACK
    backend = json.loads((stack_dir / "cdk.tf.json").read_text())["terraform"]["backend"]["s3"]
    assert (backend["bucket"], backend["key"], backend["dynamodb_table"], backend["encrypt"]) == (
        "apim-e2e-terraform-state",
        "wso2-apim-active-active/local.tfstate",
        "apim-e2e-locks",
        True,
    )
    terraform = lambda *args: subprocess.run(  # noqa: E731
        ["terraform", *args, "-input=false", "-no-color"], cwd=stack_dir, env=aws_env(emulator), capture_output=True, text=True, timeout=300
    )
    key = next(iter(json.loads((stack_dir / "cdk.tf.json").read_text())["resource"]["aws_kms_key"]))
    for args in (
        ("init",),
        ("apply", "-auto-approve", f"-target=aws_kms_key.{key}"),
        ("destroy", "-auto-approve", f"-target=aws_kms_key.{key}"),
    ):
        result = terraform(*args)
        assert result.returncode == 0, f"terraform {args[0]}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        if args[0] == "apply":
            state = client("s3", emulator).get_object(Bucket="apim-e2e-terraform-state", Key="wso2-apim-active-active/local.tfstate")
            assert "aws_kms_key" in state["Body"].read().decode()
            items = client("dynamodb", emulator).scan(TableName="apim-e2e-locks")["Items"]
            assert [i["LockID"]["S"] for i in items] == ["apim-e2e-terraform-state/wso2-apim-active-active/local.tfstate-md5"]
    assert not (stack_dir / "terraform.tfstate").exists(), "the state must not be written locally"


# verify -------------------------------------------------------------------------------------------
class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/devportal" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def https_standins(tmp_path):
    """Two HTTPS servers on loopback standing in for the load balancer's 443 and 8243 listeners."""
    certificate, key = self_signed_certificate("apim.local.test")
    (tmp_path / "c.pem").write_bytes(certificate)
    (tmp_path / "k.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    servers = []
    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(server)
    yield [s.server_address[1] for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_verify_passes_after_the_deploy(deployment):
    result, seconds = verify(deployment)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = results_of(result)
    assert {c: r["status"] for c, r in checks.items()} == {
        "both instances running, status checks ok": "pass",
        "EFS mount target available in both zones": "pass",
        "security-group rules exactly as synthesized": "pass",
        "each node runs what the settings give (user data, AMI, instance type)": "pass",
        "both nodes healthy in every target group": "pass",
        "gateway group as set (min and max, launch and termination lifecycle hooks)": "pass",
        "gateway group and its nodes on the launch template's latest version": "pass",
        "gateway group's scaling activities (none failed in the last hour)": "pass",
        "gateway nodes InService and healthy": "pass",
        "gateway nodes healthy in the gateway and websocket target groups": "pass",
        "endpoints answer": "skip",
    }
    print(f"\n[timing] verify: {seconds:.1f}s")


def test_verify_calls_the_endpoints_under_the_public_name(deployment, https_standins):
    management, gateway = https_standins
    result, _ = verify(
        deployment,
        "--connect-to",
        f"apim.local.test:443:127.0.0.1:{management}",
        "--connect-to",
        f"apim.local.test:8243:127.0.0.1:{gateway}",
    )
    checks = results_of(result)
    assert result.returncode == 0, result.stdout
    assert checks["management answers through the load balancer"]["detail"] == "https://apim.local.test/devportal: HTTP 200"
    assert checks["gateway answers through the load balancer"]["detail"] == "https://apim.local.test:8243/: HTTP 404"


def test_verify_wait_gives_up_at_its_timeout(deployment, emulator):
    ec2 = client("ec2", emulator)
    node_1 = deployment["outputs"][names.OUTPUT_INSTANCE_IDS][0]
    ec2.stop_instances(InstanceIds=[node_1])
    try:
        result, seconds = verify(deployment, "--wait", "--timeout", "8", "--interval", "2")
        assert result.returncode == 1 and 4 <= seconds < 60
        restart = threading.Timer(3, lambda: ec2.start_instances(InstanceIds=[node_1]))
        restart.start()
        result, seconds = verify(deployment, "--wait", "--timeout", "60", "--interval", "2")
        restart.join()
        assert result.returncode == 0, result.stdout
        assert seconds >= 2.5
    finally:
        ec2.start_instances(InstanceIds=[node_1])


# Faults, one after another on the shared deployment (the teardown repairs and destroys it).
def test_verify_fails_when_a_rule_is_removed(deployment, emulator):
    ec2, group = client("ec2", emulator), deployment["outputs"][names.OUTPUT_NODE_SG]
    (described,) = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    (broker,) = [p for p in described["IpPermissions"] if p.get("FromPort") == 5672]
    # The peer's rule only (the gateway group's on the same port stays).
    broker = {**broker, "UserIdGroupPairs": [g for g in broker["UserIdGroupPairs"] if g["GroupId"] == group]}
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[broker])
    result, _ = verify(deployment)
    check = results_of(result)["security-group rules exactly as synthesized"]
    assert result.returncode == 1 and check["status"] == "fail"
    assert check["detail"] == "missing: apim-local-nodes ingress tcp/5672-5672 apim-local-nodes"
    # Put back as it was (the roll tests later apply this deployment: a rule made again by Terraform is one more call
    # the emulator may answer twice).
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[broker])


def test_verify_fails_when_a_rule_is_added(deployment, emulator):
    ec2, group = client("ec2", emulator), deployment["outputs"][names.OUTPUT_NODE_SG]
    ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    check = results_of(verify(deployment)[0])["security-group rules exactly as synthesized"]
    assert "extra: apim-local-nodes ingress tcp/22-22 0.0.0.0/0" in check["detail"]
    ec2.revoke_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )


def test_verify_fails_when_a_gateway_node_is_unhealthy(deployment, emulator):
    autoscaling = client("autoscaling", emulator)
    group = deployment["outputs"][names.OUTPUT_GATEWAY_GROUP]
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    node = described["Instances"][0]["InstanceId"]
    autoscaling.set_instance_health(InstanceId=node, HealthStatus="Unhealthy")
    try:
        result, _ = verify(deployment)
    finally:
        autoscaling.set_instance_health(InstanceId=node, HealthStatus="Healthy")
    check = results_of(result)["gateway nodes InService and healthy"]
    assert result.returncode == 1 and check["status"] == "fail"
    assert check["detail"].startswith(f"{node} (us-east-1") and "InService, Unhealthy" in check["detail"], check


def test_verify_fails_when_a_mount_target_is_deleted(deployment, emulator):
    efs = client("efs", emulator)
    targets = efs.describe_mount_targets(FileSystemId=deployment["outputs"][names.OUTPUT_EFS_ID])["MountTargets"]
    zone_b = next(t for t in targets if t["AvailabilityZoneName"] == "us-east-1b")
    efs.delete_mount_target(MountTargetId=zone_b["MountTargetId"])
    check = results_of(verify(deployment)[0])["EFS mount target available in both zones"]
    assert check == {"check": "EFS mount target available in both zones", "status": "fail", "detail": "none available in us-east-1b"}


def test_verify_fails_when_an_instance_is_stopped(deployment, emulator):
    node_2 = deployment["outputs"][names.OUTPUT_INSTANCE_IDS][1]
    client("ec2", emulator).stop_instances(InstanceIds=[node_2])
    result, _ = verify(deployment)
    checks = results_of(result)
    assert result.returncode == 1
    assert f"{node_2}: state stopped" in checks["both instances running, status checks ok"]["detail"]
    assert f"{node_2} unused" in checks["both nodes healthy in every target group"]["detail"]
