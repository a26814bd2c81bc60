"""The observability constructs one at a time (cdktf's Testing.synth of a stack holding only the construct), from
explicit values: log groups and their filters, the alarm topic and alarms from specs, the dashboard."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cdktf import TerraformStack
from cdktf import Testing as CdktfTesting

from apim_active_active import aws
from apim_active_active.constructs.alarms import Alarms, AlarmsProps
from apim_active_active.constructs.dashboard import Dashboard, DashboardProps
from apim_active_active.constructs.log_groups import LogGroups, LogGroupsProps
from apim_active_active.renderers.alarms import AlarmSpec, LogMetricFilter, Metric, MetricMath
from apim_active_active.settings import AlarmSubscription

PREFIX = "apim-t"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
NODE = "i-0123456789abcdef0"
CPU = Metric("AWS/EC2", "CPUUtilization", (("InstanceId", NODE),), "Average")
SLOW = Metric("AWS/ApplicationELB", "TargetResponseTime", (("LoadBalancer", "app/x/1"),), "p99")
RATE = MetricMath("100 * a / b", (("a", CPU), ("b", CPU)), "ratio")


def synth(build: Callable[[TerraformStack], object]) -> tuple[object, dict]:
    stack = TerraformStack(CdktfTesting.app(), "construct")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    construct = build(stack)
    return construct, json.loads(CdktfTesting.synth(stack)).get("resource", {})


def spec(name: str, watched: Metric | MetricMath, *ec2_actions: str) -> AlarmSpec:
    return AlarmSpec(name, "why", watched, 60, 3, 2, 1.5, "GreaterThanThreshold", "ignore", "", ec2_actions)


def alarms(specs: tuple[AlarmSpec, ...], subscriptions: tuple[AlarmSubscription, ...] = ()) -> tuple[Alarms, dict]:
    props = AlarmsProps(PREFIX, "us-east-1", "123456789012", KEY, subscriptions, specs)
    construct, resources = synth(lambda stack: Alarms(stack, "alarms", props))
    assert isinstance(construct, Alarms)
    return construct, resources


def by_name(resources: dict) -> dict[str, dict]:
    return {a["alarm_name"]: a for a in resources.get("aws_cloudwatch_metric_alarm", {}).values()}


def test_log_groups_one_per_key_under_the_key_with_filters_on_the_named_group():
    filters = (LogMetricFilter(f"{PREFIX}-boot-failed", '"boot failed"', "BootFailed", "1"),)
    props = LogGroupsProps(PREFIX, ("apim/carbon", "node/boot"), 30, KEY, filters, "node/boot")
    groups, resources = synth(lambda stack: LogGroups(stack, "logs", props))
    made = {g["name"]: g for g in resources["aws_cloudwatch_log_group"].values()}
    assert sorted(made) == ["/apim-t/apim/carbon", "/apim-t/node/boot"]
    assert {(g["retention_in_days"], g["kms_key_id"]) for g in made.values()} == {(30, KEY)}
    (metric_filter,) = resources["aws_cloudwatch_log_metric_filter"].values()
    boot = next(k for k, g in resources["aws_cloudwatch_log_group"].items() if g["name"] == "/apim-t/node/boot")
    assert metric_filter["log_group_name"] == f"${{aws_cloudwatch_log_group.{boot}.name}}"
    assert metric_filter["metric_transformation"] == {"name": "BootFailed", "namespace": "WSO2-APIM/apim-t", "value": "1"}
    assert isinstance(groups, LogGroups) and sorted(groups.names) == ["apim/carbon", "node/boot"] and len(groups.arns) == 2


def test_one_metric_alarm_with_statistic_period_and_evaluation_from_its_spec():
    _, resources = alarms((spec(f"{PREFIX}-cpu", CPU),))
    alarm = by_name(resources)[f"{PREFIX}-cpu"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["dimensions"], alarm["statistic"]) == (
        "AWS/EC2",
        "CPUUtilization",
        {"InstanceId": NODE},
        "Average",
    )
    assert (alarm["period"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"], alarm["threshold"]) == (60, 3, 2, 1.5)
    assert (alarm["comparison_operator"], alarm["treat_missing_data"]) == ("GreaterThanThreshold", "ignore")
    assert "extended_statistic" not in alarm and "metric_query" not in alarm


def test_a_percentile_is_an_extended_statistic():
    _, resources = alarms((spec(f"{PREFIX}-slow", SLOW),))
    alarm = by_name(resources)[f"{PREFIX}-slow"]
    assert alarm["extended_statistic"] == "p99" and "statistic" not in alarm


def test_metric_math_returns_only_the_expression():
    _, resources = alarms((spec(f"{PREFIX}-ratio", RATE),))
    alarm = by_name(resources)[f"{PREFIX}-ratio"]
    assert "metric_name" not in alarm and "period" not in alarm  # the provider refuses both beside metric_query
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert [q for q in queries.values() if q["return_data"]] == [queries["result"]]
    assert queries["result"]["expression"] == "100 * a / b"
    assert queries["a"]["metric"] == {"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "dimensions": {"InstanceId": NODE},
                                      "period": 60, "stat": "Average"}  # fmt: skip


def test_topic_is_encrypted_and_every_alarm_notifies_it_plus_its_own_ec2_action():
    recover = "arn:aws:automate:us-east-1:ec2:recover"
    construct, resources = alarms((spec(f"{PREFIX}-a", CPU), spec(f"{PREFIX}-b", CPU, recover)))
    (topic_id, topic), *_ = resources["aws_sns_topic"].items()
    topic_arn = f"${{aws_sns_topic.{topic_id}.arn}}"
    assert (topic["name"], topic["kms_master_key_id"]) == (f"{PREFIX}-alarms", KEY)
    made = by_name(resources)
    assert made[f"{PREFIX}-a"]["alarm_actions"] == [topic_arn] and made[f"{PREFIX}-b"]["alarm_actions"] == [topic_arn, recover]
    assert {tuple(a["ok_actions"]) for a in made.values()} == {(topic_arn,)}
    assert isinstance(construct, Alarms) and len(construct.alarm_names) == 2


def test_topic_policy_lets_only_this_stacks_alarms_publish():
    _, resources = alarms(())
    (policy,) = resources["aws_sns_topic_policy"].values()
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    cloudwatch = statements["CloudWatchAlarmsOfThisStack"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and cloudwatch["Action"] == "sns:Publish"
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{PREFIX}-*"},
    }
    assert "aws_sns_topic_subscription" not in resources


@pytest.mark.parametrize("protocol, endpoint", [("email", "ops@example.com"), ("https", "https://hooks.example.com/x")])
def test_one_subscription_per_setting(protocol, endpoint):
    _, resources = alarms((), (AlarmSubscription(protocol=protocol, endpoint=endpoint),))
    (subscription,) = resources["aws_sns_topic_subscription"].values()
    assert (subscription["protocol"], subscription["endpoint"]) == (protocol, endpoint)


def test_dashboard_named_after_the_prefix_with_the_given_body():
    body = json.dumps({"widgets": []})
    dashboard, resources = synth(lambda stack: Dashboard(stack, "dashboard", DashboardProps(PREFIX, body)))
    (made,) = resources["aws_cloudwatch_dashboard"].values()
    assert (made["dashboard_name"], made["dashboard_body"]) == (f"{PREFIX}-pair", body)
    assert isinstance(dashboard, Dashboard)
