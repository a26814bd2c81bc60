"""Log groups: one per log the nodes' CloudWatch agent ships, and the boot log's metric filters.

Defaults: encrypted with the stack key (its policy lets CloudWatch Logs use it for /<name_prefix>/* only); retention
`observability.log_retention_days`. The agent writes into them and never creates a group (the node role may not).
Exposes: names (by key), arns (what the node role may write to).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.observability import log_group_name, metric_namespace
from apim_active_active.renderers.alarms import LogMetricFilter


@dataclass(frozen=True)
class LogGroupsProps:
    name_prefix: str
    keys: tuple[str, ...]  # observability.shipped_logs(): each log's key, the group's last part
    retention_days: int
    kms_key_arn: str
    metric_filters: tuple[LogMetricFilter, ...]  # on the group of filter_key
    filter_key: str


class LogGroups(Construct):
    def __init__(self, scope: Construct, id_: str, props: LogGroupsProps) -> None:
        super().__init__(scope, id_)
        self.names: dict[str, str] = {}
        self.arns: list[str] = []
        for key in props.keys:
            group = aws.cloudwatch_log_group.CloudwatchLogGroup(
                self,
                key.replace("/", "_").replace("-", "_"),
                name=log_group_name(props.name_prefix, key),
                retention_in_days=props.retention_days,
                kms_key_id=props.kms_key_arn,
            )
            self.names[key] = group.name
            self.arns.append(group.arn)
        filtered = self.names[props.filter_key]
        for spec in props.metric_filters:
            aws.cloudwatch_log_metric_filter.CloudwatchLogMetricFilter(
                self,
                spec.name.removeprefix(f"{props.name_prefix}-").replace("-", "_"),
                name=spec.name,
                log_group_name=filtered,
                pattern=spec.pattern,
                metric_transformation=aws.cloudwatch_log_metric_filter.CloudwatchLogMetricFilterMetricTransformation(
                    name=spec.metric, namespace=metric_namespace(props.name_prefix), value=spec.value
                ),
            )
