"""The pair's keystore rotation on a node (scripts/node_scripts/rotate-keystore.sh, and the boot step's parts it relies on:
install_keystores with the secret's format 2, keystore_expiry), run for real with bash, keytool and openssl against a
Secrets Manager of the emulator's (started here): each phase's change of the secret, a phase run again changing nothing,
finish refused before the grace period's end, nothing secret printed, the truststore every state gives, `rekey`'s
order; and what renders it: the expiry's timer on every node, the API keys' alias in deployment.toml, the alarm."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from apim_active_active import observability as obs
from apim_active_active.keystore_settings import KeystoreSettings
from apim_active_active.renderers import boot_script
from apim_active_active.renderers.alarms import Observed, alarm_specs, log_metric_filters
from apim_active_active.renderers.boot_script import render_user_data
from apim_active_active.renderers.deployment_toml import render_deployment_toml
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.gateway_user_data import render_gateway_user_data
from apim_active_active.renderers.node_layout import BOOT_SCRIPT, KEYSTORE_EXPIRY, SERVICE
from apim_active_active.renderers.systemd_units import render_keystore_expiry, render_systemd_unit
from apim_active_active.settings import parse_settings
from apim_active_active.versions import traits
from scripts.local_stack import client
from scripts.rotate_keystore import PHASE_SCRIPT, node_script
from tests.conftest import DEPLOYED, ROOT, local_settings_dict
from tests.helpers import at_version, cloud_config_files, local_settings

VENV_BIN = ROOT / ".venv" / "bin"  # the aws CLI
# install [-m MODE] [-o USER] [-g GROUP] SOURCE TARGET: a copy (no such user here).
INSTALL = '#!/bin/sh\nfor a; do s=$t; t=$a; done\ncp "$s" "$t"\n'
SYSTEMCTL = '#!/bin/sh\necho "systemctl $*" >> "$CALLS"\ncase "$1" in is-active) test -e "$ACTIVE" ;; esac\n'


class Node:
    """A pair node in tmp_path: its node.env (the product home, runtime.env and secrets file moved there), its boot
    step, stand-ins for install and systemctl, the emulator's Secrets Manager holding the pair's keystore secret."""

    def __init__(self, tmp_path: Path, url: str, script: str | None = None) -> None:
        self.root, self.url = tmp_path, url
        self.secrets = client("secretsmanager", url)
        self.arn = self.secrets.create_secret(Name=f"rotation-{time.monotonic_ns()}/keystore")["ARN"]
        settings = local_settings().model_copy(update={"keystore": KeystoreSettings()})  # generated (local brings one)
        env = boot_script.render_node_env(settings, dataclasses.replace(DEPLOYED, keystore_secret_arn=self.arn), 0)
        for key, value in (
            ("APIM_HOME", tmp_path / "apim"),
            ("RUNTIME_ENV", tmp_path / "runtime.env"),
            ("SECRETS_FILE", tmp_path / "secrets.env"),
        ):
            env = re.sub(rf"^{key}=.*$", f"{key}={value}", env, flags=re.M)
        (tmp_path / "node.env").write_text(env)
        self.boot = tmp_path / "wso2am-boot"
        self.boot.write_text(script or boot_script.boot_script_text("efs"))
        self.security = tmp_path / "apim" / "repository" / "resources" / "security"
        self.security.mkdir(parents=True)
        (tmp_path / "bin").mkdir()
        for name, text in (("install", INSTALL), ("systemctl", SYSTEMCTL)):
            (tmp_path / "bin" / name).write_text(text)
            (tmp_path / "bin" / name).chmod(0o755)
        self.env = {
            "PATH": f"{tmp_path / 'bin'}:{VENV_BIN}:/usr/bin:/bin",
            "NODE_ENV": str(tmp_path / "node.env"),
            "BOOT_SCRIPT": str(self.boot),
            "BOOT_LOG": str(tmp_path / "boot.log"),
            "TMPDIR": str(tmp_path),
            "CALLS": str(tmp_path / "calls"),
            "ACTIVE": str(tmp_path / "active"),
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def bash(self, commands: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", commands], env=self.env, capture_output=True, text=True, timeout=120)

    def generate(self) -> None:
        """The pair's first boot: the keystore secret generated (format 1: password and keystore only)."""
        made = self.bash(f'. "{self.boot}"; dir=$(mktemp -d); generate_keystore_secret "$dir"; rm -rf "$dir"')
        assert made.returncode == 0, made.stderr
        (self.root / "secrets.env").write_text(f"APIM_KEYSTORE_PASSWORD={self.secret()['password']}\n")

    def phase(self, phase: str, grace_days: int = 30, force: bool = False) -> tuple[dict, subprocess.CompletedProcess]:
        """The text rotate_keystore.py sends, run with bash as the node shell runs it; its answer (last stdout line)."""
        done = self.bash(node_script(phase, grace_days, force))
        lines = done.stdout.strip().splitlines()
        return (json.loads(lines[-1]) if lines else {}), done

    def secret(self) -> dict:
        return json.loads(self.secrets.get_secret_value(SecretId=self.arn)["SecretString"])

    def version(self) -> str:
        return self.secrets.get_secret_value(SecretId=self.arn)["VersionId"]

    def entries(self, store: Path | None = None, data: bytes | None = None) -> dict[str, str]:
        """alias -> (entry type, SHA-256 fingerprint) of a keystore file, or of the secret's keystore."""
        password = self.secret()["password"]
        if store is None:
            store = self.root / "secret.jks"
            store.write_bytes(data or base64.b64decode(self.secret()["keystore"]))
        listed = subprocess.run(["keytool", "-list", "-keystore", str(store), "-storepass", password], capture_output=True, text=True)
        found, alias = {}, None
        for line in listed.stdout.splitlines():
            if "Entry, " in line or line.endswith("Entry, "):
                alias = line.split(",")[0]
                found[alias] = line.rsplit(",", 2)[-2].strip()
            elif line.startswith("Certificate fingerprint (SHA-256): ") and alias:
                found[alias] += " " + line.split(": ")[1].replace(":", "").lower()
        return found

    def dist_truststore(self) -> None:
        """The product's shipped truststore: its default password, WSO2's default certificate under wso2carbon and
        gateway_certificate_alias, and a CA of its own."""
        work, store = self.root / "dist", self.security / "client-truststore.jks"
        work.mkdir()
        keytool = ["keytool", "-storepass", "wso2carbon"]
        for alias in ("wso2carbon", "gateway_certificate_alias", "some-ca"):
            made = work / alias
            for step in (
                ["-genkeypair", "-keypass", "wso2carbon", "-keyalg", "RSA", "-dname", f"CN={alias}", "-keystore", str(work / "k.jks")],
                ["-exportcert", "-keystore", str(work / "k.jks"), "-file", str(made)],
                ["-importcert", "-noprompt", "-file", str(made), "-keystore", str(store), "-storetype", "JKS"],
            ):
                subprocess.run([*keytool, *step, "-alias", alias], check=True, capture_output=True)

    def install_keystores(self) -> tuple[subprocess.CompletedProcess, dict, dict]:
        done = self.bash(f'. "{self.boot}"; install_keystores; echo "API_KEY_ALIAS=$API_KEY_ALIAS"')
        return done, self.entries(self.security / "wso2carbon.jks"), self.entries(self.security / "client-truststore.jks")


@pytest.fixture()
def node(tmp_path, emulator) -> Node:
    """(Its tests are slow: the aws CLI and keytool, seconds a phase.)"""
    made = Node(tmp_path, emulator)
    made.generate()
    return made


def fingerprint(entry: str) -> str:
    return entry.split()[-1]


# The phases -------------------------------------------------------------------------------------------------------------
@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_a_rotation_stages_switches_and_finishes_the_secret(node):
    """stage: the new key beside the signing one, trusted under a new alias, nothing else changed; switch: it signs,
    the old one kept as previous and still trusted under its alias, API keys under the new alias, the grace period set;
    finish (forced here): the old key and its alias gone."""
    first = node.entries()
    assert list(first) == ["wso2carbon"]
    said, done = node.phase("status")
    assert (said["state"], said["source"], said["secret"]["api_key_alias"]) == ("base", "generated", "gateway_certificate_alias"), (
        done.stderr
    )
    assert said["secret"]["trusted"] == {"gateway_certificate_alias": fingerprint(first["wso2carbon"])}

    said, done = node.phase("stage")
    assert said["ok"] and said["done"], done.stdout + done.stderr
    staged, secret = node.entries(), node.secret()
    alias = said["alias"]
    assert re.fullmatch(r"signing-\d{14}", alias)
    assert staged["wso2carbon"] == first["wso2carbon"] and staged["next"].startswith("PrivateKeyEntry")
    assert secret["api_key_alias"] == "gateway_certificate_alias" and "grace_until" not in secret
    assert set(secret["trusted"]) == {"gateway_certificate_alias", alias}
    assert said["next"]["sha256"] == fingerprint(staged["next"])

    said, done = node.phase("switch", grace_days=7)
    assert said["ok"] and said["done"], done.stdout + done.stderr
    switched, secret = node.entries(), node.secret()
    assert fingerprint(switched["wso2carbon"]) == fingerprint(staged["next"])
    assert fingerprint(switched["previous"]) == fingerprint(first["wso2carbon"]) and "next" not in switched
    assert secret["api_key_alias"] == alias and set(secret["trusted"]) == {"gateway_certificate_alias", alias}
    until = time.mktime(time.strptime(secret["grace_until"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(until - (time.time() + 7 * 86400)) < 120

    said, done = node.phase("finish", force=True)
    assert said["ok"] and said["done"] and said["finished"]["removed"] == ["gateway_certificate_alias"], done.stderr
    finished, secret = node.entries(), node.secret()
    assert list(finished) == ["wso2carbon"] and finished["wso2carbon"] == switched["wso2carbon"]
    assert secret["api_key_alias"] == alias and list(secret["trusted"]) == [alias] and "grace_until" not in secret
    assert secret["password"] == node.secret()["password"]  # the store password stays (the nodes' secrets file too)


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_each_phase_run_again_changes_nothing(node):
    """Resumable: a phase finds its own work done in the secret and leaves it (no new version)."""
    node.phase("stage")
    version = node.version()
    said, _ = node.phase("stage")
    assert (said["ok"], said["done"], said["state"], node.version()) == (True, False, "staged", version)
    node.phase("switch")
    version = node.version()
    for phase in ("stage", "switch"):
        said, _ = node.phase(phase)
        assert (said["ok"], said["done"], said["state"], node.version()) == (True, False, "switched", version), phase
    node.phase("finish", force=True)
    version = node.version()
    said, _ = node.phase("finish")
    assert (said["ok"], said["done"], said["state"], node.version()) == (True, False, "base", version)


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_finish_is_refused_before_the_grace_periods_end_unless_forced(node):
    node.phase("stage")
    node.phase("switch", grace_days=30)
    version = node.version()
    said, done = node.phase("finish")
    assert done.returncode == 1 and not said["ok"]
    assert said["saw"].startswith("the grace period runs until ") and node.secret()["grace_until"] in said["saw"]
    assert node.version() == version
    assert "keystore rotation: finish: the grace period runs until" in (node.root / "boot.log").read_text()


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
@pytest.mark.parametrize(("phase", "before", "saw"), [("switch", (), "nothing staged"), ("finish", ("stage",), "staged, not switched")])
def test_a_phase_out_of_order_is_refused_and_changes_nothing(node, phase, before, saw):
    for earlier in before:
        node.phase(earlier)
    version = node.version()
    said, done = node.phase(phase)
    assert done.returncode == 1 and saw in said["saw"] and node.version() == version


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_nothing_secret_is_printed_or_logged_and_nothing_left_behind(node):
    for phase in ("status", "stage", "switch"):
        _, done = node.phase(phase)
        secret = node.secret()
        for value in (secret["password"], secret["keystore"][:40]):
            assert value not in done.stdout + done.stderr
    assert node.secret()["password"] not in (node.root / "boot.log").read_text()
    assert not [p for p in node.root.glob("tmp.*")], "the phase's root-only folder is removed"


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_a_node_whose_boot_step_predates_rotation_is_refused(tmp_path, emulator):
    """Before format 2 (install_keystores without trusted and api_key_alias; no keystore_expiry): roll first."""
    older = re.sub(r"\nkeystore_expiry\(\) \{.*?\n\}\n", "\n", boot_script.boot_script_text("efs"), flags=re.S)
    assert "keystore_expiry()" not in older
    node = Node(tmp_path, emulator, older)
    node.generate()
    said, done = node.phase("status")
    assert done.returncode == 1 and "predates keystore rotation" in said["saw"]


def brought_certificate(folder: Path) -> tuple[str, str]:
    """A key and self-signed certificate as an operator brings them (keystore.secret_arn's PEM shape): the secret's
    JSON, and the certificate's SHA-256 (hex)."""
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "400",
                    "-subj", "/CN=apim.example.com"], cwd=folder, check=True, capture_output=True)  # fmt: skip
    shown = subprocess.run(
        ["openssl", "x509", "-in", "cert.pem", "-noout", "-fingerprint", "-sha256"], cwd=folder, capture_output=True, text=True
    )
    value = {"certificate": (folder / "cert.pem").read_text(), "private_key": (folder / "key.pem").read_text()}
    return json.dumps(value), shown.stdout.split("=", 1)[1].strip().replace(":", "").lower()


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_a_brought_keystores_next_key_is_the_brought_secrets_current_value(tmp_path, emulator):
    """keystore.source = "secrets_manager": stage takes what the operator put in the brought secret (checked as at the
    first boot); the same certificate as the one that signs is refused (put the new one there first)."""
    node = Node(tmp_path, emulator, boot_script.boot_script_text("efs", keystore="secrets_manager"))
    brought = node.secrets.create_secret(Name=f"brought-{time.monotonic_ns()}")["ARN"]
    with (tmp_path / "node.env").open("a") as env:
        env.write(f"KEYSTORE_SOURCE_SETTING=keystore.secret_arn\nKEYSTORE_SOURCE_ARN={brought}\n")
    node.generate()
    value, fingerprint = brought_certificate(tmp_path / "brought")
    node.secrets.put_secret_value(SecretId=brought, SecretString=value)
    said, done = node.phase("stage")
    assert said["ok"] and said["next"]["sha256"] == fingerprint, done.stdout + done.stderr
    assert node.phase("status")[0]["source"] == "secrets_manager"
    node.phase("switch")
    node.phase("finish", force=True)
    version = node.version()
    said, done = node.phase("stage")  # the brought secret still holds the certificate that now signs
    assert not said["ok"] and "the new certificate is the one that signs now" in said["saw"] and node.version() == version


# What the nodes install from each state ---------------------------------------------------------------------------------
@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_the_truststore_of_each_state(node):
    """Format 1 (no trusted, no api_key_alias): the signing certificate under wso2carbon and gateway_certificate_alias,
    WSO2's default certificate gone from both, the product's other entries kept. Staged: the new certificate under the
    new alias too, the keystore serving both keys. Switched: API keys under the new alias, the old certificate still
    under gateway_certificate_alias. Finished: only the new; gateway_certificate_alias gone (never WSO2's default)."""
    node.dist_truststore()
    done, keystore, truststore = node.install_keystores()
    signing = fingerprint(keystore["wso2carbon"])
    assert done.returncode == 0 and "API_KEY_ALIAS=gateway_certificate_alias" in done.stdout, done.stderr
    assert {a: fingerprint(e) for a, e in truststore.items() if a != "some-ca"} == {
        "wso2carbon": signing,
        "gateway_certificate_alias": signing,
    }
    assert "some-ca" in truststore

    alias = node.phase("stage")[0]["alias"]
    done, keystore, truststore = node.install_keystores()
    new = fingerprint(keystore["next"])
    assert set(keystore) == {"wso2carbon", "next"} and "API_KEY_ALIAS=gateway_certificate_alias" in done.stdout
    assert {a: fingerprint(e) for a, e in truststore.items() if a != "some-ca"} == {
        "wso2carbon": signing,
        "gateway_certificate_alias": signing,
        alias: new,
    }

    node.phase("switch")
    done, keystore, truststore = node.install_keystores()
    assert f"API_KEY_ALIAS={alias}" in done.stdout and fingerprint(keystore["wso2carbon"]) == new
    assert {a: fingerprint(e) for a, e in truststore.items() if a != "some-ca"} == {
        "wso2carbon": new,
        "gateway_certificate_alias": signing,
        alias: new,
    }

    node.phase("finish", force=True)
    done, keystore, truststore = node.install_keystores()
    assert f"API_KEY_ALIAS={alias}" in done.stdout and set(keystore) == {"wso2carbon"}
    assert {a: fingerprint(e) for a, e in truststore.items()} == {
        "wso2carbon": new,
        alias: new,
        "some-ca": fingerprint(truststore["some-ca"]),
    }


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_rekey_reinstalls_then_restarts_and_keeps_the_rest_of_runtime_env(node):
    """`rekey` (the phase script on any node): the secrets file, the stores and deployment.toml made again, runtime.env's
    API keys' alias line replaced (customize.sh's JAVA_OPTS kept), API-M stopped and started, the expiry logged."""
    node.dist_truststore()
    wrapper = node.root / "boot-with-stand-ins"
    wrapper.write_text(
        f'. "{node.boot}"\n'
        'write_secrets_env() { echo write_secrets_env >> "$CALLS"; }\n'
        'install_config() { echo install_config >> "$CALLS"; }\n'
    )
    node.env["BOOT_SCRIPT"] = str(wrapper)
    (node.root / "runtime.env").write_text("JAVA_HOME=/x\nAPIM_API_KEY_ALIAS=gateway_certificate_alias\nJAVA_OPTS=-Dfile.encoding=UTF-8\n")
    alias = node.phase("stage")[0]["alias"]
    node.phase("switch")
    said, done = node.phase("rekey")
    assert said == {"ok": True, "phase": "rekey", "api_key_alias": alias}, done.stderr
    calls = (node.root / "calls").read_text().split("\n")
    assert calls[:4] == ["write_secrets_env", "install_config", f"systemctl stop {SERVICE}", f"systemctl start {SERVICE}"]
    assert (node.root / "runtime.env").read_text() == f"JAVA_HOME=/x\nAPIM_API_KEY_ALIAS={alias}\nJAVA_OPTS=-Dfile.encoding=UTF-8\n"
    assert re.search(r"wso2am-boot: keystore-expiry: 36\d\d days$", (node.root / "boot.log").read_text(), re.M)


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_status_says_whether_the_node_runs_the_secret_as_it_stands(node):
    """current: the installed keystore is the secret's, API keys signed under its alias, API-M started after the
    install (its PID file newer): what lets a roll skip a node it already did."""
    node.dist_truststore()
    node.install_keystores()
    (node.root / "runtime.env").write_text("APIM_API_KEY_ALIAS=gateway_certificate_alias\n")
    pid = node.root / "apim" / "wso2carbon.pid"
    pid.write_text("1\n")
    later = (node.security / "wso2carbon.jks").stat().st_mtime + 2
    os.utime(pid, (later, later))
    (node.root / "active").touch()
    said, done = node.phase("status")
    assert said["node"] == {"current": True, "active": True}, done.stderr
    earlier = later - 10  # installed, but API-M not restarted since: it still runs what it read before
    os.utime(pid, (earlier, earlier))
    assert node.phase("status")[0]["node"] == {"current": False, "active": True}
    os.utime(pid, (later, later))
    (node.root / "runtime.env").write_text("APIM_API_KEY_ALIAS=signing-1\n")
    assert node.phase("status")[0]["node"] == {"current": False, "active": True}
    (node.root / "runtime.env").write_text("APIM_API_KEY_ALIAS=gateway_certificate_alias\n")
    node.phase("stage")
    assert node.phase("status")[0]["node"] == {"current": False, "active": True}


def test_runtime_env_names_the_alias_api_keys_are_signed_under(tmp_path):
    """write_runtime_env: install_keystores' API_KEY_ALIAS, and the product's default when it has not run (deployment.toml
    names $env{APIM_API_KEY_ALIAS}: it must always be there)."""
    from apim_active_active.renderers.boot_script import boot_part

    runtime_env = tmp_path / "runtime.env"
    env = {"PATH": "/usr/bin:/bin", "RUNTIME_ENV": str(runtime_env), "JAVA_HOME": "/usr/lib/jvm/x", "HEAP_PERCENT": "50"}
    for given, wanted in (("signing-20260101000000", "signing-20260101000000"), ("", "gateway_certificate_alias")):
        script = f"{boot_part('config.sh')}\nAPI_KEY_ALIAS={given}\nwrite_runtime_env"
        subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=30)
        assert f"APIM_API_KEY_ALIAS={wanted}" in runtime_env.read_text().splitlines()


# The expiry: logged on every node, a metric of the boot log, an alarm ----------------------------------------------------
def space_delimited(pattern: str, line: str) -> dict | None:
    """CloudWatch Logs' space-delimited filter, as far as the pattern uses it: named fields, some with ="value"."""
    fields, words = re.findall(r'(\w+)(?:="([^"]*)")?', pattern.strip("[]")), line.split()
    if len(fields) != len(words):
        return None
    if any(wanted and word != wanted for (_, wanted), word in zip(fields, words)):
        return None
    return {name: word for (name, _), word in zip(fields, words)}


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_the_expiry_line_is_the_metric_and_no_other_line_is(node):
    node.dist_truststore()
    node.install_keystores()
    done = node.bash(f'. "{node.boot}"; keystore_expiry')
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in (node.root / "boot.log").read_text().splitlines() if obs.KEYSTORE_EXPIRY_LINE in line]
    (keystore_filter,) = [f for f in log_metric_filters("p") if f.metric == obs.KEYSTORE_DAYS_METRIC]
    matched = space_delimited(keystore_filter.pattern, line)
    assert matched and 3640 <= int(matched["days"]) <= 3650 and keystore_filter.value == "$days"
    for other in ("2026-01-01T00:00:00Z wso2am-boot: bounded API-M's rotated logs in /x/log4j2.properties to 7 days",
                  "2026-01-01T00:00:00Z wso2am-boot: keystore: wso2carbon valid until Dec 1 2036, 3650 days left",
                  "2026-01-01T00:00:00Z wso2am-boot: uptime: 12 days"):  # fmt: skip
        assert space_delimited(keystore_filter.pattern, other) is None


@pytest.mark.slow  # the emulator's Secrets Manager through the aws CLI, keytool
def test_the_expiry_is_refused_without_a_keystore(node):
    """Also where errexit does not hold (rekey's `keystore_expiry || true`): no line, so no metric of 0 days."""
    for call in ("keystore_expiry", 'keystore_expiry || echo "refused $?"'):
        done = node.bash(f'. "{node.boot}"; {call}')
        logged = (node.root / "boot.log").read_text()
        assert (done.returncode != 0 or done.stdout.strip() == "refused 1") and obs.KEYSTORE_EXPIRY_LINE not in logged, call


def test_every_node_gets_the_expiry_timer_and_api_ms_unit_wants_it():
    settings = local_settings()
    service, timer = render_keystore_expiry(settings)
    assert f"ExecStart={BOOT_SCRIPT} keystore-expiry" in service.splitlines() and "Type=oneshot" in service.splitlines()
    assert {"OnBootSec=60", "OnUnitActiveSec=1d"} <= set(timer.splitlines())
    for unit in (render_systemd_unit(settings, 0), render_systemd_unit(settings, gateway=True)):
        assert f"Wants={KEYSTORE_EXPIRY}.timer" in unit.splitlines()
    for user_data in (
        render_user_data(settings, 0, DEPLOYED),
        render_user_data(settings, 1, DEPLOYED),
        render_gateway_user_data(settings, DEPLOYED),
    ):
        files = cloud_config_files(user_data)
        assert files[f"/etc/systemd/system/{KEYSTORE_EXPIRY}.service"]["content"] == service
        assert files[f"/etc/systemd/system/{KEYSTORE_EXPIRY}.timer"]["content"] == timer


def test_the_expiry_alarm_takes_the_least_any_node_reports(environments):
    settings = environments["dev"]
    observed = Observed("app/lb/1", (("gateway", "tg/1"),), ("i-1", "i-2"), "db", "fs-1", "arn:aws:acm:cert")
    (alarm,) = [a for a in alarm_specs(settings, observed) if a.name == f"{settings.name_prefix}-keystore-expiry"]
    assert alarm.watched.namespace == obs.metric_namespace(settings.name_prefix) and alarm.watched.name == obs.KEYSTORE_DAYS_METRIC
    assert (alarm.watched.dimensions, alarm.watched.stat, alarm.period) == ((), "Minimum", 86400)
    assert (alarm.threshold, alarm.comparison) == (settings.keystore.expiry_warning_days, "LessThanThreshold")


# What deployment.toml says ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "publisher"), [("3.2.0", False), ("4.0.0", True), ("4.3.0", True), ("4.7.0", True)])
def test_api_keys_and_internal_keys_are_signed_under_the_runtime_alias(version, publisher):
    """[apim.devportal] api_key_alias (carbon-apimgt 6.7.206, 3.2's, on) and [apim.publisher] key_alias (4.0 on: 3.2's
    has no internal keys) from runtime.env; not on a gateway node (no DevPortal, no Publisher)."""
    import tomllib

    settings = parse_settings(at_version(local_settings_dict(), version, jdk=traits(version).jdk_range[1]), environ={})
    parsed = tomllib.loads(render_deployment_toml(settings, 0, "db", 3306, "lb"))
    assert parsed["apim"]["devportal"]["api_key_alias"] == "$env{APIM_API_KEY_ALIAS}"
    assert ("publisher" in parsed["apim"]) == publisher
    if publisher:
        assert parsed["apim"]["publisher"] == {"key_alias": "$env{APIM_API_KEY_ALIAS}"}
    if version != "3.2.0":
        gateway = tomllib.loads(render_gateway_toml(settings, "db", 3306, "lb"))
        assert "api_key_alias" not in gateway["apim"].get("devportal", {}) and "publisher" not in gateway["apim"]


def test_the_phase_script_is_shellcheck_clean():
    checked = subprocess.run(["shellcheck", "-x", str(PHASE_SCRIPT)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
