"""What the stack alarms on, as data (pure; no cdktf import): one AlarmSpec per alarm, built from the settings and
the ids only an apply knows (Observed: Terraform references in the stack, plain strings in the tests).

Metric names and dimensions are AWS's documented ones: ALB (elasticloadbalancing/latest/application/
load-balancer-cloudwatch-metrics.html), EC2 status checks (AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html),
RDS (AmazonRDS/latest/UserGuide/rds-metrics.html), EFS (efs/latest/ug/efs-metrics.html), ACM DaysToExpiry
(acm/latest/userguide/cloudwatch-metrics.html); the nodes' own come from apim_active_active.observability.
Missing data (AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data): "notBreaching"
where no data means no traffic, "ignore" where a metric only reports changes (the state holds), "breaching" where
no data means the node's agent (or the node) is down, "missing" where AWS reports steadily and a gap is AWS's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from apim_active_active import observability as obs
from apim_active_active.names import resource_name
from apim_active_active.renderers.systemd_units import has_share_watch
from apim_active_active.settings import Settings

GIB = 1024**3
MINUTE, FIVE_MINUTES, DAY = 60, 300, 86400
ABOVE, AT_LEAST, BELOW = "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold"


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str  # a statistic (Average, Maximum, Minimum, Sum) or a percentile (p95)


@dataclass(frozen=True)
class MetricMath:
    expression: str  # over the ids of its metrics
    metrics: tuple[tuple[str, Metric], ...]  # (id, metric)
    label: str


@dataclass(frozen=True)
class AlarmSpec:
    name: str  # starts with the name prefix: scripts/status.py lists alarms in ALARM by it
    reason: str  # one line: why it matters (the alarm's description)
    watched: Metric | MetricMath
    period: int
    evaluation_periods: int
    datapoints: int  # of evaluation_periods, breaching, to alarm
    threshold: float
    comparison: str
    treat_missing_data: str
    setting: str  # the threshold's setting (observability.alarms.<field>), or "" when fixed
    ec2_actions: tuple[str, ...] = ()  # arn:aws:automate:<region>:ec2:<action>, besides the topic


@dataclass(frozen=True)
class Observed:
    """The ids of what the alarms watch, known only at apply (Terraform references); None where the stack has none."""

    load_balancer: str  # the load balancer's ARN suffix (app/<name>/<id>): the LoadBalancer dimension
    target_groups: tuple[tuple[str, str], ...]  # (route name, target group ARN suffix)
    instance_ids: tuple[str, ...]  # node 1 first
    database_id: str | None  # the RDS instance identifier, None with database.existing
    file_system_id: str | None  # EFS, None with rsync
    certificate_arn: str  # the load balancer's certificate (load_balancer.certificate_arn or the one found by domain)


@dataclass(frozen=True)
class LogMetricFilter:
    name: str
    pattern: str
    metric: str
    value: str


def log_metric_filters(name_prefix: str) -> tuple[LogMetricFilter, ...]:
    """The boot log's lines that become metrics. A term with spaces or punctuation is matched whole only in double
    quotes (AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)."""
    return (
        LogMetricFilter(resource_name(name_prefix, "share-missing"), f'"{obs.SHARE_VERDICT_MISSING}"', obs.SHARE_MISSING_METRIC, "1"),
        LogMetricFilter(resource_name(name_prefix, "share-present"), f'"{obs.SHARE_VERDICT_PRESENT}"', obs.SHARE_MISSING_METRIC, "0"),
        LogMetricFilter(resource_name(name_prefix, "boot-failed"), f'"{obs.BOOT_FAILED}"', obs.BOOT_FAILED_METRIC, "1"),
        # Space-delimited, every field of the line named, so that no other line ending in "<n> days" matches; the value
        # is the days field's.
        LogMetricFilter(
            resource_name(name_prefix, "keystore-days"),
            f'[time, tool="wso2am-boot:", what="{obs.KEYSTORE_EXPIRY_LINE}", days, unit="days"]',
            obs.KEYSTORE_DAYS_METRIC,
            "$days",
        ),
    )


def boot_log_key(settings: Settings) -> str:
    return next(log.key for log in obs.shipped_logs(settings) if log.path == obs.BOOT_LOG)


def node_metric(name_prefix: str, metric: obs.NodeMetric, instance_id: str, stat: str) -> Metric:
    return Metric(obs.metric_namespace(name_prefix), metric.name, (("InstanceId", instance_id), *metric.dimensions), stat)


def alarm_specs(settings: Settings, observed: Observed) -> tuple[AlarmSpec, ...]:
    specs = [*_load_balancer(settings, observed), *_nodes(settings, observed)]
    if settings.observability.agent:
        specs += _node_agent(settings, observed)
    if observed.database_id:
        specs += _database(settings, observed.database_id)
    if observed.file_system_id:
        specs += _file_system(settings, observed.file_system_id)
    specs.append(_certificate(settings, observed.certificate_arn))
    return tuple(specs)


def _name(settings: Settings, what: str) -> str:
    return resource_name(settings.name_prefix, what)


def _unhealthy_description(settings: Settings, route: str) -> str:
    if settings.gateway_scale_out and route != "management":
        # A gateway node joins these target groups only once ready (its launch lifecycle hook): no alarm on scale-out.
        return f"A node (of the pair or the gateway group) fails the {route} health check"
    return f"A node fails the {route} health check: the pair runs on one node, or on none"


def _load_balancer(settings: Settings, observed: Observed) -> list[AlarmSpec]:
    limits, lb = settings.observability.alarms, ("LoadBalancer", observed.load_balancer)
    elb = "AWS/ApplicationELB"
    specs = [
        AlarmSpec(
            _name(settings, f"{route}-unhealthy-targets"),
            _unhealthy_description(settings, route),
            Metric(elb, "UnHealthyHostCount", (("TargetGroup", group), lb), "Maximum"),
            MINUTE,
            2,
            2,
            limits.unhealthy_targets,
            AT_LEAST,
            "missing",
            "unhealthy_targets",
        )  # fmt: skip
        for route, group in observed.target_groups
    ]
    errors = MetricMath(
        "100 * FILL(errors, 0) / requests",
        (("errors", Metric(elb, "HTTPCode_Target_5XX_Count", (lb,), "Sum")), ("requests", Metric(elb, "RequestCount", (lb,), "Sum"))),
        "Target 5xx, % of requests",
    )
    specs += [
        AlarmSpec(
            _name(settings, "target-5xx-rate"),
            "The nodes answer a share of requests with server errors",
            errors,
            FIVE_MINUTES,
            1,
            1,
            limits.target_5xx_percent,
            ABOVE,
            "notBreaching",
            "target_5xx_percent",
        ),  # fmt: skip
        AlarmSpec(
            _name(settings, "response-time-p95"),
            "The nodes answer slowly (95th percentile, load balancer to node and back)",
            Metric(elb, "TargetResponseTime", (lb,), "p95"),
            FIVE_MINUTES,
            1,
            1,
            limits.response_time_p95_seconds,
            ABOVE,
            "notBreaching",
            "response_time_p95_seconds",
        ),  # fmt: skip
    ]
    return specs


def _nodes(settings: Settings, observed: Observed) -> list[AlarmSpec]:
    """EC2's status checks, with EC2's own remedies: recover keeps the instance id and its fixed private address
    (AWSEC2/latest/UserGuide/ec2-instance-recover.html), which the peer's deployment.toml names; reboot for the
    instance's own failure (AWSEC2/latest/UserGuide/UsingAlarmActions.html)."""
    automate = f"arn:aws:automate:{settings.region}:ec2"
    specs = []
    for number, instance_id in enumerate(observed.instance_ids, start=1):
        node = (("InstanceId", instance_id),)
        specs += [
            AlarmSpec(
                _name(settings, f"node-{number}-system-check"),
                f"Node {number}'s host failed: EC2 recovers it, same address",
                Metric("AWS/EC2", "StatusCheckFailed_System", node, "Maximum"),
                MINUTE,
                2,
                2,
                1,
                AT_LEAST,
                "missing",
                "",
                (f"{automate}:recover",),
            ),  # fmt: skip
            AlarmSpec(
                _name(settings, f"node-{number}-instance-check"),
                f"Node {number}'s operating system stopped answering: EC2 reboots it",
                Metric("AWS/EC2", "StatusCheckFailed_Instance", node, "Maximum"),
                MINUTE,
                3,
                3,
                1,
                AT_LEAST,
                "missing",
                "",
                (f"{automate}:reboot",),
            ),  # fmt: skip
        ]
    return specs


# The agent's own percentages, alarmed alike: (alarm name part, metric, threshold setting, what follows "Node N").
AGENT_PERCENTS = (
    ("disk", obs.DISK_USED_PERCENT, "disk_percent", "'s root file system fills: logs and the product stop writing"),
    ("memory", obs.MEMORY_USED_PERCENT, "memory_percent", " is short of memory: the kernel may kill API-M"),
)


def _node_agent(settings: Settings, observed: Observed) -> list[AlarmSpec]:
    """What the CloudWatch agent and the boot log report. Memory and disk come from the agent alone: no data for 15
    minutes means the agent or the node is down, an alarm. Heap comes through API-M's JMX: no data means API-M is down,
    which the unhealthy-target alarms already report, so the heap alarm keeps its state."""
    prefix, limits = settings.name_prefix, settings.observability.alarms
    specs = []
    for number, instance_id in enumerate(observed.instance_ids, start=1):
        used, most = (node_metric(prefix, metric, instance_id, "Average") for metric in (obs.HEAP_USED, obs.HEAP_MAX))
        heap = MetricMath("100 * used / max", (("used", used), ("max", most)), f"Node {number} JVM heap used, %")
        specs += [
            AlarmSpec(
                _name(settings, f"node-{number}-heap"),
                f"Node {number}'s API-M is short of heap: long GC pauses, then OutOfMemoryError",
                heap,
                FIVE_MINUTES,
                1,
                1,
                limits.heap_percent,
                ABOVE,
                "ignore",
                "heap_percent",
            ),  # fmt: skip
            *(
                AlarmSpec(
                    _name(settings, f"node-{number}-{what}"),
                    f"Node {number}{reason}",
                    node_metric(prefix, metric, instance_id, "Maximum"),
                    FIVE_MINUTES,
                    3,
                    3,
                    getattr(limits, setting),
                    ABOVE,
                    "breaching",
                    setting,
                )
                for what, metric, setting, reason in AGENT_PERCENTS
            ),
        ]
    namespace = obs.metric_namespace(prefix)
    specs.append(
        AlarmSpec(
            _name(settings, "boot-failed"),
            "A node's boot step stopped before API-M ran (its log group names the node and the step)",
            Metric(namespace, obs.BOOT_FAILED_METRIC, (), "Sum"),
            MINUTE,
            1,
            1,
            1,
            AT_LEAST,
            "notBreaching",
            "",
        )  # fmt: skip
    )
    specs.append(
        AlarmSpec(
            _name(settings, "keystore-expiry"),
            "The pair's signing certificate (keystore) expires soon: tokens and API keys stop validating; rotate it "
            "(scripts/rotate_keystore.py, docs/keystore.md)",
            # Each node's line, daily: the least any node (pair or gateway group) reports.
            Metric(namespace, obs.KEYSTORE_DAYS_METRIC, (), "Minimum"),
            DAY,
            1,
            1,
            settings.keystore.expiry_warning_days,
            BELOW,
            "missing",
            "",
        )  # fmt: skip
    )
    if any(has_share_watch(settings, index) for index in range(2)):
        specs.append(
            AlarmSpec(
                _name(settings, "share-missing"),
                "A node's share watch found its share unreachable and stopped API-M there",
                # Verdicts: "present" once a minute at most, "missing" at each look: the state holds between lines.
                Metric(namespace, obs.SHARE_MISSING_METRIC, (), "Maximum"),
                MINUTE,
                1,
                1,
                1,
                AT_LEAST,
                "ignore",
                "",
            )  # fmt: skip
        )
    return specs


def _database(settings: Settings, database_id: str) -> list[AlarmSpec]:
    limits, db = settings.observability.alarms, (("DBInstanceIdentifier", database_id),)
    return [
        AlarmSpec(
            _name(settings, "database-cpu"),
            "The shared database is busy: every API-M call that reads it slows on both nodes",
            Metric("AWS/RDS", "CPUUtilization", db, "Average"),
            FIVE_MINUTES,
            3,
            3,
            limits.database_cpu_percent,
            ABOVE,
            "missing",
            "database_cpu_percent",
        ),  # fmt: skip
        AlarmSpec(
            _name(settings, "database-free-storage"),
            "The shared database runs out of storage: writes (tokens, events) fail",
            Metric("AWS/RDS", "FreeStorageSpace", db, "Minimum"),
            FIVE_MINUTES,
            1,
            1,
            limits.database_free_storage_gb * GIB,
            BELOW,
            "missing",
            "database_free_storage_gb",
        ),  # fmt: skip
        AlarmSpec(
            _name(settings, "database-connections"),
            "The nodes' pools hold more connections than planned: a leak, or max_connections near",
            Metric("AWS/RDS", "DatabaseConnections", db, "Maximum"),
            FIVE_MINUTES,
            2,
            2,
            limits.database_connections,
            ABOVE,
            "missing",
            "database_connections",
        ),  # fmt: skip
    ]


def _file_system(settings: Settings, file_system_id: str) -> list[AlarmSpec]:
    limits, fs = settings.observability.alarms, (("FileSystemId", file_system_id),)
    specs = [
        AlarmSpec(
            _name(settings, "share-io-limit"),
            "The share nears General Purpose mode's I/O ceiling: artifact reads slow on both nodes",
            Metric("AWS/EFS", "PercentIOLimit", fs, "Maximum"),
            FIVE_MINUTES,
            3,
            3,
            limits.efs_io_limit_percent,
            ABOVE,
            "notBreaching",
            "efs_io_limit_percent",
        )  # fmt: skip
    ]
    if settings.shared_fs.throughput_mode == "bursting":
        specs.append(
            AlarmSpec(
                _name(settings, "share-burst-credits"),
                "The share's burst credits run out: throughput drops to its baseline",
                Metric("AWS/EFS", "BurstCreditBalance", fs, "Minimum"),
                FIVE_MINUTES,
                1,
                1,
                limits.efs_burst_credit_gb * GIB,
                BELOW,
                "missing",
                "efs_burst_credit_gb",
            )  # fmt: skip
        )
    return specs


def _certificate(settings: Settings, certificate_arn: str) -> AlarmSpec:
    # ACM publishes DaysToExpiry once a day; an imported certificate is never renewed by ACM.
    return AlarmSpec(
        _name(settings, "certificate-expiry"), "The load balancer's certificate expires soon: clients will refuse the pair",
        Metric("AWS/CertificateManager", "DaysToExpiry", (("CertificateArn", certificate_arn),), "Minimum"),
        DAY, 1, 1, settings.observability.alarms.certificate_days, BELOW, "missing", "certificate_days",
    )  # fmt: skip
