"""The roll's two moves, rehearsed (issue 15): a node destroyed and booted again on a fresh disk from its (changed)
user data while the other keeps answering 9443 at every probe; and a reboot whose share does not mount (the share
watch holds API-M, re-mounts the share once it is back and starts API-M). Mixed into Rehearsal; each method records
its checks with self.check."""

from __future__ import annotations

import subprocess
import threading
import time

import yaml

from apim_active_active.names import OUTPUT_BOOT_BUCKET, OUTPUT_LB_DNS
from apim_active_active.renderers.boot_script import BOOT_SCRIPT, NODE_ENV, SERVICE, Deployed, render_user_data
from apim_active_active.renderers.node_layout import STOPPED_BY_WATCH
from apim_active_active.renderers.shared_folders import mount_points
from scripts.node_drift import node_env
from scripts.rehearsal.lab import NodeHost

PROBE_PERIOD = 1.0  # the prober asks the staying node's 9443 about this often
PROBE_SECONDS = 420  # and never longer than this (a replacement's boot is bounded by BOOT_SECONDS)
MIN_PROBES = 5  # fewer than this and the replacement was not watched
CHANGED_WAIT_SECONDS = 600  # the changed setting the new node's user data carries: apim.first_start_wait_seconds
# Under /run on the node: a reboot empties /run (header.sh); under /var/lib: the disk's own (survives a reboot).
LOOKED_SINCE_BOOT = "/run/wso2am/share-watch-looked"
BOOT_DONE = "/var/lib/wso2am/boot-done"
GENERATED = "wso2am-boot: generated "  # secrets.sh's lines when a node makes a pair's secret
SCHEMA_RUN = "created the schema of "  # database.sh's line when a node runs the product's scripts
FIRST_NODE_WAIT = "node 1's API-M ("  # service.sh's lines while node 2's first start waits for node 1
WAIT_RAN_OUT = "did not answer within"  # common.sh's wait_until, when the wait ran out


class Prober:
    """What the load balancer's health check does to the node that stays: one look at its 9443 every PROBE_PERIOD,
    from a namespace of the bridge (not from a node), for as long as the other node is replaced (bounded)."""

    def __init__(self, namespace: str, url: str, probe: str) -> None:
        self.namespace, self.url, self.probe = namespace, url, probe
        self.stop = threading.Event()
        self.answers: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        deadline = time.monotonic() + PROBE_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                argv = ["ip", "netns", "exec", self.namespace, "python3", "-c", self.probe, self.url]
                answer = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
            except subprocess.TimeoutExpired:
                answer = "no answer: probe timed out"
            self.answers.append(answer)
            self.stop.wait(max(0.0, started + PROBE_PERIOD - time.monotonic()))

    def __enter__(self) -> Prober:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.seconds = time.monotonic() - self.started

    def summary(self) -> str:
        answered = self.answers.count("200")
        other = sorted(set(a for a in self.answers if a != "200"))
        return f"{answered}/{len(self.answers)} probes answered 200 over {self.seconds:.0f}s" + (f"; also: {other[:3]}" if other else "")

    def passed(self) -> bool:
        return len(self.answers) >= MIN_PROBES and all(a == "200" for a in self.answers)


def written_files(user_data: str) -> dict[str, str]:
    return {entry["path"]: entry["content"] for entry in yaml.safe_load(user_data)["write_files"]}


def as_written(user_data: str) -> dict:
    """A cloud-config as the node gets it, node.env by value: Terraform puts a deployed value where the renderers'
    placeholder was, unquoted (an RDS secret's ARN holds a `!`, which the renderers would quote)."""
    config = yaml.safe_load(user_data)
    files = written_files(user_data)
    return {**config, "write_files": {**files, NODE_ENV: node_env({NODE_ENV: files[NODE_ENV]})}}


REPLACED_SECRETS = (
    "replaced node read the pair's secrets: none generated, Secrets Manager's values and what its API-M resolved (from the "
    "secrets file or the secure vault) as before"
)


class NodeMoves:
    # the new user data ---------------------------------------------------------------------------
    def deployed_values(self, index: int) -> Deployed:
        """What only the apply knew, read back from the node's own node.env (and the load balancer's name)."""
        env = node_env({NODE_ENV: self.node_env_text(index)})
        return Deployed(
            efs_id=env.get("EFS_ID", ""),
            db_host=env["DB_HOST"],
            db_port=int(env["DB_PORT"]),
            db_secret_arn=env["DB_SECRET_ARN"],
            admin_secret_arn=env["ADMIN_SECRET_ARN"],
            keystore_secret_arn=env["KEYSTORE_SECRET_ARN"],
            lb_dns_name=self.outputs[OUTPUT_LB_DNS],
            db_app_secret_arn=env.get("DB_APP_SECRET_ARN", ""),
            stack_key_arn=env.get("SYNC_KEY_ARN", ""),
            encryption_key_secret_arn=env.get("ENCRYPTION_KEY_SECRET_ARN", ""),
            boot_bucket=self.outputs[OUTPUT_BOOT_BUCKET],
        )

    def node_env_text(self, index: int) -> str:
        return written_files(self.user_data[index])[NODE_ENV]

    def changed_user_data(self, index: int) -> tuple[str, str]:
        """The node's user data for a changed setting (apim.first_start_wait_seconds), rendered by the renderers with
        the deployed values, as the stack would after the change; and whether the renderers reproduce the user data
        read back for the settings as deployed."""
        deployed = self.deployed_values(index)
        same = as_written(render_user_data(self.settings, index, deployed)) == as_written(self.user_data[index])
        wait = CHANGED_WAIT_SECONDS if self.settings.apim.first_start_wait_seconds != CHANGED_WAIT_SECONDS else CHANGED_WAIT_SECONDS + 60
        changed = self.settings.model_copy(update={"apim": self.settings.apim.model_copy(update={"first_start_wait_seconds": wait})})
        text = render_user_data(changed, index, deployed)
        note = f"apim.first_start_wait_seconds {self.settings.apim.first_start_wait_seconds} -> {wait}"
        problem = "" if same else "the renderers do NOT reproduce the deployed user data"
        return text, problem, note + (f"; {problem}" if problem else "")

    # the probe namespace -------------------------------------------------------------------------
    def probe_namespace(self) -> str:
        """A namespace on the bridge with an address of the VPC outside the node subnets: the load balancer's place."""
        if not getattr(self, "prober_ns", None):
            address = str(self.settings.network.vpc_cidr.network_address + 250)
            self.prober_ns = self.lab.add_host("lb", [address])
        return self.prober_ns

    def after_add_node(self, index: int, node: NodeHost) -> None:
        """What the mode needs on a new node host before its boot (rsync: node 2's sshd)."""

    def after_replacement(self, index: int, node: NodeHost, text: str) -> list[str]:
        """What the mode does after a replacement's boot so that the node can serve (rsync: the key follow, a push);
        returns problems seen."""
        return []

    # node replacement ----------------------------------------------------------------------------
    def pair_state(self, node: NodeHost) -> dict:
        return {
            "Secrets Manager": self.secret_values(),
            "resolved": self.resolved_secrets(node),
            "seed markers": self.seed_markers(),
            "tables": {db: self.database.tables(db) for db in (self.engine.shared_db, self.engine.apim_db)},
        }

    def replace_node(self, index: int) -> None:
        """The roll's move for one node: destroyed (its disk with it), booted again from its user data (for a changed
        setting) on a fresh disk, while the other node keeps answering."""
        from scripts.rehearsal.run import BOOT_SECONDS, FIRST_BOOT, PROBE, SEED_LINE, tail, version_url

        old, peer = self.nodes[index], self.nodes[1 - index]
        number, other = str(index + 1), str(2 - index)
        user_data, problem, note = self.changed_user_data(index)
        before = self.pair_state(old)
        log = self.work / f"replace-boot-{number}.log"
        with Prober(self.probe_namespace(), version_url(peer.address), PROBE) as prober:
            self.lab.remove_node(old)
            node = self.add_node(index, old.address, user_data, self.targets[index] if self.targets else None)
            self.nodes[index] = node
            self.after_add_node(index, node)
            started = time.monotonic()
            code = self.boot(node, FIRST_BOOT, log).wait(timeout=BOOT_SECONDS)
            seconds = time.monotonic() - started
            text = log.read_text()
            mode_problems = self.after_replacement(index, node, text) if code == 0 else []
            answer = self.answers_within(node)
        self.check(
            f"node {number} replaced: node {other} answered 9443 at every probe (from the load balancer's place, every "
            f"{PROBE_PERIOD:.0f}s) while it was destroyed and booted again",
            other,
            prober.passed(),
            prober.summary(),
        )
        env = node.path(NODE_ENV).read_text() if node.path(NODE_ENV).exists() else ""
        carried = f"FIRST_START_WAIT_SECONDS={user_data.split('FIRST_START_WAIT_SECONDS=')[1].split()[0]}" in env
        # Node 1 never waits for anyone; a new node 2's first start on its fresh disk waits for node 1, which answers.
        waits = [line.removeprefix("wso2am-boot: ") for line in text.splitlines() if FIRST_NODE_WAIT in line]
        waited_right = (
            not waits if index == 0 else bool(waits) and waits[-1].endswith(" answers") and not any(WAIT_RAN_OUT in w for w in waits)
        )
        self.check(
            "replaced on a fresh disk from its user data with a changed setting: the boot step completed",
            number,
            code == 0 and "wso2am-boot: done" in text and node.path(BOOT_DONE).exists() and carried and waited_right and not problem,
            f"exit {code} in {seconds:.0f}s; {note}; {'carried' if carried else 'NOT carried'} into node.env; "
            + (f"{len(waits)} wait line(s), last: {waits[-1]}" if waits else "did not wait for node 1")
            + ("" if code == 0 else f": {tail(text, 20)}"),
        )
        after = self.pair_state(node)
        generated = [line for line in text.splitlines() if line.startswith(GENERATED)]
        self.check(
            REPLACED_SECRETS,
            number,
            not generated and after["Secrets Manager"] == before["Secrets Manager"] and after["resolved"] == before["resolved"] != "none",
            "; ".join(generated)
            or ", ".join(k for k in ("Secrets Manager", "resolved") if after[k] != before[k])
            or "unchanged, nothing generated",
        )
        schema = [line for line in text.splitlines() if SCHEMA_RUN in line or SEED_LINE in line]
        self.check(
            "replaced node did not reseed the share (seed markers as before) nor run the schema (tables as before)",
            number,
            not schema and after["seed markers"] == before["seed markers"] and after["tables"] == before["tables"],
            "; ".join(schema)
            or ", ".join(k for k in ("seed markers", "tables") if after[k] != before[k])
            or f"{len(after['seed markers'])} seed markers, {sum(len(t) for t in after['tables'].values())} tables unchanged",
        )
        gate = node.run(BOOT_SCRIPT, "gate", env=self.boot_env(), timeout=120)
        failed = [line for line in gate.stderr.splitlines() if "FAILED" in line]
        self.check(
            "replaced node answers 9443 (probed from the peer) and its gate (wso2am-boot gate) passes",
            number,
            answer == "200" and gate.returncode == 0 and not mode_problems,
            f"9443: {answer}; gate exit {gate.returncode}"
            + (f": {'; '.join(failed)}" if failed else f", {len(gate.stderr.splitlines())} ok")
            + (f"; {'; '.join(mode_problems)}" if mode_problems else ""),
        )

    # a reboot without the share ------------------------------------------------------------------
    def share_missing_at_reboot(self) -> None:
        """Node 2 reboots and its share does not mount: API-M's unit fails its start (its mounts are missing); the share
        watch's first look holds it, re-mounts the share once it answers again and starts API-M."""
        from scripts.rehearsal.run import tail

        node, points, target = self.nodes[1], mount_points(self.settings), self.targets[1]
        node.run("systemctl", "stop", SERVICE)
        for point in reversed(points):  # the binds, then the file system
            node.run("umount", "-l", point)
        node.path(LOOKED_SINCE_BOOT).unlink(missing_ok=True)  # a reboot empties /run
        self.stop_share(target)
        mount = node.run("timeout", "30", "mount", points[0])  # what the reboot's mount unit does: it fails
        unit = node.run("systemctl", "start", SERVICE)  # what multi-user.target does: its mounts are missing
        watches = [node.run(BOOT_SCRIPT, "check-share", env=self.boot_env(), timeout=120) for _ in range(2)]
        held = node.path(STOPPED_BY_WATCH).exists()
        answer = self.answers(node)
        said = "did not start at this boot" in watches[0].stderr
        self.check(
            'share missing at a reboot: API-M\'s start fails, the share watch holds it ("did not start at this boot") '
            "and keeps it stopped while the share is unreachable",
            "2",
            mount.returncode != 0 and unit.returncode != 0 and said and held and not self.active(node) and answer != "200",
            f"mount exit {mount.returncode} ({tail(mount.stderr, 1)}); unit start exit {unit.returncode}; "
            f"watch: {tail(watches[0].stderr, 2)}; hold marker {held}; 9443: {answer}",
        )
        self.share_back(
            node, target, "share back after that reboot: the share watch re-mounts what /etc/fstab lists and starts API-M", held=True
        )
