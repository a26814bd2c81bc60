"""The rehearsal's look at log shipping: every file the CloudWatch agent is told to ship exists on a booted node, the
(stand-in) agent was started with that configuration, and API-M's rotated logs are bounded."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

from apim_active_active.renderers.node_layout import AGENT_CONFIG, JMX_PORT, RUNTIME_ENV

AGENT_CALLS = "/var/lib/rehearsal/agent-ctl.calls"  # what the stand-in amazon-cloudwatch-agent-ctl records
# Written to from the first boot on (the others may rightly be empty: no gateway error, no audit event yet).
NEVER_EMPTY = ("wso2carbon.log", "boot.log", "cloud-init-output.log", "http_access_")
SHIPPED_CHECK = "log shipping: every file the agent is told to ship is on the node, and the agent started with that configuration"
BOUNDED_CHECK = "log rotation: API-M's shipped logs carry log4j2's Delete action (age-bounded)"
BOUNDED_APPENDERS = ("CARBON_LOGFILE", "AUDIT_LOGFILE", "ERROR_LOGFILE", "CORRELATION")
JCMD_CALLS = "/tmp/rehearsal-jcmd.calls"  # what the stand-in jcmd records
JMX_CHECK = (
    "JMX: started on loopback in API-M's running process by the unit's ExecStartPost (jcmd ManagementAgent.start as "
    "its user), not through the environment the start script hands to every JVM"
)


class LogShipping:
    def check_log_shipping(self) -> None:
        for number, node in enumerate(self.nodes, start=1):
            self._check_shipped_files(str(number), node)
            self._check_rotation_bounded(str(number), node)
            self._check_jmx(str(number), node)

    def _check_shipped_files(self, name: str, node) -> None:
        config_file = node.path(AGENT_CONFIG)
        if not config_file.is_file():
            self.check(SHIPPED_CHECK, name, False, f"no {AGENT_CONFIG} on the node")
            return
        entries = json.loads(config_file.read_text())["logs"]["logs_collected"]["files"]["collect_list"]
        problems = []
        for entry in entries:
            found = sorted(glob.glob(str(node.path(entry["file_path"]))))
            if not found:
                problems.append(f"missing {entry['file_path']}")
            elif any(word in entry["file_path"] for word in NEVER_EMPTY) and not any(os.path.getsize(path) for path in found):
                problems.append(f"empty {entry['file_path']}")
            start = entry.get("multi_line_start_pattern")
            first_lines = [line for path in found for line in Path(path).read_text(errors="replace").splitlines()[:1]]
            if start and any(not re.match(start, line) for line in first_lines):
                problems.append(f"{entry['file_path']} starts unlike its multi_line_start_pattern: {first_lines[0][:80]!r}")
        calls_file = node.path(AGENT_CALLS)
        calls = calls_file.read_text().splitlines() if calls_file.is_file() else []
        wanted = f"-a fetch-config -m ec2 -s -c file:{AGENT_CONFIG}"
        if wanted not in calls:
            problems.append(f"agent ctl never called as `{wanted}` (calls: {calls or 'none'})")
        self.check(SHIPPED_CHECK, name, not problems, "; ".join(problems) or f"{len(entries)} files; agent started")

    def _check_rotation_bounded(self, name: str, node) -> None:
        home = self.settings.apim.home
        conf = node.path(f"{home}/repository/conf/log4j2.properties")
        text = conf.read_text() if conf.is_file() else ""
        days = self.settings.observability.local_log_days
        missing = [
            appender
            for appender in BOUNDED_APPENDERS
            if f"appender.{appender}.strategy.action.type = Delete" not in text
            or f"appender.{appender}.strategy.action.ifLastModified.age = {days}d" not in text
        ]
        self.check(BOUNDED_CHECK, name, bool(text) and not missing, f"not bounded: {missing}" if missing or not text else f"{days} days")

    def _check_jmx(self, name: str, node) -> None:
        calls_file, runtime_env = node.path(JCMD_CALLS), node.path(RUNTIME_ENV)
        calls = calls_file.read_text().splitlines() if calls_file.is_file() else []
        problems = [] if calls else ["jcmd never called"]
        port = f"jmxremote.port={JMX_PORT}"
        problems += [f"not loopback only: {call}" for call in calls if "jmxremote.host=127.0.0.1" not in call or port not in call]
        if "jmxremote" in (runtime_env.read_text() if runtime_env.is_file() else ""):
            problems.append(f"{RUNTIME_ENV} carries JMX options (WSO2's diagnostics tool would get them too)")
        self.check(JMX_CHECK, name, not problems, "; ".join(problems) or calls[-1])
