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
    multi_line_start: str | None  # regex of an event's first line: a Java stack trace stays in its event


def shipped_logs(settings: Settings) -> tuple[ShippedLog, ...]:
    """Every log the agent ships from a node of these settings."""
    logs = [
        ShippedLog("apim/carbon", "repository/logs/wso2carbon.log", CARBON_EVENT_START),
        ShippedLog("apim/http-access", "repository/logs/http_access_*.log", None),
        ShippedLog("apim/audit", "repository/logs/audit.log", CARBON_EVENT_START),
        ShippedLog("apim/gateway-errors", "repository/logs/wso2-apigw-errors.log", CARBON_EVENT_START),
        ShippedLog("node/boot", BOOT_LOG, None),
        ShippedLog("node/cloud-init", CLOUD_INIT_LOG, None),
    ]
    if settings.observability.correlation_log:
        logs.append(ShippedLog("apim/correlation", "repository/logs/correlation.log", None))
    return tuple(logs)


# log4j2's layouts in the product's repository/conf/log4j2.properties start each event with its date in brackets
# (3.2: after "TID: [tenant] [app] "), so a line that does not is a continuation (a stack trace's "at ...").
CARBON_EVENT_START = r"^(TID: \[[^\]]*\] \[[^\]]*\] )?\[\d{4}-\d{2}-\d{2}"


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


# What the agent publishes per node (dimension InstanceId plus these), by the names the agent gives them.
MEMORY_USED_PERCENT = NodeMetric("mem_used_percent")
DISK_USED_PERCENT = NodeMetric("disk_used_percent", (("path", "/"),))
HEAP_USED = NodeMetric("jvm.memory.heap.used")
HEAP_MAX = NodeMetric("jvm.memory.heap.max")
THREADS = NodeMetric("jvm.threads.count")
GC_TIME = NodeMetric("jvm.gc.collections.elapsed")

# The boot step's log lines that metric filters turn into metrics (no dimension: any node; the log names which).
SHARE_VERDICT_MISSING = "share-watch verdict: missing"
SHARE_VERDICT_PRESENT = "share-watch verdict: present"
BOOT_FAILED = "boot failed"
SHARE_MISSING_METRIC = "ShareMissing"
BOOT_FAILED_METRIC = "BootFailed"
BOOT_DONE = "wso2am-boot: done"  # the boot step's last line when it ran to its end (scripts/status.py looks for it)
