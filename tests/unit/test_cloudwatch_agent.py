"""The CloudWatch agent's configuration a node gets: valid for the agent (our subset of its schema), shipping exactly
observability.shipped_logs, publishing exactly observability's node metrics; and the boot step's side of the contract
(the log lines metric filters count)."""

from __future__ import annotations

import copy
import re
import subprocess
import time

import jsonschema
import pytest

from apim_active_active import observability
from apim_active_active.renderers.boot_script import AGENT_CONFIG, BOOT_PARTS, boot_part, render_node_env, render_user_data
from apim_active_active.renderers.cloudwatch_agent import AGGREGATION_DIMENSIONS, render_agent_config, render_agent_config_json
from apim_active_active.renderers.systemd_units import render_systemd_unit
from apim_active_active.settings import Settings, parse_settings
from tests.conftest import DEPLOYED, local_settings_dict

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
_MEASUREMENT = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}, "uniqueItems": True}
# The sections we use of the agent's schema, in our own words: aws/amazon-cloudwatch-agent v1.300071.0,
# translator/config/schema.json. `additionalProperties: false` wherever that file has it (the root, logs, files,
# a collect_list entry, metrics, the jmx object); open where it is (the agent section, mem and disk).
AGENT_SCHEMA_SUBSET = {
    "type": "object",
    "required": ["logs", "metrics"],
    "properties": {
        "agent": {
            "type": "object",
            "properties": {
                "metrics_collection_interval": {"type": "integer", "minimum": 1, "maximum": 172800},
                "omit_hostname": {"type": "boolean"},
            },
        },
        "logs": {
            "type": "object",
            "additionalProperties": False,
            "required": ["logs_collected"],
            "properties": {
                "log_stream_name": {"type": "string", "minLength": 1, "maxLength": 512},
                "logs_collected": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {
                        "files": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["collect_list"],
                            "properties": {
                                "collect_list": {
                                    "type": "array",
                                    "minItems": 1,
                                    "uniqueItems": True,
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["file_path"],
                                        "properties": {
                                            "file_path": {"type": "string", "maxLength": 4096},
                                            "log_group_name": {"type": "string", "minLength": 1, "maxLength": 512},
                                            "log_stream_name": {"type": "string", "minLength": 1, "maxLength": 512},
                                            "multi_line_start_pattern": {"type": "string", "minLength": 1, "maxLength": 4096},
                                            "timestamp_format": {"type": "string", "minLength": 1, "maxLength": 4096},
                                            "timezone": {"enum": ["Local", "LOCAL", "UTC"]},
                                            "encoding": {"type": "string", "minLength": 1, "maxLength": 4096},
                                        },
                                    },
                                }
                            },
                        }
                    },
                },
            },
        },
        "metrics": {
            "type": "object",
            "additionalProperties": False,
            "required": ["metrics_collected"],
            "properties": {
                "namespace": {"type": "string", "minLength": 1, "maxLength": 255},
                "append_dimensions": {"type": "object", "maxProperties": 30, "additionalProperties": {"type": "string", "minLength": 1}},
                "aggregation_dimensions": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _STRINGS},
                "metrics_collected": {
                    "type": "object",
                    "properties": {
                        "mem": {"type": "object", "required": ["measurement"], "properties": {"measurement": _MEASUREMENT}},
                        "disk": {
                            "type": "object",
                            "required": ["measurement"],
                            "properties": {"measurement": _MEASUREMENT, "resources": _STRINGS, "drop_device": {"type": "boolean"}},
                        },
                        "jmx": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["jvm"],
                            "properties": {
                                "endpoint": {"type": "string", "minLength": 1},
                                "jvm": {"type": "object", "required": ["measurement"], "properties": {"measurement": _MEASUREMENT}},
                            },
                        },
                    },
                },
            },
        },
    },
    "additionalProperties": False,
}


def with_observability(**values) -> Settings:
    raw = local_settings_dict()
    raw.setdefault("observability", {}).update(values)
    return parse_settings(raw, environ={})


@pytest.fixture
def local(environments):
    return environments["local"]


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod"])
def test_the_agent_configuration_is_valid_for_the_agents_schema(environments, env):
    jsonschema.validate(render_agent_config(environments[env]), AGENT_SCHEMA_SUBSET)


def _misspelt(config: dict, section: str) -> dict:
    broken = copy.deepcopy(config)
    where = {
        "collect_list entry": broken["logs"]["logs_collected"]["files"]["collect_list"][0],
        "metrics": broken["metrics"],
        "jmx": broken["metrics"]["metrics_collected"]["jmx"],
    }[section]
    where["multiline_start_pattern"] = "^x"  # the agent's key is multi_line_start_pattern
    return broken


@pytest.mark.parametrize("section", ["collect_list entry", "metrics", "jmx"])
def test_the_schema_subset_refuses_a_misspelt_key_where_the_agent_does(local, section):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_misspelt(render_agent_config(local), section), AGENT_SCHEMA_SUBSET)


def test_every_shipped_log_is_collected_absolute_into_its_group(local):
    collected = render_agent_config(local)["logs"]["logs_collected"]["files"]["collect_list"]
    shipped = observability.shipped_logs(local)
    assert [entry["log_group_name"] for entry in collected] == [observability.log_group_name(local.name_prefix, log.key) for log in shipped]
    assert collected[0]["file_path"] == f"{local.apim.home}/repository/logs/wso2carbon.log"
    assert all(entry["file_path"].startswith("/") for entry in collected)
    assert {entry["file_path"] for entry in collected} >= {observability.BOOT_LOG, observability.CLOUD_INIT_LOG}
    assert render_agent_config(local)["logs"]["log_stream_name"] == "{instance_id}"


# Lines as each layout of repository/conf/log4j2.properties writes them (wso2/product-apim v3.2.0 to v4.7.0), each
# followed by a stack trace's lines.
PRODUCT_LINES = {
    "apim/carbon": "TID: [-1234] [] [2024-05-01 10:00:00,123] ERROR {org.apache.synapse.core.axis2.Axis2Sender} - failed",
    "apim/audit": "TID: [-1234] [2024-05-01 10:00:00,123]  INFO {AUDIT_LOG} - Initiator : admin | Action : Login",
    "apim/gateway-errors": "2024-05-01T10:00:00,123 [10.0.1.10-node1] [PassThroughMessageProcessor-1] ERROR {TargetHandler} I/O error",
}
TRACE = ("\tat org.apache.synapse.core.axis2.Axis2Sender.sendOn(Axis2Sender.java:84)", "Caused by: java.net.ConnectException: refused")


@pytest.mark.parametrize("key", PRODUCT_LINES)
def test_java_stack_traces_stay_in_their_event_in_each_product_log(local, key):
    collected = render_agent_config(local)["logs"]["logs_collected"]["files"]["collect_list"]
    (entry,) = [e for e in collected if e["log_group_name"] == observability.log_group_name(local.name_prefix, key)]
    start = re.compile(entry["multi_line_start_pattern"])
    assert start.match(PRODUCT_LINES[key])
    assert not any(start.match(line) for line in TRACE)
    assert time.strptime(re.search(r"\d{4}-\d{2}-\d{2}.\d{2}:\d{2}:\d{2}", PRODUCT_LINES[key]).group(), entry["timestamp_format"][:17])


def test_the_correlation_log_is_shipped_only_when_on(local):
    def groups(settings):
        return {entry["log_group_name"] for entry in render_agent_config(settings)["logs"]["logs_collected"]["files"]["collect_list"]}

    correlation = observability.log_group_name(local.name_prefix, "apim/correlation")
    assert correlation not in groups(local)
    assert correlation in groups(with_observability(correlation_log=True))


def test_no_agent_no_configuration_no_package(local):
    off = with_observability(agent=False)
    assert render_agent_config(off) is None and render_agent_config_json(off) is None
    user_data = render_user_data(off, 0, DEPLOYED)
    assert AGENT_CONFIG not in user_data and "- amazon-cloudwatch-agent\n" not in user_data
    assert "AGENT_CONFIG=''" in render_node_env(off, DEPLOYED, 0)
    on = render_user_data(local, 0, DEPLOYED)
    assert f"path: {AGENT_CONFIG}" in on and "- amazon-cloudwatch-agent" in on


def test_the_metrics_are_exactly_the_contracts_with_exactly_its_dimensions(local):
    metrics = render_agent_config(local)["metrics"]
    assert metrics["namespace"] == observability.metric_namespace(local.name_prefix)
    assert metrics["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    collected = metrics["metrics_collected"]
    published = collected["mem"]["measurement"] + collected["disk"]["measurement"] + collected["jmx"]["jvm"]["measurement"]
    assert sorted(published) == sorted(metric.name for metric in observability.NODE_METRICS)
    assert collected["disk"]["resources"] == ["/"] and collected["disk"]["drop_device"] is True
    # Each contract metric's dimension set (InstanceId plus its own) is one the agent publishes: a rollup.
    for metric in observability.NODE_METRICS:
        assert ("InstanceId", *dict(metric.dimensions)) in AGGREGATION_DIMENSIONS
    assert metrics["aggregation_dimensions"] == [["InstanceId"], ["InstanceId", "path"]]
    assert collected["jmx"]["endpoint"].startswith("127.0.0.1:")


def test_nothing_secret_in_the_agent_configuration(local):
    text = render_agent_config_json(local)
    assert not re.search(r"(?i)password|secret|token|arn:aws:secretsmanager", text)


@pytest.mark.parametrize("line", [observability.BOOT_FAILED, observability.SHARE_VERDICT_MISSING, observability.SHARE_VERDICT_PRESENT])
def test_the_boot_step_logs_the_lines_metric_filters_count(local, line):
    for mode, parts in BOOT_PARTS.items():
        assert line in "".join(boot_part(name) for name in parts), f"{mode}: {line!r}"
    assert f"BOOT_LOG=${{BOOT_LOG:-{observability.BOOT_LOG}}}" in boot_part("header.sh")  # where log() writes


def test_the_boot_log_is_kept_under_its_bound(tmp_path):
    """log() moves the boot log aside once it reaches BOOT_LOG_MAX_BYTES: two files at most on the disk."""
    log = tmp_path / "boot.log"
    script = f'{boot_part("common.sh")}\nfor i in $(seq 1 40); do log "line $i of the share watch"; done'
    env = {"PATH": "/usr/bin:/bin", "BOOT_LOG": str(log), "BOOT_LOG_MAX_BYTES": "400"}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=30)
    kept = log.with_name("boot.log.1")
    assert kept.exists() and log.stat().st_size < 400 + 100 and kept.stat().st_size <= 400 + 100
    assert "line 40 of the share watch" in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boot.log", "boot.log.1"]


def test_jmx_is_started_in_api_ms_running_jvm_not_through_the_start_scripts_environment(local, tmp_path):
    """From 4.3.0 bin/api-manager.sh hands JAVA_OPTS (and JVM_MEM_OPTS) to WSO2's diagnostics tool too, a second JVM
    started just before Carbon's (wso2/product-apim v4.3.0, startup-scripts/api-manager.sh, diagnostics.sh): a JMX
    port there would be raced for. So runtime.env carries none; the unit's ExecStartPost starts it in the JVM."""
    unit = render_systemd_unit(local)
    assert "ExecStartPost=-+/usr/local/sbin/wso2am-boot jmx" in unit.splitlines()
    assert "ExecStartPost" not in render_systemd_unit(with_observability(agent=False))
    runtime_env = tmp_path / "runtime.env"
    script = f"{boot_part('config.sh')}\nwrite_runtime_env"
    env = {"PATH": "/usr/bin:/bin", "RUNTIME_ENV": str(runtime_env), "JAVA_HOME": "/usr/lib/jvm/x", "HEAP_PERCENT": "50"}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=30)
    assert "jmxremote" not in runtime_env.read_text() and "JAVA_OPTS" not in runtime_env.read_text()
    assert "jmx) start_jmx" in boot_part("main.sh") and "jmxremote.host=127.0.0.1" in boot_part("observe.sh")
