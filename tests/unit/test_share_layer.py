"""The boot step's share steps, run for real in a private mount namespace: fstab lines added once, the file
system mounted, each folder seeded once (whole or not at all) and bound in place, for each scope and version; a
share of the earlier layout adopted; a folder an operator copied in kept. The file system is a folder here (the
fstab line that mounts it is a bind: this kernel has no NFS client); mount and mountpoint are the real ones."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.shared_folders import SHARE_ROOT, render_fstab, shared_folders
from scripts.rehearsal.product import SERVER_FILES, files_on_the_share
from tests.conftest import DEPLOYED
from tests.helpers import local_settings

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="mount namespaces need root (CI has it)")
SHARE_STEPS = (
    "ensure_shared_folders; keep_distribution_copies; ensure_fstab; mount_share; seed_share_once; bind_shared_folders; share_reachable"
)


class Node:
    """One node's product folder and /etc/fstab, and the file system's folder, under tmp; runs shell in a fresh
    private mount namespace each time (so every run starts unmounted, as after a reboot without systemd)."""

    def __init__(self, settings, tmp: Path, export: Path, name: str = "node") -> None:
        self.settings, self.root, self.export = settings, tmp / name, export
        self.home = self.root / "home"
        self.share = self.root / "mnt"
        server = self.home / "repository/deployment/server"
        for file, text in SERVER_FILES.items():
            (server / file).parent.mkdir(parents=True, exist_ok=True)
            (server / file).write_text(text)
        self.fstab = self.root / "fstab"
        self.fstab.write_text("# the node's own lines\n")
        real = settings.apim.home
        entries = render_fstab(settings, DEPLOYED.efs_id).replace(real, str(self.home)).replace(SHARE_ROOT, str(self.share))
        _, binds = entries.split("\n", 1)
        (self.root / "fstab-entries").write_text(f"{export} {self.share} none bind 0 0\n{binds}")
        env = boot_script.render_node_env(settings, DEPLOYED).replace(real, str(self.home))
        env = env.replace(SHARE_ROOT, str(self.share)).replace(boot_script.FSTAB_ENTRIES, str(self.root / "fstab-entries"))
        env = env.replace(f"OS_USER={settings.apim.os_user}", "OS_USER=root").replace("EFS_DNS=", "EFS_DNS=localhost #")
        (self.root / "node.env").write_text(env)
        self.folders = {name: path.replace(real, str(self.home)) for name, path in shared_folders(settings).items()}

    def run(self, commands: str) -> subprocess.CompletedProcess:
        script = (
            f"set -e; mount --bind {self.fstab} /etc/fstab; export NODE_ENV={self.root / 'node.env'} BOOT_LOG={self.root / 'boot.log'}; "
            f". /dev/stdin <<'BOOT'\n{boot_script.boot_script_text(self.settings.content_sync)}\nBOOT\n{commands}"
        )
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", script], capture_output=True, text=True, timeout=120
        )


@pytest.fixture()
def export(tmp_path) -> Path:
    folder = tmp_path / "efs"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "version, scope, tenants",
    [
        ("4.3.0", None, True),
        ("3.2.0", None, False),
        ("3.2.0", "artifacts", True),
        ("4.3.0", "server", True),
    ],
)
def test_mounts_seeds_once_and_binds_each_shared_folder(version, scope, tenants, tmp_path, export):
    settings = local_settings(version, scope, tenants)
    node = Node(settings, tmp_path, export)
    probe = " ".join(
        f"mountpoint -q {path} && echo bound {name} && echo from-node > {path}/written-on-node.txt;" for name, path in node.folders.items()
    )
    first = node.run(f"{SHARE_STEPS}; {probe}")
    assert first.returncode == 0, first.stderr
    assert sorted(line.split()[1] for line in first.stdout.splitlines()) == sorted(node.folders)
    for name in node.folders:
        assert (export / name / "written-on-node.txt").read_text() == "from-node\n", f"{name} is the share's"
        assert (export / f".wso2am-seeded-{name}").exists()
    # The distribution's files under each shared folder are on the share, and nothing else of it.
    expected = files_on_the_share(str(node.home / "repository/deployment/server"), node.folders)
    assert expected and all((export / f).exists() for f in expected), expected
    if settings.share_scope == "artifacts":
        assert not (export / "webapps").exists() and not (export / "server").exists()
    assert first.stderr.count("seeded the share") == 1
    lines = node.fstab.read_text().splitlines()
    assert len(lines) == 2 + len(node.folders)
    # As on a reboot: everything again, in a new namespace; nothing is added or seeded twice.
    second = node.run(SHARE_STEPS)
    assert second.returncode == 0, second.stderr
    assert "seeded" not in second.stderr and "added" not in second.stderr
    assert node.fstab.read_text().splitlines() == lines


def test_the_second_node_finds_the_share_seeded_and_binds_it(tmp_path, export):
    settings = local_settings("4.3.0", None, True)
    first, second = Node(settings, tmp_path, export, "node-1"), Node(settings, tmp_path, export, "node-2")
    assert first.run(f"{SHARE_STEPS}; echo v1 > {first.folders['userstores']}/store.xml").returncode == 0
    seen = second.run(f"{SHARE_STEPS}; cat {second.folders['userstores']}/store.xml")
    assert seen.returncode == 0 and seen.stdout.strip() == "v1" and "seeded" not in seen.stderr


def test_a_half_copied_folder_is_copied_again_and_a_folder_put_there_is_kept(tmp_path, export):
    settings = local_settings("3.2.0", "artifacts", False)
    (export / ".synapse-configs.part").mkdir()  # a first boot that died while copying
    (export / ".synapse-configs.part/half.xml").write_text("half")
    (export / "userstores").mkdir()  # an operator's copy, made before the scope was switched
    (export / "userstores/secondary.xml").write_text("operator's")
    node = Node(settings, tmp_path, export)
    result = node.run(SHARE_STEPS)
    assert result.returncode == 0, result.stderr
    assert (export / "synapse-configs/default/api/_TokenAPI_.xml").exists()
    assert not (export / "synapse-configs/half.xml").exists() and not (export / ".synapse-configs.part").exists()
    assert (export / "userstores/secondary.xml").read_text() == "operator's"
    assert not (export / "userstores/README").exists(), "a folder already on the share is not copied over"


@pytest.mark.parametrize("scope", ["server", "artifacts"])
def test_a_share_of_the_earlier_layout_is_adopted(scope, tmp_path, export):
    """Earlier, the file system was mounted at deployment/server itself: its root is that folder."""
    (export / "synapse-configs/default/api").mkdir(parents=True)
    (export / "synapse-configs/default/api/Published_v1.xml").write_text("published\n")
    (export / "synapse-configs/default/api/_TokenAPI_.xml").write_text("customised\n")
    (export / "webapps").mkdir()
    (export / ".wso2am-seeded").write_text("2026-01-01T00:00:00Z")
    (export / ".wso2am-seed.lock").touch()
    node = Node(local_settings("3.2.0", scope, False), tmp_path, export)
    api = "synapse-configs/default/api"
    server = node.home / "repository/deployment/server"
    result = node.run(f"{SHARE_STEPS}; cat {server}/{api}/Published_v1.xml {server}/{api}/_TokenAPI_.xml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["published", "customised"], "what was published stays served, unchanged"
    if scope == "server":
        assert sorted(p.name for p in export.iterdir()) == [".wso2am-seed.lock", ".wso2am-seeded", ".wso2am-seeded-server", "server"]
        assert (export / "server/webapps").is_dir()
