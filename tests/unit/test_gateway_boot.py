"""A gateway scale-out node's boot step (BOOT_PARTS["gateway"]) run for real, sourced in bash with stand-ins for aws,
curl (the metadata service and the pair's /services/Version), systemctl and chown: it waits for the pair's secrets
and never makes one, maps the public name to a node of the pair that answers and follows the pair, joins the group
through its launch lifecycle hook once its gate passes, leaves it after the load balancer's drain through its
termination hook, installs the pack in its gateway profile at its update level, gates on both nodes of the pair; and
what it is rendered with: no schema or share step, its unit, its user data within EC2's limit."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.boot_loader import BOOT_LOADER, digest
from apim_active_active.renderers.gateway_user_data import gateway_boot_script, render_gateway_node_env, render_gateway_user_data
from apim_active_active.renderers.node_layout import BOOT_SCRIPT, GATEWAY_WATCH, NODE_ENV, SERVICE
from apim_active_active.renderers.systemd_units import render_gateway_watch, render_systemd_unit
from apim_active_active.settings import Settings, parse_settings
from apim_active_active.versions import traits
from tests.conftest import DEPLOYED, ROOT, free_port, local_settings_dict
from tests.helpers import LOOPBACK, cloud_config_files, cloud_init_schema, key_manager, listening, self_signed_files

NODE_1, NODE_2 = "10.0.1.10", "10.0.2.10"  # the local environment's pair
NAME = "apim.local.test"  # its public name
INSTANCE = "i-0123456789abcdef0"
ENCRYPTION_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/encryption-key-AbCdEf"
DEPLOYED_47 = dataclasses.replace(DEPLOYED, encryption_key_secret_arn=ENCRYPTION_ARN)
FUNCTION = re.compile(r"^([a-z_][a-z0-9_]*)\(\) \{", re.M)


def gateway_settings(version: str = "4.3.0", apim: dict | None = None, **sections: dict) -> Settings:
    """These sections merged into the local environment's (gateway_scale_out's over the version's own)."""
    data = copy.deepcopy(local_settings_dict())
    data["apim"] |= {"version": version, "archive_url": f"s3://a/wso2am-{version}.zip", "jdk": traits(version).jdk_range[1]}
    data["apim"] |= apim or {}
    universal = int(version.split(".")[1]) >= 5
    data["gateway_scale_out"] = {"archive_url": f"s3://a/wso2am-universal-gw-{version}.zip"} if universal else {}
    for name, section in sections.items():
        data[name] = data.get(name, {}) | section
    return parse_settings(data, environ={})


def secret_file(arn: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", arn)


# Stand-ins. calls: aws's and systemctl's, in order; curl.calls: curl's.
AWS = r"""#!/bin/sh
echo "aws $*" >> {root}/calls
case "$1 $2" in
  "secretsmanager get-secret-value")
    prev=; for a; do [ "$prev" = --secret-id ] && id=$a; prev=$a; done
    file="{root}/secrets/$(printf %s "$id" | tr -c 'A-Za-z0-9' _)"
    if [ -e "$file" ]; then cat "$file"; else
      echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: ..." >&2
      exit 254
    fi ;;
  "s3 cp") prev=; for a; do source=$prev; prev=$a; done; cp "{root}/s3/$(basename "$source")" "$prev" ;;
  "autoscaling complete-lifecycle-action")
    test ! -e {root}/asg-fails || exit 254
    prev=; for a; do [ "$prev" = --instance-id ] && id=$a; prev=$a; done
    if test -e {root}/no-action; then
      printf '%s%s\n' "An error occurred (ValidationError) when calling the CompleteLifecycleAction operation: " \
        "No active Lifecycle Action found with instance ID $id" >&2
      exit 254
    fi ;;
  "autoscaling describe-auto-scaling-instances") cat {root}/asg-state ;;
esac
"""
# The metadata service (IMDSv2) from the folder imds/ (no folder: no metadata service); a pair node's
# https://<address>:9443/services/Version answers 200 while the file up/<address> exists.
CURL = r"""#!/bin/sh
echo "curl $*" >> {root}/curl.calls
for url; do :; done
case "$url" in
  */latest/api/token) test -d {root}/imds && echo a-token || exit 7 ;;
  */latest/meta-data/*) test -d {root}/imds || exit 7; cat "{root}/imds/${{url#*/latest/meta-data/}}" 2>/dev/null || exit 22 ;;
  https://*:9443/services/Version)
    host=${{url#https://}}; host=${{host%%:*}}
    if test -e "{root}/up/$host"; then printf 200; else printf 000; exit 7; fi ;;
  *) exit 7 ;;
esac
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> {root}/calls
case "$1" in is-active) test -e {root}/active ;; stop) rm -f {root}/active ;; esac
"""
CHOWN = "#!/bin/sh\nexit 0\n"


# The boot step's state files, in tmp_path/state (never this machine's /var/lib, /run, /var/log).
STATE = (
    "BOOT_LOG",
    "SHARE_SEEN",
    "SAID_PRESENT",
    "STARTED_ONCE",
    "BOOT_DONE",
    "STOPPED_BY_WATCH",
    "LOOKED_SINCE_BOOT",
    "LEFT_GROUP",
    "TOLD_READY",
)


class Node:
    """A node's boot step in tmp_path: its node.env (with extra lines), its script, the stand-ins on PATH."""

    def __init__(self, tmp_path: Path, env_text: str, script: str, stubs: dict[str, str]):
        self.root = tmp_path
        for folder in ("bin", "secrets", "up", "s3"):
            (tmp_path / folder).mkdir(exist_ok=True)
        for name, text in stubs.items():
            (tmp_path / "bin" / name).write_text(text.format(root=tmp_path))
            (tmp_path / "bin" / name).chmod(0o755)
        self.env_text = env_text
        self.script = tmp_path / "wso2am-boot"
        self.script.write_text(script)
        self.hosts = tmp_path / "hosts"
        self.hosts.write_text("127.0.0.1 localhost localhost.localdomain\n::1 localhost6\n")

    def env(self, **extra: str) -> dict[str, str]:
        (self.root / "node.env").write_text(self.env_text + "".join(f"{k}={v}\n" for k, v in extra.items()))
        return {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "NODE_ENV": str(self.root / "node.env"),
            "HOSTS_FILE": str(self.hosts),
            "TMPDIR": str(self.root),
            "KEY_MANAGER_POLL_SECONDS": "1",
            "RETRY_TRIES": "2",
            "RETRY_MAX_DELAY": "1",
            **{name: str(self.root / "state" / name.lower()) for name in STATE},
        }

    def source(self, commands: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["bash", "-c", f'. "{self.script}"\n{commands}'],
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, commands: str, **extra: str) -> subprocess.CompletedProcess:
        process = self.source(commands, **extra)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def command(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(self.script), *args], env=self.env(**extra), capture_output=True, text=True, timeout=60)

    def calls(self, name: str = "calls") -> list[str]:
        path = self.root / name
        return path.read_text().splitlines() if path.exists() else []

    def up(self, *addresses: str) -> None:
        for path in (self.root / "up").iterdir():
            path.unlink()
        for address in addresses:
            (self.root / "up" / address).touch()

    def put_secrets(self, *arns: str) -> None:
        for arn in arns:
            (self.root / "secrets" / secret_file(arn)).write_text('{"username": "admin", "password": "x"}\n')


def gateway_node(tmp_path: Path, settings: Settings | None = None, deployed=DEPLOYED, real: tuple[str, ...] = ()) -> Node:
    """A gateway node of these settings (4.3 by default), with the stand-ins but those named real."""
    settings = settings or gateway_settings()
    stubs = {"aws": AWS, "curl": CURL, "systemctl": SYSTEMCTL, "chown": CHOWN}
    chosen = {name: text for name, text in stubs.items() if name not in real}
    return Node(tmp_path, render_gateway_node_env(settings, deployed), gateway_boot_script(settings), chosen)


PAIR_SECRETS = (DEPLOYED.admin_secret_arn, DEPLOYED.keystore_secret_arn, DEPLOYED.db_app_secret_arn)


# The pair's secrets: waited for, never made ------------------------------------------------------------------------
def test_a_gateway_waits_for_the_pairs_secrets_and_a_node_that_answers_and_never_makes_a_secret(tmp_path):
    node = gateway_node(tmp_path)
    started = time.monotonic()
    process = node.source('ensure_pair_secrets; echo "address=$PUBLIC_NAME_ADDRESS"', PAIR_WAIT_SECONDS="30")
    time.sleep(2)
    node.put_secrets(*PAIR_SECRETS)
    time.sleep(1.5)
    node.up(NODE_2)  # node 1 not (yet) answering: node 2 is the control plane
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == f"address={NODE_2}"
    assert "waiting for the pair's secrets" in err and f"waiting for a node of the pair ({NODE_1} {NODE_2})" in err
    assert time.monotonic() - started >= 3
    assert [c for c in node.calls() if "put-secret-value" in c] == []
    assert {c.split("--secret-id ")[1].split()[0] for c in node.calls()} == set(PAIR_SECRETS)


@pytest.mark.parametrize("missing", ["admin", "keystore", "database-app", "encryption-key"])
def test_each_secret_the_pair_makes_is_waited_for(tmp_path, missing):
    """4.7: the pair's symmetric key too; with RDS, API-M's own database user's password (the gateway logs in as it)."""
    node = gateway_node(tmp_path, gateway_settings("4.7.0"), DEPLOYED_47)
    everything = (*PAIR_SECRETS, ENCRYPTION_ARN)
    node.put_secrets(*[arn for arn in everything if missing not in arn])
    node.up(NODE_1, NODE_2)
    result = node.run("ensure_pair_secrets", PAIR_WAIT_SECONDS="2")
    assert result.returncode != 0
    assert "the pair's secrets did not answer within 2s: not starting API-M: the pair's first boot has not made them" in result.stderr
    node.put_secrets(*everything)
    result = node.run('ensure_pair_secrets; echo "address=$PUBLIC_NAME_ADDRESS"', PAIR_WAIT_SECONDS="2")
    assert (result.returncode, result.stdout.strip()) == (0, f"address={NODE_1}"), result.stderr
    assert [c for c in node.calls() if "put-secret-value" in c] == []


# The steps boot() calls on a gateway, each replaced by a recorder (those that act; the gateway's no-ops stay).
LEAVES = (
    "start_agent ensure_user install_product ensure_shared_folders install_jdbc_driver write_secrets_env "
    "install_keystores install_config bound_log_rotation write_runtime_env map_public_name start_content_sync customize start_service"
).split()


def traced_boot(node: Node, leaves: list[str], **extra: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    stubs = "\n".join(f'{name}() {{ echo {name} >> "{node.root}/trace"; }}' for name in leaves)
    result = node.run(f"{stubs}\nboot", **extra)
    trace = node.root / "trace"
    return result, trace.read_text().split() if trace.exists() else []


@pytest.mark.parametrize("pair", ["no-secrets", "no-node-answers"])
def test_a_gateway_boot_fails_when_the_pair_never_makes_them_bounded(tmp_path, pair):
    node = gateway_node(tmp_path)
    if pair == "no-node-answers":
        node.put_secrets(*PAIR_SECRETS)
    started = time.monotonic()
    result, trace = traced_boot(node, LEAVES, PAIR_WAIT_SECONDS="2")
    assert result.returncode != 0
    assert time.monotonic() - started < 15, "bounded by PAIR_WAIT_SECONDS"
    why = "the pair's first boot has not made them" if pair == "no-secrets" else "no control plane"
    assert f"did not answer within 2s: not starting API-M: {why}" in result.stderr
    assert "boot failed" in result.stderr
    assert trace == ["start_agent", "ensure_user", "install_product", "ensure_shared_folders", "install_jdbc_driver"]
    assert not (node.root / "state" / "boot_done").exists()
    assert [c for c in node.calls() if "put-secret-value" in c] == []


def test_a_gateway_boot_runs_its_steps_in_order_with_no_schema_and_no_share(tmp_path):
    node = gateway_node(tmp_path)
    result, trace = traced_boot(node, [*LEAVES, "ensure_pair_secrets"], PAIR_WAIT_SECONDS="2")
    assert result.returncode == 0, result.stderr
    assert trace == [
        "start_agent",
        "ensure_user",
        "install_product",
        "ensure_shared_folders",
        "install_jdbc_driver",
        "ensure_pair_secrets",
        "write_secrets_env",
        "install_keystores",
        "install_config",
        "bound_log_rotation",
        "write_runtime_env",
        "map_public_name",
        "start_content_sync",
        "customize",  # local's customization: last before API-M starts
        "start_service",
    ]


# The public name: on a node of the pair that answers, node 1 first ----------------------------------------------------
@pytest.mark.parametrize("answering, chosen", [((NODE_1, NODE_2), NODE_1), ((NODE_2,), NODE_2), ((NODE_1,), NODE_1), ((), None)])
def test_pair_node_answering_prefers_node_1(tmp_path, answering, chosen):
    node = gateway_node(tmp_path)
    node.up(*answering)
    result = node.run("pair_node_answering")
    assert (result.returncode == 0, result.stdout.strip() or None) == (chosen is not None, chosen)
    asked = [c.split()[-1] for c in node.calls("curl.calls")]
    assert asked[0] == f"https://{NODE_1}:9443/services/Version", "node 1 is asked first"


OTHERS = "127.0.0.1 localhost localhost.localdomain\n10.7.0.5 db.internal\n::1 localhost6\n"


@pytest.mark.parametrize(
    "mapped, answering, after",
    [
        (NODE_2, (NODE_1, NODE_2), NODE_2),  # the mapped node still answers: it keeps the name (no flapping back)
        (NODE_2, (NODE_1,), NODE_1),  # it stopped answering: the name moves
        (NODE_1, (NODE_2,), NODE_2),
        (NODE_1, (), NODE_1),  # none answers: left as it is
        (None, (NODE_2,), NODE_2),  # not mapped yet
        ("127.0.0.1", (NODE_1, NODE_2), NODE_1),  # mapped to something not of the pair
    ],
)
def test_the_gateway_watch_follows_the_pair(tmp_path, mapped, answering, after):
    node = gateway_node(tmp_path)
    before = OTHERS + (f"{mapped} {NAME}\n" if mapped else "")
    node.hosts.write_text(before)
    node.up(*answering)
    result = node.command("gateway-watch")
    assert result.returncode == 0, result.stderr
    assert node.hosts.read_text() == (before if after == mapped else OTHERS + f"{after} {NAME}\n")
    if not answering:
        assert f"no node of the pair answers ({NODE_1} {NODE_2}); {NAME} stays on {mapped}" in result.stderr
    assert node.calls() == [], "no IMDS: nothing stopped, nothing told"


def test_map_public_name_replaces_the_old_line_and_keeps_every_other(tmp_path):
    node = gateway_node(tmp_path)
    node.hosts.write_text(f"# {NAME} was here\n{OTHERS}{NODE_1} {NAME}\n10.9.9.9 one {NAME} two\n")
    result = node.run("map_public_name", PUBLIC_NAME_ADDRESS=NODE_2)
    assert result.returncode == 0, result.stderr
    # The name goes from every other line (the line left with no name goes too); the rest stays in its order.
    assert node.hosts.read_text() == f"# {NAME} was here\n{OTHERS}10.9.9.9 one two\n{NODE_2} {NAME}\n"
    assert f"mapped {NAME} to {NODE_2}" in result.stderr
    again = node.run("map_public_name", PUBLIC_NAME_ADDRESS=NODE_2)
    assert again.returncode == 0 and "mapped" not in again.stderr
    assert node.hosts.read_text().endswith(f"{NODE_2} {NAME}\n")


def test_map_public_name_on_a_pair_node_maps_loopback_once_as_before(environments, tmp_path):
    settings = environments["local"]
    node = Node(tmp_path, boot_script.render_node_env(settings, DEPLOYED, 0), boot_script.boot_script_text("efs"), {})
    before = node.hosts.read_text()
    for _ in range(2):
        result = node.run("map_public_name")
        assert result.returncode == 0, result.stderr
        assert node.hosts.read_text() == before + f"127.0.0.1 {NAME}\n", "appended once, the rest as it was"
    # Already named on a loopback line (with other names): left alone.
    node.hosts.write_text(f"127.0.0.1 localhost {NAME}\n")
    assert node.run("map_public_name").returncode == 0
    assert node.hosts.read_text() == f"127.0.0.1 localhost {NAME}\n"
    # An empty hosts file: one line, no blank line before it.
    node.hosts.write_text("")
    assert node.run("map_public_name").returncode == 0
    assert node.hosts.read_text() == f"127.0.0.1 {NAME}\n"


# Leaving the group: the load balancer's drain, then the termination lifecycle hook -------------------------------------
def _imds(node: Node, state: str | None) -> None:
    if state is None:
        return
    (node.root / "imds" / "autoscaling").mkdir(parents=True)
    (node.root / "imds" / "autoscaling" / "target-lifecycle-state").write_text(state)
    (node.root / "imds" / "instance-id").write_text(INSTANCE)


def complete(hook: str) -> str:
    return (
        "aws autoscaling complete-lifecycle-action --region us-east-1 --auto-scaling-group-name apim-local-gateways "
        f"--lifecycle-hook-name {hook} --instance-id {INSTANCE} --lifecycle-action-result CONTINUE"
    )


COMPLETE, READY = complete("apim-local-gateway-drain"), complete("apim-local-gateway-ready")
DESCRIBE = (
    f"aws autoscaling describe-auto-scaling-instances --region us-east-1 --instance-ids {INSTANCE} "
    "--query AutoScalingInstances[0].LifecycleState --output text"
)


def test_a_terminating_gateway_stops_api_m_then_completes_the_hook_once(tmp_path):
    node = gateway_node(tmp_path)
    _imds(node, "Terminated")
    (node.root / "asg-state").write_text("Terminating:Wait\n")
    (node.root / "active").touch()
    for _ in range(2):
        result = node.command("gateway-watch")
        assert result.returncode == 0, result.stderr
    assert node.calls() == [DESCRIBE, f"systemctl stop {SERVICE}", COMPLETE], "drained, API-M stopped, the hook told once"
    assert not (node.root / "active").exists()
    # IMDSv2: a token first, then the metadata with it.
    curl = node.calls("curl.calls")
    assert "-X PUT -H X-aws-ec2-metadata-token-ttl-seconds: 60 http://169.254.169.254/latest/api/token" in curl[0]
    assert "-H X-aws-ec2-metadata-token: a-token http://169.254.169.254/latest/meta-data/autoscaling/target-lifecycle-state" in curl[1]
    assert not [c for c in curl if ":9443/services/Version" in c], "a leaving node no longer follows the pair"


def test_a_terminating_gateway_serves_until_the_load_balancer_has_drained_it(tmp_path):
    """IMDS says Terminated as soon as the group decides; the group's Terminating:Wait comes after the drain."""
    node = gateway_node(tmp_path)
    _imds(node, "Terminated")
    (node.root / "asg-state").write_text("Terminating\n")
    (node.root / "active").touch()
    process = node.source("gateway_watch", DRAIN_WAIT_SECONDS="30")
    time.sleep(3)
    assert (node.root / "active").exists() and f"systemctl stop {SERVICE}" not in node.calls(), "still serving"
    (node.root / "asg-state").write_text("Terminating:Wait\n")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    calls = node.calls()
    assert calls[-2:] == [f"systemctl stop {SERVICE}", COMPLETE]
    assert set(calls[:-2]) == {DESCRIBE} and len(calls) >= 4, "asked until the group said Terminating:Wait"
    assert f"waiting for the drain of {INSTANCE} (Terminating:Wait)" in err
    assert (node.root / "state" / "left_group").exists()


def test_the_drain_wait_is_bounded(tmp_path):
    """No Terminating:Wait (the group's answer missing, e.g. no permission to ask): API-M stops after DRAIN_WAIT_SECONDS."""
    node = gateway_node(tmp_path)
    _imds(node, "Terminated")
    (node.root / "active").touch()
    started = time.monotonic()
    result = node.run("gateway_watch", DRAIN_WAIT_SECONDS="2")
    assert result.returncode == 0, result.stderr
    assert 2 <= time.monotonic() - started < 15
    assert f"the drain of {INSTANCE} (Terminating:Wait) did not answer within 2s: stopping API-M anyway" in result.stderr
    assert node.calls()[-2:] == [f"systemctl stop {SERVICE}", COMPLETE]


def test_a_hook_not_told_is_told_at_the_next_look(tmp_path):
    node = gateway_node(tmp_path)
    _imds(node, "Terminated")
    (node.root / "asg-state").write_text("Terminating:Wait\n")
    (node.root / "asg-fails").touch()
    assert node.command("gateway-watch").returncode != 0
    assert not (node.root / "state" / "left_group").exists()
    (node.root / "asg-fails").unlink()
    assert node.command("gateway-watch").returncode == 0
    assert node.calls().count(COMPLETE) == 2 + 1  # two tries (RETRY_TRIES), then the next look's


def test_a_termination_hook_with_no_action_waiting_counts_as_told(tmp_path):
    """The hook's heartbeat ran out (the group went on): AWS says no active lifecycle action; the node is done."""
    node = gateway_node(tmp_path)
    _imds(node, "Terminated")
    (node.root / "asg-state").write_text("Terminating:Proceed\n")
    (node.root / "no-action").touch()
    result = node.run("gateway_watch", DRAIN_WAIT_SECONDS="1")
    assert result.returncode == 0, result.stderr
    assert node.calls().count(COMPLETE) == 1, "not retried"
    assert "apim-local-gateway-drain has no action waiting for" in result.stderr
    assert (node.root / "state" / "left_group").exists()


@pytest.mark.parametrize("state", ["InService", "Warmed:Pending", None], ids=["in-service", "warm-pool", "no-imds"])
def test_a_gateway_in_service_or_without_metadata_stays(tmp_path, state):
    node = gateway_node(tmp_path)
    _imds(node, state)
    (node.root / "active").touch()
    node.hosts.write_text(OTHERS + f"{NODE_1} {NAME}\n")
    node.up(NODE_1)
    result = node.command("gateway-watch")
    assert result.returncode == 0, result.stderr
    assert node.calls() == [] and (node.root / "active").exists()
    assert not (node.root / "state" / "left_group").exists()


# Joining the group: the launch lifecycle hook told once the gate passes -----------------------------------------------
def _gate_is(node: Node, passing: bool) -> str:
    """gate replaced: passing, or failing with two of the real gate's lines."""
    if passing:
        return 'gate() { log "gate: ok: everything"; }'
    return (
        'gate() { log "gate: ok: wso2am.service active"; log "gate: FAILED: traffic port 8243 does not accept"; '
        'log "gate: FAILED: peer 10.0.2.10:9611 not reached"; return 1; }'
    )


def _booted(node: Node) -> None:
    (node.root / "state").mkdir(exist_ok=True)
    (node.root / "state" / "boot_done").write_text("2025-01-01T00:00:00Z\n")


def test_a_new_gateway_tells_the_launch_hook_once_its_gate_passes(tmp_path):
    node = gateway_node(tmp_path)
    _imds(node, "InService")
    node.hosts.write_text(OTHERS + f"{NODE_1} {NAME}\n")
    node.up(NODE_1)
    # Before the boot step is done: nothing asked, nothing told.
    result = node.run(f"{_gate_is(node, True)}\ngateway_watch")
    assert (result.returncode, result.stderr, node.calls()) == (0, "", [])
    _booted(node)
    failing = node.run(f"{_gate_is(node, False)}\ngateway_watch")
    assert failing.returncode == 0, failing.stderr
    assert node.calls() == [] and not (node.root / "state" / "told_ready").exists()
    # Quiet: one line a look, with what failed; the gate's own lines kept out of the log.
    assert "gateway-watch: not ready yet: traffic port 8243 does not accept; peer 10.0.2.10:9611 not reached" in failing.stderr
    assert "gate: ok" not in failing.stderr and "gate:" not in (node.root / "state" / "boot_log").read_text()
    for _ in range(2):
        passing = node.run(f"{_gate_is(node, True)}\ngateway_watch")
        assert passing.returncode == 0, passing.stderr
    assert node.calls() == [READY], "told once"
    assert (node.root / "state" / "told_ready").exists()
    assert "the gate passed: told the launch lifecycle hook to go on" in (node.root / "state" / "boot_log").read_text()


def test_a_launch_hook_with_no_action_waiting_counts_as_told(tmp_path):
    """A node launched before the hook existed, or rebooted after it: AWS says no active lifecycle action."""
    node = gateway_node(tmp_path)
    _imds(node, "InService")
    _booted(node)
    (node.root / "no-action").touch()
    result = node.run(f"{_gate_is(node, True)}\ngateway_watch")
    assert result.returncode == 0, result.stderr
    assert node.calls() == [READY], "not retried"
    assert f"apim-local-gateway-ready has no action waiting for {INSTANCE}: nothing to tell" in result.stderr
    assert (node.root / "state" / "told_ready").exists()


def test_a_launch_hook_not_told_is_told_at_the_next_look(tmp_path):
    node = gateway_node(tmp_path)
    _imds(node, "InService")
    _booted(node)
    (node.root / "asg-fails").touch()
    assert node.run(f"{_gate_is(node, True)}\ngateway_watch").returncode != 0
    assert not (node.root / "state" / "told_ready").exists()
    (node.root / "asg-fails").unlink()
    assert node.run(f"{_gate_is(node, True)}\ngateway_watch").returncode == 0
    assert node.calls() == [READY] * (2 + 1)  # two tries (RETRY_TRIES), then the next look's


def test_the_launch_hook_is_told_after_the_real_gate_passes(tmp_path):
    """The watch's gate is `wso2am-boot gate`: API-M active, its URLs answering, its traffic ports and one pair node's
    ports accepting whole (the pair on loopback here)."""
    node = gateway_node(tmp_path)
    _imds(node, "InService")
    _booted(node)
    (node.root / "active").touch()
    node.up("127.0.0.1")  # the curl stand-in answers https://127.0.0.1:9443/services/Version

    def watch(peer_ports: list[int], traffic: list[int]) -> subprocess.CompletedProcess:
        return node.command(
            "gateway-watch",
            PEER_IP=f"'{' '.join(PAIR_ON_LOOPBACK)}'",
            PEER_PORTS=f"'{' '.join(map(str, peer_ports))}'",
            GATE_URLS="https://127.0.0.1:9443/services/Version",
            GATE_PORTS=f"'{' '.join(map(str, traffic))}'",
        )

    with listening(LOOPBACK, count=2) as traffic:
        with listening(PAIR_ON_LOOPBACK[0], count=4) as ports:
            pass  # four free ports of node 1 of the pair, closed: the whole pair down
        pair_down = watch(ports, traffic)
        assert pair_down.returncode == 0, pair_down.stderr
        assert f"not ready yet: peer {PAIR_ON_LOOPBACK[0]}:{ports[0]} not reached; " in pair_down.stderr
        assert READY not in node.calls()
        with listening(PAIR_ON_LOOPBACK[0], ports):  # node 2 of the pair still down: node 1 is enough
            ready = watch(ports, traffic)
    assert ready.returncode == 0, ready.stderr
    assert [c for c in node.calls() if c.startswith("aws")] == [READY]
    assert node.calls().count(f"systemctl is-active --quiet {SERVICE}") == 2, "API-M active: asked at each look"


# The product: the gateway profile (4.0-4.4), the Universal Gateway pack (4.5-4.7) ----------------------------------
PROFILE_SETUP = """#!/bin/sh
# Stand-in for WSO2's bin/profileSetup.sh (wso2/product-apim v4.3.0, startup-scripts/profileSetup.sh): -Dprofile=P
# moves repository/conf/deployment.toml to deployment.toml.backup and copies the profile's template in its place.
echo "$(pwd) $*" >> {root}/profile-setup.calls
cd "$(dirname "$0")"
profile=${{1#-Dprofile=}}
mv ../repository/conf/deployment.toml ../repository/conf/deployment.toml.backup
cp "../repository/resources/conf/deployment-templates/$profile.toml" ../repository/conf/deployment.toml
"""
ALL_IN_ONE = '# the all-in-one pack\'s own\n[server]\nserver_role = "default"\n'


def build_pack(node: Node, top: str, files: dict[str, tuple[str, int]], zip_name: str) -> None:
    with zipfile.ZipFile(node.root / "s3" / zip_name, "w") as zipped:
        for name, (text, mode) in files.items():
            info = zipfile.ZipInfo(f"{top}/{name}")
            info.external_attr = (0o100000 | mode) << 16
            zipped.writestr(info, text.format(root=node.root) if name == "bin/profileSetup.sh" else text)


def test_a_4_3_gateway_runs_profile_setup_before_it_keeps_the_shipped_file(tmp_path):
    node = gateway_node(tmp_path)
    template = (ROOT / "tests" / "data" / "gateway-worker-4.3.0.toml").read_text()
    build_pack(
        node,
        "wso2am-4.3.0",
        {
            "bin/api-manager.sh": ("#!/bin/sh\n", 0o755),
            "bin/profileSetup.sh": (PROFILE_SETUP, 0o755),
            "repository/conf/deployment.toml": (ALL_IN_ONE, 0o644),
            "repository/resources/conf/deployment-templates/gateway-worker.toml": (template, 0o644),
        },
        "wso2am-4.3.0.zip",
    )
    home = node.root / "opt" / "wso2am-4.3.0"
    result = node.run("install_product", APIM_HOME=str(home), INSTALL_DIR=str(node.root / "opt"))
    assert result.returncode == 0, result.stderr
    [(where, argument)] = [line.rsplit(" ", 1) for line in node.calls("profile-setup.calls")]
    assert where.endswith("/unpacked/wso2am-4.3.0/bin") and argument == "-Dprofile=gateway-worker", "in bin/, as WSO2 runs it"
    conf = home / "repository" / "conf"
    assert (conf / "deployment.toml.shipped").read_text() == template, "the profile's template is what every boot merges over"
    assert (conf / "deployment.toml.backup").read_text() == ALL_IN_ONE
    assert "optimised the pack for the gateway-worker profile" in result.stderr


def test_a_4_7_gateway_installs_the_universal_gateway_pack_as_shipped(tmp_path):
    node = gateway_node(tmp_path, gateway_settings("4.7.0"), DEPLOYED_47)
    shipped = (ROOT / "tests" / "data" / "universal-gw-4.7.0-deployment.toml").read_text()
    top = "wso2am-universal-gw-4.7.0"
    build_pack(
        node,
        top,
        {"bin/gateway.sh": ("#!/bin/sh\n", 0o755), "repository/conf/deployment.toml": (shipped, 0o644)},
        f"{top}.zip",
    )
    home = node.root / "opt" / top
    result = node.run("install_product", APIM_HOME=str(home), INSTALL_DIR=str(node.root / "opt"))
    assert result.returncode == 0, result.stderr
    assert node.calls("profile-setup.calls") == [] and "profile" not in result.stderr
    assert (home / "repository" / "conf" / "deployment.toml.shipped").read_text() == shipped
    assert node.calls()[0].startswith(f"aws s3 cp --only-show-errors --region us-east-1 s3://a/{top}.zip ")


# The update level: the pair's for the profile (4.0-4.4), the Universal Gateway pack's own (4.5+) ---------------------
@pytest.mark.parametrize(
    "version, gateway_level, level, setting",
    [("4.3.0", None, "5", "apim.update_level"), ("4.7.0", 7, "7", "gateway_scale_out.update_level"), ("4.7.0", None, "", "")],
    ids=["profile-the-pairs", "universal-its-own", "universal-ga"],
)
def test_a_gateway_checks_its_packs_update_level(version, gateway_level, level, setting, tmp_path):
    settings = gateway_settings(
        version,
        apim={"archive_url": f"s3://a/wso2am-{version}.5.zip", "update_level": 5},
        gateway_scale_out={"update_level": gateway_level},
    )
    node = gateway_node(tmp_path, settings, DEPLOYED_47 if version == "4.7.0" else DEPLOYED)
    env = dict(line.split("=", 1) for line in render_gateway_node_env(settings, DEPLOYED).splitlines())
    assert env["UPDATE_LEVEL"] == (level or "''")
    pack = tmp_path / "pack"
    (pack / "updates").mkdir(parents=True)
    (pack / "updates" / "config.json").write_text('{"update-level": 3}')
    refused = node.run(f"check_update_level {pack}")
    assert refused.returncode != 0
    if level:
        assert f"the settings say {level}: build the pack at the level the settings name, or set {setting} = 3" in refused.stderr
    (pack / "updates" / "config.json").write_text(f'{{"update-level": {level or -1}}}')
    assert node.run(f"check_update_level {pack}").returncode == 0


# The gate: both nodes of the pair, no share -------------------------------------------------------------------------
PAIR_ON_LOOPBACK = ("127.0.0.2", "127.0.0.3")


def test_the_gate_of_a_gateway_checks_both_pair_nodes_one_being_enough_and_no_share(tmp_path):
    """A gateway node joins (its launch hook) on its gate: with one node of the pair down (a roll, an outage) new nodes
    must still join, through the other."""
    node = gateway_node(tmp_path, real=("curl",))  # API-M answers on loopback
    cert, key = self_signed_files(tmp_path, "node")
    port = free_port()
    url = f"https://{LOOPBACK}:{port}/services/"

    def gate(peer_ports: list[int], traffic: list[int]) -> subprocess.CompletedProcess:
        return node.command(
            "gate",
            PEER_IP=f"'{' '.join(PAIR_ON_LOOPBACK)}'",
            PEER_PORTS=f"'{' '.join(map(str, peer_ports))}'",
            GATE_URLS=url,
            GATE_PORTS=f"'{' '.join(map(str, traffic))}'",
        )

    (node.root / "active").touch()
    with listening(PAIR_ON_LOOPBACK[0]) as ports, listening(LOOPBACK, count=2) as traffic, key_manager(port, cert, key):
        with listening(PAIR_ON_LOOPBACK[1], ports):
            passed = gate(ports, traffic)
            assert passed.returncode == 0, passed.stderr
            assert passed.stderr.count("gate: ok") == 1 + 1 + 2 + 2 * 4
            assert {f"gate: ok: peer {ip}:{p} reached" for ip in PAIR_ON_LOOPBACK for p in ports} <= set(
                re.findall(r"gate: ok: peer \S+ reached", passed.stderr)
            )
            assert "share" not in passed.stderr, "a gateway node has no share to check"
        node_2_down = gate(ports, traffic)
        assert node_2_down.returncode == 0, node_2_down.stderr
        assert f"FAILED: peer {PAIR_ON_LOOPBACK[1]}:{ports[0]} not reached" in node_2_down.stderr
        assert f"gate: ok: peer {PAIR_ON_LOOPBACK[0]}:{ports[0]} reached" in node_2_down.stderr
    both_down = gate(ports, traffic)
    assert both_down.returncode != 0
    assert f"FAILED: peer {PAIR_ON_LOOPBACK[0]}:{ports[0]} not reached" in both_down.stderr


# What the gateway's boot step is made of ------------------------------------------------------------------------------
def _defined(text: str) -> list[str]:
    return FUNCTION.findall(text)


def test_the_gateway_boot_step_has_no_schema_and_no_share_steps():
    script = boot_script.boot_script_text("gateway")
    defined = _defined(script)
    assert sorted(name for name in set(defined) if defined.count(name) > 1) == []
    assert "database.sh" not in boot_script.BOOT_PARTS["gateway"]
    # database.sh's steps: none here but the gateway's own no-op ensure_schema (the pair makes the schema).
    assert set(_defined(boot_script.boot_part("database.sh"))) & set(defined) == {"ensure_schema"}
    assert re.search(r"^ensure_schema\(\) \{ :; \}", script, re.M)
    assert "mysql" not in script and "psql" not in script
    mode_steps = set(_defined(boot_script.boot_part("efs.sh"))) | set(_defined(boot_script.boot_part("rsync.sh")))
    assert mode_steps & set(defined) == {
        "join_share",
        "share_reachable",
        "ensure_pair_secrets",
        "start_content_sync",
        "follow_peer_key",
        "mend_share",
    }, "only the hooks main.sh and service.sh call, the gateway's own"
    assert re.search(r"^join_share\(\) \{ :; \}", script, re.M)
    # Nothing here calls the generation of a secret (ensure_generated_secrets is only defined, by secrets.sh).
    assert script.count("ensure_generated_secrets") == 1
    # Every function the script calls is defined in it; gateway-watch is its command, push is rsync's only.
    every = {n for part in {p for ps in boot_script.BOOT_PARTS.values() for p in ps} for n in _defined(boot_script.boot_part(part))}
    steps, dispatch = script.rsplit('\nif [[ "${BASH_SOURCE[0]}" == "$0" ]]; then\n', 1)
    called = set()
    for line in steps.splitlines():
        code = re.sub(r"\s#.*$", "", re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", "", line))
        called |= set(re.findall(r"[a-z_][a-z0-9_]*", code)) & every
    assert called - set(defined) == set()
    commands = dict(re.findall(r"^ {4}([a-z-]+)\) ([a-z_]+) ;;", dispatch, re.M))
    assert commands["gateway-watch"] == "gateway_watch" and "gateway_watch" in defined
    assert {name for name in commands.values() if name not in defined} == {"push"}


def test_a_gateway_starts_its_watch_and_api_m_and_no_share_watch(tmp_path):
    node = gateway_node(tmp_path)
    result = node.run("start_content_sync; start_service")
    assert result.returncode == 0, result.stderr
    assert node.calls() == [
        f"systemctl enable --now {GATEWAY_WATCH}.timer",
        "systemctl daemon-reload",
        f"systemctl enable {SERVICE}",
        f"systemctl start {SERVICE}",
    ]


@pytest.mark.parametrize(
    "version, start",
    [
        ("4.3.0", "/opt/wso2/wso2am-4.3.0/bin/api-manager.sh start -Dprofile=gateway-worker"),
        ("4.7.0", "/opt/wso2/wso2am-universal-gw-4.7.0/bin/gateway.sh start"),
    ],
)
def test_the_gateway_unit(version, start, tmp_path):
    unit = render_systemd_unit(gateway_settings(version), gateway=True)
    lines = unit.splitlines()
    home = start.split("/bin/")[0]
    # WSO2: a 4.0-4.4 gateway worker starts with -Dprofile=gateway-worker (api-manager.sh passes it on to Carbon).
    assert f"ExecStart={start}" in lines
    assert f"ExecStop={start.split(' ')[0]} stop" in lines and f"PIDFile={home}/wso2carbon.pid" in lines
    assert not [line for line in lines if line.startswith("RequiresMountsFor")], "no share"
    path = tmp_path / SERVICE
    path.write_text(unit)
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True)
    assert "Unknown key" not in verified.stderr and "Unknown section" not in verified.stderr, verified.stderr


@pytest.mark.parametrize("delay", [0, 60, 600])
def test_the_gateway_watch_runs_every_15_seconds_and_lasts_a_whole_leaving(delay, tmp_path):
    settings = gateway_settings(load_balancer={"deregistration_delay_seconds": delay})
    service, timer = render_gateway_watch(settings)
    assert f"ExecStart={BOOT_SCRIPT} gateway-watch" in service.splitlines()
    assert {"OnUnitActiveSec=15", "AccuracySec=1"} <= set(timer.splitlines())
    env = dict(line.split("=", 1) for line in render_gateway_node_env(settings, DEPLOYED).splitlines())
    drain = int(env["DRAIN_WAIT_SECONDS"])
    assert drain == delay + 60, "the load balancer's drain, and a minute for the group to enter Terminating:Wait"
    # One run may wait out the drain, stop API-M (systemd's default stop timeout: 90 s) and back off over RETRY_TRIES
    # tries of the hook, delays from 2 s doubled and capped at RETRY_MAX_DELAY.
    header = boot_script.boot_part("header.sh")
    tries, cap = (int(re.search(rf"^{name}=\$\{{{name}:-(\d+)\}}$", header, re.M)[1]) for name in ("RETRY_TRIES", "RETRY_MAX_DELAY"))
    back_off = sum(min(2 * 2**i, cap) for i in range(tries - 1))
    (timeout,) = [int(line.split("=")[1]) for line in service.splitlines() if line.startswith("TimeoutStartSec=")]
    assert timeout >= drain + 90 + back_off
    for kind, text in zip(("service", "timer"), (service, timer)):
        (tmp_path / f"{GATEWAY_WATCH}.{kind}").write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / f"{GATEWAY_WATCH}.service")], capture_output=True, text=True
    )
    assert "Unknown key" not in verified.stderr and "Unknown section" not in verified.stderr, verified.stderr


@pytest.mark.parametrize("version", ["4.3.0", "4.7.0"])
def test_the_gateway_user_data_is_valid_and_fits_ec2s_16_kb(version, tmp_path):
    settings, deployed = gateway_settings(version), DEPLOYED_47 if version == "4.7.0" else DEPLOYED
    user_data = render_gateway_user_data(settings, deployed)
    size = len(gzip.compress(user_data.encode(), compresslevel=6))
    print(f"gateway user data, API-M {version}: {size} bytes gzipped")
    assert size < 8 * 1024, f"{size} bytes gzipped"  # test_boot_script's threshold for a pair node's
    files = cloud_config_files(user_data)
    assert BOOT_SCRIPT not in files and digest(gateway_boot_script(settings)) in files[BOOT_LOADER]["content"]
    assert files[NODE_ENV]["content"] == render_gateway_node_env(settings, deployed)
    assert {f"/etc/systemd/system/{GATEWAY_WATCH}.service", f"/etc/systemd/system/{GATEWAY_WATCH}.timer"} <= set(files)
    assert not [path for path in files if "share-watch" in path or "fstab" in path]
    assert "PASSWORD=" not in files[NODE_ENV]["content"]
    assert yaml.safe_load(user_data)["manage_etc_hosts"] is False, "the public name's mapping is the boot step's"
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data)
    schema = cloud_init_schema(path)
    assert schema.returncode == 0 and "Valid cloud-config" in schema.stdout, schema.stdout + schema.stderr
