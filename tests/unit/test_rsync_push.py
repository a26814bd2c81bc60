"""The rsync push, run for real: node 1's `wso2am-boot push` against node 2's side (a real sshd on loopback,
node 1's key authorized by node 2's own `wso2am-boot check-share`, the rendered rsyncd.conf behind the forced
command). Stand-ins: `aws` (SSM, answering with the public keys the nodes would have published), `systemctl`,
and the receiving user, which is root here (the rehearsal's node hosts have the dedicated user)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script, rsync
from apim_active_active.renderers.shared_folders import shared_folders
from tests.conftest import DEPLOYED, free_port
from tests.helpers import rsync_local

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sshd"), reason="needs root and sshd (make install)")
SSHD_SECONDS = 10


def _node(tmp: Path, node: int, port: int, answers: Path) -> dict:
    """One node's files: its install folder, its node.env pointing into tmp, and the stand-ins."""
    root = tmp / f"node{node + 1}"
    settings = rsync_local(install_dir=str(root / "opt"))
    env = boot_script.render_node_env(settings, DEPLOYED, node)
    # (rsyncd.conf first: the key folder's path is a prefix of it)
    for constant, path in (
        (rsync.RSYNCD_CONF, root / "rsyncd.conf"),
        (rsync.SYNC_HOME, root / "sync"),
        (rsync.SYNC_KEY_DIR, root / "keys"),
    ):
        env = env.replace(constant, str(path))
    env = env.replace("PEER_IP=10.0.1.10", "PEER_IP=127.0.0.1").replace("PEER_IP=10.0.2.10", "PEER_IP=127.0.0.1")
    env = env.replace(f"SYNC_USER={rsync.SYNC_USER}", "SYNC_USER=root")
    (root / "sync" / ".ssh").mkdir(parents=True)
    (root / "sync" / "state").mkdir()
    (root / "keys").mkdir(mode=0o700)
    (root / "node.env").write_text(env)
    server = Path(shared_folders(settings)["server"])
    server.mkdir(parents=True)
    conf = rsync.render_rsyncd_conf(settings).replace(rsync.SYNC_STATE_DIR, str(root / "sync" / "state"))
    # The receiving user is root here: without these a daemon started as root drops to nobody.
    conf = conf.replace("use chroot = no\n", "use chroot = no\nuid = root\ngid = root\n", 1)
    (root / "rsyncd.conf").write_text(conf)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    # aws: `ssm get-parameter --name N` prints the file answers/<basename N>; systemctl: API-M is running.
    (bin_dir / "aws").write_text(
        f'#!/bin/bash\nfor a; do [[ "$prev" == --name ]] && name=$a; prev=$a; done\ncat "{answers}/$(basename "$name")"\n'
    )
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    script = root / "wso2am-boot"
    script.write_text(boot_script.boot_script_text(settings.content_sync))

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), command],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin:/usr/sbin",
                "NODE_ENV": str(root / "node.env"),
                "BOOT_LOG": "/dev/null",
                "SYNC_SSH_PORT": str(port),
                "PUSH_LOCK": str(root / "push.lock"),
                "STOPPED_BY_WATCH": str(root / "stopped-by-watch"),
            },
        )

    return {"root": root, "server": server, "run": run, "state": root / "sync" / "state"}


@pytest.fixture()
def pair(tmp_path):
    port = free_port()
    answers = tmp_path / "answers"
    answers.mkdir()
    manager, worker = _node(tmp_path, 0, port, answers), _node(tmp_path, 1, port, answers)
    host_key = tmp_path / "host_ed25519"
    manager_key = manager["root"] / "keys" / "id_ed25519"
    for key in (host_key, manager_key):  # node 1 creates its key at first boot, as prepare_sender does
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    shutil.copy(f"{host_key}.pub", answers / rsync.WORKER_HOST_KEY)
    shutil.copy(f"{manager_key}.pub", answers / rsync.MANAGER_KEY)
    config = tmp_path / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\nPidFile {tmp_path}/sshd.pid\n"
        f"AuthorizedKeysFile {worker['root']}/sync/.ssh/authorized_keys\nPermitRootLogin forced-commands-only\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\n"  # the test's folders live under /tmp; the rehearsal keeps the real modes
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + SSHD_SECONDS
    while subprocess.run(["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline and sshd.poll() is None, "sshd did not start"
        time.sleep(0.2)
    yield {"manager": manager, "worker": worker, "answers": answers, "port": port, "key": manager_key}
    sshd.terminate()
    sshd.wait(timeout=10)


def _ssh(pair, *command: str) -> subprocess.CompletedProcess:
    known = pair["manager"]["root"] / "keys" / "known_hosts"
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(pair["key"]),
            "-p",
            str(pair["port"]),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "root@127.0.0.1",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_node_1s_artifacts_reach_node_2_and_nothing_else_changes_there(pair):
    manager, worker = pair["manager"], pair["worker"]
    authorized = pair["worker"]["run"]("check-share")
    assert authorized.returncode == 0, authorized.stderr
    line = (worker["root"] / "sync" / ".ssh" / "authorized_keys").read_text()
    forced = f'command="rsync --server --daemon --config={worker["root"]}/rsyncd.conf .",restrict,from="127.0.0.1"'
    assert line.startswith(f"{forced} ssh-ed25519 ")
    (manager["server"] / "synapse-configs").mkdir()
    (manager["server"] / "synapse-configs" / "PizzaAPI.xml").write_text("<api name='Pizza'/>")
    (worker["server"] / "stale.xml").write_text("deleted on node 1 long ago")
    (worker["server"] / ".wso2am-node-local").write_text("node 2's own")
    # Tomcat unpacks each .war on each node: node 2's daemon refuses these, so node 1 must not send its own.
    (manager["server"] / "webapps" / "publisher").mkdir(parents=True)
    (manager["server"] / "webapps" / "publisher.war").write_text("war")
    (worker["server"] / "webapps" / "devportal").mkdir(parents=True)
    pushed = manager["run"]("push")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed server=" in pushed.stderr and "synapse-configs/PizzaAPI.xml" in pushed.stdout
    assert (worker["server"] / "synapse-configs" / "PizzaAPI.xml").read_text() == "<api name='Pizza'/>"
    assert not (worker["server"] / "stale.xml").exists(), "--delete"
    assert (worker["server"] / ".wso2am-node-local").read_text() == "node 2's own", "excluded by node 2's daemon"
    assert (worker["server"] / "webapps" / "publisher.war").exists() and (worker["server"] / "webapps" / "devportal").is_dir()
    assert not (worker["server"] / "webapps" / "publisher").exists(), "node 1's unpacked web application stays on node 1"
    assert (worker["state"] / "synced").exists(), "the first complete push is recorded on node 2"
    # One direction only: what node 2 writes stays there.
    (worker["server"] / "written-on-node-2.xml").write_text("x")
    assert not (manager["server"] / "written-on-node-2.xml").exists()


def test_the_key_runs_nothing_but_the_write_only_rsync_daemon(pair):
    assert pair["worker"]["run"]("check-share").returncode == 0
    assert pair["manager"]["run"]("push").returncode == 0  # pins the host key
    shell = _ssh(pair, "cat", "/etc/passwd")
    assert shell.returncode != 0 and "root:" not in shell.stdout
    read_back = subprocess.run(
        [
            "rsync",
            "-a",
            "-e",
            f"ssh -i {pair['key']} -p {pair['port']} -o BatchMode=yes -o UserKnownHostsFile={pair['manager']['root']}/keys/known_hosts",
            "root@127.0.0.1::server/",
            "/tmp/never/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert read_back.returncode != 0 and "write only" in read_back.stderr


def test_a_host_key_that_is_not_the_published_one_is_refused(pair):
    assert pair["worker"]["run"]("check-share").returncode == 0
    impostor = pair["answers"] / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    shutil.copy(f"{impostor}.pub", pair["answers"] / rsync.WORKER_HOST_KEY)
    (pair["manager"]["server"] / "api.xml").write_text("x")
    refused = pair["manager"]["run"]("push")
    assert refused.returncode != 0 and "Host key verification failed" in refused.stderr
    assert not (pair["worker"]["server"] / "api.xml").exists()


def test_runs_never_overlap(pair):
    (pair["manager"]["server"] / "api.xml").write_text("x")
    with open(pair["manager"]["root"] / "push.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a push still running
        skipped = pair["manager"]["run"]("push")
    assert skipped.returncode == 0 and "still running: skipped" in skipped.stderr
    assert not (pair["worker"]["server"] / "api.xml").exists()


def test_a_parameter_value_that_is_not_one_plain_key_is_never_authorized(pair):
    """The value ends up in authorized_keys: a second line would be a key without the forced command."""
    good = (pair["answers"] / rsync.MANAGER_KEY).read_text().split()
    crafted = f"{good[0]} {good[1]} x\n{good[0]} {good[1]}"
    (pair["answers"] / rsync.MANAGER_KEY).write_text(crafted)
    assert pair["worker"]["run"]("check-share").returncode == 0
    assert not (pair["worker"]["root"] / "sync" / ".ssh" / "authorized_keys").exists()
    (pair["answers"] / rsync.MANAGER_KEY).write_text(f'{good[0]} {good[1]} "comment",command="sh"\n')
    assert pair["worker"]["run"]("check-share").returncode == 0
    assert not (pair["worker"]["root"] / "sync" / ".ssh" / "authorized_keys").exists()
    (pair["answers"] / rsync.MANAGER_KEY).write_text(" ".join(good) + "\n")
    assert pair["worker"]["run"]("check-share").returncode == 0
    line = (pair["worker"]["root"] / "sync" / ".ssh" / "authorized_keys").read_text()
    assert line.count("\n") == 1 and line.endswith(f" {good[0]} {good[1]}\n"), "the key alone, not its comment"
