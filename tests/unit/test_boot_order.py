"""The order of the boot step, per node kind: the assembled script is sourced, every leaf step is replaced by one that
only writes its name, and boot() runs. The order is what the pair relies on (the share joined before the secrets
are generated under its lock, the schema before API-M starts, node 2 authorizing node 1 before its first push)."""

from __future__ import annotations

import re
import subprocess

import pytest

from apim_active_active.renderers import boot_script
from tests.conftest import DEPLOYED
from tests.helpers import local_settings, restored_local, rsync_local

# The steps boot() and the mode's steps call, each replaced by a recorder.
LEAVES = (
    "ensure_user install_product ensure_shared_folders keep_distribution_copies ensure_fstab mount_share seed_share_once "
    "bind_shared_folders install_jdbc_driver ensure_generated_secrets prepare_receiver authorize_manager write_secrets_env "
    "install_keystores ensure_schema install_config write_runtime_env map_public_name prepare_sender customize start_service"
).split()

EFS = [
    "ensure_user",
    "install_product",
    "ensure_shared_folders",
    "keep_distribution_copies",
    "ensure_fstab",
    "mount_share",
    "seed_share_once",
    "bind_shared_folders",
    "install_jdbc_driver",
    "ensure_generated_secrets",
    "write_secrets_env",
    "install_keystores",
    "ensure_schema",
    "install_config",
    "write_runtime_env",
    "map_public_name",
    "customize",  # local's customization: last before API-M starts
    "start_service",
]
COMMON_HEAD = ["ensure_user", "install_product", "ensure_shared_folders", "install_jdbc_driver"]
COMMON_TAIL = ["install_config", "write_runtime_env", "map_public_name"]
RSYNC_NODE_1 = [
    *COMMON_HEAD,
    "ensure_generated_secrets",
    "write_secrets_env",
    "install_keystores",
    "ensure_schema",
    *COMMON_TAIL,
    "prepare_sender",
    "customize",
    "start_service",
]
RSYNC_NODE_2 = [
    *COMMON_HEAD,
    "prepare_receiver",
    "authorize_manager",
    "write_secrets_env",
    "install_keystores",
    *COMMON_TAIL,
    "customize",
    "start_service",
]


@pytest.mark.parametrize(
    ("settings", "node", "expected"),
    [(local_settings(), 0, EFS), (local_settings(), 1, EFS), (rsync_local(), 0, RSYNC_NODE_1), (rsync_local(), 1, RSYNC_NODE_2)],
    ids=["efs-node-1", "efs-node-2", "rsync-node-1", "rsync-node-2"],
)
def test_boot_runs_its_steps_in_order(tmp_path, settings, node, expected):
    assert traced_boot(tmp_path, settings, node, LEAVES) == expected
    assert (tmp_path / "boot-done").exists(), "a completed boot step is marked (the share watch's reboot rule)"


def traced_boot(tmp_path, settings, node: int, leaves: list[str]) -> list[str]:
    """The node's boot step run with its leaves (the steps that act) stubbed to record their names, in order."""
    (tmp_path / "node.env").write_text(boot_script.render_node_env(settings, DEPLOYED, node))
    script = boot_script.node_boot_script(settings)
    defined = set(re.findall(r"^([a-z_]+)\(\) \{", script, re.M))
    stubs = "\n".join(f'{name}() {{ echo {name} >> "$TRACE"; }}' for name in leaves if name in defined)
    run = subprocess.run(
        ["bash", "-c", f". /dev/stdin <<'BOOT'\n{script}\nBOOT\n{stubs}\nboot"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "NODE_ENV": str(tmp_path / "node.env"),
            "BOOT_LOG": "/dev/null",
            "TRACE": str(tmp_path / "trace"),
            "BOOT_DONE": str(tmp_path / "boot-done"),
        },
    )
    assert run.returncode == 0, run.stderr
    return (tmp_path / "trace").read_text().split()


def _after(steps: list[str], step: str, new: str) -> list[str]:
    at = steps.index(step) + 1
    return [*steps[:at], new, *steps[at:]]


RESTORED_EFS = _after(_after(EFS, "mount_share", "adopt_restored_share"), "install_config", "rebuild_after_restore")


@pytest.mark.parametrize(
    ("settings", "node", "expected"),
    [
        (restored_local(), 0, RESTORED_EFS),
        (restored_local(), 1, RESTORED_EFS),
        (restored_local("rsync"), 0, _after(RSYNC_NODE_1, "install_config", "rebuild_after_restore")),
        (restored_local("rsync"), 1, _after(RSYNC_NODE_2, "install_config", "rebuild_after_restore")),
    ],
    ids=["efs-node-1", "efs-node-2", "rsync-node-1", "rsync-node-2"],
)
def test_a_restored_node_adopts_the_restored_share_before_seeding_and_rebuilds_the_index_after_its_config(
    tmp_path, settings, node, expected
):
    """The restored share is waited for and moved into place after the mount and before the seed (else an empty share
    would be seeded from the distribution); the search index goes after install_config, before API-M starts."""
    assert traced_boot(tmp_path, settings, node, [*LEAVES, "adopt_restored_share", "rebuild_after_restore"]) == expected
