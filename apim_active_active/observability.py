"""What the nodes ship and publish, and what the stack alarms on: the one contract between the node side (the
CloudWatch agent's configuration, the boot step's log lines) and the AWS side (log groups, metric filters, alarms,
the dashboard, scripts/status.py). No cdktf import here; both sides import these names, never spell them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from apim_active_active.settings import Settings

# The boot step's own log, on every node (log() in files/boot/common.sh appends to it).
BOOT_LOG = "/var/log/wso2am/boot.log"
CLOUD_INIT_LOG = "/var/log/cloud-init-output.log"  # cloud-init's output (user data, packages, runcmd)


@dataclass(frozen=True)
class ShippedLog:
    key: str  # the log group's last part: /<name_prefix>/<key>
    path: str  # absolute, or relative to the product's home (APIM_HOME); may end in a glob
    multi_line_start: str | None = None  # regex of an event's first line: a Java stack trace stays in its event
    timestamp_format: str | None = None  # the agent's strftime-like format of the event's time in the line


# Each product log's layout in repository/conf/log4j2.properties (wso2/product-apim, the same from v3.2.0 to v4.7.0):
# CARBON_LOGFILE `TID: [%tenantId] [%appName] [%d] ...`, AUDIT_LOGFILE `TID: [%tenantId] [%d] ...`, ERROR_LOGFILE
# `%d{ISO8601} [...] ...`, CORRELATION `%d{yyyy-MM-dd HH:mm:ss,SSS}|...`. A line that does not start like its layout
# is a continuation (a stack trace's "at ..."); the agent glues it to the event before (its tailer), so a pattern that
# never matches would glue a whole file into one event until the agent drops it at 256 KB.
CARBON_EVENT_START = r"^TID: \[[^\]]*\] \[[^\]]*\] \[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\]"
AUDIT_EVENT_START = r"^TID: \[[^\]]*\] \[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\]"
GATEWAY_ERROR_EVENT_START = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2},\d{3} "
LOG4J_DEFAULT_DATE = "%Y-%m-%d %H:%M:%S,%f"  # log4j2's %d (and the correlation log's explicit pattern)
LOG4J_ISO8601 = "%Y-%m-%dT%H:%M:%S,%f"  # log4j2's %d{ISO8601}
ACCESS_LOG_DATE = "%d/%b/%Y:%H:%M:%S %z"  # Tomcat's access-log %t


def shipped_logs(settings: Settings) -> tuple[ShippedLog, ...]:
    """Every log the agent ships from a node of these settings."""
    logs = [
        ShippedLog("apim/carbon", "repository/logs/wso2carbon.log", CARBON_EVENT_START, LOG4J_DEFAULT_DATE),
        ShippedLog("apim/http-access", "repository/logs/http_access_*.log", None, ACCESS_LOG_DATE),
        ShippedLog("apim/audit", "repository/logs/audit.log", AUDIT_EVENT_START, LOG4J_DEFAULT_DATE),
        ShippedLog("apim/gateway-errors", "repository/logs/wso2-apigw-errors.log", GATEWAY_ERROR_EVENT_START, LOG4J_ISO8601),
        ShippedLog("node/boot", BOOT_LOG),
        ShippedLog("node/cloud-init", CLOUD_INIT_LOG),
    ]
    if settings.observability.correlation_log:
        logs.append(ShippedLog("apim/correlation", "repository/logs/correlation.log", None, LOG4J_DEFAULT_DATE))
    return tuple(logs)


def log_group_name(name_prefix: str, key: str) -> str:
    """Under /<name_prefix>/: the stack key's policy lets CloudWatch Logs use the key for exactly those groups."""
    return f"/{name_prefix}/{key}"


def metric_namespace(name_prefix: str) -> str:
    """The namespace of everything the nodes publish (agent metrics) and the log metric filters make."""
    return f"WSO2-APIM/{name_prefix}"


@dataclass(frozen=True)
class NodeMetric:
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()  # besides InstanceId, which every node metric carries


# What the agent publishes per node (dimension InstanceId plus these), by the names the agent gives them: mem and disk
# from its host plugins, the JVM's through its `jmx` section (the OpenTelemetry JMX metric gatherer's "jvm" target).
# renderers/cloudwatch_agent.py makes the published dimension sets exactly these (see AGGREGATION_DIMENSIONS).
MEMORY_USED_PERCENT = NodeMetric("mem_used_percent")
DISK_USED_PERCENT = NodeMetric("disk_used_percent", (("path", "/"),))
HEAP_USED = NodeMetric("jvm.memory.heap.used")
HEAP_MAX = NodeMetric("jvm.memory.heap.max")
THREADS = NodeMetric("jvm.threads.count")
GC_TIME = NodeMetric("jvm.gc.collections.elapsed")  # ms spent in GC per period, every collector of the JVM summed
NODE_METRICS = (MEMORY_USED_PERCENT, DISK_USED_PERCENT, HEAP_USED, HEAP_MAX, THREADS, GC_TIME)

# The boot step's log lines that metric filters turn into metrics (no dimension: any node; the log names which).
SHARE_VERDICT_MISSING = "share-watch verdict: missing"
SHARE_VERDICT_PRESENT = "share-watch verdict: present"
BOOT_FAILED = "boot failed"
SHARE_MISSING_METRIC = "ShareMissing"
BOOT_FAILED_METRIC = "BootFailed"
BOOT_DONE = "wso2am-boot: done"  # the boot step's last line when it ran to its end (scripts/status.py looks for it)
# Every node's (pair and gateway group) boot log line, daily and at each start of API-M (observe.sh's keystore_expiry):
# "<time> wso2am-boot: keystore-expiry: <days> days", the days left of the pair's signing certificate (the keystore's
# wso2carbon); a metric filter makes <days> a metric with no dimension (the least any node reports is what counts).
KEYSTORE_EXPIRY_LINE = "keystore-expiry:"
KEYSTORE_DAYS_METRIC = "KeystoreDaysToExpiry"
