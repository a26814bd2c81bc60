"""Assertions on the synthesized Terraform JSON of every environment."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from apim_active_active import names
from apim_active_active.engines import ENGINES
from apim_active_active.renderers.boot_loader import BOOT_LOADER
from apim_active_active.renderers.boot_script import BOOT_SCRIPT, CONFIG_SOURCE, render_deployment_toml
from apim_active_active.terraform_text import template_of_base64gzip
from tests.conftest import synthesize, tool_env
from tests.helpers import ENVS, group_named, named, node_user_data, only, ref, resources, stack_key

PEER_PORTS = {9443, 9611, 9711, 5672}


def test_one_stack_per_environment_file(stacks):
    assert sorted(stacks) == sorted(ENVS)


@pytest.mark.parametrize("env", ENVS)
def test_two_nodes_with_fixed_addresses_in_two_zones(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    instances = sorted(resources(stack, "aws_instance").values(), key=lambda i: i["private_ip"])
    assert [i["private_ip"] for i in instances] == [str(settings.network.node_ip(n)) for n in (0, 1)]
    assert instances[0]["subnet_id"] != instances[1]["subnet_id"]
    if settings.network.vpc_cidr:
        subnets = resources(stack, "aws_subnet")
        zones = {s["cidr_block"]: s["availability_zone"] for s in subnets.values()}
        cidrs = [*settings.network.subnet_cidrs, *(settings.network.public_subnet_cidrs or ())]
        assert zones == dict(zip(map(str, cidrs), settings.availability_zones * 2))
        public = [s for s in subnets.values() if "-public-" in s["tags"]["Name"]]
        assert len(public) == (2 if settings.network.public_subnet_cidrs else 0)
        assert all(s["map_public_ip_on_launch"] is False for s in subnets.values())
    else:
        reservations = sorted(resources(stack, "aws_ec2_subnet_cidr_reservation").values(), key=lambda r: r["cidr_block"])
        assert [r["subnet_id"] for r in reservations] == list(settings.network.subnet_ids)
        assert "aws_vpc" not in stack.get("resource", {})


@pytest.mark.parametrize("env", ENVS)
def test_nodes_are_hardened(stacks, env):
    for instance in resources(stacks[env], "aws_instance").values():
        assert instance["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
        assert instance["root_block_device"]["encrypted"] is True
        assert instance["root_block_device"]["volume_type"] == "gp3"
        assert "key_name" not in instance and "associate_public_ip_address" not in instance
        assert instance["user_data_replace_on_change"] is True


@pytest.mark.parametrize("env", ENVS)
def test_peer_ports_open_only_between_the_peers(stacks, environments, env):
    stack = stacks[env]
    nodes = group_named(stack, "nodes")
    node_ref = ref("aws_security_group", nodes)
    rules = resources(stack, "aws_security_group_rule").values()
    assert all(rule.get("description") for rule in rules), "every rule has a description"
    node_rules = [r for r in rules if r["security_group_id"] == node_ref]
    for port in PEER_PORTS:
        peer = [r for r in node_rules if r["from_port"] == port and r.get("source_security_group_id") == node_ref]
        assert {r["type"] for r in peer} == {"ingress", "egress"}, port
    assert not [r for r in node_rules if r["type"] == "ingress" and r.get("cidr_blocks")], "clients reach the load balancer only"
    assert not [r for r in node_rules if r["from_port"] in (9611, 9711, 5672) and r.get("cidr_blocks")]


@pytest.mark.parametrize("env", ENVS)
def test_efs_encrypted_with_a_mount_target_per_node_subnet_and_nfs_from_nodes_only(stacks, env):
    stack = stacks[env]
    fs_name, file_system = only(stack, "aws_efs_file_system")
    assert file_system["encrypted"] is True
    key_name, _ = stack_key(stack)
    assert file_system["kms_key_id"] == ref("aws_kms_key", key_name, "arn")
    efs_group = ref("aws_security_group", group_named(stack, "efs"))
    targets = resources(stack, "aws_efs_mount_target").values()
    instance_subnets = {i["subnet_id"] for i in resources(stack, "aws_instance").values()}
    assert {t["subnet_id"] for t in targets} == instance_subnets and len(targets) == 2
    assert all(t["security_groups"] == [efs_group] for t in targets)
    efs_rules = [r for r in resources(stack, "aws_security_group_rule").values() if r["security_group_id"] == efs_group]
    assert [(r["type"], r["from_port"], r["source_security_group_id"]) for r in efs_rules] == [
        ("ingress", 2049, ref("aws_security_group", group_named(stack, "nodes")))
    ]


@pytest.mark.parametrize("env", ENVS)
def test_user_data_carries_the_rendered_config_and_the_efs_reference(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    fs_name, _ = only(stack, "aws_efs_file_system")
    for instance in resources(stack, "aws_instance").values():
        # Terraform gzips the cloud-config (base64gzip); read the template inside.
        user_data = template_of_base64gzip(node_user_data(stack, instance))
        # Terraform sees escaped literals; only what an apply knows is a live reference.
        references = set(re.findall(r"(?<!\$)\$\{([^}]*)\}", user_data))
        secrets = sorted(resources(stack, "aws_secretsmanager_secret"))
        lb_dns = f"aws_lb.{only(stack, 'aws_lb')[0]}.dns_name"
        expected = {f"aws_efs_file_system.{fs_name}.id"} | {f"aws_secretsmanager_secret.{s}.arn" for s in secrets}
        expected.add(f"aws_s3_bucket.{only(stack, 'aws_s3_bucket')[0]}.bucket")  # the boot steps' bucket
        if not settings.apim.hostname:
            expected.add(lb_dns)
        if not settings.database.existing:
            db_name = only(stack, "aws_db_instance")[0]
            expected |= {f"aws_db_instance.{db_name}.address", f"aws_db_instance.{db_name}.master_user_secret[0].secret_arn"}
        assert references == expected
        unescaped = user_data.replace("$${", "${").replace("%%{", "%{")
        files = {f["path"]: f["content"] for f in yaml.safe_load(unescaped)["write_files"]}
        node = [str(settings.network.node_ip(n)) for n in (0, 1)].index(instance["private_ip"])
        host = settings.database.existing.host if settings.database.existing else "@@DB_HOST@@"
        port = settings.database.existing.port if settings.database.existing else ENGINES[settings.database.engine].port
        rendered = render_deployment_toml(settings, node, host, port, f"${{{lb_dns}}}")
        if not settings.database.existing:
            rendered = rendered.replace("@@DB_HOST@@", f"${{aws_db_instance.{only(stack, 'aws_db_instance')[0]}.address}}")
        assert files[CONFIG_SOURCE] == rendered
        # The boot step itself is the boot bucket's object the loader names (tests/synth/test_boot_assets.py).
        assert BOOT_SCRIPT not in files and files[BOOT_LOADER].count("sha256sum") == 1


def test_emulator_gaps_are_switched_off_in_local_only(stacks):
    local, dev = stacks["local"], stacks["dev"]
    assert "endpoints" in local["provider"]["aws"][0]
    assert "endpoints" not in dev["provider"]["aws"][0] and "access_key" not in dev["provider"]["aws"][0]
    for instance in resources(local, "aws_instance").values():
        assert instance["lifecycle"]["ignore_changes"][-1] == "vpc_security_group_ids"
        assert instance["monitoring"] is False
    assert not resources(local, "aws_efs_backup_policy")
    assert not resources(local, "aws_efs_file_system_policy")
    assert not resources(local, "aws_db_parameter_group")
    for env in ("dev", "legacy32", "prod"):
        for instance in resources(stacks[env], "aws_instance").values():
            assert "vpc_security_group_ids" not in instance["lifecycle"]["ignore_changes"]
    assert all(i["monitoring"] for i in resources(dev, "aws_instance").values())
    # dev's EFS automatic backups give way to the stack's daily backup plan (tests/synth/test_backup.py).
    assert resources(dev, "aws_efs_file_system_policy")


@pytest.mark.parametrize("env", ENVS)
def test_outputs_and_tags(stacks, environments, env):
    stack = stacks[env]
    gateway = {names.OUTPUT_GATEWAY_GROUP, names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE, names.OUTPUT_GATEWAY_SG}
    assert set(stack["output"]) - (gateway if environments[env].gateway_scale_out else set()) == {
        names.OUTPUT_VPC_ID,
        names.OUTPUT_NODE_IPS,
        names.OUTPUT_INSTANCE_IDS,
        names.OUTPUT_EFS_ID,
        names.OUTPUT_EFS_DNS,
        names.OUTPUT_NODE_SG,
        names.OUTPUT_EFS_SG,
        names.OUTPUT_LB_DNS,
        names.OUTPUT_LB_SG,
        names.OUTPUT_PUBLIC_NAME,
        names.OUTPUT_TARGET_GROUPS,
        names.OUTPUT_NODE_USER_DATA,
        names.OUTPUT_NODE_USER_DATA_SHA256,
        names.OUTPUT_NODE_AMIS,
        names.OUTPUT_NODE_INSTANCE_TYPE,
        names.OUTPUT_BOOT_BUCKET,
        "publisher_url",
        "devportal_url",
        "admin_url",
        "carbon_url",
        "gateway_url",
        names.OUTPUT_ALARM_TOPIC,
        names.OUTPUT_DASHBOARD,
        names.OUTPUT_LOG_GROUPS,
        names.OUTPUT_BACKUP_VAULTS,
        names.OUTPUT_BACKUP_PLANS,
        names.OUTPUT_BACKUP_ROLE,  # scripts/restore.py restores the share with AWS Backup's role
    }
    assert all(output.get("description") for output in stack["output"].values())
    sensitive = {name for name, output in stack["output"].items() if output.get("sensitive")}
    assert sensitive == {names.OUTPUT_NODE_USER_DATA}, "long, kept out of the deploy's printout (no secret in it)"
    tags = stack["provider"]["aws"][0]["default_tags"][0]["tags"]
    assert tags["Environment"] == env and tags["ManagedBy"] == names.MANAGED_BY


def test_artifact_read_is_limited_to_the_objects_the_nodes_fetch(stacks):
    _, policy = named(stacks["local"], "aws_iam_role_policy", "read-artifacts")
    (statement,) = json.loads(policy["policy"])["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "s3:GetObject",
        [
            "arn:aws:s3:::apim-local-artifacts/wso2am-4.3.0.zip",
            "arn:aws:s3:::apim-local-artifacts/mysql-connector-j-8.4.0.jar",
            # local's customization: its extra jar and its post-boot hook
            "arn:aws:s3:::apim-local-artifacts/rehearsal-bundle-1.0.0.jar",
            "arn:aws:s3:::apim-local-artifacts/post-boot-hook.sh",
        ],
    )
    names = {p["name"] for p in resources(stacks["legacy32"], "aws_iam_role_policy").values()}
    assert "read-artifacts" not in names, "https artifacts: no S3 grant"


def test_new_vpc_flow_logs_and_a_default_group_without_rules(stacks):
    dev = stacks["dev"]
    _, flow_log = only(dev, "aws_flow_log")
    group_name, group = named(dev, "aws_cloudwatch_log_group", "/apim-dev/vpc-flow-logs")
    assert (flow_log["traffic_type"], flow_log["log_destination"]) == ("ALL", ref("aws_cloudwatch_log_group", group_name, "arn"))
    assert group["kms_key_id"] == ref("aws_kms_key", stack_key(dev)[0], "arn") and group["retention_in_days"] == 365
    _, default_group = only(dev, "aws_default_security_group")
    assert "ingress" not in default_group and "egress" not in default_group
    assert not resources(stacks["legacy32"], "aws_flow_log"), "existing VPC: its owner runs its flow logs"


@pytest.mark.slow
def test_terraform_validate_accepts_the_aws_stacks(synth_dir, tmp_path):
    for env in ("dev", "legacy32"):
        work = tmp_path / env
        shutil.copytree(synth_dir / "stacks" / env, work)
        for command in (["terraform", "init", "-backend=false", "-input=false"], ["terraform", "validate", "-no-color"]):
            result = subprocess.run(command, cwd=work, env=tool_env(), capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{env}: {' '.join(command)}\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_stock_provider_import_synthesizes_the_same_bytes(synth_dir, tmp_path):
    result = synthesize(tmp_path, APIM_STOCK_PROVIDER_IMPORT="1", APIM_STATE_DIR=str(synth_dir / "state"))
    assert result.returncode == 0, result.stderr
    for env in ENVS:
        ours = (synth_dir / "stacks" / env / "cdk.tf.json").read_bytes()
        stock = (tmp_path / "stacks" / env / "cdk.tf.json").read_bytes()
        assert ours == stock, env


@pytest.mark.parametrize("env", ["dev", "legacy32", "prod"])
def test_efs_policy_admits_only_the_node_role_over_tls(stacks, environments, env):
    stack = stacks[env]
    fs_name, _ = only(stack, "aws_efs_file_system")
    role_name, _ = named(stack, "aws_iam_role", f"{environments[env].name_prefix}-node")
    _, policy = only(stack, "aws_efs_file_system_policy")
    document = json.loads(policy["policy"])
    allow, deny = document["Statement"]
    assert allow["Principal"] == {"AWS": ref("aws_iam_role", role_name, "arn")}
    assert allow["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", {"AWS": "*"}, "*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Resource"] == deny["Resource"] == ref("aws_efs_file_system", fs_name, "arn")


@pytest.mark.parametrize("env", ENVS)
def test_stack_key_rotates_and_encrypts_the_root_volumes(stacks, env):
    stack = stacks[env]
    key_name, key = stack_key(stack)
    assert key["enable_key_rotation"] is True
    for instance in resources(stack, "aws_instance").values():
        assert instance["root_block_device"]["kms_key_id"] == ref("aws_kms_key", key_name, "arn")


@pytest.mark.parametrize("env", ["local", "dev", "prod"])
def test_rds_private_encrypted_with_a_managed_password_reachable_from_the_nodes_only(stacks, environments, env):
    stack, database = stacks[env], environments[env].database
    _, instance = only(stack, "aws_db_instance")
    key = ref("aws_kms_key", stack_key(stack)[0], "arn")
    assert instance["storage_encrypted"] is True and instance["kms_key_id"] == key
    assert instance["manage_master_user_password"] is True and instance["master_user_secret_kms_key_id"] == key
    assert "password" not in instance
    assert instance["publicly_accessible"] is False and instance["multi_az"] is database.multi_az
    assert instance["deletion_protection"] is database.deletion_protection
    port = ENGINES[database.engine].port
    assert (instance["engine"], instance["engine_version"]) == {"mysql": ("mysql", "8.0"), "postgres": ("postgres", "16")}[database.engine]
    db_group = ref("aws_security_group", group_named(stack, "db"))
    assert instance["vpc_security_group_ids"] == [db_group]
    rules = [r for r in resources(stack, "aws_security_group_rule").values() if r["security_group_id"] == db_group]
    reaching = [ref("aws_security_group", group_named(stack, "nodes"))]
    if environments[env].gateway_scale_out:
        reaching.append(ref("aws_security_group", group_named(stack, "gateway")))
    assert sorted((r["type"], r["from_port"], r["source_security_group_id"]) for r in rules) == sorted(
        ("ingress", port, g) for g in reaching
    )


def test_existing_database_means_no_rds(stacks):
    legacy = stacks["legacy32"]
    assert not resources(legacy, "aws_db_instance")
    egress = [r for r in resources(legacy, "aws_security_group_rule").values() if r["from_port"] == 5432]
    assert [(r["type"], r["cidr_blocks"]) for r in egress] == [("egress", ["172.31.64.0/20"])]


@pytest.mark.parametrize("env", ENVS)
def test_generated_secrets_have_no_value_in_terraform_and_the_node_role_gets_exact_arns(stacks, environments, env):
    stack = stacks[env]
    assert not resources(stack, "aws_secretsmanager_secret_version"), "values are generated at boot, not by Terraform"
    secrets = resources(stack, "aws_secretsmanager_secret")
    key = ref("aws_kms_key", stack_key(stack)[0], "arn")
    # With RDS, API-M's own database user too (RDS rotates its master password); an existing database has its own.
    expected = ["apim-admin", "keystore"] if environments[env].database.existing else ["apim-admin", "database-app", "keystore"]
    assert sorted(s["name"].split("/")[1] for s in secrets.values()) == expected
    assert all(s["kms_key_id"] == key for s in secrets.values())
    _, grant = named(stack, "aws_iam_role_policy", "use-secrets")
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    generated = sorted(ref("aws_secretsmanager_secret", name, "arn") for name in secrets)
    assert sorted(statements["GenerateOnce"]["Resource"]) == generated
    assert "*" not in json.dumps(statements)


def test_new_vpc_reaches_secrets_and_session_manager_privately(stacks):
    endpoints = resources(stacks["dev"], "aws_vpc_endpoint").values()
    interface = {e["service_name"].rsplit(".", 1)[1]: e for e in endpoints if e["vpc_endpoint_type"] == "Interface"}
    assert sorted(interface) == ["ec2messages", "secretsmanager", "ssm", "ssmmessages"]
    assert all(e["private_dns_enabled"] is True and len(e["subnet_ids"]) == 2 for e in interface.values())
    group = ref("aws_security_group", group_named(stacks["dev"], "endpoints"))
    rules = [r for r in resources(stacks["dev"], "aws_security_group_rule").values() if r["security_group_id"] == group]
    assert [(r["type"], r["from_port"], r["cidr_blocks"]) for r in rules] == [("ingress", 443, ["10.20.0.0/16"])]
    assert not resources(stacks["legacy32"], "aws_vpc_endpoint"), "existing subnets: their network provides the way out"


@pytest.mark.parametrize("env", ENVS)
def test_no_ssh_anywhere(stacks, env):
    rules = resources(stacks[env], "aws_security_group_rule").values()
    assert not [r for r in rules if r["from_port"] <= 22 <= r["to_port"]]


@pytest.mark.parametrize("env, engine_tls", [("dev", "require_secure_transport"), ("prod", "rds.force_ssl")])
def test_database_requires_tls_of_every_client(stacks, env, engine_tls):
    _, group = only(stacks[env], "aws_db_parameter_group")
    assert {"name": engine_tls, "value": "1"} in group["parameter"]


@pytest.mark.parametrize("env", ENVS)
def test_nodes_boot_after_the_share_and_their_secret_grants_exist(stacks, env):
    stack = stacks[env]
    grant_name, _ = named(stack, "aws_iam_role_policy", "use-secrets")
    for instance in resources(stack, "aws_instance").values():
        assert f"aws_iam_role_policy.{grant_name}" in instance["depends_on"]
        assert sum(d.startswith("aws_efs_mount_target.") for d in instance["depends_on"]) == 2


@pytest.mark.parametrize("env", ENVS)
def test_node_addresses_are_reserved_before_anything_else_takes_them(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    reservations = resources(stack, "aws_ec2_subnet_cidr_reservation")
    assert sorted(r["cidr_block"] for r in reservations.values()) == [f"{settings.network.node_ip(n)}/32" for n in (0, 1)]
    assert all(r["reservation_type"] == "explicit" for r in reservations.values())
    through = {ref("aws_ec2_subnet_cidr_reservation", name, "subnet_id") for name in reservations}
    assert {i["subnet_id"] for i in resources(stack, "aws_instance").values()} == through
    assert {t["subnet_id"] for t in resources(stack, "aws_efs_mount_target").values()} == through
