"""Alarms: the stack's alarm topic and one CloudWatch alarm per AlarmSpec (renderers/alarms.py decides what).

Defaults: the topic encrypted with the stack key (whose policy lets CloudWatch use it: constructs/encryption.py);
its policy lets this account's alarms whose names start with the name prefix publish, and the account manage it;
every alarm notifies the topic when it fires and when it clears (alarm and OK actions), plus its EC2 action if any.
Exposes: topic_arn, alarm_names.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import policy_document
from apim_active_active.names import resource_name
from apim_active_active.renderers.alarms import AlarmSpec, Metric, MetricMath
from apim_active_active.settings import AlarmSubscription

_alarm = aws.cloudwatch_metric_alarm


@dataclass(frozen=True)
class AlarmsProps:
    name_prefix: str
    region: str
    account_id: str
    kms_key_arn: str
    subscriptions: tuple[AlarmSubscription, ...]
    specs: tuple[AlarmSpec, ...]


def topic_policy(topic_arn: str, region: str, account_id: str, name_prefix: str) -> str:
    """CloudWatch may publish for this account's alarms of this stack only (aws:SourceArn, aws:SourceAccount)."""
    return policy_document(
        [
            {
                "Sid": "AccountManagesTopic",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": [
                    "sns:GetTopicAttributes",
                    "sns:SetTopicAttributes",
                    "sns:Subscribe",
                    "sns:ListSubscriptionsByTopic",
                    "sns:Publish",
                ],  # fmt: skip
                "Resource": topic_arn,
            },
            {
                "Sid": "CloudWatchAlarmsOfThisStack",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name_prefix}-*"},
                },
            },
        ]
    )


def _query(id_: str, metric: Metric, period: int, returned: bool) -> _alarm.CloudwatchMetricAlarmMetricQuery:
    return _alarm.CloudwatchMetricAlarmMetricQuery(
        id=id_,
        return_data=returned,
        metric=_alarm.CloudwatchMetricAlarmMetricQueryMetric(
            namespace=metric.namespace, metric_name=metric.name, dimensions=dict(metric.dimensions), period=period, stat=metric.stat
        ),
    )


def _watched(spec: AlarmSpec) -> dict:
    """The alarm's metric arguments: one metric (a statistic or a percentile), or metric math over several."""
    watched = spec.watched
    if isinstance(watched, MetricMath):
        expression = _alarm.CloudwatchMetricAlarmMetricQuery(
            id="result", expression=watched.expression, label=watched.label, return_data=True
        )
        return {"metric_query": [expression, *(_query(i, m, spec.period, False) for i, m in watched.metrics)]}
    statistic = {"extended_statistic": watched.stat} if watched.stat.startswith("p") else {"statistic": watched.stat}
    return {"namespace": watched.namespace, "metric_name": watched.name, "dimensions": dict(watched.dimensions) or None,
            "period": spec.period, **statistic}  # fmt: skip


class Alarms(Construct):
    def __init__(self, scope: Construct, id_: str, props: AlarmsProps) -> None:
        super().__init__(scope, id_)
        topic = aws.sns_topic.SnsTopic(self, "topic", name=resource_name(props.name_prefix, "alarms"), kms_master_key_id=props.kms_key_arn)
        aws.sns_topic_policy.SnsTopicPolicy(
            self, "topic_policy", arn=topic.arn, policy=topic_policy(topic.arn, props.region, props.account_id, props.name_prefix)
        )
        for index, subscription in enumerate(props.subscriptions):
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"subscription_{index}", topic_arn=topic.arn, protocol=subscription.protocol, endpoint=subscription.endpoint
            )
        self.topic_arn: str = topic.arn
        self.alarm_names: list[str] = []
        for spec in props.specs:
            alarm = _alarm.CloudwatchMetricAlarm(
                self,
                spec.name.removeprefix(f"{props.name_prefix}-").replace("-", "_"),
                alarm_name=spec.name,
                alarm_description=spec.reason,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=[topic.arn, *spec.ec2_actions],
                ok_actions=[topic.arn],
                **_watched(spec),
            )
            self.alarm_names.append(alarm.alarm_name)
