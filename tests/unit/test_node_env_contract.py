"""The contract between each node's rendered node.env and the boot step, declared once: the `: "${NAME:?}"` lines of
the boot step's header part (every mode), at the top of each mode's part (efs.sh, rsync.sh; a gateway scale-out
node's gateway.sh) and, for a restored
environment's nodes only, at the top of its restore parts (restore.sh; with EFS, restore-share.sh). Every variable a
node's assembled script requires is rendered for that node, and node.env carries nothing its script does not declare."""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib

import pytest

from apim_active_active.renderers.boot_script import (
    BOOT_PARTS,
    CUSTOMIZE_PART,
    KEYSTORE_PARTS,
    RESTORE_PARTS,
    boot_part,
    boot_script_source,
    brings_keystore,
    node_boot_script,
    render_node_env,
)
from apim_active_active.renderers.gateway_user_data import gateway_boot_script, render_gateway_node_env
from apim_active_active.settings import parse_settings
from apim_active_active.versions import traits
from tests.conftest import DEPLOYED, EXAMPLES, local_settings_dict
from tests.helpers import RESTORED_PREFIX, restored_local

REQUIRED = re.compile(r'"\$\{([A-Z_]+):?\?\}"')
MODE_PARTS = {"efs": "efs.sh", "rsync": "rsync.sh", "gateway": "gateway.sh"}


def declared(text: str) -> set[str]:
    """The names a script (or part) requires: its top-level `: "${NAME:?}"` lines."""
    return {name for line in text.splitlines() if line.startswith(": ") for name in REQUIRED.findall(line)}


def customized_part(settings) -> set[str]:
    """What customize.sh declares, for a node whose settings ship it (local's do)."""
    return declared(boot_part(CUSTOMIZE_PART)) if settings.customization.customizes_boot else set()


def keystore_source(settings) -> str:
    """The keystore source whose parts a pair node of these settings gets (local's brings one)."""
    return settings.keystore.source if brings_keystore(settings) else "generated"


def brought_parts(settings) -> set[str]:
    """What the brought keystore's parts declare, for a pair node whose settings ship them."""
    return set().union(*(declared(boot_part(part)) for part in KEYSTORE_PARTS.get(keystore_source(settings), ())))


def test_the_contract_is_declared_in_the_header_and_the_mode_parts_only():
    assert {"APIM_HOME", "CONFIG_SOURCE", "FIRST_NODE_URL", "CONTENT_SYNC"} <= declared(boot_part("header.sh"))
    assert "EFS_DNS" in declared(boot_part("efs.sh")) and "SYNC_USER" in declared(boot_part("rsync.sh"))
    assert "SYNC_ROLE" in declared(boot_part("rsync.sh")), "node 1 or 2: the rsync mode's roles"
    for mode, parts in BOOT_PARTS.items():
        assert MODE_PARTS[mode] in parts
        for name in set(parts) - {"header.sh", MODE_PARTS[mode]}:
            assert not declared(boot_part(name)), f"{name}: the contract belongs in header.sh or {MODE_PARTS[mode]}"


@pytest.mark.parametrize("env", ["local", "dev", "legacy32", "prod", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_node_env_renders_exactly_what_the_nodes_boot_step_declares(environments, env, node):
    settings = environments[env] if env != "rsync" else parse_settings(tomllib.loads((EXAMPLES / "rsync.toml").read_text()), environ={})
    rendered = {line.split("=", 1)[0] for line in render_node_env(settings, DEPLOYED, node).splitlines()}
    wanted = declared(node_boot_script(settings))
    mode = declared(boot_part("header.sh")) | declared(boot_part(MODE_PARTS[settings.content_sync]))
    assert wanted == mode | customized_part(settings) | brought_parts(settings)
    assert rendered == wanted, (sorted(rendered - wanted), sorted(wanted - rendered))


def test_the_restore_parts_declare_the_restore_variables_at_their_top():
    assert declared(boot_part("restore.sh")) == {"RESTORE_GENERATION"}
    assert declared(boot_part("restore-share.sh")) == {"RESTORE_SHARE_PARAMETER", "RESTORE_WAIT_SECONDS"}
    for part in ("restore.sh", "restore-share.sh"):
        first_code = next(line for line in boot_part(part).splitlines() if line and not line.startswith("#"))
        assert first_code.startswith(": "), f"{part}: the contract comes first, before anything uses it"
    # Only a restored environment's nodes get them (the share's part in the EFS mode only), after the mode's part and
    # before main.sh.
    assert RESTORE_PARTS == {"efs": ("restore.sh", "restore-share.sh"), "rsync": ("restore.sh",)}
    for mode in BOOT_PARTS:
        assert not {n for n in declared(boot_script_source(mode)) if n.startswith("RESTORE_")}
    for mode in RESTORE_PARTS:  # a gateway node has nothing to restore
        script = boot_script_source(mode, restored=True)
        at = [script.index(boot_part(name)) for name in (MODE_PARTS[mode], *RESTORE_PARTS[mode], "main.sh")]
        assert at == sorted(at)


def _env(settings, node: int) -> dict[str, str]:
    return dict(line.split("=", 1) for line in render_node_env(settings, DEPLOYED, node).splitlines())


@pytest.mark.parametrize("variant", ["example", "efs", "rsync"])
@pytest.mark.parametrize("node", [0, 1])
def test_a_restored_nodes_env_renders_exactly_what_its_boot_step_declares(examples, variant, node):
    settings = examples["restored"] if variant == "example" else restored_local(variant)
    rendered = set(_env(settings, node))
    wanted = declared(node_boot_script(settings))
    parts = ("header.sh", MODE_PARTS[settings.content_sync], *RESTORE_PARTS[settings.content_sync])
    assert wanted == set().union(*(declared(boot_part(part)) for part in parts)) | customized_part(settings)
    assert rendered == wanted, (sorted(rendered - wanted), sorted(wanted - rendered))


def test_a_restored_nodes_env_values():
    env = _env(restored_local(generation=3, share_wait_minutes=90), 0)
    assert (env["RESTORE_GENERATION"], env["RESTORE_WAIT_SECONDS"]) == ("3", "5400")
    assert _env(restored_local(), 0)["RESTORE_WAIT_SECONDS"] == "43200", "restore.share_wait_minutes' default: 12 hours"
    assert env["RESTORE_SHARE_PARAMETER"] == f"/{RESTORED_PREFIX}/restore/share"
    assert _env(restored_local(share=False), 0)["RESTORE_SHARE_PARAMETER"] == "''", "no share restored: rendered empty"
    rsync = _env(restored_local("rsync", generation=2), 1)
    assert rsync["RESTORE_GENERATION"] == "2" and "RESTORE_SHARE_PARAMETER" not in rsync, "rsync: no share to wait for"


def _gateway_settings(version: str, **sections):
    data = copy.deepcopy(local_settings_dict())
    data["apim"] |= {"version": version, "archive_url": f"s3://a/wso2am-{version}.zip", "jdk": traits(version).jdk_range[1]}
    data["gateway_scale_out"] = {"archive_url": f"s3://a/wso2am-universal-gw-{version}.zip"} if version >= "4.5" else {}
    return parse_settings(data | sections, environ={})


@pytest.mark.parametrize(
    "version, sections",
    [
        ("4.3.0", {}),
        ("4.7.0", {}),
        ("4.0.0", {"key_manager": {"type": "wso2-is", "url": "https://is.local.test:9443", "cidr": "10.9.0.0/16"}}),
    ],
    ids=["4.3", "4.7", "4.0-external-key-manager"],
)
def test_a_gateway_nodes_env_renders_exactly_what_its_boot_step_declares(version, sections):
    deployed = dataclasses.replace(DEPLOYED, encryption_key_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:k")
    settings = _gateway_settings(version, **sections)
    rendered = {line.split("=", 1)[0] for line in render_gateway_node_env(settings, deployed).splitlines()}
    wanted = declared(gateway_boot_script(settings))
    header = declared(boot_part("header.sh")) | declared(boot_part("gateway.sh"))
    assert wanted == header | customized_part(settings)
    assert rendered == wanted, (sorted(rendered - wanted), sorted(wanted - rendered))
    # No share and no restore on a gateway node: nothing of efs.sh's, rsync.sh's or the restore parts'.
    others = set().union(*(declared(boot_part(p)) for p in ("efs.sh", "rsync.sh", "restore.sh", "restore-share.sh")))
    assert not rendered & others


def test_a_gateway_nodes_env_values():
    env = dict(line.split("=", 1) for line in render_gateway_node_env(_gateway_settings("4.3.0"), DEPLOYED).splitlines())
    assert (env["CONTENT_SYNC"], env["SHARED_FOLDERS"], env["FIRST_NODE_URL"]) == ("none", "''", "''")
    assert env["PEER_IP"] == "'10.0.1.10 10.0.2.10'", "both nodes of the pair, node 1 first"
    assert (env["PRODUCT_PROFILE"], env["START_SCRIPT"], env["APIM_HOME"]) == ("gateway-worker", "api-manager.sh", "/opt/wso2/wso2am-4.3.0")
    assert (env["GATEWAY_GROUP"], env["LIFECYCLE_HOOK"]) == ("apim-local-gateways", "apim-local-gateway-drain")
    assert env["READY_HOOK"] == "apim-local-gateway-ready", "the launch lifecycle hook (names.gateway_ready_hook_name)"
    assert env["DRAIN_WAIT_SECONDS"] == "120", "load_balancer.deregistration_delay_seconds (60) + 60"
    assert env["UPDATE_LEVEL"] == "''", "the pair's pack at the pair's level (GA here)"
    assert env["PAIR_WAIT_SECONDS"] == "900"
    universal = dict(line.split("=", 1) for line in render_gateway_node_env(_gateway_settings("4.7.0"), DEPLOYED).splitlines())
    assert (universal["PRODUCT_PROFILE"], universal["START_SCRIPT"]) == ("''", "gateway.sh")
    assert (universal["APIM_HOME"], universal["ARCHIVE_URL"]) == (
        "/opt/wso2/wso2am-universal-gw-4.7.0",
        "s3://a/wso2am-universal-gw-4.7.0.zip",
    )
