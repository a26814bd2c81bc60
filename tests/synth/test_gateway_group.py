"""The gateway scale-out group in the synthesized stacks (real synth): `local` (on: API-M 4.3, the pair's pack in its
gateway profile, scaled by CPU), API-M 4.7 (WSO2's Universal Gateway pack, scaled by requests) and `local` with the
group off; and, synthesized in this process, existing subnets with an existing database and an external Key Manager."""

from __future__ import annotations

import gzip
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from cdktf import Testing as CdktfTesting

from apim_active_active import names
from apim_active_active.engines import ENGINES
from apim_active_active.policy import secret_literals, violations
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.node_layout import CONFIG_SOURCE, NODE_ENV
from apim_active_active.settings import parse_settings
from apim_active_active.stacks.active_active import ActiveActiveStack
from apim_active_active.terraform_text import template_of_base64gzip
from tests.conftest import ENVIRONMENTS, GATEWAY_47, GATEWAY_OFF
from tests.helpers import group_named, named, only, ref, resources, stack_key

GATEWAY_KINDS = ("aws_autoscaling_group", "aws_launch_template", "aws_autoscaling_lifecycle_hook", "aws_autoscaling_policy")
PEER_PORTS = {9443, 9611, 9711, 5672}
GATEWAY_ROUTE_PORTS = {8243, 8099, 9443}  # the gateway and WebSocket routes, and the 4.x gateway health check (9443)
WITH_GROUP = ["local", GATEWAY_47]


@pytest.fixture
def case(request, stacks, environments, gateway_stacks, gateway_settings):
    """(stack, settings) of an environment by name: `local`'s, or one synthesized beside it."""
    env = request.param
    if env in stacks:
        return stacks[env], environments[env]
    return gateway_stacks[env], gateway_settings[env]


def by_group(stack: dict, suffix: str) -> tuple[str, list[dict]]:
    """A security group's reference and the rules written into it."""
    group = ref("aws_security_group", group_named(stack, suffix))
    return group, [r for r in resources(stack, "aws_security_group_rule").values() if r["security_group_id"] == group]


def shape(rules: list[dict]) -> set[tuple]:
    return {(r["type"], r["from_port"], r["to_port"], r.get("source_security_group_id") or tuple(r["cidr_blocks"])) for r in rules}


def policies_of(stack: dict, role_suffix: str) -> list[dict]:
    role_name, _ = named(stack, "aws_iam_role", role_suffix)
    role = {ref("aws_iam_role", role_name), ref("aws_iam_role", role_name, "name")}
    return [json.loads(p["policy"]) for p in resources(stack, "aws_iam_role_policy").values() if p["role"] in role]


def statements_of(stack: dict, role_suffix: str) -> list[dict]:
    return [s for policy in policies_of(stack, role_suffix) for s in policy["Statement"]]


def partition(stack: dict) -> str:
    """The partition of the ARNs the group writes, as a pattern: a local holding the caller identity's (the second
    field of arn:<partition>:sts::...), never a literal "aws"."""
    (name,) = [
        n for n, e in stack["locals"].items() if re.fullmatch(r'\$\{element\(split\(":", data\.aws_caller_identity\.\w+\.arn\), 1\)\}', e)
    ]
    return re.escape(f"${{local.{name}}}")


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


@pytest.mark.parametrize("case", [GATEWAY_OFF, "dev", "prod", "legacy32"], indirect=True)
def test_with_the_group_off_nothing_of_it_is_made(case):
    stack, settings = case
    assert settings.gateway_scale_out is None
    assert not [kind for kind in GATEWAY_KINDS if resources(stack, kind)]
    assert not [g for g in resources(stack, "aws_security_group").values() if g["name"].endswith("-gateway")]
    assert not {names.OUTPUT_GATEWAY_GROUP, names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE, names.OUTPUT_GATEWAY_SG} & set(stack["output"])
    assert not [s for s in json.loads(stack_key(stack)[1]["policy"])["Statement"] if "AutoScaling" in json.dumps(s)]
    assert not [e for e in resources(stack, "aws_vpc_endpoint").values() if e["service_name"].endswith(".autoscaling")]


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_auto_scaling_may_encrypt_the_nodes_volumes_with_the_stack_key_and_is_reached_privately(case):
    """EC2 Auto Scaling launches as its service-linked role, which may use a customer managed key only by the key's
    policy (EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted volumes"); in a new VPC
    (no internet egress) a leaving node reaches its API through an interface endpoint."""
    stack, settings = case
    found = [s for s in json.loads(stack_key(stack)[1]["policy"])["Statement"] if "AWSServiceRoleForAutoScaling" in json.dumps(s)]
    assert {s["Sid"] for s in found} == {"AutoScalingVolumes", "AutoScalingVolumeGrants"}
    for statement in found:
        arn = statement["Principal"]["AWS"]
        assert arn.endswith(":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"), arn
    grants = next(s for s in found if s["Sid"] == "AutoScalingVolumeGrants")
    assert grants["Action"] == "kms:CreateGrant" and grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": True}}
    if settings.network.vpc_cidr is not None:
        services = {e["service_name"] for e in resources(stack, "aws_vpc_endpoint").values()}
        assert f"com.amazonaws.{settings.region}.autoscaling" in services


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_security_groups_open_exactly_the_gateway_paths(case):
    stack, settings = case
    gateway, gateway_rules = by_group(stack, "gateway")
    pair, pair_rules = by_group(stack, "nodes")
    lb, lb_rules = by_group(stack, "alb")
    db_port = ENGINES[settings.database.engine].port
    db, db_rules = by_group(stack, "db")
    assert all(r.get("description") for r in gateway_rules)
    assert shape(gateway_rules) == {
        *(("ingress", port, port, lb) for port in GATEWAY_ROUTE_PORTS),
        *(("egress", port, port, pair) for port in PEER_PORTS),
        ("egress", db_port, db_port, db),
        ("egress", 443, 443, ("0.0.0.0/0",)),
    }
    assert {r["from_port"] for r in lb_rules if r.get("source_security_group_id") == gateway} == GATEWAY_ROUTE_PORTS
    assert {r["type"] for r in lb_rules if r.get("source_security_group_id") == gateway} == {"egress"}
    from_gateways = [r for r in pair_rules if r.get("source_security_group_id") == gateway]
    assert shape(from_gateways) == {("ingress", port, port, gateway) for port in PEER_PORTS}
    assert [r["from_port"] for r in db_rules if r.get("source_security_group_id") == gateway] == [db_port]


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_group_serves_the_gateway_and_websocket_routes_only_and_scales_by_its_setting(case):
    stack, settings = case
    gateway = settings.gateway_scale_out
    _, group = only(stack, "aws_autoscaling_group")
    target_groups = {g["port"]: name for name, g in resources(stack, "aws_lb_target_group").items()}
    assert sorted(group["target_group_arns"]) == sorted(ref("aws_lb_target_group", target_groups[p], "arn") for p in (8243, 8099))
    assert group["name"] == names.gateway_group_name(settings.name_prefix)
    assert (group["min_size"], group["max_size"]) == (gateway.min_size, gateway.max_size)
    assert "desired_capacity" not in group, "the scaling policy's"
    assert (group["health_check_type"], group["health_check_grace_period"]) == ("ELB", gateway.warmup_seconds)
    assert group["default_instance_warmup"] == gateway.warmup_seconds and group["wait_for_capacity_timeout"] == "0"
    assert len(group["vpc_zone_identifier"]) == 2
    assert {"GroupInServiceInstances", "GroupDesiredCapacity", "GroupTerminatingInstances"} <= set(group["enabled_metrics"])
    assert group["instance_refresh"] == {
        "strategy": "Rolling",
        "preferences": {
            "min_healthy_percentage": gateway.refresh_min_healthy_percent,
            "max_healthy_percentage": gateway.refresh_max_healthy_percent,
        },
    }
    template_name, _ = only(stack, "aws_launch_template")
    assert group["launch_template"] == {
        "id": ref("aws_launch_template", template_name),
        "version": ref("aws_launch_template", template_name, "latest_version"),
    }

    _, policy = only(stack, "aws_autoscaling_policy")
    tracking = policy["target_tracking_configuration"]
    assert policy["policy_type"] == "TargetTrackingScaling"
    if gateway.scaling == "cpu":
        assert tracking == {
            "predefined_metric_specification": {"predefined_metric_type": "ASGAverageCPUUtilization"},
            "target_value": gateway.target_cpu_percent,
        }
    else:
        lb_name, _ = only(stack, "aws_lb")
        label = f"{ref('aws_lb', lb_name, 'arn_suffix')}/{ref('aws_lb_target_group', target_groups[8243], 'arn_suffix')}"
        assert tracking == {
            "predefined_metric_specification": {"predefined_metric_type": "ALBRequestCountPerTarget", "resource_label": label},
            "target_value": gateway.target_requests,
        }


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_a_new_node_is_held_until_ready_and_a_leaving_one_until_drained_from_the_first_launch_on(case):
    """Both lifecycle hooks are the group's initial hooks (the provider puts them before the group's first launch) and
    resources of their own (a change of an initial hook would replace the group: ignored there, changed in place)."""
    stack, settings = case
    gateway = settings.gateway_scale_out
    group_name, group = only(stack, "aws_autoscaling_group")
    wanted = {
        "ready": {
            "name": names.gateway_ready_hook_name(settings.name_prefix),
            "lifecycle_transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "heartbeat_timeout": gateway.ready_seconds,
            "default_result": "ABANDON",
        },
        "drain": {
            "name": names.gateway_lifecycle_hook_name(settings.name_prefix),
            "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "heartbeat_timeout": gateway.drain_seconds,
            "default_result": "CONTINUE",
        },
    }
    assert sorted(group["initial_lifecycle_hook"], key=lambda h: h["name"]) == sorted(wanted.values(), key=lambda h: h["name"])
    assert group["lifecycle"] == {"ignore_changes": ["initial_lifecycle_hook"]}
    hooks = {hook["name"]: hook for hook in resources(stack, "aws_autoscaling_lifecycle_hook").values()}
    assert hooks == {
        hook["name"]: {
            **{k: v for k, v in hooks.get(hook["name"], {}).items() if k == "//"},
            **hook,
            "autoscaling_group_name": ref("aws_autoscaling_group", group_name, "name"),
        }
        for hook in wanted.values()
    }


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_group_waits_for_its_egress_and_policies_and_is_counted_after_its_warm_up(case):
    """A booting node reaches the pair, the database and AWS's APIs and reads the secrets at once, and completes its
    hooks; health checks and scaling metrics count from `warmup_seconds` after it is ready (in service)."""
    stack, settings = case
    _, group = only(stack, "aws_autoscaling_group")
    gateway = group_named(stack, "gateway")
    egress = {
        f"aws_security_group_rule.{name}"
        for name, rule in resources(stack, "aws_security_group_rule").items()
        if rule["security_group_id"] == ref("aws_security_group", gateway) and rule["type"] == "egress"
    }
    policies = {f"aws_iam_role_policy.{named(stack, 'aws_iam_role_policy', f'gateway-{p}')[0]}" for p in ("use-secrets", "lifecycle")}
    assert len(egress) == 6 and set(group["depends_on"]) == {*egress, *policies}
    warmup = settings.gateway_scale_out.warmup_seconds
    assert group["health_check_grace_period"] == group["default_instance_warmup"] == warmup


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_nodes_their_volumes_and_network_interfaces_carry_the_stack_tags(case):
    """The provider's default_tags reach neither an Auto Scaling group's instances nor what a launch template tags."""
    stack, settings = case
    environment = stack["provider"]["aws"][0]["default_tags"][0]["tags"]["Environment"]
    tags = {**names.default_tags(settings, environment), "Name": f"{settings.name_prefix}-gateway"}
    assert set(tags) >= {"Environment", "ManagedBy", "Name"}
    _, group = only(stack, "aws_autoscaling_group")
    assert {t["key"]: (t["value"], t["propagate_at_launch"]) for t in group["tag"]} == {k: (v, True) for k, v in tags.items()}
    _, template = only(stack, "aws_launch_template")
    assert {s["resource_type"]: s["tags"] for s in template["tag_specifications"]} == {"volume": tags, "network-interface": tags}


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_launch_template_is_hardened_as_a_pair_node(case):
    stack, settings = case
    _, template = only(stack, "aws_launch_template")
    assert template["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}
    (root,) = template["block_device_mappings"]
    key = ref("aws_kms_key", stack_key(stack)[0], "arn")
    assert root["ebs"] == {
        "volume_type": "gp3",
        "volume_size": settings.gateway_scale_out.root_volume_gb,
        "encrypted": "true",
        "kms_key_id": key,
        "delete_on_termination": "true",
    }
    assert template["vpc_security_group_ids"] == [ref("aws_security_group", group_named(stack, "gateway"))]
    assert template["instance_type"] == settings.gateway_scale_out.instance_type
    assert "key_name" not in template and "network_interfaces" not in template
    pair_ami = {i["ami"] for i in resources(stack, "aws_instance").values()}
    pair_ami_expressions = {stack["locals"][a.removeprefix("${local.").removesuffix("}")] for a in pair_ami}
    assert pair_ami_expressions == {template["image_id"]}
    profile_name, _ = named(stack, "aws_iam_instance_profile", f"{settings.name_prefix}-gateway")
    assert template["iam_instance_profile"] == {"name": ref("aws_iam_instance_profile", profile_name, "name")}


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_gateway_role_reads_the_secrets_never_puts_and_completes_only_its_groups_hooks(case):
    stack, settings = case
    statements = statements_of(stack, f"{settings.name_prefix}-gateway")
    everything = [a for s in statements for a in actions(s)]
    assert "secretsmanager:PutSecretValue" not in everything and not [a for a in everything if a.endswith("*")]
    secrets = {
        s["name"].split("/")[1]: ref("aws_secretsmanager_secret", key, "arn")
        for key, s in resources(stack, "aws_secretsmanager_secret").items()
    }
    read = next(s for s in statements if "secretsmanager:GetSecretValue" in actions(s))
    expected = ["apim-admin", "keystore", "database-app", *(["encryption-key"] if "encryption-key" in secrets else [])]
    assert sorted(read["Resource"]) == sorted(secrets[name] for name in expected), "the pair's, not the RDS master user's"
    decrypt = [s["Resource"] for s in statements if "kms:Decrypt" in actions(s)]
    assert ref("aws_kms_key", stack_key(stack)[0], "arn") in decrypt
    assert [r for rs in decrypt if isinstance(rs, list) for r in rs] == list(settings.encryption.node_decrypt_key_arns)
    (complete,) = [s for s in statements if "autoscaling:CompleteLifecycleAction" in actions(s)]
    assert actions(complete) == ["autoscaling:CompleteLifecycleAction"]
    assert re.fullmatch(
        rf"arn:{partition(stack)}:autoscaling:{settings.region}:\$\{{data\.aws_caller_identity\.\w+\.account_id\}}:autoScalingGroup:\*:"
        rf"autoScalingGroupName/{names.gateway_group_name(settings.name_prefix)}",
        complete["Resource"],
    ), complete["Resource"]
    (describe,) = [s for s in statements if "autoscaling:DescribeAutoScalingInstances" in actions(s)]
    assert (actions(describe), describe["Resource"]) == (["autoscaling:DescribeAutoScalingInstances"], "*"), "no resource type"
    unconditioned = [s for s in statements if s["Resource"] == "*" and "Condition" not in s]
    assert unconditioned == [describe], "on * without a condition: only an action with no resource type"
    attachments = [a for a in resources(stack, "aws_iam_role_policy_attachment").values() if "gateway" in a["role"]]
    (attachment,) = attachments
    assert re.fullmatch(rf"arn:{partition(stack)}:iam::aws:policy/AmazonSSMManagedInstanceCore", attachment["policy_arn"])
    pair = [a for s in statements_of(stack, f"{settings.name_prefix}-node") for a in actions(s)]
    assert not [a for a in pair if a.startswith("autoscaling:")]
    artifacts = next(s for s in statements if s.get("Sid") == "ReadArtifacts")
    archive = settings.gateway_scale_out.archive_url or settings.apim.archive_url
    fetched = (archive, settings.database.jdbc_driver_url, *settings.customization.fetched_urls)  # local's: a jar, a hook
    assert artifacts["Resource"] == [f"arn:aws:s3:::{u.removeprefix('s3://')}" for u in fetched]


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_the_user_data_is_the_gateway_cloud_config_gzipped_with_no_secret(case):
    stack, settings = case
    _, template = only(stack, "aws_launch_template")
    text = template_of_base64gzip(template["user_data"])
    assert len(gzip.compress(text.encode())) < 16 * 1024 * 3 // 4, "base64 of it within EC2's 16 KB"
    assert list(secret_literals(text)) == [] and violations(stack) == []
    assert "@@" not in text, "every placeholder swapped for what the apply makes"
    files = {f["path"]: f["content"] for f in yaml.safe_load(text.replace("$${", "${").replace("%%{", "%{"))["write_files"]}
    db_name, _ = only(stack, "aws_db_instance")
    lb_name, _ = only(stack, "aws_lb")
    port = ENGINES[settings.database.engine].port
    host, lb_dns = ref("aws_db_instance", db_name, "address"), ref("aws_lb", lb_name, "dns_name")
    assert files[CONFIG_SOURCE] == render_gateway_toml(settings, host, port, lb_dns)
    env = files[NODE_ENV]
    assert "CONTENT_SYNC=none\n" in env and "EFS_ID" not in env
    assert f"GATEWAY_GROUP={names.gateway_group_name(settings.name_prefix)}\n" in env
    assert f"LIFECYCLE_HOOK={names.gateway_lifecycle_hook_name(settings.name_prefix)}\n" in env
    assert f"READY_HOOK={names.gateway_ready_hook_name(settings.name_prefix)}\n" in env
    drain = settings.load_balancer.deregistration_delay_seconds + 60
    assert f"DRAIN_WAIT_SECONDS={drain}\n" in env
    assert "/etc/systemd/system/wso2am-gateway-watch.timer" in files
    watch = files["/etc/systemd/system/wso2am-gateway-watch.service"]
    assert int(re.search(r"^TimeoutStartSec=(\d+)$", watch, re.M)[1]) > drain, "one run lasts a whole leaving"


@pytest.mark.parametrize("case", WITH_GROUP, indirect=True)
def test_outputs_name_the_group_and_the_destroy_guard_covers_it(case):
    stack, _ = case
    group_name, _ = only(stack, "aws_autoscaling_group")
    template_name, _ = only(stack, "aws_launch_template")
    assert stack["output"][names.OUTPUT_GATEWAY_GROUP]["value"] == ref("aws_autoscaling_group", group_name, "name")
    assert stack["output"][names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE]["value"] == ref("aws_launch_template", template_name)
    assert stack["output"][names.OUTPUT_GATEWAY_SG]["value"] == ref("aws_security_group", group_named(stack, "gateway"))
    (guard,) = stack["resource"]["terraform_data"].values()
    guarded = set(guard["depends_on"])
    made = {f"{kind}.{name}" for kind in GATEWAY_KINDS for name in resources(stack, kind)}
    assert len(made) == 5 and made <= guarded


def test_with_an_existing_database_and_key_manager_the_group_reaches_their_networks():
    """legacy32's existing subnets, database and Key Manager at API-M 4.3 with the group on (https artifacts)."""
    data = tomllib.loads((ENVIRONMENTS / "legacy32.toml").read_text())
    data["apim"] |= {"version": "4.3.0", "archive_url": "https://artifacts.example.com/wso2/wso2am-4.3.0.zip", "jdk": 17}
    data["gateway_scale_out"] = {}
    settings = parse_settings(data, environ={})
    existing, key_manager = settings.database.existing, settings.key_manager
    stack = json.loads(CdktfTesting.synth(ActiveActiveStack(CdktfTesting.app(), "variant", settings, state_dir=Path("/tmp/unused"))))
    gateway, rules = by_group(stack, "gateway")
    egress = {(r["from_port"], r.get("source_security_group_id") or tuple(r["cidr_blocks"])) for r in rules if r["type"] == "egress"}
    assert (existing.port, (str(existing.cidr),)) in egress and (key_manager.port, (str(key_manager.cidr),)) in egress
    assert not [g for g in resources(stack, "aws_security_group").values() if g["name"].endswith("-db")]
    statements = statements_of(stack, f"{settings.name_prefix}-gateway")
    read = next(s for s in statements if "secretsmanager:GetSecretValue" in actions(s))
    assert existing.secret_arn in read["Resource"], "API-M's database user is the existing database's"
    assert not [s for s in statements if s.get("Sid") == "ReadArtifacts"], "https artifacts: no S3 grant"
