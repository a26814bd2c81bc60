"""The secure vault (secure_vault.enabled), run for real: the rendered references, the boot step's seal (files/boot/
vault.sh) with the rehearsal's STAND-IN cipher tool (scripts/rehearsal/standin/standin_ciphertool.py, shaped on
wso2/cipher-tool v1.1.28: RSA PKCS#1 v1.5 with the primary keystore's certificate, base64, the file rewritten in place),
read back by the STAND-IN's secure vault (standin_vault.py: the key opened with password-tmp, which is then deleted,
as carbon-kernel's DefaultSecretCallbackHandler does), and the unit that hands API-M the keystore password."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.deployment_toml import SECRETS, render_deployment_toml
from apim_active_active.renderers.gateway_user_data import gateway_boot_script
from apim_active_active.renderers.systemd_units import render_systemd_unit
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, local_settings_dict

STANDIN = Path(__file__).resolve().parents[2] / "scripts" / "rehearsal" / "standin"
sys.path.insert(0, str(STANDIN))
import standin_vault  # noqa: E402

STORE_PASSWORD = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
VALUES = {"admin": "a" * 32, "db_user": "apimuser", "db_password": "d" * 48}

# STAND-IN for Secrets Manager's get-secret-value (files named after the secret id); every other call is recorded.
AWS = r"""#!/bin/sh
echo "aws $*" >> {root}/calls
prev=; for a; do [ "$prev" = --secret-id ] && id=$a; prev=$a; done
cat "{root}/secrets/$(printf %s "$id" | tr -c 'A-Za-z0-9' _)"
"""


def vault_settings(enabled: bool = True):
    data = copy.deepcopy(local_settings_dict())
    data["secure_vault"] = {"enabled": enabled}
    return parse_settings(data, environ={})


def test_with_the_vault_every_secret_is_a_secret_reference_and_none_an_environment_one():
    text = render_deployment_toml(vault_settings(), 0, "db.example", 3306, "lb.example")
    document = tomllib.loads(text.split("\n", 1)[1])
    assert not [name for name in SECRETS.values() if f"$env{{{name}}}" in text]
    assert document["super_admin"]["password"] == "$secret{admin_password}"
    assert document["database"]["apim_db"]["username"] == "$secret{db_username}"
    assert document["database"]["shared_db"]["password"] == "$secret{db_password}"
    assert {document["keystore"]["primary"]["password"], document["truststore"]["password"]} == {"$secret{keystore_password}"}
    assert "secrets" not in document  # the boot step appends [secrets], last, with the values


def test_the_unit_hands_the_keystore_password_through_password_tmp_and_reads_no_secrets_file():
    settings = vault_settings()
    unit = render_systemd_unit(settings, 0)
    home = settings.apim.home
    assert "EnvironmentFile=/etc/wso2am/secrets.env" not in unit
    assert f"ExecStartPre=+{boot_script.BOOT_SCRIPT} vault-password\n" in unit
    assert f"ExecStopPost=+/usr/bin/rm -f {home}/password-tmp\n" in unit
    assert "EnvironmentFile=/etc/wso2am/secrets.env" in render_systemd_unit(vault_settings(False), 0)


def test_every_node_has_the_vault_step_and_only_a_vault_nodes_env_turns_it_on():
    on, off = vault_settings(), vault_settings(False)
    assert "seal_secrets()" in boot_script.node_boot_script(off) and "seal_secrets()" in gateway_boot_script(off)
    assert "SECURE_VAULT=1\n" in boot_script.render_node_env(on, DEPLOYED)
    assert "SECURE_VAULT=''\n" in boot_script.render_node_env(off, DEPLOYED)


class VaultNode:
    """A node's API-M home (the STAND-IN pack's cipher tool, a keystore of the pair's kind, the product's file merged
    with the pair's) and the boot step's environment, with Secrets Manager a STAND-IN."""

    def __init__(self, root: Path, db_password: str = VALUES["db_password"], key_usage: str = "") -> None:
        self.root, self.settings = root, vault_settings()
        self.home = root / "apim"
        (self.home / "bin").mkdir(parents=True)
        for name in ("ciphertool.sh", "standin_ciphertool.py"):
            shutil.copy(STANDIN / name, self.home / "bin" / name)
        security = self.home / "repository" / "resources" / "security"
        security.mkdir(parents=True)
        (self.home / "repository" / "conf" / "security").mkdir(parents=True)
        store = [
            "-keystore",
            str(security / "wso2carbon.jks"),
            "-storetype",
            "JKS",
            "-storepass",
            STORE_PASSWORD,
            "-keypass",
            STORE_PASSWORD,
        ]
        usage = ["-ext", f"KU:critical={key_usage}"] if key_usage else []
        keypair = ["keytool", "-genkeypair", "-alias", "wso2carbon", "-keyalg", "RSA", "-validity", "2", "-dname", "CN=vault-test"]
        subprocess.run([*keypair, *store, *usage], check=True, capture_output=True)
        shipped = (STANDIN / "conf" / "deployment-4.x.toml").read_text()
        (root / "shipped.toml").write_text(shipped)
        (root / "pair.toml").write_text(render_deployment_toml(self.settings, 0, "db.example", 3306, "lb.example"))
        (root / "secrets").mkdir()
        for arn, value in (
            (DEPLOYED.admin_secret_arn, {"username": "admin", "password": VALUES["admin"]}),
            (DEPLOYED.db_app_secret_arn, {"username": VALUES["db_user"], "password": db_password}),
            (DEPLOYED.keystore_secret_arn, {"password": STORE_PASSWORD, "keystore": "unused here"}),
        ):
            (root / "secrets" / re.sub(r"[^A-Za-z0-9]", "_", arn)).write_text(json.dumps(value) + "\n")
        (root / "bin").mkdir()
        (root / "bin" / "aws").write_text(AWS.format(root=root))
        (root / "bin" / "aws").chmod(0o755)
        env = boot_script.render_node_env(self.settings, DEPLOYED, 0)
        env = re.sub(r"(?m)^APIM_HOME=.*$", f"APIM_HOME={self.home}", env)
        env = re.sub(r"(?m)^OS_USER=.*$", "OS_USER=root", env)
        env = re.sub(r"(?m)^CONFIG_SOURCE=.*$", f"CONFIG_SOURCE={root / 'pair.toml'}", env)
        env = re.sub(r"(?m)^SECRETS_FILE=.*$", f"SECRETS_FILE={root / 'secrets.env'}", env)
        env = re.sub(r"(?m)^JAVA_HOME=.*$", "JAVA_HOME=/usr", env)
        (root / "node.env").write_text(env)
        (root / "wso2am-boot").write_text(boot_script.node_boot_script(self.settings))
        (self.home / "repository" / "conf" / "deployment.toml.shipped").write_text(shipped)

    def run(self, commands: str, **env: str) -> subprocess.CompletedProcess:
        merge = self.root / "bin" / "merge-config"
        merge.write_text(boot_script.merge_config_text())  # run by the system python3, as test_merge_config does
        merge.chmod(0o755)
        return subprocess.run(
            ["bash", "-c", f'. "{self.root}/wso2am-boot"\n{commands}'],
            env={
                "PATH": f"{self.root}/bin:/usr/bin:/bin",
                "NODE_ENV": str(self.root / "node.env"),
                "BOOT_LOG": str(self.root / "boot.log"),
                "MERGE_CONFIG": str(merge),
                "RETRY_TRIES": "1",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )

    @property
    def conf(self) -> Path:
        return self.home / "repository" / "conf" / "deployment.toml"


@pytest.fixture
def node(tmp_path) -> VaultNode:
    return VaultNode(tmp_path)


def test_the_boot_step_seals_deployment_toml_and_the_product_reads_it_back(node):
    done = node.run("install_config && write_secrets_env && vault_password")
    assert done.returncode == 0, done.stderr
    text = node.conf.read_text()
    for value in (*VALUES.values(), STORE_PASSWORD):
        assert value not in text, "a secret in clear in deployment.toml"
    sealed = tomllib.loads(text)["secrets"]
    assert set(sealed) == {"admin_password", "db_username", "db_password", "keystore_password"} <= set(SECRETS)
    assert all(re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value) and len(value) == 344 for value in sealed.values())  # RSA-2048
    assert text.rstrip().splitlines()[-5] == "[secrets]", "[secrets] is the file's last table"
    assert oct(node.conf.stat().st_mode & 0o777) == "0o640"
    assert not (node.root / "secrets.env").exists(), "no secrets file with the vault on"
    log = (node.root / "boot.log").read_text()
    assert "sealed deployment.toml" in log and STORE_PASSWORD not in log and "Picked up" not in log
    password_file = node.home / "password-tmp"
    assert password_file.read_text().strip() == STORE_PASSWORD and oct(password_file.stat().st_mode & 0o777) == "0o600"

    resolved, vault = standin_vault.resolve(node.home, tomllib.loads(text))
    assert resolved["super_admin"]["password"] == VALUES["admin"]
    assert (resolved["database"]["shared_db"]["username"], resolved["database"]["shared_db"]["password"]) == (
        VALUES["db_user"],
        VALUES["db_password"],
    )
    assert resolved["keystore"]["tls"]["password"] == STORE_PASSWORD
    assert vault == {"enabled": True, "decrypted": sorted(sealed), "password_file_left": False}


def test_a_value_the_cipher_tool_cannot_take_stops_the_boot_and_leaves_no_file(tmp_path):
    node = VaultNode(tmp_path, db_password='has"quote')
    done = node.run("install_config")
    assert done.returncode != 0
    assert "the secret behind db_password is empty or holds a character the cipher tool cannot take" in done.stderr
    assert not node.conf.exists()
    assert 'has"quote' not in (tmp_path / "boot.log").read_text()


def test_a_failing_cipher_tool_stops_the_boot_naming_it_without_the_password(node):
    (node.home / "repository" / "resources" / "security" / "wso2carbon.jks").write_bytes(b"not a keystore")
    done = node.run("install_config")
    assert done.returncode != 0
    assert "not starting API-M: the cipher tool did not seal deployment.toml (exit 1)" in done.stderr
    assert STORE_PASSWORD not in done.stderr and not node.conf.exists()


def test_the_standin_cipher_tool_cuts_the_file_at_a_line_after_secrets_as_the_real_one_does(node):
    """wso2/api-manager#4561 (cipher-tool 1.1.20-1.1.28): the section's end is never seen: why the boot step puts
    [secrets] last."""
    node.conf.write_text('[secrets]\nadmin_password = "[x]"\n\n[server]\nhostname = "a"\n')
    done = subprocess.run(
        [str(node.home / "bin" / "ciphertool.sh"), "-Dconfigure", f"-Dpassword={STORE_PASSWORD}"],
        env={"PATH": "/usr/bin:/bin", "JAVA_HOME": "/usr"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "[server]" not in node.conf.read_text()


def test_the_standin_refuses_a_secret_left_in_clear_and_a_missing_password_file(node):
    (node.home / "repository" / "conf" / "security" / "secret-conf.properties").write_text("secVault.enabled=true\n")
    with pytest.raises(standin_vault.CannotStart, match="no console"):
        standin_vault.resolve(node.home, {"a": "$secret{x}", "secrets": {"x": "c2VhbGVk"}})
    (node.home / "password-tmp").write_text(STORE_PASSWORD)
    with pytest.raises(standin_vault.CannotStart, match="Secret references can't be plain text"):
        standin_vault.resolve(node.home, {"a": "$secret{x}", "secrets": {"x": "[clear]"}})


def test_java_8_gets_the_password_too(node):
    """Java 8 has no JDK_JAVA_OPTIONS (9+'s launcher): JAVA_TOOL_OPTIONS, which every JVM reads (API-M 3.2-4.1 on jdk 8)."""
    done = node.run("install_config", STANDIN_JAVA_VERSION="8")
    assert done.returncode == 0, done.stderr
    assert '= "[' not in node.conf.read_text().split("[secrets]")[1]


def test_a_certificate_whose_critical_key_usage_lacks_data_encipherment_cannot_seal(tmp_path):
    """Java's Cipher.init(ENCRYPT_MODE, certificate) refuses it ("Wrong key usage"), as cipher-tool's encrypt does: what
    ACM Private CA's EndEntityCertificate/V1 issues (critical digitalSignature, keyEncipherment)."""
    node = VaultNode(tmp_path, key_usage="digitalSignature,keyEncipherment")
    done = node.run("install_config")
    assert done.returncode != 0 and "the cipher tool did not seal deployment.toml (exit 1)" in done.stderr
    assert "Wrong key usage" in done.stderr and not node.conf.exists()
    (tmp_path / "ok").mkdir()
    assert VaultNode(tmp_path / "ok", key_usage="digitalSignature,keyEncipherment,dataEncipherment").run("install_config").returncode == 0
