"""Constructs one at a time (cdktf's Testing.synth of a stack holding only the construct), built from their own part
of the settings and explicit values, never a whole environment file: each writes rules only into its own security
group and exposes what the stack wires (its group, its ports). A test per prop combination that changes what is made."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from cdktf import TerraformOutput, TerraformStack
from cdktf import Testing as CdktfTesting

from apim_active_active import aws
from apim_active_active.constructs.database import Database, DatabaseProps
from apim_active_active.constructs.destroy_guard import DestroyGuard, DestroyGuardProps
from apim_active_active.constructs.generated_secrets import GeneratedSecrets, GeneratedSecretsProps
from apim_active_active.constructs.load_balancer import LoadBalancer, LoadBalancerProps
from apim_active_active.constructs.network import Network, NetworkProps
from apim_active_active.constructs.node import Node, NodeProps
from apim_active_active.constructs.node_identity import NodeIdentity, NodeIdentityProps
from apim_active_active.constructs.peer_security import PeerSecurity, PeerSecurityProps
from apim_active_active.constructs.rsync_channel import RsyncChannel, RsyncChannelProps
from apim_active_active.constructs.shared_fs import SharedFileSystem, SharedFileSystemProps
from apim_active_active.settings import (
    DatabaseSettings,
    KeyManagerSettings,
    LoadBalancerSettings,
    NetworkSettings,
    NodeSettings,
    SharedFsSettings,
)
from apim_active_active.traffic import HealthCheck, Route

PREFIX = "apim-t"
NODES = "sg-0nodes"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
ROLE = "arn:aws:iam::123456789012:role/apim-node"
SUBNETS = ["subnet-0a", "subnet-0b"]
DRIVER = "s3://artifacts/mysql-connector-j-8.4.0.jar"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
ROUTES = (
    Route("management", 443, 9443, 80, True, HealthCheck("HTTP", 9763, "/services/Version")),
    Route("gateway", 8243, 8243, None, False, HealthCheck("HTTPS", 9443, "/api/am/gateway/v2/server-startup-healthcheck")),
)


def synth(build: Callable[[TerraformStack], object]) -> tuple[object, dict]:
    stack = TerraformStack(CdktfTesting.app(), "construct")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    construct = build(stack)
    return construct, json.loads(CdktfTesting.synth(stack)).get("resource", {})


def rules(resources: dict) -> list[dict]:
    return list(resources.get("aws_security_group_rule", {}).values())


def database(stack: TerraformStack, **settings) -> Database:
    return Database(
        stack,
        "database",
        DatabaseProps(
            name_prefix=PREFIX,
            database=DatabaseSettings(jdbc_driver_url=DRIVER, **settings),
            vpc_id="vpc-0a",
            subnet_ids=SUBNETS,
            node_group_id=NODES,
            kms_key_arn=KEY,
        ),
    )


@pytest.mark.parametrize(("engine", "port"), [("mysql", 3306), ("postgres", 5432)])
def test_an_rds_database_is_reached_from_the_nodes_group_only_on_its_engines_port(engine, port):
    made, resources = synth(lambda stack: database(stack, engine=engine))
    (rule,) = rules(resources)
    assert (rule["type"], rule["source_security_group_id"], rule["from_port"]) == ("ingress", NODES, port)
    assert rule["security_group_id"].startswith("${aws_security_group.database_group")
    (instance,) = resources["aws_db_instance"].values()
    assert (instance["identifier"], instance["engine"], made.port) == (f"{PREFIX}-db", engine, port)
    assert instance["publicly_accessible"] is False and instance["storage_encrypted"] is True


def test_a_database_without_parameter_group_monitoring_or_final_snapshot_makes_none_of_them():
    _, full = synth(lambda stack: database(stack))
    _, bare = synth(lambda stack: database(stack, parameter_group=False, enhanced_monitoring_seconds=0, final_snapshot=False))
    assert "aws_db_parameter_group" in full and "aws_iam_role" in full
    assert "aws_db_parameter_group" not in bare and "aws_iam_role" not in bare
    (instance,) = bare["aws_db_instance"].values()
    assert instance["skip_final_snapshot"] is True and instance.get("final_snapshot_identifier") is None


def test_an_existing_database_makes_nothing_and_names_its_host_and_port():
    existing = {
        "host": "db.example.internal",
        "port": 3307,
        "cidr": "10.9.0.0/24",
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-db-AbCdEf",
    }
    made, resources = synth(lambda stack: database(stack, existing=existing))
    assert resources == {}
    assert (made.security_group_id, made.host, made.port) == (None, "db.example.internal", 3307)


def share(stack: TerraformStack, **settings) -> SharedFileSystem:
    return SharedFileSystem(
        stack,
        "shared_fs",
        SharedFileSystemProps(
            name_prefix=PREFIX,
            shared_fs=SharedFsSettings(**settings),
            vpc_id="vpc-0a",
            subnet_ids=SUBNETS,
            node_group_id=NODES,
            kms_key_arn=KEY,
            node_role_arn=ROLE,
        ),
    )


def test_the_share_takes_nfs_from_the_nodes_group_only_with_a_mount_target_per_subnet():
    made, resources = synth(share)
    (rule,) = rules(resources)
    assert (rule["type"], rule["source_security_group_id"], rule["from_port"]) == ("ingress", NODES, 2049)
    assert sorted(t["subnet_id"] for t in resources["aws_efs_mount_target"].values()) == SUBNETS
    assert made.security_group_id and len(made.mount_targets) == 2
    assert "aws_efs_file_system_policy" in resources and "aws_efs_backup_policy" in resources


def test_the_share_without_the_tls_policy_or_backup_makes_neither():
    _, resources = synth(lambda stack: share(stack, tls_only_policy=False, backup=False, throughput_mode="bursting"))
    assert "aws_efs_file_system_policy" not in resources and "aws_efs_backup_policy" not in resources
    (file_system,) = resources["aws_efs_file_system"].values()
    assert file_system["throughput_mode"] == "bursting"


def balancer(stack: TerraformStack, hostname: str | None = None, **settings) -> LoadBalancer:
    return LoadBalancer(
        stack,
        "load_balancer",
        LoadBalancerProps(
            name_prefix=PREFIX,
            load_balancer=LoadBalancerSettings(**{"certificate_arn": CERTIFICATE, **settings}),
            routes=ROUTES,
            hostname=hostname,
            vpc_id="vpc-0a",
            subnet_ids=SUBNETS,
            node_group_id=NODES,
        ),
    )


def test_the_load_balancer_reaches_the_nodes_group_on_its_routes_node_and_health_ports_only():
    made, resources = synth(lambda stack: balancer(stack, client_cidrs=["0.0.0.0/0"]))
    assert made.node_ports == (8243, 9443, 9763)
    egress = sorted((r["from_port"], r["source_security_group_id"]) for r in rules(resources) if r["type"] == "egress")
    assert egress == [(port, NODES) for port in made.node_ports]
    ingress = sorted(r["from_port"] for r in rules(resources) if r["type"] == "ingress")
    assert ingress == [80, 443, 8243], "clients reach the listeners only"
    assert sorted(made.target_group_arns) == ["gateway", "management"]
    assert "data" not in json.dumps(resources["aws_lb_listener"]), "a certificate ARN needs no lookup"


def test_the_load_balancer_with_no_client_cidrs_admits_nobody():
    _, resources = synth(balancer)
    assert [r for r in rules(resources) if r["type"] == "ingress"] == []


def test_admin_paths_are_forbidden_and_forwarded_only_from_admin_cidrs():
    _, closed = synth(balancer)
    _, open_to_admins = synth(lambda stack: balancer(stack, admin_cidrs=["10.1.0.0/16"]))
    assert [r["priority"] for r in closed["aws_lb_listener_rule"].values()] == [20]
    source = [c["source_ip"]["values"] for r in open_to_admins["aws_lb_listener_rule"].values() for c in r["condition"] if "source_ip" in c]
    assert source == [["10.1.0.0/16"]]


def test_a_hostname_with_a_zone_gets_an_alias_record_and_is_the_public_name():
    made, resources = synth(lambda stack: balancer(stack, hostname="apim.example.com", route53_zone="example.com"))
    (record,) = resources["aws_route53_record"].values()
    assert (record["name"], record["type"], made.public_name) == ("apim.example.com", "A", "apim.example.com")


def test_without_a_hostname_the_public_name_is_the_load_balancers_dns_name():
    stack = TerraformStack(CdktfTesting.app(), "construct")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    TerraformOutput(stack, "public_name", value=balancer(stack).public_name)
    synthesized = json.loads(CdktfTesting.synth(stack))
    assert "aws_route53_record" not in synthesized["resource"]
    assert re.fullmatch(r"\$\{aws_lb\.load_balancer_alb_[0-9A-F]{8}\.dns_name\}", synthesized["output"]["public_name"]["value"])


def test_the_nodes_group_opens_the_peer_ports_to_itself_only():
    made, resources = synth(
        lambda stack: PeerSecurity(stack, "peers", PeerSecurityProps(name_prefix=PREFIX, vpc_id="vpc-0a", key_manager=KeyManagerSettings()))
    )
    peer = {(r["type"], r["from_port"]) for r in rules(resources) if r.get("source_security_group_id")}
    assert peer == {(d, p) for d in ("ingress", "egress") for p in (9443, 9611, 9711, 5672)}
    assert all(
        r["source_security_group_id"].startswith("${aws_security_group.peers_nodes")
        for r in rules(resources)
        if r.get("source_security_group_id")
    )
    assert [r["from_port"] for r in rules(resources) if r.get("cidr_blocks")] == [443]


def test_an_external_key_manager_adds_egress_to_its_network_on_its_port():
    key_manager = KeyManagerSettings(type="wso2-is", url="https://is.example.internal:9444", cidr="10.8.0.0/24")
    _, resources = synth(
        lambda stack: PeerSecurity(stack, "peers", PeerSecurityProps(name_prefix=PREFIX, vpc_id="vpc-0a", key_manager=key_manager))
    )
    assert {(r["from_port"], r["cidr_blocks"][0]) for r in rules(resources) if r.get("cidr_blocks")} == {
        (443, "0.0.0.0/0"),
        (9444, "10.8.0.0/24"),
    }


@pytest.mark.parametrize(
    ("db_app_user", "encryption_key", "names"),
    [
        (True, False, ["apim-admin", "database-app", "keystore"]),  # RDS, 4.x before 4.7
        (False, False, ["apim-admin", "keystore"]),  # an existing database brings its own user
        (True, True, ["apim-admin", "database-app", "encryption-key", "keystore"]),  # 4.7: symmetric internal crypto
    ],
)
def test_generated_secrets_are_the_ones_the_pair_needs_and_hold_no_value(db_app_user, encryption_key, names):
    made, resources = synth(
        lambda stack: GeneratedSecrets(
            stack,
            "secrets",
            GeneratedSecretsProps(
                name_prefix=PREFIX, kms_key_arn=KEY, recovery_window_days=7, db_app_user=db_app_user, encryption_key=encryption_key
            ),
        )
    )
    secrets = resources["aws_secretsmanager_secret"].values()
    assert sorted(s["name"] for s in secrets) == [f"{PREFIX}/{name}" for name in names]
    assert all(s["kms_key_id"] == KEY and s["recovery_window_in_days"] == 7 for s in secrets)
    assert "aws_secretsmanager_secret_version" not in resources
    assert (made.db_app_arn is not None, made.encryption_key_arn is not None) == (db_app_user, encryption_key)


@pytest.mark.parametrize(
    ("urls", "objects"),
    [
        (
            ("s3://packs/wso2am-4.3.0.zip", DRIVER),
            ["arn:aws:s3:::packs/wso2am-4.3.0.zip", "arn:aws:s3:::artifacts/mysql-connector-j-8.4.0.jar"],
        ),
        (("https://example.com/wso2am-4.3.0.zip", DRIVER), ["arn:aws:s3:::artifacts/mysql-connector-j-8.4.0.jar"]),
        (("https://example.com/wso2am-4.3.0.zip",), None),
    ],
)
def test_the_node_role_reads_exactly_the_artifacts_in_s3(urls, objects):
    _, resources = synth(lambda stack: NodeIdentity(stack, "identity", NodeIdentityProps(name_prefix=PREFIX, artifact_urls=urls)))
    policies = resources.get("aws_iam_role_policy", {}).values()
    granted = [statement["Resource"] for p in policies for statement in json.loads(p["policy"])["Statement"]]
    assert granted == ([objects] if objects else [])


def node(stack: TerraformStack, node_settings: NodeSettings, **props) -> Node:
    return Node(
        stack,
        "node_1",
        NodeProps(
            name_prefix=PREFIX,
            node=node_settings,
            index=0,
            private_ip="10.0.1.10",
            ami_id="ami-0123456789abcdef0",
            subnet_id=SUBNETS[0],
            security_group_ids=(NODES,),
            instance_profile_name=f"{PREFIX}-node",
            kms_key_arn=KEY,
            user_data='${base64gzip("#cloud-config")}',
            roll_variable="roll",
            roll_command="scripts/roll.py dev",
            **props,
        ),
    )


def test_a_node_keeps_its_address_and_is_never_replaced_or_stopped_by_a_deploy():
    made, resources = synth(lambda stack: node(stack, NodeSettings(ami={"id": "ami-0123456789abcdef0"})))
    (instance,) = resources["aws_instance"].values()
    assert (instance["private_ip"], made.private_ip) == ("10.0.1.10", "10.0.1.10")
    assert instance["metadata_options"]["http_tokens"] == "required"
    # What would replace (or, the instance type, stop) it is held: scripts/roll.py replaces one node at a time.
    assert instance["lifecycle"]["ignore_changes"] == ["ami", "user_data_base64", "instance_type", "subnet_id", "private_ip"]
    (postcondition,) = instance["lifecycle"]["postcondition"]
    assert postcondition["condition"].startswith("${var.roll || (self.user_data_base64 == local.")
    assert postcondition["condition"].endswith('self.instance_type == "m6i.large")}')
    assert "scripts/roll.py dev" in postcondition["error_message"]
    assert made.address.startswith("aws_instance.node_1_instance_")


def test_the_node_runs_the_user_data_and_image_its_locals_hold():
    stack = TerraformStack(CdktfTesting.app(), "construct")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    made = node(stack, NodeSettings(ami={"id": "ami-0123456789abcdef0"}))
    TerraformOutput(stack, "user_data", value=made.user_data)
    synthesized = json.loads(CdktfTesting.synth(stack))
    (instance,) = synthesized["resource"]["aws_instance"].values()
    local = instance["user_data_base64"].removeprefix("${local.").removesuffix("}")
    assert synthesized["locals"][local] == '${base64gzip("#cloud-config")}'
    assert synthesized["output"]["user_data"]["value"] == instance["user_data_base64"]
    assert synthesized["locals"][instance["ami"].removeprefix("${local.").removesuffix("}")] == "ami-0123456789abcdef0"


def test_the_emulator_also_ignores_its_security_group_drift():
    settings = NodeSettings(ami={"ssm_parameter": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"})
    _, emulated = synth(lambda stack: node(stack, settings, ignore_security_group_drift=True))
    assert next(iter(emulated["aws_instance"].values()))["lifecycle"]["ignore_changes"][-1] == "vpc_security_group_ids"


def test_the_rsync_channel_opens_ssh_from_the_sender_to_the_receiver_only():
    made, resources = synth(
        lambda stack: RsyncChannel(
            stack, "rsync", RsyncChannelProps(name_prefix=PREFIX, region="us-east-1", vpc_id="vpc-0a", kms_key_arn=KEY)
        )
    )
    assert {(r["type"], r["from_port"]) for r in rules(resources)} == {("egress", 22), ("ingress", 22)}
    assert sorted(p["name"] for p in resources["aws_ssm_parameter"].values()) == [
        f"/{PREFIX}/rsync/manager-key",
        f"/{PREFIX}/rsync/worker-host-key",
    ]
    (_, encrypt) = made.statements(KEY)
    assert encrypt["Condition"]["StringEquals"]["kms:ViaService"] == "ssm.us-east-1.amazonaws.com"


def network(stack: TerraformStack, **settings) -> Network:
    return Network(
        stack,
        "network",
        NetworkProps(
            name_prefix=PREFIX,
            region="us-east-1",
            availability_zones=("us-east-1a", "us-east-1b"),
            network=NetworkSettings(**settings),
            kms_key_arn=KEY,
        ),
    )


def test_a_new_vpc_reserves_each_nodes_address_and_has_no_internet_gateway_without_public_subnets():
    _, resources = synth(lambda stack: network(stack, vpc_cidr="10.0.0.0/16", subnet_cidrs=["10.0.1.0/24", "10.0.2.0/24"]))
    reserved = sorted(r["cidr_block"] for r in resources["aws_ec2_subnet_cidr_reservation"].values())
    assert reserved == ["10.0.1.10/32", "10.0.2.10/32"]
    assert "aws_internet_gateway" not in resources and len(resources["aws_subnet"]) == 2


def test_public_subnets_bring_an_internet_gateway_for_the_load_balancer():
    made, resources = synth(
        lambda stack: network(
            stack,
            vpc_cidr="10.0.0.0/16",
            subnet_cidrs=["10.0.1.0/24", "10.0.2.0/24"],
            public_subnet_cidrs=["10.0.101.0/24", "10.0.102.0/24"],
        )
    )
    assert len(resources["aws_internet_gateway"]) == 1 and len(made.public_subnet_ids) == 2


def test_an_existing_vpc_makes_only_the_address_reservations():
    made, resources = synth(
        lambda stack: network(
            stack,
            vpc_cidr=None,
            vpc_id="vpc-0123456789abcdef0",
            subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
            subnet_cidrs=["10.0.1.0/24", "10.0.2.0/24"],
        )
    )
    assert list(resources) == ["aws_ec2_subnet_cidr_reservation"]
    assert made.vpc_id == "vpc-0123456789abcdef0"


@pytest.mark.parametrize("refusal", ["", "cdktf destroy prod refused: ..."])
def test_the_destroy_guard_carries_the_refusal_it_is_given(refusal):
    _, resources = synth(lambda stack: DestroyGuard(stack, "guard", DestroyGuardProps(refusal=refusal, protected=())))
    (guard,) = resources["terraform_data"].values()
    assert guard["input"] == {"refusal": refusal}
