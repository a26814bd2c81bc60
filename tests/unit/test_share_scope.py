"""shared_fs.scope: what is on the file system (the whole deployment/server, or the subfolders WSO2's own tools
share for the version), and how each node mounts it: the real systemd fstab generator reads the lines the boot
step adds, and API-M's unit requires exactly those mounts."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.shared_folders import SHARE_ROOT, render_fstab, shared_folders
from apim_active_active.settings import SettingsError, parse_settings
from tests.conftest import DEPLOYED, local_settings_dict
from tests.helpers import cloud_config_files, local_settings, rsync_local

GENERATOR = Path("/usr/lib/systemd/system-generators/systemd-fstab-generator")
HOME_43 = "/opt/wso2/wso2am-4.3.0"
HOME_32 = "/opt/wso2/wso2am-3.2.0"


def test_the_default_is_per_version(environments):
    assert local_settings("4.3.0").share_scope == "artifacts"
    assert local_settings("4.0.0").share_scope == "artifacts"
    assert local_settings("3.2.0").share_scope == "server", "the seed (3.2) shares the whole folder"
    assert environments["legacy32"].share_scope == "server"
    assert local_settings("4.3.0", scope="server").share_scope == "server"
    assert local_settings("3.2.0", scope="artifacts").share_scope == "artifacts"


@pytest.mark.parametrize(
    "version, scope, tenants, expected",
    [
        ("3.2.0", "server", False, {"server": f"{HOME_32}/repository/deployment/server"}),
        (
            "3.2.0",
            "artifacts",
            False,
            {name: f"{HOME_32}/repository/deployment/server/{name}" for name in ("synapse-configs", "executionplans", "userstores")},
        ),
        ("4.3.0", "artifacts", False, {"userstores": f"{HOME_43}/repository/deployment/server/userstores"}),
        (
            "4.3.0",
            "artifacts",
            True,
            {"userstores": f"{HOME_43}/repository/deployment/server/userstores", "tenants": f"{HOME_43}/repository/tenants"},
        ),
        ("4.3.0", "server", True, {"server": f"{HOME_43}/repository/deployment/server", "tenants": f"{HOME_43}/repository/tenants"}),
    ],
)
def test_the_shared_folders_of_each_scope_and_version(version, scope, tenants, expected):
    assert shared_folders(local_settings(version, scope, tenants)) == expected


def test_an_unknown_scope_is_refused_naming_the_setting():
    data = copy.deepcopy(local_settings_dict())
    data["shared_fs"]["scope"] = "everything"
    with pytest.raises(SettingsError) as error:
        parse_settings(data, environ={})
    assert "shared_fs.scope" in str(error.value) and "'server' or 'artifacts'" in str(error.value)


def test_a_scope_with_rsync_is_refused():
    data = copy.deepcopy(local_settings_dict())
    data["shared_fs"] = {"scope": "artifacts"}
    data["content_sync"] = "rsync"
    with pytest.raises(SettingsError, match='shared_fs: content_sync = "rsync" has no shared file system'):
        parse_settings(data, environ={})


@pytest.mark.skipif(not GENERATOR.exists(), reason="systemd's fstab generator is installed by `make install`")
@pytest.mark.parametrize("version, scope, tenants", [("4.3.0", None, True), ("3.2.0", None, False), ("3.2.0", "artifacts", True)])
def test_systemd_mounts_the_share_then_binds_each_folder_after_the_network(version, scope, tenants, tmp_path):
    settings = local_settings(version, scope, tenants)
    fstab = tmp_path / "fstab"
    fstab.write_text(render_fstab(settings, DEPLOYED.efs_id))
    out = tmp_path / "units"
    out.mkdir()
    result = subprocess.run(
        [str(GENERATOR), out, out, out],
        env={"SYSTEMD_FSTAB": str(fstab), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    mounts = {}
    for unit in out.glob("*.mount"):
        lines = unit.read_text().splitlines()
        where = next(line.split("=", 1)[1] for line in lines if line.startswith("Where="))
        mounts[where] = lines
    folders = shared_folders(settings)
    assert set(mounts) == {SHARE_ROOT, *folders.values()}
    # Every one of them waits for the network (remote-fs.target); none sits in local-fs.target, where a bind
    # from a network file system would make an ordering cycle.
    required = {link.name for link in (out / "remote-fs.target.requires").iterdir()}
    assert len(required) == len(mounts)
    assert not [link.name for link in out.glob("local-fs.target.*/*.mount")]
    for name, path in folders.items():
        assert f"RequiresMountsFor={SHARE_ROOT}" in mounts[path], f"{path} is bound only once the share is mounted"
        assert f"What={SHARE_ROOT}/{name}" in mounts[path]
    assert "Type=efs" in mounts[SHARE_ROOT] and f"What={DEPLOYED.efs_id}:/" in mounts[SHARE_ROOT]
    unit = boot_script.render_systemd_unit(settings)
    assert f"RequiresMountsFor={' '.join([SHARE_ROOT, *folders.values()])}" in unit.splitlines(), (
        "API-M never starts without every one of them"
    )


def test_efs_user_data_carries_the_fstab_lines_and_rsync_none(environments):
    files = cloud_config_files(boot_script.render_user_data(environments["local"], 0, DEPLOYED))
    assert files[boot_script.FSTAB_ENTRIES]["content"] == render_fstab(environments["local"], DEPLOYED.efs_id)
    assert boot_script.FSTAB_ENTRIES not in cloud_config_files(boot_script.render_user_data(rsync_local(), 1, DEPLOYED))
