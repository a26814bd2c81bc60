"""The pair's CloudWatch dashboard body (pure; no cdktf import): the same metrics the alarms watch, one row per concern.

Body structure: AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html (a metric widget's
"metrics" is a list of [namespace, name, dimension name, value, ..., {options}]).
"""

from __future__ import annotations

import json

from apim_active_active import observability as obs
from apim_active_active.renderers.alarms import FIVE_MINUTES, Metric, Observed, node_metric
from apim_active_active.settings import Settings

WIDTH, HEIGHT, COLUMNS = 12, 6, 2


def _line(metric: Metric, label: str) -> list:
    return [metric.namespace, metric.name, *[part for pair in metric.dimensions for part in pair], {"stat": metric.stat, "label": label}]


def _widget(title: str, lines: list[list], region: str) -> dict:
    properties = {"title": title, "region": region, "view": "timeSeries", "period": FIVE_MINUTES, "metrics": lines}
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": properties}


def _node_widget(title: str, prefix: str, nodes: list, metrics: tuple, stat: str, region: str) -> dict:
    """One line per node and metric the agent publishes."""
    lines = [_line(node_metric(prefix, m, i, stat), f"node {n} {m.name}") for n, i in nodes for m in metrics]
    return _widget(title, lines, region)


def dashboard_widgets(settings: Settings, observed: Observed) -> list[dict]:
    """Every widget, in reading order, placed two to a row."""
    prefix, region, elb, lb = settings.name_prefix, settings.region, "AWS/ApplicationELB", ("LoadBalancer", observed.load_balancer)
    nodes = list(enumerate(observed.instance_ids, start=1))
    health = [
        _line(Metric(elb, f"{state}HostCount", (("TargetGroup", group), lb), "Maximum"), f"{route} {state.lower()}")
        for route, group in observed.target_groups
        for state in ("Healthy", "UnHealthy")
    ]
    widgets = [
        _widget("Target health (both nodes, per route)", health, region),
        _widget(
            "Latency (load balancer to node)",
            [_line(Metric(elb, "TargetResponseTime", (lb,), stat), stat) for stat in ("p50", "p95", "p99")],
            region,
        ),
        _widget(
            "Requests and errors",
            [
                _line(Metric(elb, "RequestCount", (lb,), "Sum"), "requests"),
                _line(Metric(elb, "HTTPCode_Target_5XX_Count", (lb,), "Sum"), "node 5xx"),
                _line(Metric(elb, "HTTPCode_ELB_5XX_Count", (lb,), "Sum"), "load balancer 5xx"),
            ],
            region,
        ),
        _widget(
            "EC2 status checks",
            [_line(Metric("AWS/EC2", "StatusCheckFailed", (("InstanceId", i),), "Maximum"), f"node {n}") for n, i in nodes],
            region,
        ),
    ]
    if settings.observability.agent:
        widgets += [
            _node_widget("JVM heap (used, max)", prefix, nodes, (obs.HEAP_USED, obs.HEAP_MAX), "Average", region),
            _node_widget("Memory and disk used, %", prefix, nodes, (obs.MEMORY_USED_PERCENT, obs.DISK_USED_PERCENT), "Maximum", region),
            _widget(
                "Share and boot (from the boot log)",
                [
                    _line(Metric(obs.metric_namespace(prefix), obs.SHARE_MISSING_METRIC, (), "Maximum"), "share missing"),
                    _line(Metric(obs.metric_namespace(prefix), obs.BOOT_FAILED_METRIC, (), "Sum"), "boot failed"),
                ],
                region,
            ),
        ]
    if observed.database_id:
        db = (("DBInstanceIdentifier", observed.database_id),)
        widgets.append(
            _widget(
                "Database",
                [
                    _line(Metric("AWS/RDS", "CPUUtilization", db, "Average"), "CPU %"),
                    _line(Metric("AWS/RDS", "DatabaseConnections", db, "Maximum"), "connections"),
                ],
                region,
            )
        )
    if observed.file_system_id:
        fs = (("FileSystemId", observed.file_system_id),)
        lines = [_line(Metric("AWS/EFS", "PercentIOLimit", fs, "Maximum"), "I/O limit %")]
        if settings.shared_fs.throughput_mode == "bursting":
            lines.append(_line(Metric("AWS/EFS", "BurstCreditBalance", fs, "Minimum"), "burst credits"))
        widgets.append(_widget("Shared file system (EFS)", lines, region))
    for index, widget in enumerate(widgets):
        widget |= {"x": (index % COLUMNS) * WIDTH, "y": (index // COLUMNS) * HEIGHT}
    return widgets


def dashboard_body(settings: Settings, observed: Observed) -> str:
    return json.dumps({"widgets": dashboard_widgets(settings, observed)})
