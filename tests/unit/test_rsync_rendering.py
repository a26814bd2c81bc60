"""content_sync = "rsync": what each node is given (deployment.toml, node.env, units, user data), rendered
by the real renderers and read back."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from apim_active_active.renderers import boot_script, rsync
from apim_active_active.renderers.deployment_toml import LOCAL_SERVICE_URL, render_deployment_toml
from apim_active_active.renderers.shared_folders import shared_folders
from tests.conftest import DEPLOYED
from tests.helpers import cloud_init_schema, rsync_local


def _service_url(settings, node: int) -> str:
    toml = render_deployment_toml(settings, node, DEPLOYED.db_host, DEPLOYED.db_port, DEPLOYED.lb_dns_name)
    return tomllib.loads(toml)["apim"]["gateway"]["environment"][0]["service_url"]


def _env(settings, node: int) -> dict[str, str]:
    text = boot_script.render_node_env(settings, DEPLOYED, node)
    return dict(line.split("=", 1) for line in text.splitlines())


def _files(settings, node: int) -> dict[str, str]:
    document = yaml.safe_load(boot_script.render_user_data(settings, node, DEPLOYED))
    return {entry["path"]: entry["content"] for entry in document["write_files"]} | {"packages": document["packages"]}


def test_node_2_publishes_through_node_1_and_node_1_through_itself():
    settings = rsync_local()
    assert _service_url(settings, 0) == LOCAL_SERVICE_URL
    assert _service_url(settings, 1) == "https://10.0.1.10:9443/services/"


def test_with_efs_both_nodes_publish_through_themselves(environments):
    assert {_service_url(environments["local"], node) for node in (0, 1)} == {LOCAL_SERVICE_URL}


def test_node_1_is_the_manager_node_2_the_worker_each_naming_the_other():
    settings = rsync_local()
    manager, worker = _env(settings, 0), _env(settings, 1)
    assert (manager["SYNC_ROLE"], manager["PEER_IP"]) == ("manager", "10.0.2.10")
    assert (worker["SYNC_ROLE"], worker["PEER_IP"]) == ("worker", "10.0.1.10")
    for env in (manager, worker):
        assert env["CONTENT_SYNC"] == "rsync"
        assert not {"EFS_ID", "EFS_DNS", "SHARE_ROOT", "FSTAB_ENTRIES"} & set(env)
        assert env["MANAGER_KEY_PARAMETER"] == "/apim-local/rsync/manager-key"
        assert env["WORKER_HOST_KEY_PARAMETER"] == "/apim-local/rsync/worker-host-key"
        assert env["SHARED_FOLDERS"] == "server=/opt/wso2/wso2am-4.3.0/repository/deployment/server"


def test_tenants_are_pushed_when_they_are_used():
    folders = shared_folders(rsync_local(tenants=True))
    assert folders == {
        "server": "/opt/wso2/wso2am-4.3.0/repository/deployment/server",
        "tenants": "/opt/wso2/wso2am-4.3.0/repository/tenants",
    }
    assert "\n[tenants]\n    path = /opt/wso2/wso2am-4.3.0/repository/tenants\n" in rsync.render_rsyncd_conf(rsync_local(tenants=True))


def test_the_receiving_daemon_may_only_be_written_to_and_keeps_node_local_files():
    conf = rsync.render_rsyncd_conf(rsync_local())
    for line in ("read only = no", "write only = yes", "list = no", "use chroot = no"):
        assert f"\n{line}\n" in conf
    # It runs as the receiving user: a non-root daemon given a uid or gid fails ("setgroups failed").
    assert not [line for line in conf.splitlines() if line.startswith(("uid", "gid"))]
    assert "\n[state]\n    path = /var/lib/wso2am-sync/state\n" in conf
    assert f"exclude = {' '.join(rsync.NODE_LOCAL)}" in conf
    assert rsync.forced_command() == "rsync --server --daemon --config=/etc/wso2am/rsyncd.conf ."


def test_only_the_worker_waits_for_the_first_push_and_only_efs_needs_the_mount(environments):
    settings = rsync_local()
    manager, worker = (boot_script.render_systemd_unit(settings, node) for node in (0, 1))
    assert f"AssertPathExists={rsync.SYNC_MARKER}\n" in worker
    assert "AssertPathExists" not in manager
    assert "RequiresMountsFor" not in manager + worker
    assert "UMask=0007\n" in worker, "what API-M creates on node 2 stays the pushes' to replace (group-writable)"
    assert "UMask=0027\n" in manager, "nothing API-M writes is for other users"
    assert "\nRequiresMountsFor=/mnt/wso2am-share /opt/" in boot_script.render_systemd_unit(environments["local"], 1)


def test_the_manager_gets_the_push_timer_the_worker_the_daemon_configuration_and_the_watch():
    settings = rsync_local()
    manager, worker = _files(settings, 0), _files(settings, 1)
    push_service, push_timer = (f"/etc/systemd/system/{rsync.PUSH}.{kind}" for kind in ("service", "timer"))
    watch = f"/etc/systemd/system/{boot_script.SHARE_WATCH}.timer"
    assert f"ExecStart={boot_script.BOOT_SCRIPT} push\n" in manager[push_service]
    assert "OnUnitActiveSec=60\n" in manager[push_timer]
    assert rsync.RSYNCD_CONF not in manager and watch not in manager
    assert worker[rsync.RSYNCD_CONF] == rsync.render_rsyncd_conf(settings)
    assert watch in worker and push_timer not in worker
    assert "rsync" in manager["packages"] and "amazon-efs-utils" not in manager["packages"]


@pytest.mark.parametrize("node", [0, 1])
def test_no_key_material_is_in_the_user_data(node):
    text = boot_script.render_user_data(rsync_local(), node, DEPLOYED)
    assert "PRIVATE KEY" not in text
    assert "ssh-ed25519 AAAA" not in text


@pytest.mark.parametrize("node", [0, 1])
def test_user_data_passes_cloud_init_schema(node, tmp_path):
    path = tmp_path / "user-data.yaml"
    path.write_text(boot_script.render_user_data(rsync_local(tenants=True), node, DEPLOYED))
    result = cloud_init_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
