"""The CloudWatch agent's configuration on a node: the logs it ships (observability.shipped_logs) and the metrics it
publishes (observability's NodeMetric names), in the agent's JSON format (aws/amazon-cloudwatch-agent,
translator/config/schema.json; tests/unit/test_cloudwatch_agent.py checks against our subset of it).

The dimension sets the agent publishes, read from the agent's source at v1.300071.0:
- `metrics.append_dimensions` InstanceId: the agent then drops its `host` tag from the host plugins' metrics
  (translator/translate/metrics/ruleTagExclude.go), so mem_used_percent carries InstanceId alone;
- disk keeps `path` and `fstype` (and `device` unless `drop_device`; disk/ruleDropTags.go): the rollup
  [InstanceId, path] adds disk_used_percent under exactly those two;
- the JMX metrics get InstanceId from the same ec2tagger, no hostname with `omit_hostname`
  (otel/receiver/jmx/translator.go), and jvm.gc.collections.elapsed carries the collector's `name`: the rollup
  [InstanceId] adds it summed over the collectors, whatever the JDK's collector is called.
A rollup is only made from a metric with more dimensions than the set and all of them
(plugins/outputs/cloudwatch/cloudwatch.go, ProcessRollup): mem and heap are published once, under InstanceId.
"""

from __future__ import annotations

import json

from apim_active_active import observability
from apim_active_active.renderers.node_layout import JMX_PORT
from apim_active_active.settings import Settings

INSTANCE_ID = "${aws:InstanceId}"  # the agent's own placeholder (append_dimensions takes the fixed EC2 ones)
LOG_STREAM = "{instance_id}"  # the agent's placeholder: one stream per node in each group
AGGREGATION_DIMENSIONS = (("InstanceId",), ("InstanceId", "path"))
COLLECTION_SECONDS = 60


def _collected_file(settings: Settings, log: observability.ShippedLog, home: str) -> dict:
    entry = {
        "file_path": log.path if log.path.startswith("/") else f"{home}/{log.path}",
        "log_group_name": observability.log_group_name(settings.name_prefix, log.key),
    }
    if log.multi_line_start:
        entry["multi_line_start_pattern"] = log.multi_line_start
    if log.timestamp_format:
        entry["timestamp_format"] = log.timestamp_format
    return entry


def _measurements(*metrics: observability.NodeMetric) -> list[str]:
    return [metric.name for metric in metrics]


def render_agent_config(settings: Settings, home: str | None = None) -> dict | None:
    """The agent's configuration for a node of these settings whose product is at home (the pair's by default); None
    when observability.agent is off."""
    if not settings.observability.agent:
        return None
    o = observability
    return {
        "agent": {"metrics_collection_interval": COLLECTION_SECONDS, "omit_hostname": True},
        # The agent's defaults kept: UTF-8, timestamps in local time (API-M's and the node's: UTC on Amazon Linux).
        "logs": {
            "log_stream_name": LOG_STREAM,
            "logs_collected": {
                "files": {"collect_list": [_collected_file(settings, log, home or settings.apim.home) for log in o.shipped_logs(settings)]}
            },
        },
        "metrics": {
            "namespace": o.metric_namespace(settings.name_prefix),
            "append_dimensions": {"InstanceId": INSTANCE_ID},
            "aggregation_dimensions": [list(dimensions) for dimensions in AGGREGATION_DIMENSIONS],
            "metrics_collected": {
                "mem": {"measurement": _measurements(o.MEMORY_USED_PERCENT)},
                "disk": {
                    "measurement": _measurements(o.DISK_USED_PERCENT),
                    "resources": [dict(o.DISK_USED_PERCENT.dimensions)["path"]],
                    "drop_device": True,
                },
                # Loopback: the agent asks no credentials of a local endpoint (otel/receiver/jmx/translator.go).
                "jmx": {
                    "endpoint": f"127.0.0.1:{JMX_PORT}",
                    "jvm": {"measurement": _measurements(o.HEAP_USED, o.HEAP_MAX, o.THREADS, o.GC_TIME)},
                },
            },
        },
    }


def render_agent_config_json(settings: Settings, home: str | None = None) -> str | None:
    config = render_agent_config(settings, home)
    return None if config is None else json.dumps(config, separators=(",", ":")) + "\n"  # compact: user data is small
