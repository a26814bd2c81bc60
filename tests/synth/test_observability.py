"""Issue 16, the AWS side, on the synthesized environments: the log groups the agent ships to (stack key, retention,
the boot log's metric filters), the alarm topic (stack key, CloudWatch may publish and use the key), every alarm
with its threshold from the settings and the remedies EC2 offers, the dashboard, and the agent's grant. Metric
names come from apim_active_active.observability, the contract with the node side."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from cdktf import Testing as CdktfTesting

from apim_active_active import names
from apim_active_active import observability as obs
from apim_active_active.renderers.alarms import GIB, log_metric_filters
from apim_active_active.settings import AlarmThresholds, Settings, parse_settings
from apim_active_active.stacks.active_active import ActiveActiveStack
from tests.conftest import ROOT, local_settings_dict
from tests.helpers import ENVS, only, ref, resources, stack_key

STATE = Path("/tmp/unused-state")  # a local backend's path only; nothing is written at synth


def alarms_of(stack: dict) -> dict[str, dict]:
    return {a["alarm_name"]: a for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}


def key_ref(stack: dict) -> str:
    return ref("aws_kms_key", stack_key(stack)[0], "arn")


def topic_ref(stack: dict) -> str:
    return ref("aws_sns_topic", only(stack, "aws_sns_topic")[0], "arn")


def policy_of(stack: dict, name: str) -> dict:
    (policy,) = [p for p in resources(stack, "aws_iam_role_policy").values() if p["name"] == name]
    return json.loads(policy["policy"])


def synth_variant(**observability) -> tuple[dict, Settings]:
    """The local environment with other [observability] and shared_fs settings, synthesized in this process."""
    data = copy.deepcopy(local_settings_dict())
    data["shared_fs"]["throughput_mode"] = observability.pop("throughput_mode", "elastic")
    data["observability"] = observability
    settings = parse_settings(data, environ={})
    app = CdktfTesting.app()
    stack = ActiveActiveStack(app, "variant", settings, state_dir=STATE)
    return json.loads(CdktfTesting.synth(stack)), settings


@pytest.fixture(scope="module")
def bursting() -> tuple[dict, Settings]:
    return synth_variant(
        throughput_mode="bursting",
        correlation_log=True,
        log_retention_days=365,
        alarm_subscriptions=[
            {"protocol": "email", "endpoint": "ops@example.com"},
            {"protocol": "https", "endpoint": "https://hooks.example.com/a"},
        ],
        alarms={"heap_percent": 70, "efs_burst_credit_gb": 200},
    )


@pytest.fixture(scope="module")
def dark() -> tuple[dict, Settings]:
    return synth_variant(agent=False, dashboard=False)


# Log groups ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_one_log_group_per_shipped_log_under_the_stack_key(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    groups = {g["name"]: g for g in resources(stack, "aws_cloudwatch_log_group").values()}
    shipped = {obs.log_group_name(settings.name_prefix, log.key) for log in obs.shipped_logs(settings)}
    assert shipped <= set(groups)
    for name in shipped:
        assert groups[name]["kms_key_id"] == key_ref(stack)
        assert groups[name]["retention_in_days"] == settings.observability.log_retention_days
    assert stack["output"][names.OUTPUT_LOG_GROUPS]["value"] == {
        log.key: ref("aws_cloudwatch_log_group", next(k for k, g in resources(stack, "aws_cloudwatch_log_group").items()
                                                       if g["name"] == obs.log_group_name(settings.name_prefix, log.key)), "name")
        for log in obs.shipped_logs(settings)
    }  # fmt: skip


def test_the_correlation_log_gets_its_group_only_when_shipped(stacks, bursting):
    correlation = "/apim-local/apim/correlation"
    assert correlation not in {g["name"] for g in resources(stacks["local"], "aws_cloudwatch_log_group").values()}
    groups = {g["name"]: g for g in resources(bursting[0], "aws_cloudwatch_log_group").values()}
    assert groups[correlation]["retention_in_days"] == 365


def test_the_stack_key_lets_cloudwatch_logs_use_it_for_exactly_the_stack_groups(stacks, environments):
    stack = stacks["dev"]
    policy = json.loads(stack_key(stack)[1]["policy"])
    (logs,) = [s for s in policy["Statement"] if s["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}]
    condition = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert condition.endswith(":log-group:/apim-dev/*")
    assert all(obs.log_group_name("apim-dev", log.key).startswith("/apim-dev/") for log in obs.shipped_logs(environments["dev"]))


def test_boot_log_lines_become_the_share_and_boot_metrics(stacks, environments):
    stack, settings = stacks["dev"], environments["dev"]
    boot_group = obs.log_group_name(settings.name_prefix, "node/boot")
    assert any(log.path == obs.BOOT_LOG and log.key == "node/boot" for log in obs.shipped_logs(settings))
    filters = {f["pattern"]: f for f in resources(stack, "aws_cloudwatch_log_metric_filter").values()}
    expected = {
        f'"{obs.SHARE_VERDICT_MISSING}"': (obs.SHARE_MISSING_METRIC, "1"),
        f'"{obs.SHARE_VERDICT_PRESENT}"': (obs.SHARE_MISSING_METRIC, "0"),
        f'"{obs.BOOT_FAILED}"': (obs.BOOT_FAILED_METRIC, "1"),
        f'[time, tool="wso2am-boot:", what="{obs.KEYSTORE_EXPIRY_LINE}", days, unit="days"]': (obs.KEYSTORE_DAYS_METRIC, "$days"),
    }
    assert {p: (f["metric_transformation"]["name"], f["metric_transformation"]["value"]) for p, f in filters.items()} == expected
    groups = {k: g["name"] for k, g in resources(stack, "aws_cloudwatch_log_group").items()}
    for f in filters.values():
        assert f["metric_transformation"]["namespace"] == obs.metric_namespace(settings.name_prefix)
        assert f["log_group_name"] in {ref("aws_cloudwatch_log_group", k, "name") for k, name in groups.items() if name == boot_group}


def test_without_the_agent_no_log_group_filter_grant_or_node_metric_alarm(dark):
    stack, settings = dark
    assert {g["name"] for g in resources(stack, "aws_cloudwatch_log_group").values()} == {"/apim-local/vpc-flow-logs"}
    assert not resources(stack, "aws_cloudwatch_log_metric_filter")
    assert not [p for p in resources(stack, "aws_iam_role_policy").values() if p["name"] == "cloudwatch-agent"]
    agent_metrics = {obs.HEAP_USED.name, obs.DISK_USED_PERCENT.name, obs.MEMORY_USED_PERCENT.name, obs.BOOT_FAILED_METRIC}
    agent_metrics.add(obs.KEYSTORE_DAYS_METRIC)  # the boot log's line, through a metric filter
    assert not [
        a for a in alarms_of(stack).values() if a.get("metric_name") in agent_metrics or "metric_query" in a and "heap" in a["alarm_name"]
    ]
    assert names.OUTPUT_LOG_GROUPS not in stack["output"]
    assert not resources(stack, "aws_cloudwatch_dashboard") and names.OUTPUT_DASHBOARD not in stack["output"]
    assert alarms_of(stack), "the AWS side's alarms stay"


# The agent's grant -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_the_agent_writes_only_into_the_stack_groups_and_publishes_only_into_its_namespace(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    statements = {s["Sid"]: s for s in policy_of(stack, "cloudwatch-agent")["Statement"]}
    assert set(statements) == {"ShipLogs", "PublishMetrics"}
    shipped = {k for k, g in resources(stack, "aws_cloudwatch_log_group").items() if g["name"] != f"/{settings.name_prefix}/vpc-flow-logs"}
    arns = sorted(ref("aws_cloudwatch_log_group", k, "arn") for k in shipped)
    assert sorted(statements["ShipLogs"]["Resource"]) == sorted(arns + [f"{arn}:*" for arn in arns])
    assert set(statements["ShipLogs"]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    publish = statements["PublishMetrics"]
    assert publish["Action"] == "cloudwatch:PutMetricData"
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": obs.metric_namespace(settings.name_prefix)}}
    attachments = {a["policy_arn"] for a in resources(stack, "aws_iam_role_policy_attachment").values()}
    assert "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" in attachments  # Session Manager (the roll, prove)


# The topic -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_alarm_topic_under_the_stack_key_that_cloudwatch_may_use(stacks, environments, env):
    stack, prefix = stacks[env], environments[env].name_prefix
    _, topic = only(stack, "aws_sns_topic")
    assert topic["kms_master_key_id"] == key_ref(stack)
    assert stack["output"][names.OUTPUT_ALARM_TOPIC]["value"] == topic_ref(stack)
    key_policy = json.loads(stack_key(stack)[1]["policy"])
    (cloudwatch,) = [s for s in key_policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    topic_policy = json.loads(only(stack, "aws_sns_topic_policy")[1]["policy"])
    (publish,) = [s for s in topic_policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert publish["Action"] == "sns:Publish" and publish["Resource"] == topic_ref(stack)
    assert publish["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":alarm:{prefix}-*")


def test_subscriptions_come_from_the_settings(stacks, bursting):
    assert not resources(stacks["local"], "aws_sns_topic_subscription")
    stack, settings = bursting
    subscriptions = sorted((s["protocol"], s["endpoint"], s["topic_arn"]) for s in resources(stack, "aws_sns_topic_subscription").values())
    assert subscriptions == sorted((s.protocol, s.endpoint, topic_ref(stack)) for s in settings.observability.alarm_subscriptions)


# The alarms ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_starts_with_the_prefix_and_notifies_the_topic_when_it_fires_and_clears(stacks, environments, env):
    stack, prefix = stacks[env], environments[env].name_prefix
    for name, alarm in alarms_of(stack).items():
        assert name.startswith(f"{prefix}-"), name
        assert alarm["alarm_actions"][0] == topic_ref(stack) and alarm["ok_actions"] == [topic_ref(stack)], name
        assert alarm["alarm_description"], name


@pytest.mark.parametrize("env", ENVS)
def test_status_checks_recover_and_reboot_each_node(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    alarms, automate = alarms_of(stack), f"arn:aws:automate:{settings.region}:ec2"
    instances = sorted(resources(stack, "aws_instance"))
    for number, instance in enumerate(instances, start=1):
        system, failed = (
            alarms[f"{settings.name_prefix}-node-{number}-system-check"],
            alarms[f"{settings.name_prefix}-node-{number}-instance-check"],
        )
        assert (system["metric_name"], system["alarm_actions"][1:]) == ("StatusCheckFailed_System", [f"{automate}:recover"])
        assert (failed["metric_name"], failed["alarm_actions"][1:]) == ("StatusCheckFailed_Instance", [f"{automate}:reboot"])
        assert system["dimensions"] == failed["dimensions"] == {"InstanceId": ref("aws_instance", instance)}
    ec2_actions = [a for a in alarms.values() if any(":automate:" in action for action in a["alarm_actions"])]
    assert len(ec2_actions) == 4, "EC2 actions only on the status checks"


@pytest.mark.parametrize("env", ENVS)
def test_load_balancer_alarms_watch_every_target_group_and_use_the_thresholds(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    limits, alarms, prefix = settings.observability.alarms, alarms_of(stack), settings.name_prefix
    groups = resources(stack, "aws_lb_target_group")
    unhealthy = [a for a in alarms.values() if a.get("metric_name") == "UnHealthyHostCount"]
    assert sorted(a["dimensions"]["TargetGroup"] for a in unhealthy) == sorted(ref("aws_lb_target_group", g, "arn_suffix") for g in groups)
    assert {(a["threshold"], a["comparison_operator"]) for a in unhealthy} == {(limits.unhealthy_targets, "GreaterThanOrEqualToThreshold")}
    # With the gateway group, the gateway routes' targets are the group's nodes too: the alarm says so.
    pair_only = [a for a in unhealthy if "the pair runs on one node" in a["alarm_description"]]
    assert len(pair_only) == (1 if settings.gateway_scale_out else len(unhealthy))
    (balancer,) = resources(stack, "aws_lb")
    rate = alarms[f"{prefix}-target-5xx-rate"]
    assert rate["threshold"] == limits.target_5xx_percent
    queries = {q["id"]: q for q in rate["metric_query"]}
    assert queries["result"]["return_data"] and "errors" in queries["result"]["expression"]
    assert (queries["errors"]["metric"]["metric_name"], queries["requests"]["metric"]["metric_name"]) == (
        "HTTPCode_Target_5XX_Count",
        "RequestCount",
    )
    assert queries["errors"]["metric"]["dimensions"] == {"LoadBalancer": ref("aws_lb", balancer, "arn_suffix")}
    latency = alarms[f"{prefix}-response-time-p95"]
    assert (latency["extended_statistic"], latency["threshold"]) == ("p95", limits.response_time_p95_seconds)


@pytest.mark.parametrize("env", ENVS)
def test_node_metric_alarms_use_the_agent_metric_names(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    limits, alarms, prefix = settings.observability.alarms, alarms_of(stack), settings.name_prefix
    namespace = obs.metric_namespace(prefix)
    for number, instance in enumerate(sorted(resources(stack, "aws_instance")), start=1):
        node = ref("aws_instance", instance)
        heap = {q["id"]: q for q in alarms[f"{prefix}-node-{number}-heap"]["metric_query"]}
        assert heap["result"]["expression"] == "100 * used / max"
        assert (heap["used"]["metric"]["metric_name"], heap["max"]["metric"]["metric_name"]) == (obs.HEAP_USED.name, obs.HEAP_MAX.name)
        assert heap["used"]["metric"]["dimensions"]["InstanceId"] == node and heap["used"]["metric"]["namespace"] == namespace
        disk, memory = alarms[f"{prefix}-node-{number}-disk"], alarms[f"{prefix}-node-{number}-memory"]
        assert (disk["metric_name"], disk["threshold"], disk["namespace"]) == (obs.DISK_USED_PERCENT.name, limits.disk_percent, namespace)
        assert disk["dimensions"] == {"InstanceId": node, **dict(obs.DISK_USED_PERCENT.dimensions)}
        assert (memory["metric_name"], memory["threshold"]) == (obs.MEMORY_USED_PERCENT.name, limits.memory_percent)
        assert disk["treat_missing_data"] == memory["treat_missing_data"] == "breaching", "no data: the agent is down"
        assert alarms[f"{prefix}-node-{number}-heap"]["threshold"] == limits.heap_percent
    boot, share = alarms[f"{prefix}-boot-failed"], alarms[f"{prefix}-share-missing"]
    assert (boot["namespace"], boot["metric_name"]) == (namespace, obs.BOOT_FAILED_METRIC)
    assert (share["namespace"], share["metric_name"], share["treat_missing_data"]) == (namespace, obs.SHARE_MISSING_METRIC, "ignore")


def test_the_rsync_mode_watches_node_2s_share_but_has_no_efs_alarm(example_stacks):
    alarms = alarms_of(example_stacks["rsync"])
    assert [n for n in alarms if n.endswith("-share-missing")], "node 2 runs the share watch with rsync"
    assert not [a for a in alarms.values() if a.get("namespace") == "AWS/EFS"]


@pytest.mark.parametrize("env", ENVS)
def test_database_alarms_only_for_the_rds_the_stack_makes(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    limits, alarms = settings.observability.alarms, alarms_of(stack)
    rds = {a["metric_name"]: a for a in alarms.values() if a.get("namespace") == "AWS/RDS"}
    if settings.database.existing:
        assert rds == {}
        return
    (instance,) = resources(stack, "aws_db_instance")
    assert {a["dimensions"]["DBInstanceIdentifier"] for a in rds.values()} == {ref("aws_db_instance", instance, "identifier")}
    assert rds["CPUUtilization"]["threshold"] == limits.database_cpu_percent
    assert (rds["FreeStorageSpace"]["threshold"], rds["FreeStorageSpace"]["comparison_operator"]) == (
        limits.database_free_storage_gb * GIB,
        "LessThanThreshold",
    )
    assert rds["DatabaseConnections"]["threshold"] == limits.database_connections


def test_no_database_alarm_with_an_existing_database(stacks):
    assert not [a for a in alarms_of(stacks["legacy32"]).values() if a.get("namespace") == "AWS/RDS"]


def test_burst_credit_alarm_only_in_bursting_mode(stacks, bursting):
    assert not [a for a in alarms_of(stacks["local"]).values() if a.get("metric_name") == "BurstCreditBalance"]
    stack, settings = bursting
    (credits,) = [a for a in alarms_of(stack).values() if a.get("metric_name") == "BurstCreditBalance"]
    assert credits["threshold"] == 200 * GIB and credits["comparison_operator"] == "LessThanThreshold"
    (share,) = resources(stack, "aws_efs_file_system")
    assert credits["dimensions"] == {"FileSystemId": ref("aws_efs_file_system", share)}
    assert alarms_of(stack)["apim-local-node-1-heap"]["threshold"] == 70


@pytest.mark.parametrize("env", ENVS)
def test_certificate_expiry_watches_the_listeners_certificate(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    (expiry,) = [a for a in alarms_of(stack).values() if a.get("metric_name") == "DaysToExpiry"]
    listeners = {lst["certificate_arn"] for lst in resources(stack, "aws_lb_listener").values() if lst.get("certificate_arn")}
    assert listeners == {expiry["dimensions"]["CertificateArn"]}
    assert expiry["threshold"] == settings.observability.alarms.certificate_days


def test_metric_filters_make_what_the_alarms_watch():
    assert {f.metric for f in log_metric_filters("p")} == {obs.SHARE_MISSING_METRIC, obs.BOOT_FAILED_METRIC, obs.KEYSTORE_DAYS_METRIC}


@pytest.mark.parametrize("env", ENVS)
def test_keystore_expiry_alarm_takes_the_least_days_any_node_logs(stacks, environments, env):
    """Every node's daily line (pair and gateway group), no dimension: the least one counts (keystore.expiry_warning_days)."""
    stack, settings = stacks[env], environments[env]
    (alarm,) = [a for a in alarms_of(stack).values() if a.get("metric_name") == obs.KEYSTORE_DAYS_METRIC]
    assert alarm["alarm_name"] == f"{settings.name_prefix}-keystore-expiry"
    assert (alarm["namespace"], alarm.get("dimensions") or {}) == (obs.metric_namespace(settings.name_prefix), {})
    assert (alarm["statistic"], alarm["period"], alarm["comparison_operator"]) == ("Minimum", 86400, "LessThanThreshold")
    assert alarm["threshold"] == settings.keystore.expiry_warning_days and alarm["alarm_actions"] == [topic_ref(stack)]


# The dashboard ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_dashboard_shows_both_nodes_targets_latency_errors_jvm_and_database(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    _, dashboard = only(stack, "aws_cloudwatch_dashboard")
    assert stack["output"][names.OUTPUT_DASHBOARD]["value"].startswith("${aws_cloudwatch_dashboard.")
    widgets = json.loads(dashboard["dashboard_body"])["widgets"]
    metrics = {line[1] for w in widgets for line in w["properties"]["metrics"]}
    assert {"HealthyHostCount", "UnHealthyHostCount", "TargetResponseTime", "HTTPCode_Target_5XX_Count", "StatusCheckFailed"} <= metrics
    assert {obs.HEAP_USED.name, obs.HEAP_MAX.name, obs.MEMORY_USED_PERCENT.name, obs.SHARE_MISSING_METRIC} <= metrics
    assert ("CPUUtilization" in metrics) is (settings.database.existing is None)
    instances = {ref("aws_instance", i) for i in resources(stack, "aws_instance")}
    shown = {v for w in widgets for line in w["properties"]["metrics"] for v in line if isinstance(v, str)}
    assert instances <= shown
    assert len({(w["x"], w["y"]) for w in widgets}) == len(widgets), "no widget on top of another"


@pytest.mark.parametrize("env", ["dev", "legacy32"])
def test_every_alarm_and_its_threshold_setting_has_a_row_in_the_docs(stacks, environments, env):
    prefix = environments[env].name_prefix
    rows = [line for line in (ROOT / "docs" / "observability.md").read_text().splitlines() if line.startswith("| `<prefix>-")]
    documented = {re.match(r"\| `<prefix>-([^`]+)`", row).group(1): row for row in rows}  # type: ignore[union-attr]
    for name in alarms_of(stacks[env]):
        what = re.sub(r"^(management|gateway|websocket)-", "<route>-", re.sub(r"node-\d-", "node-N-", name.removeprefix(f"{prefix}-")))
        assert what in documented, f"{name} has no row in docs/observability.md"
    for field, default in AlarmThresholds().model_dump().items():
        assert any(f"`{field}` = {default:g}" in row for row in rows), f"{field} = {default} is not in the alarms table"
