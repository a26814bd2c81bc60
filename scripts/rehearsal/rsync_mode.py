"""The boot rehearsal of content_sync = "rsync": `local` switched to rsync, deployed to a private emulator, both
nodes booted at once from the user data read back, node 2 running a real sshd. The push timer is played by a
bounded loop running the push service's own command every rsync.interval_seconds, as the timer would.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from apim_active_active.names import OUTPUT_INSTANCE_IDS, OUTPUT_NODE_IPS, rsync_parameter
from apim_active_active.renderers import rsync
from apim_active_active.renderers.boot_script import BOOT_SCRIPT, SERVICE
from scripts.local_stack import ROOT, client, rsync_variant
from scripts.rehearsal.lab import NodeHost
from scripts.rehearsal.run import BOOT_SECONDS, FIRST_BOOT, Rehearsal, tail
from scripts.show_deployment import user_data

PREFIX = "apim-rsync"
INTERVAL_SECONDS = 15  # the smallest rsync.interval_seconds: the rehearsal waits for a period or two
TIMER_SECONDS = 600  # the timer loop never outlives this
PUSH_SECONDS = 10  # what one push of the rehearsal's small tree may take, on a busy machine
STOPPED_BY_WATCH = "/var/lib/wso2am/stopped-by-share-watch"


def rsync_environment() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rehearsal-rsync-env-", dir="/var/tmp"))
    text = rsync_variant((ROOT / "environments" / "local.toml").read_text(), PREFIX, INTERVAL_SECONDS)
    (folder / "local.toml").write_text(text)
    return folder / "local.toml"


class PushTimer:
    """What wso2am-rsync-push.timer does on node 1: run the push service's command once per period."""

    def __init__(self, node: NodeHost, env: dict[str, str], period: float) -> None:
        self.node, self.env, self.period = node, env, period
        self.stop = threading.Event()
        self.runs: list[subprocess.CompletedProcess] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        deadline = time.monotonic() + TIMER_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()  # OnUnitActiveSec: a period from one start to the next
            self.runs.append(self.node.run(BOOT_SCRIPT, "push", env=self.env, timeout=120))
            self.stop.wait(max(0.0, started + self.period - time.monotonic()))

    def __enter__(self) -> PushTimer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=150)


class RsyncRehearsal(Rehearsal):
    drill = False  # the restore drill runs in the EFS mode (a restore of rsync's is the database's only)
    gateway_rehearsed = False  # the gateway scale-out node runs in the EFS mode (it has no share in either)

    def __init__(self, keep: bool = False, destroy_stack: bool = True) -> None:
        environment = rsync_environment()
        super().__init__(environment=environment, tag="rs", keep=keep, destroy_stack=destroy_stack)
        self.settings_folder = environment.parent
        self.interval = self.settings.rsync_settings.interval_seconds
        self.server = self.settings.apim.server_dir

    # hosts -----------------------------------------------------------------------------------
    def node_hosts(self, mount_target: str | None) -> dict[str, str]:
        return {self.db_host: self.db_address}

    def open_lab(self) -> None:
        ec2 = client("ec2", self.endpoint)
        self.user_data = [user_data(ec2, i) for i in self.outputs[OUTPUT_INSTANCE_IDS]]
        addresses = self.outputs[OUTPUT_NODE_IPS]
        self.lab.open_network()
        self.start_database_and_relay(str(self.settings.network.subnet_cidrs[0].network_address + 200))
        self.nodes = [self.add_node(n, addresses[n], self.user_data[n], None) for n in (0, 1)]
        self.start_sshd(self.nodes[1])

    def start_sshd(self, node: NodeHost) -> None:
        """Node 2's sshd, with host keys of its own (as a new instance generates at first boot)."""
        setup = node.run("sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && mkdir -p /run/sshd")
        if setup.returncode != 0:
            raise RuntimeError(f"sshd set-up on {node.name} failed: {setup.stderr}")
        self.lab.processes.append(
            subprocess.Popen(
                node.argv("/usr/sbin/sshd", "-D", "-e", "-o", "UsePAM=no"),
                stdout=subprocess.DEVNULL,
                stderr=(self.work / "sshd-2.log").open("w"),
            )
        )
        self.notes.append(
            "node 2 runs this machine's sshd (Debian's sshd_config, without PAM: a namespace has no login uid) with host keys of its own"
        )

    # booting ---------------------------------------------------------------------------------
    def first_boot_of_both(self) -> list[str]:
        logs = [self.work / f"boot-{n + 1}.log" for n in (0, 1)]
        boots = [self.boot(node, FIRST_BOOT, log) for node, log in zip(self.nodes, logs)]
        return self.first_boots_done(boots, logs, time.monotonic() + BOOT_SECONDS)

    def check_first_boot(self, texts: list[str]) -> None:
        manager, worker = self.nodes
        held = not self.active(worker) and worker.path(STOPPED_BY_WATCH).exists()
        self.check("node 2 holds API-M until node 1's first push has landed", "2", held, tail(texts[1], 1))
        self.check("node 1 (the manager) started API-M", "1", self.active(manager) and self.answers(manager) == "200")
        order = [texts[0].find("published this node's public push key"), texts[1].find("authorized node 1's key")]
        self.check(
            "node 1 published its key after its secrets and schema; node 2 authorized it, then booted",
            "both",
            -1 not in order and texts[0].find("created the schema") < order[0],
            str(order),
        )
        self.check_receiving_side(worker)
        first = manager.run(BOOT_SCRIPT, "push", env=self.boot_env())
        self.check(
            "the push service's command succeeds (as its timer runs it)",
            "1->2",
            first.returncode == 0 and "pushed server=" in first.stderr,
            tail(first.stderr, 2),
        )
        watch = worker.run(BOOT_SCRIPT, "check-share", env=self.boot_env())
        answer = self.answers_within(worker)
        landed, active = worker.path(rsync.SYNC_MARKER).exists(), self.active(worker)
        self.check(
            "first push landed: the share watch starts API-M on node 2, and it answers 9443",
            "2",
            landed and active and answer == "200",
            f"marker {landed}, active {active}, 9443 {answer}; {tail(watch.stderr, 1)}",
        )

    def check_receiving_side(self, worker: NodeHost) -> None:
        keys = worker.path(f"{rsync.SYNC_HOME}/.ssh/authorized_keys")
        lines = keys.read_text().splitlines() if keys.exists() else []
        forced = f'command="{rsync.forced_command()}",restrict,from="{self.nodes[0].address}" ssh-ed25519 '
        self.check(
            "node 2 authorizes one key, from node 1 only, for the rsync daemon only",
            "2",
            len(lines) == 1 and lines[0].startswith(forced) and keys.stat().st_uid == 0,
            lines[0][:90] if lines else "",
        )
        shell = self.nodes[0].run(
            "ssh",
            "-n",
            "-i",
            f"{rsync.SYNC_KEY_DIR}/id_ed25519",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={rsync.SYNC_KEY_DIR}/known_hosts",
            f"{rsync.SYNC_USER}@{worker.address}",
            "id",
            timeout=30,
        )
        self.check(
            "node 1's key runs nothing but rsync on node 2 (`ssh node2 id` gets no shell)",
            "1->2",
            shell.returncode != 0 and "uid=" not in shell.stdout,
            tail(shell.stderr, 1),
        )

    def check_pushes(self) -> None:
        manager, worker = self.nodes
        artifact = f"{self.server}/rehearsal-from-node-1.xml"
        back = f"{self.server}/rehearsal-from-node-2.xml"
        with PushTimer(manager, self.boot_env(), self.interval) as timer:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not timer.runs:  # the timer's first run is under way
                time.sleep(0.2)
            written = time.monotonic()
            manager.run("sh", "-c", f"echo '<api name=\"Rehearsal\"/>' > {artifact}")
            worker.run("sh", "-c", f"echo written-on-node-2 > {back}")
            deadline = written + self.interval + PUSH_SECONDS + 10
            while time.monotonic() < deadline and not worker.path(artifact).exists():
                time.sleep(0.5)
            seconds = time.monotonic() - written
            arrived = worker.path(artifact).exists()
            # Within one period, plus the push's own time (a file written just after a push scanned waits for the next).
            self.check(
                f"a file written on node 1 reaches node 2 within the timer period ({self.interval}s)",
                "1->2",
                arrived and seconds <= self.interval + PUSH_SECONDS,
                f"{seconds:.1f}s" if arrived else "never arrived",
            )
            # Two more pushes: the one that brought the file may have started before node 2 wrote its own.
            runs = len(timer.runs)
            deadline = time.monotonic() + 2 * self.interval + 30
            while time.monotonic() < deadline and len(timer.runs) < runs + 2:
                time.sleep(0.5)
        self.check(
            "a file written on node 2 does not travel back (and node 1's next push removes it there)",
            "2->1",
            not manager.path(back).exists() and not worker.path(back).exists(),
            f"{len(timer.runs)} push(es) ran, failures: {sum(r.returncode != 0 for r in timer.runs)}",
        )
        stat = worker.run("stat", "-c", "%U %G %A", artifact).stdout.split()
        self.check(
            "what arrives on node 2 is the receiving user's, readable and writable by API-M's group",
            "2",
            stat[:2] == [rsync.SYNC_USER, self.settings.apim.os_user] and stat[2][4:6] == "rw",
            " ".join(stat),
        )

    def check_no_private_key_anywhere(self) -> None:
        key = self.nodes[0].path(f"{rsync.SYNC_KEY_DIR}/id_ed25519")
        body = "".join(key.read_text().splitlines()[1:-1]) if key.exists() else ""
        ssm = client("ssm", self.endpoint)
        parameters = [
            ssm.get_parameter(Name=rsync_parameter(self.settings.name_prefix, what), WithDecryption=True)["Parameter"]["Value"]
            for what in (rsync.MANAGER_KEY, rsync.WORKER_HOST_KEY)
        ]
        places = {
            "SSM parameters": "".join(parameters),
            "cdk.tf.json": (self.work / "cdktf.out" / "stacks" / "local" / "cdk.tf.json").read_text(),
            "Terraform state": (self.work / "state" / "local.tfstate").read_text(),
            "user data": "".join(self.user_data),
            "boot logs": "".join(p.read_text() for p in self.work.glob("*boot*.log")),
        }
        mode = oct(key.stat().st_mode & 0o777) if key.exists() else "missing"
        found = [where for where, text in places.items() if body[:40] and body[:40] in "".join(text.split())]
        published = parameters[0].split()[:2] == (key.with_suffix(".pub").read_text().split()[:2] if key.exists() else [])
        self.check(
            "node 1's private key stays on node 1 (0600); only its public key is in SSM",
            "1",
            bool(body) and not found and mode == "0o600" and published,
            f"{mode}; found in: {', '.join(found) or 'none of ' + str(len(places)) + ' places'}",
        )

    def snapshot(self, node: NodeHost) -> dict:
        read = lambda inside: node.path(inside).read_text() if node.path(inside).exists() else ""  # noqa: E731
        wants = lambda target: sorted(p.name for p in node.path(f"/etc/systemd/system/{target}.wants").glob("*"))  # noqa: E731
        return {
            "timers": wants("timers.target"),
            "services": wants("multi-user.target"),
            "push key": hashlib.sha256(read(f"{rsync.SYNC_KEY_DIR}/id_ed25519").encode()).hexdigest(),
            "known_hosts": read(f"{rsync.SYNC_KEY_DIR}/known_hosts"),
            "authorized_keys": read(f"{rsync.SYNC_HOME}/.ssh/authorized_keys"),
            "users": [
                line for line in read("/etc/passwd").splitlines() if line.split(":")[0] in (rsync.SYNC_USER, self.settings.apim.os_user)
            ],
            "hosts": [line for line in read("/etc/hosts").splitlines() if line.startswith("127.0.0.1 ")],
        }

    def second_boot(self) -> None:
        for index, node in enumerate(self.nodes):
            before = self.snapshot(node)
            code = self.boot(node, BOOT_SCRIPT, self.work / f"second-boot-{index + 1}.log").wait(timeout=BOOT_SECONDS)
            after = self.snapshot(node)
            changed = [key for key in before if before[key] != after[key]]
            self.check(
                "second boot duplicates nothing: timers, keys, authorized_keys, users, hosts",
                str(index + 1),
                code == 0 and not changed and len(after["authorized_keys"].splitlines()) == (index == 1),
                f"exit {code}" + (f", changed: {changed}" if changed else ""),
            )

    # node replacement (the roll) ----------------------------------------------------------------------
    def after_add_node(self, index: int, node: NodeHost) -> None:
        if index == 1:
            self.start_sshd(node)  # a new instance: host keys of its own

    def after_replacement(self, index: int, node: NodeHost, text: str) -> list[str]:
        """A new node 1: node 2's share watch follows its key from SSM, then its push lands. A new node 2 holds API-M:
        node 1's next push (following node 2's new host key) lands, then node 2's share watch starts API-M."""
        manager, worker = self.nodes
        problems, follow = [], None
        if index == 0:
            follow = worker.run(BOOT_SCRIPT, "check-share", env=self.boot_env(), timeout=120)
            if "node 1's key changed" not in follow.stderr:
                problems.append(f"node 2 did not follow node 1's new key: {tail(follow.stderr, 1)}")
        push = manager.run(BOOT_SCRIPT, "push", env=self.boot_env(), timeout=120)
        if push.returncode != 0:
            problems.append(f"push failed: {tail(push.stderr, 2)}")
        if index == 1:
            watch = worker.run(BOOT_SCRIPT, "check-share", env=self.boot_env(), timeout=120)
            if not self.active(worker):
                problems.append(f"node 2's API-M not started after the push: {tail(watch.stderr, 1)}")
        self.notes.append(
            f"rsync, node {index + 1} replaced: "
            + ("node 2 followed node 1's new key; " if follow is not None and not problems else "")
            + f"push: {tail(push.stderr, 1)}"
        )
        return problems

    def faults(self) -> None:
        self.check_log_shipping()
        self.check_pushes()
        self.check_no_private_key_anywhere()
        self.second_boot()
        self.stop_node_1()
        self.nodes[0].run("systemctl", "start", SERVICE)  # the pair whole again before the roll's moves
        self.replace_node(0)
        self.replace_node(1)

    def run(self) -> list:
        try:
            return super().run()
        finally:
            shutil.rmtree(self.settings_folder, ignore_errors=True)
