"""User data: valid cloud-config (real `cloud-init schema`), a shellcheck-clean boot step, a sound unit."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import subprocess
import tomllib

import pytest
import yaml

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.boot_loader import BOOT_LOADER, digest, render_loader
from apim_active_active.renderers.boot_script import (
    BOOT_SCRIPT,
    CONFIG_SOURCE,
    NODE_ENV,
    SERVICE,
    render_deployment_toml,
    render_user_data,
)
from apim_active_active.settings import parse_settings
from tests.conftest import DEPLOYED, EXAMPLES, ROOT
from tests.helpers import cloud_config_files, cloud_init_schema, restored_local

EFS = DEPLOYED.efs_id
CLOUD_INIT = os.environ.get("CLOUD_INIT_PYTHONPATH", str(ROOT / ".tools/cloud-init/usr/lib/python3/dist-packages"))


MODES = tuple(boot_script.BOOT_PARTS)  # efs, rsync and a gateway scale-out node's
RESTORED_MODES = tuple(boot_script.RESTORE_PARTS)  # a gateway node has nothing to restore (no share, no schema)
FUNCTION = re.compile(r"^([a-z_][a-z0-9_]*)\(\) \{", re.M)
# The commands, at the end of main.sh (only run, not sourced).
DISPATCH = '\nif [[ "${BASH_SOURCE[0]}" == "$0" ]]; then\n'


def _defined(text: str) -> list[str]:
    return FUNCTION.findall(text)


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod"])
@pytest.mark.parametrize("node", [0, 1])
def test_user_data_passes_cloud_init_schema(environments, env, node, tmp_path):
    path = tmp_path / "user-data.yaml"
    path.write_text(render_user_data(environments[env], node, DEPLOYED))
    result = cloud_init_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_rejects_a_broken_document(environments, tmp_path):
    path = tmp_path / "user-data.yaml"
    path.write_text(render_user_data(environments["local"], 0, DEPLOYED).replace("permissions:", "permision:"))
    assert cloud_init_schema(path).returncode != 0


def test_user_data_writes_the_node_files(environments):
    settings = environments["local"]
    files = cloud_config_files(render_user_data(settings, 1, DEPLOYED))
    assert files[CONFIG_SOURCE]["content"] == render_deployment_toml(settings, 1, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    # The boot step is fetched from the stack's boot bucket by its digest (boot_loader.py, tests/synth/test_boot_assets.py).
    assert BOOT_SCRIPT not in files and files[BOOT_LOADER]["permissions"] == "0755"
    assert files[BOOT_LOADER]["content"] == render_loader(DEPLOYED.boot_bucket, settings.region, boot_script.node_boot_script(settings))
    assert "\ncustomize() {" in boot_script.node_boot_script(settings), "local's customization"
    assert f"/etc/systemd/system/{SERVICE}" in files
    user_data = yaml.safe_load(render_user_data(settings, 1, DEPLOYED))
    assert user_data["runcmd"] == [[BOOT_LOADER]]
    assert "java-17-amazon-corretto-devel" in user_data["packages"]  # jcmd: JMX in the running JVM
    assert "amazon-efs-utils" in user_data["packages"], "the TLS mount needs the EFS mount helper"
    assert "mariadb105" in user_data["packages"], "the schema step needs the MySQL client"
    # merge-config: Amazon Linux 2023's python3 (3.9) reads and writes TOML with these two packages.
    assert {"python3", "python3-tomli", "python3-tomli-w"} <= set(user_data["packages"])
    assert files[boot_script.MERGE_CONFIG] == {
        "path": boot_script.MERGE_CONFIG,
        "owner": "root:root",
        "permissions": "0755",
        "content": boot_script.merge_config_text(),
    }
    # The public name's mapping in /etc/hosts is the boot step's: a reboot's cloud-init must leave it.
    assert user_data["manage_etc_hosts"] is False


def test_node_env_is_shell_sourceable(environments, tmp_path):
    settings = environments["local"]
    env_file = tmp_path / "node.env"
    env_file.write_text(cloud_config_files(render_user_data(settings, 0, DEPLOYED))[NODE_ENV]["content"])
    shown = subprocess.run(
        ["bash", "-c", f'. "{env_file}"; echo "$SHARE_ROOT|$SHARED_FOLDERS|$EFS_ID|$EFS_DNS|$FSTAB_ENTRIES|$START_SCRIPT"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == (
        "/mnt/wso2am-share|userstores=/opt/wso2/wso2am-4.3.0/repository/deployment/server/userstores "
        "tenants=/opt/wso2/wso2am-4.3.0/repository/tenants|"
        + EFS
        + "|"
        + EFS
        + ".efs.us-east-1.amazonaws.com|/etc/wso2am/fstab|api-manager.sh"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", [boot_script.boot_script_source, boot_script.boot_script_text], ids=["source", "shipped"])
def test_boot_script_is_shellcheck_clean(text, mode, tmp_path):
    assert shutil.which("shellcheck"), "shellcheck is installed by `make install`"
    script = tmp_path / "wso2am-boot"
    script.write_text(text(mode))
    result = subprocess.run(["shellcheck", "-S", "style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "# shellcheck source=/dev/null\n" in text(mode), "the directive survives the comment stripping"


@pytest.mark.parametrize("mode", MODES)
def test_the_shipped_boot_script_is_the_source_without_its_comment_lines(mode):
    source, shipped = boot_script.boot_script_source(mode), boot_script.boot_script_text(mode)
    assert source.startswith("#!/bin/bash\n") and shipped.startswith("#!/bin/bash\n")
    code = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    assert [line for line in shipped.splitlines() if not line.lstrip().startswith("#")] == code
    assert len(shipped) < 0.85 * len(source)
    # Stripping is only safe while no line inside a heredoc starts with '#'.
    tag = None
    for number, line in enumerate(source.splitlines(), start=1):
        if tag is not None:
            assert line == tag or not line.lstrip().startswith("#"), f"line {number}: '#' inside a heredoc"
            tag = None if line == tag else tag
        elif found := re.search(r"[^<]<<-?'?([A-Z]+)'?\s*(?:[>|]|$)", line):
            tag = found.group(1)


@pytest.mark.parametrize(
    "env, script, shared",
    [
        ("local", "api-manager.sh", "/userstores /opt/wso2/wso2am-4.3.0/repository/tenants"),  # tenants on
        ("legacy32", "wso2server.sh", ""),
    ],
)
def test_systemd_unit(environments, env, script, shared, tmp_path):
    settings = environments[env]
    unit = boot_script.render_systemd_unit(settings)
    home = settings.apim.home
    for line in [
        f"ExecStart={home}/bin/{script} start",
        f"ExecStop={home}/bin/{script} stop",
        "User=wso2carbon",
        "Type=forking",
        "Restart=on-failure",
        f"PIDFile={home}/wso2carbon.pid",  # where Carbon's start script writes it
        # 4.3: artifacts by default (userstores), 3.2: the whole folder (the seed); each bound from the share.
        f"RequiresMountsFor=/mnt/wso2am-share {home}/repository/deployment/server{shared}",
        # The secrets: the root-only file, or with the secure vault the keystore password in password-tmp
        # (tests/unit/test_secure_vault.py).
        f"ExecStartPre=+{BOOT_SCRIPT} vault-password" if settings.secure_vault.enabled else "EnvironmentFile=/etc/wso2am/secrets.env",
        # Carbon never removes its PID file; the start script takes any live process with that PID for a running
        # server and exits 0 (wso2server.sh / api-manager.sh `start`): a stale file must go before each start.
        f"ExecStartPre=/usr/bin/rm -f {home}/wso2carbon.pid",
    ]:
        assert line in unit.splitlines()
    # systemd's own parser: an unknown key would only warn, so look for the warning too.
    path = tmp_path / SERVICE
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True)
    assert "Unknown key" not in result.stderr and "Unknown section" not in result.stderr, result.stderr


def test_node_env_names_the_secrets_by_arn_and_holds_no_secret_value(environments):
    files = cloud_config_files(render_user_data(environments["local"], 0, DEPLOYED))
    env = {k: shlex.split(v)[0] for k, v in (line.split("=", 1) for line in files[NODE_ENV]["content"].splitlines())}
    assert env["DB_SECRET_ARN"] == DEPLOYED.db_secret_arn
    assert (env["DB_APP_SECRET_ARN"], env["DB_APP_USER"]) == (DEPLOYED.db_app_secret_arn, "wso2apim")
    assert env["ADMIN_SECRET_ARN"] == DEPLOYED.admin_secret_arn
    assert env["KEYSTORE_SECRET_ARN"] == DEPLOYED.keystore_secret_arn
    assert (env["DB_ENGINE"], env["DB_HOST"], env["DB_PORT"]) == ("mysql", DEPLOYED.db_host, "3306")
    assert env["CERT_SAN"] == "dns:apim.local.test,dns:localhost,ip:10.0.1.10,ip:10.0.2.10"
    assert (env["PUBLIC_NAME"], env["KEY_MANAGER_URL"]) == ("apim.local.test", "")
    assert not [key for key in env if "PASSWORD" in key]
    assert (env["KEYSTORE_VALIDITY_DAYS"], env["ENCRYPTION_KEY_SECRET_ARN"]) == ("3650", ""), "4.3: the keystore encrypts"


def test_only_node_2_waits_for_node_1_on_its_first_start(environments):
    def env_of(node: int) -> dict[str, str]:
        content = cloud_config_files(render_user_data(environments["local"], node, DEPLOYED))[NODE_ENV]["content"]
        return {k: shlex.split(v)[0] if v else "" for k, v in (line.split("=", 1) for line in content.splitlines())}

    first, second = env_of(0), env_of(1)
    assert first["FIRST_NODE_URL"] == ""
    assert second["FIRST_NODE_URL"] == "https://10.0.1.10:9443/services/Version", "node 1's 9443 is open to its peer"
    assert second["FIRST_START_WAIT_SECONDS"] == "900"


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_user_data_fits_ec2s_16_kb_with_room_to_grow(environments, env, node):
    # DEPLOYED holds values as long as the real ones the stack's references resolve to; EC2 takes 16 KiB of
    # user data, which Terraform gzips (base64gzip: Go's default level, 6) and cloud-init unzips.
    settings = environments[env] if env != "rsync" else parse_settings(tomllib.loads((EXAMPLES / "rsync.toml").read_text()), environ={})
    size = len(gzip.compress(render_user_data(settings, node, DEPLOYED).encode(), compresslevel=6))
    # 8 KiB, half of EC2's: the boot step itself is in the boot bucket; local's node is about 4.5 KiB.
    assert size < 8 * 1024, f"{size} bytes gzipped"


@pytest.mark.parametrize("mode, other", [("efs", "rsync"), ("rsync", "efs")])
def test_a_nodes_boot_step_holds_its_own_modes_part_only(mode, other):
    """A node gets the common parts, its mode's part and main: each function once, none of the other mode's,
    and every function the script calls defined in it."""
    script = boot_script.boot_script_text(mode)
    defined = _defined(script)
    assert sorted(name for name in set(defined) if defined.count(name) > 1) == []
    other_only = set(_defined(boot_script.boot_part(f"{other}.sh"))) - set(defined)
    assert {"mount_share", "seed_share_once", "prepare_sender", "push"}.intersection(defined) == (
        {"mount_share", "seed_share_once"} if mode == "efs" else {"prepare_sender", "push"}
    )
    assert other_only >= ({"prepare_sender", "prepare_receiver", "push"} if mode == "efs" else {"mount_share", "copy_whole"})
    # Every word of the code (strings and comments left out) that names a function of any part is one this script
    # defines: no step calls a function of the other mode. The commands' `push` is rsync's only.
    every_function = {
        name for part in {p for parts in boot_script.BOOT_PARTS.values() for p in parts} for name in _defined(boot_script.boot_part(part))
    }
    steps, dispatch = script.rsplit(DISPATCH, 1)
    called = set()
    for line in steps.splitlines():
        code = re.sub(r"\s#.*$", "", re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", "", line))
        called |= set(re.findall(r"[a-z_][a-z0-9_]*", code)) & every_function
    assert called - set(defined) == set()
    commands = dict(re.findall(r"^ {4}([a-z-]+)\) ([a-z_]+) ;;", dispatch, re.M))
    assert set(commands) == {
        *("boot", "wait-key-manager", "check-share", "gate", "jmx", "push", "gateway-watch", "rekey", "keystore-expiry", "vault-password")
    }
    # push is rsync's only, gateway-watch a gateway node's only (tests/unit/test_gateway_boot.py).
    others = {"gateway_watch"} | (set() if mode == "rsync" else {"push"})
    assert {name for name in commands.values() if name not in defined} == others


@pytest.mark.parametrize("env, mode", [("local", "efs"), ("rsync", "rsync")])
@pytest.mark.parametrize("node", [0, 1])
def test_each_node_gets_its_modes_boot_step(environments, env, mode, node):
    settings = environments[env] if env != "rsync" else parse_settings(tomllib.loads((EXAMPLES / "rsync.toml").read_text()), environ={})
    assert settings.content_sync == mode
    loader = cloud_config_files(render_user_data(settings, node, DEPLOYED))[BOOT_LOADER]["content"]
    shipped = boot_script.node_boot_script(settings)
    assert digest(shipped) in loader and shipped.startswith(boot_script.boot_script_text(mode)[:200])


# A restored environment's nodes: restore.sh too (before main.sh) ------------------------------------------------------
RESTORE_STEPS = {"adopt_restored_share", "rebuild_after_restore"}
RESTORE_STEPS_OF = {"efs": RESTORE_STEPS, "rsync": {"rebuild_after_restore"}}
RESTORE_GUARD = '[[ -z "${RESTORE_GENERATION:-}" ]] || '


@pytest.mark.parametrize("mode", RESTORED_MODES)
@pytest.mark.parametrize("text", [boot_script.boot_script_source, boot_script.boot_script_text], ids=["source", "shipped"])
def test_a_restored_nodes_boot_script_is_shellcheck_clean(text, mode, tmp_path):
    script = tmp_path / "wso2am-boot"
    script.write_text(text(mode, True))
    assert {name for name in RESTORE_STEPS if f"{name}() {{" in script.read_text()} == RESTORE_STEPS_OF[mode]
    result = subprocess.run(["shellcheck", "-S", "style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("mode", RESTORED_MODES)
def test_the_restore_steps_run_only_on_a_restored_nodes_boot_step(mode):
    """restore.sh's steps are called only where a restored node's env says so (RESTORE_GENERATION); a node of
    another environment has neither the part nor a call outside that guard."""
    plain, restored = boot_script.boot_script_text(mode), boot_script.boot_script_text(mode, True)
    assert not RESTORE_STEPS & set(_defined(plain))
    assert sorted(name for name in set(_defined(restored)) if _defined(restored).count(name) > 1) == []
    calls = [line.strip() for line in plain.splitlines() if RESTORE_STEPS & set(re.findall(r"[a-z_]+", line))]
    assert all(line.startswith(RESTORE_GUARD) for line in calls), calls
    assert {step for line in calls for step in RESTORE_STEPS if step in line} == RESTORE_STEPS_OF[mode]
    # What a restored node's script calls is defined in it (a restored rsync node has no share step: none is called).
    assert RESTORE_STEPS_OF[mode] <= set(_defined(restored))


@pytest.mark.parametrize("variant", ["example", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_a_restored_nodes_user_data_fits_and_ships_the_restore_part(examples, variant, node, tmp_path):
    settings = examples["restored"] if variant == "example" else restored_local("rsync")  # local's customization, vault
    user_data = render_user_data(settings, node, DEPLOYED)
    size = len(gzip.compress(user_data.encode(), compresslevel=6))
    assert size < 8 * 1024, f"{size} bytes gzipped"  # the threshold of test_user_data_fits_ec2s_16_kb_with_room_to_grow
    assert digest(boot_script.node_boot_script(settings)) in cloud_config_files(user_data)[BOOT_LOADER]["content"]
    assert "\nrebuild_after_restore() {" in boot_script.node_boot_script(settings)
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data)
    result = cloud_init_schema(path)
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr
