"""The boot rehearsal: deploy `local` to a private emulator, read each node's user data back through
boto3, boot both nodes at once in their own namespaces with the real cloud-init modules, then check
what a real boot would have done and inject the faults. Cleans up whatever happens.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from apim_active_active.engines import APIM_DB_MARKER_TABLE, APP_DB_USER, ENGINES, SHARED_DB_MARKER_TABLE
from apim_active_active.names import (
    OUTPUT_EFS_DNS,
    OUTPUT_INSTANCE_IDS,
    OUTPUT_LB_DNS,
    OUTPUT_NODE_IPS,
    OUTPUT_TARGET_GROUPS,
    resource_name,
)
from apim_active_active.observability import BOOT_LOG, CLOUD_INIT_LOG
from apim_active_active.renderers.boot_script import (
    BOOT_SCRIPT,
    CONFIG_SOURCE,
    SECRETS_FILE,
    SERVICE,
    SHARE_WATCH,
    brings_keystore,
    java_package_and_home,
)
from apim_active_active.renderers.node_layout import STOPPED_BY_WATCH
from apim_active_active.renderers.shared_folders import SHARE_ROOT, mount_points, shared_folders
from apim_active_active.settings import Settings, load_settings
from apim_active_active.traffic import public_name
from apim_active_active.versions import traits
from scripts.emulator import free_loopback_url, start
from scripts.local_account import prepare
from scripts.local_stack import ROOT, STACK, aws_env, cdktf_flags, client, deploy, destroy, failure_text
from scripts.rehearsal.brought_keystore import BroughtKeystore
from scripts.rehearsal.customization import Customization
from scripts.rehearsal.database import MariaDbStandIn
from scripts.rehearsal.fidelity import ProductFidelity
from scripts.rehearsal.gateway_node import GatewayNode
from scripts.rehearsal.lab import Lab, NodeHost
from scripts.rehearsal.log_shipping import LogShipping
from scripts.rehearsal.product import build_archive, build_jdbc_driver, files_on_the_share
from scripts.rehearsal.proof import Proof
from scripts.rehearsal.replacement import NodeMoves
from scripts.rehearsal.restore_drill import RestoreDrill
from scripts.rehearsal.rotation import KeystoreRotation
from scripts.rehearsal.stage import AWS_RELAY_PORT, CLOUD_INIT_MODULE, fresh_stage, stage_node
from scripts.rehearsal.vault import SecureVault
from scripts.show_deployment import user_data

CLOUD_INIT_PATH = f"{ROOT}/.tools/cloud-init/usr/lib/python3/dist-packages"
BOOT_SECONDS = 300
PEER_SECONDS = 120
START_SECONDS = 30  # a (stand-in) API-M started answers 9443 within this
SEED_LINE = "seeded the share"
FAILED_BOOT_LINES = 20  # what a failed boot's check shows of its log (the work folder is removed)
MOUNT_RETRY = re.compile(r"attempt \d+ failed, retrying in \d+s: mount")
# cloud-init's order on a real first boot: write_files (init stage), runcmd (config stage, writes the
# script), scripts_user (final stage, run-parts of that folder). The last is done with run-parts
# itself: `cloud-init single --name scripts_user` finds no instance folder without a datasource. Its output also goes
# to /var/log/cloud-init-output.log on the node, as cloud-init's default `output: {all: "| tee -a ..."}` sends it
# (cloud-init's config/cloud.cfg.tmpl and doc/rtd/reference/base_config_reference.rst).
FIRST_BOOT = f"""set -eo pipefail
ci() {{ {CLOUD_INIT_MODULE} "$1"; }}
{{
ci write_files
ci runcmd
run-parts --exit-on-error /var/lib/cloud/instances/iid-datasource-none/scripts
}} 2>&1 | tee -a /var/log/cloud-init-output.log
"""
PROBE = """import ssl, sys, urllib.error, urllib.request
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    print(urllib.request.urlopen(sys.argv[1], context=context, timeout=3).status)
except urllib.error.HTTPError as error:
    print(error.code)
except OSError as error:
    print(f"no answer: {error}")
"""


def version_url(address: str) -> str:
    return f"https://{address}:9443/services/Version"


@dataclass
class Check:
    name: str
    node: str
    passed: bool
    detail: str


class Rehearsal(
    ProductFidelity, NodeMoves, LogShipping, Proof, RestoreDrill, GatewayNode, Customization, SecureVault, KeystoreRotation, BroughtKeystore
):
    drill = True  # the restore drill (EFS): a second pair booted from the first's backups

    def __init__(
        self,
        share_delay: float = 5.0,
        environment: Path = ROOT / "environments" / "local.toml",
        tag: str = "rh",
        keep: bool = False,
        destroy_stack: bool = True,
    ) -> None:
        self.environment = environment
        self.keep = keep  # the work folder (logs, state, the database's files) stays only when asked
        # `cdktf destroy` of the stack before the private emulator stops (everything in it goes with it either way).
        # make test leaves it out: the e2e tests destroy for real, and here it would only take CPU from the tests beside it.
        self.destroy_stack = destroy_stack
        self.settings: Settings = load_settings(environment, environ={})
        self.engine = ENGINES[self.settings.database.engine]
        self.share_delay = share_delay
        self.work = Path(tempfile.mkdtemp(prefix="rehearsal-", dir="/var/tmp"))
        self.checks: list[Check] = []
        self.notes: list[str] = []
        self.lab = Lab(f"{tag}{os.getpid() % 4096:x}", self.settings.network.vpc_cidr.prefixlen, self.work / "lab")
        self.export = self.work / "efs-export"
        self.export.mkdir()
        self.export.chmod(0o755)
        self.folders = shared_folders(self.settings)
        self.targets: list[str] = []  # the EFS mount targets, by node (none with rsync)
        self.share_listeners: dict[str, subprocess.Popen] = {}  # the NFS stand-in's 2049, by mount target address

    def check(self, name: str, node: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(name, node, bool(passed), detail))

    # the deployed stack ----------------------------------------------------------------------
    def deploy(self) -> None:
        self.endpoint = free_loopback_url()
        self.emulator = start(self.endpoint, self.work / "moto")
        self.notes += [f"the emulator holds the {line}" for line in prepare(self.endpoint, self.settings)]
        self.env = aws_env(self.endpoint, APIM_STATE_DIR=str(self.work / "state"), APIM_ENVIRONMENTS_DIR=str(self.environment.parent))
        self.flags = cdktf_flags(self.work / "cdktf.out")
        result, seconds = deploy(STACK, [*self.flags, "--outputs-file", str(self.work / "outputs.json")], self.env)
        if result.returncode != 0:
            raise RuntimeError(f"cdktf deploy failed:\n{failure_text(result)}")
        self.notes.append(f"deployed stack {STACK} to the emulator in {seconds:.0f}s")
        self.outputs = json.loads((self.work / "outputs.json").read_text())[STACK]
        s3 = client("s3", self.endpoint)
        driver_url = self.settings.database.jdbc_driver_url
        for url, artifact in (
            (self.settings.apim.archive_url, build_archive(self.settings.apim.version, self.work)),
            (driver_url, build_jdbc_driver(Path(urlparse(driver_url).path).name, self.work)),
            *self.customization_artifacts(),
        ):
            location = urlparse(url)
            if location.netloc not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=location.netloc)
            s3.upload_file(str(artifact), location.netloc, location.path.lstrip("/"))
        self.notes.append("uploaded a STAND-IN product archive, JDBC driver and customization to the emulator's S3, where the settings say")
        self.bring_keystore()  # the operator's keystore in its secret, before the nodes boot

    def destroy(self) -> None:
        if hasattr(self, "env") and self.destroy_stack:
            result, _ = destroy(STACK, self.flags, self.env)
            if result.returncode != 0:
                self.notes.append(f"cdktf destroy failed: {result.stderr[-500:]}")
        if hasattr(self, "emulator") and self.emulator:
            self.emulator.terminate()
            self.emulator.wait(timeout=30)

    def read_back(self, outputs: dict | None = None) -> tuple[list[str], list[str], dict[str, str]]:
        """Each node's user data and address, and each node subnet's EFS mount target address (of this stack, or of
        the one whose outputs are given)."""
        outputs = outputs or self.outputs
        ec2, efs = client("ec2", self.endpoint), client("efs", self.endpoint)
        ids = outputs[OUTPUT_INSTANCE_IDS]
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        subnet_of = {i["InstanceId"]: i["SubnetId"] for r in reservations for i in r["Instances"]}
        targets = efs.describe_mount_targets(FileSystemId=outputs["efs_id"])["MountTargets"]
        target_in = {t["SubnetId"]: t["IpAddress"] for t in targets}
        return [user_data(ec2, i) for i in ids], outputs[OUTPUT_NODE_IPS], {i: target_in[subnet_of[i]] for i in ids}

    def database_instance(self, name_prefix: str | None = None) -> tuple[str, dict]:
        """The RDS endpoint name and the master user secret RDS manages, as an operator would read them (this stack's,
        or the one of that name prefix)."""
        rds = client("rds", self.endpoint)
        identifier = resource_name(name_prefix or self.settings.name_prefix, "db")
        (db,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        secret = client("secretsmanager", self.endpoint).get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])
        return db["Endpoint"]["Address"], json.loads(secret["SecretString"])

    # hosts -----------------------------------------------------------------------------------
    def open_lab(self) -> None:
        self.user_data, addresses, target_of = self.read_back()
        targets = [target_of[i] for i in self.outputs[OUTPUT_INSTANCE_IDS]]
        db_address = str(self.settings.network.subnet_cidrs[0].network_address + 200)
        if len(set(targets) | set(addresses) | {db_address}) != len(set(targets)) + 3:
            raise RuntimeError(f"address clash between mount targets, nodes and the database: {targets} {addresses}")
        self.targets = targets
        self.lab.open_network()
        self.efs_ns = self.lab.add_host("efs", sorted(set(targets)))
        self.start_database_and_relay(db_address)
        self.nodes = [self.add_node(n, addresses[n], self.user_data[n], targets[n]) for n in (0, 1)]
        self.notes.append(
            "EFS stand-in: one shared folder bind-mounted into both nodes by a stand-in mount.efs (no NFS client in this kernel)"
        )

    def start_database_and_relay(self, db_address: str) -> None:
        """The RDS stand-in in its own namespace, and the relay from each node's loopback to the emulator."""
        self.db_host, master = self.database_instance()
        self.master_user = master["username"]
        self.db_address = db_address
        self.database = MariaDbStandIn(self.lab, self.work, db_address)
        self.database.start(master["username"], master["password"], self.engine.apim_db)
        self.notes.append(f"RDS stand-in: MariaDB with TLS at {db_address}, named {self.db_host} in the nodes' hosts files")
        self.socket = self.work / "aws.sock"
        port = urlparse(self.endpoint).port
        self.lab.processes.append(
            subprocess.Popen(
                ["socat", f"UNIX-LISTEN:{self.socket},fork,unlink-early", f"TCP:127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def node_hosts(self, mount_target: str | None) -> dict[str, str]:
        # Each zone resolves the EFS name to its own mount target, as Route 53 does for EFS.
        return {self.outputs[OUTPUT_EFS_DNS]: mount_target, self.db_host: self.db_address}

    def add_node(
        self, index: int, address: str, node_user_data: str, mount_target: str | None, hosts: dict | None = None, export: Path | None = None
    ) -> NodeHost:
        stage = fresh_stage(self.work / f"stage-{index + 1}-{time.monotonic_ns()}")
        hosts = self.node_hosts(mount_target) if hosts is None else hosts
        stage_node(stage, node_user_data, hosts, java_package_and_home(self.settings.apim.jdk)[1])
        node = self.lab.add_node(index + 1, address, stage, export or self.export, ROOT)
        self.lab.in_namespace(
            node.name, "socat", f"TCP-LISTEN:{AWS_RELAY_PORT},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{self.socket}"
        )
        return node

    def start_share_once_refused(self, logs: list[Path], boots: list[subprocess.Popen], deadline: float) -> None:
        """The share answers after share_delay, and not before each node has seen a mount fail (on a busy machine
        a boot may take longer than share_delay to reach its mount)."""
        earliest = time.monotonic() + self.share_delay
        while time.monotonic() < deadline and any(b.poll() is None for b in boots):
            if time.monotonic() >= earliest and all(MOUNT_RETRY.search(log.read_text()) for log in logs):
                break
            time.sleep(0.5)
        self.start_share()

    def start_share(self, addresses: list[str] | None = None) -> None:
        for address in sorted(set(self.targets if addresses is None else addresses)):
            self.share_listeners[address] = self.lab.in_namespace(
                self.efs_ns, "socat", f"TCP-LISTEN:2049,bind={address},fork,reuseaddr", "SYSTEM:true"
            )

    def stop_share(self, address: str) -> None:
        """The mount target at this address stops answering 2049 (a mount through it fails as EFS's would)."""
        listener = self.share_listeners.pop(address)
        listener.kill()
        listener.wait(timeout=10)

    # booting ---------------------------------------------------------------------------------
    def boot_env(self) -> dict[str, str]:
        return {
            "PYTHONPATH": CLOUD_INIT_PATH,
            "HOME": "/root",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{AWS_RELAY_PORT}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def boot(self, node: NodeHost, script: str, log: Path) -> subprocess.Popen:
        with log.open("w") as handle:
            return subprocess.Popen(node.argv("bash", "-c", script, env=self.boot_env()), stdout=handle, stderr=subprocess.STDOUT)

    def first_boot_of_both(self) -> list[str]:
        """Boot both nodes at once, with the share unreachable at first and the seed lock held by us."""
        logs = [self.work / f"boot-{n + 1}.log" for n in (0, 1)]
        lock_file = (self.export / ".wso2am-seed.lock").open("w")
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        boots = [self.boot(node, FIRST_BOOT, log) for node, log in zip(self.nodes, logs)]
        deadline = time.monotonic() + BOOT_SECONDS
        threading.Thread(target=self.start_share_once_refused, args=(logs, boots, deadline), daemon=True).start()
        while time.monotonic() < deadline and not all("mounted " in log.read_text() for log in logs):
            if any(b.poll() is not None for b in boots):
                break
            time.sleep(0.5)
        time.sleep(2)  # both nodes now wait at the lock, or (without it) would already be seeding
        self.check(
            "no node seeded while another held the seed lock",
            "both",
            not self.seed_markers() and SEED_LINE not in "".join(log.read_text() for log in logs),
        )
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()
        return self.first_boots_done(boots, logs, deadline)

    def first_boots_done(self, boots: list[subprocess.Popen], logs: list[Path], deadline: float) -> list[str]:
        """Wait (until the deadline) for both first boots; check each completed; their logs."""
        codes = [b.wait(timeout=max(1, deadline - time.monotonic())) for b in boots]
        texts = [log.read_text() for log in logs]
        for number, (code, text) in enumerate(zip(codes, texts), start=1):
            self.check(
                "first boot completed (cloud-init write_files, runcmd, then its script)",
                str(number),
                code == 0 and "wso2am-boot: done" in text,
                f"exit {code}" + ("" if code == 0 else f": {tail(text, FAILED_BOOT_LINES)}"),
            )
        return texts

    # checks ----------------------------------------------------------------------------------
    def seed_markers(self) -> dict[str, str]:
        return {marker.name: marker.read_text() for marker in sorted(self.export.glob(".wso2am-seeded-*"))}

    def check_first_boot(self, texts: list[str]) -> None:
        names = ", ".join(self.folders)
        for index, (node, text) in enumerate(zip(self.nodes, texts)):
            number = str(index + 1)
            self.check_product_config(index, node)
            unmounted = [p for p in mount_points(self.settings) if node.run("mountpoint", "-q", p).returncode != 0]
            self.check(
                f"share mounted at {SHARE_ROOT}, and {names} bound from it",
                number,
                not unmounted,
                f"not mounted: {unmounted}" if unmounted else "",
            )
            retried = MOUNT_RETRY.search(text) is not None
            self.check(
                f"mount retried while the share was unreachable ({self.share_delay:.0f}s), then succeeded",
                number,
                retried and "mounted " in text,
            )
            self.check_unit(node, number)
            self.check("service started", number, self.active(node))
        seeds = sum(text.count(SEED_LINE) for text in texts)
        expected = [self.export / f for f in files_on_the_share(self.settings.apim.server_dir, self.folders)]
        missing = [str(f.relative_to(self.export)) for f in expected if not f.exists()]
        folders = [name for name in self.folders if not (self.export / name).is_dir()]
        self.check(
            f"share seeded exactly once though both booted together: {names}, with the distribution's files",
            "both",
            seeds == 1 and expected and not missing and not folders,
            f"{seeds} seeding(s), {len(expected)} files" + (f", missing: {missing + folders}" if missing + folders else ""),
        )
        seen = {}
        for folder in self.folders.values():
            self.nodes[0].run("sh", "-c", f"echo written-on-node-1 > {folder}/rehearsal-from-node-1.txt")
            seen[folder] = self.nodes[1].run("cat", f"{folder}/rehearsal-from-node-1.txt").stdout.strip()
        self.check(
            f"a file written on node 1 in each shared folder ({names}) is seen on node 2",
            "1->2",
            set(seen.values()) == {"written-on-node-1"},
            json.dumps(seen),
        )
        if self.settings.share_scope == "artifacts":
            own = f"{self.settings.apim.server_dir}/webapps/rehearsal-node-1-only.txt"
            self.nodes[0].run("sh", "-c", f"echo node-1 > {own}")
            on_2 = self.nodes[1].path(own).exists()
            self.check(
                "outside the shared folders, deployment/server stays each node's own (webapps)",
                "1->2",
                self.nodes[0].path(own).exists() and not on_2,
                "seen on node 2" if on_2 else "",
            )
        self.check_peers()
        self.check_shared_state(texts)
        self.check_brought_keystore()
        self.check_charset()
        self.check_first_start_order(texts)
        for index, node in enumerate(self.nodes):
            answer = self.answers(node)
            self.check("9443 answers (probed from the peer)", str(index + 1), answer == "200", answer)
        self.check_traffic_entry()
        route = self.nodes[0].run("ip", "route", "get", "192.0.2.1")
        self.check(
            "no route out of the node namespaces", "both", route.returncode != 0 and "unreachable" in route.stderr, route.stderr.strip()
        )

    def check_traffic_entry(self) -> None:
        """What the load balancer relies on, on each node: its health checks answer (read from the deployed
        target groups) and its traffic ports take TLS; the public name stays on the node."""
        elb = client("elbv2", self.endpoint)
        groups = [
            elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0] for arn in self.outputs[OUTPUT_TARGET_GROUPS].values()
        ]
        name = public_name(self.settings, self.outputs[OUTPUT_LB_DNS])
        for index, node in enumerate(self.nodes):
            peer, answers, passed = self.nodes[1 - index], {}, True
            for group in groups:
                health = f"{group['HealthCheckProtocol'].lower()}://{node.address}:{group['HealthCheckPort']}{group['HealthCheckPath']}"
                traffic = f"https://{node.address}:{group['Port']}/"
                for url in (health, traffic):
                    answers[url] = peer.run("python3", "-c", PROBE, url).stdout.strip()
                passed &= answers[health] == group["Matcher"]["HttpCode"] and answers[traffic].isdigit()
            self.check(
                "the load balancer's health checks pass and its target ports take TLS (probed from the peer)",
                str(index + 1),
                passed,
                json.dumps(answers),
            )
            resolved = node.run("getent", "hosts", name).stdout.split()
            own = node.run("python3", "-c", PROBE, version_url(name)).stdout.strip()
            self.check(
                f"the public name {name} stays on the node (hosts file) and answers there",
                str(index + 1),
                resolved[:1] == ["127.0.0.1"] and own == "200",
                f"resolves to {resolved[:1]}, answers {own}",
            )

    def check_shared_state(self, texts: list[str]) -> None:
        joined = "".join(texts)
        generated = [
            joined.count(line)
            for line in (
                "generated the API-M admin password",
                "made the keystore of the pair from" if brings_keystore(self.settings) else "generated the keystore of the pair",
                "generated the password of API-M's own database user",
            )
        ]
        self.check(
            "admin password, keystore and API-M's database password generated once for the pair",
            "both",
            generated == [1, 1, 1],
            f"admin {generated[0]}x, keystore {generated[1]}x, database {generated[2]}x",
        )
        markers = {self.engine.shared_db: SHARED_DB_MARKER_TABLE, self.engine.apim_db: APIM_DB_MARKER_TABLE}
        created = [joined.count(f"created the schema of {db} ") for db in markers]
        tables = {db: self.database.tables(db) for db in markers}
        self.check(
            "schema scripts ran once for the pair, into both databases",
            "both",
            created == [1, 1] and all(marker in tables[db] for db, marker in markers.items()),
            f"runs {created}, tables {tables}",
        )
        keystores = []
        for index, node in enumerate(self.nodes):
            number = str(index + 1)
            if self.settings.secure_vault.enabled:
                self.check_sealed(node, number)
            else:
                secrets = node.path(SECRETS_FILE)
                mode = oct(secrets.stat().st_mode & 0o777) if secrets.exists() else "missing"
                names = sorted(line.split("=", 1)[0] for line in secrets.read_text().splitlines()) if secrets.exists() else []
                self.check(
                    "secrets file root-only (0600) with the four values API-M reads",
                    number,
                    mode == "0o600" and secrets.stat().st_uid == 0 and len(names) == 4,
                    f"{mode} {names}",
                )
            driver = node.path(
                f"{self.settings.apim.home}/repository/components/lib/{Path(urlparse(self.settings.database.jdbc_driver_url).path).name}"
            )
            self.check("JDBC driver in repository/components/lib", number, driver.exists())
            login = self.status(node).get("database_login", {})
            tables = login.get("tables", {})
            self.check(
                "API-M logs in as its own database user (not the RDS master) over TLS and sees both schemas",
                number,
                login.get("user") == APP_DB_USER != self.master_user
                and len(tables) == 2
                and all(count.isdigit() and int(count) > 0 for count in tables.values()),
                json.dumps(login),
            )
            status = self.status(node)
            if self.settings.secure_vault.enabled:
                self.check_read_sealed(node, number)
            else:
                self.check(
                    "API-M got its secrets from the environment, opened its keystore, reached the database",
                    number,
                    all(status.get("secrets_in_environment", {}).values())
                    and status.get("keystore_opens") is True
                    and status.get("database_reached") == "ok",
                    json.dumps({k: status.get(k) for k in ("secrets_in_environment", "keystore_opens", "database_reached")}),
                )
            store = node.path(f"{self.settings.apim.home}/repository/resources/security/wso2carbon.jks")
            keystores.append(hashlib.sha256(store.read_bytes()).hexdigest() if store.exists() else "missing")
        self.check("the same keystore on both nodes", "both", keystores[0] == keystores[1] != "missing")
        if self.settings.secure_vault.enabled:
            self.check_nodes_agree()
        for index, node in enumerate(self.nodes):
            self.check_truststore(index, node)
        self.check_keystore_validity()

    def secret_values(self) -> dict[str, str]:
        secrets = client("secretsmanager", self.endpoint)
        admin = json.loads(secrets.get_secret_value(SecretId=f"{self.settings.name_prefix}/apim-admin")["SecretString"])
        keystore = json.loads(secrets.get_secret_value(SecretId=f"{self.settings.name_prefix}/keystore")["SecretString"])
        app = json.loads(secrets.get_secret_value(SecretId=f"{self.settings.name_prefix}/database-app")["SecretString"])
        return {
            "admin password": admin["password"],
            "database master password": self.database_instance()[1]["password"],
            "API-M database password": app["password"],
            "keystore password": keystore["password"],
            **self.brought_secret_values(),
        }

    def check_no_secret_anywhere(self) -> None:
        """Search everything a reviewer could read for the real secret values."""
        values = self.secret_values()
        places = {
            "cdk.tf.json": (self.work / "cdktf.out" / "stacks" / STACK / "cdk.tf.json").read_text(),
            "Terraform state": (self.work / "state" / f"{STACK}.tfstate").read_text(),
            "user data (read back)": "".join(self.user_data + self.gateway_user_data),
            "boot and cloud-init logs": "".join(p.read_text() for p in self.work.glob("*boot*.log")),
        }
        for node in [*self.nodes, *([self.gateway] if self.gateway else [])]:
            logs = f"{self.settings.apim.home}/repository/logs"
            for log in (
                "/var/log/rehearsal-systemctl.log",
                f"{logs}/standin-console.log",
                f"{logs}/standin-status.json",
                *(f"{logs}/{name}" for name in ("wso2carbon.log", "audit.log", "wso2-apigw-errors.log")),
                BOOT_LOG,  # shipped to CloudWatch Logs, as the product's logs above
                CLOUD_INIT_LOG,
            ):
                places[f"node log {log}"] = node.path(log).read_text() if node.path(log).exists() else ""
        found = [f"{what} in {where}" for where, text in places.items() for what, value in values.items() if value in text]
        self.check(
            "no secret value in user data, cdk.tf.json, Terraform state or logs",
            "all",
            not found,
            "; ".join(found) or f"searched {len(places)} places for {len(values)} values",
        )

    def check_unit(self, node: NodeHost, number: str) -> None:
        unit = node.path(f"/etc/systemd/system/{SERVICE}")
        text = unit.read_text() if unit.exists() else ""
        lines = set(text.splitlines())
        script = f"{self.settings.apim.home}/bin/{traits(self.settings.apim.version).start_script}"
        wanted = {f"ExecStart={script} start", f"User={self.settings.apim.os_user}", "Restart=on-failure"}
        enabled = (
            node.path(f"/etc/systemd/system/multi-user.target.wants/{SERVICE}").is_symlink()
            and node.path(f"/etc/systemd/system/timers.target.wants/{SHARE_WATCH}.timer").is_symlink()
        )
        self.check(
            "systemd unit and share watch timer installed and enabled: start script, user, restart policy",
            number,
            wanted <= lines and enabled,
            ", ".join(sorted(wanted - lines)) or "",
        )

    def active(self, node: NodeHost) -> bool:
        return node.run("systemctl", "is-active", SERVICE).returncode == 0

    def answers(self, node: NodeHost) -> str:
        """What a node's 9443 answers, probed from its peer."""
        peer = self.nodes[1 - self.nodes.index(node)]
        return peer.run("python3", "-c", PROBE, version_url(node.address)).stdout.strip()

    def answers_within(self, node: NodeHost, seconds: float = START_SECONDS) -> str:
        """What a node's 9443 answers once it answers 200, or at the end of a bounded wait (a start takes time)."""
        deadline, answer = time.monotonic() + seconds, self.answers(node)
        while answer != "200" and time.monotonic() < deadline:
            time.sleep(1)
            answer = self.answers(node)
        return answer

    def status(self, node: NodeHost) -> dict:
        path = node.path(f"{self.settings.apim.home}/repository/logs/standin-status.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def resolved_secrets(self, node: NodeHost) -> str:
        """The digest of the secret values the node's API-M resolved, from the secrets file or the secure vault (the
        stand-in's status), once it has started (bounded)."""
        deadline = time.monotonic() + START_SECONDS
        while (digest := self.status(node).get("secrets_digest")) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        return digest or "none"

    def check_peers(self) -> None:
        ports = ("9611", "9711", "5672")
        deadline = time.monotonic() + PEER_SECONDS
        while time.monotonic() < deadline:
            done = [self.status(n).get("reached", {}) for n in self.nodes]
            if all(len(reached) >= 5 for reached in done):
                break
            time.sleep(1)
        for index, node in enumerate(self.nodes):
            peer = self.nodes[1 - index].address
            reached = self.status(node).get("reached", {})
            to_peer = {url.rsplit(":", 1)[1]: state for url, state in reached.items() if f"//{peer}:" in url}
            self.check(
                "reached the peer's 9611, 9711 and 5672", str(index + 1), all(to_peer.get(p) == "ok" for p in ports), json.dumps(to_peer)
            )

    # faults ----------------------------------------------------------------------------------
    def snapshot(self, node: NodeHost) -> dict:
        points = mount_points(self.settings)
        read = lambda inside: node.path(inside).read_text() if node.path(inside).exists() else ""  # noqa: E731
        return {
            "fstab": [line for line in read("/etc/fstab").splitlines() if line.split()[1:2] and line.split()[1] in points],
            "unit": hashlib.sha256(read(f"/etc/systemd/system/{SERVICE}").encode()).hexdigest(),
            "user": [line for line in read("/etc/passwd").splitlines() if line.startswith(f"{self.settings.apim.os_user}:")],
            "seeded": self.seed_markers(),
            "wants": sorted(os.listdir(node.path("/etc/systemd/system/multi-user.target.wants"))),
            "pid": read(f"{self.settings.apim.home}/wso2carbon.pid"),
            "mounts": [node.run("findmnt", "-rn", "-o", "TARGET", point).stdout for point in points],
            "secrets": hashlib.sha256(read(SECRETS_FILE).encode()).hexdigest(),
            "schema": str(self.database.tables(self.engine.apim_db)),
            "hosts": [line for line in read("/etc/hosts").splitlines() if line.startswith("127.0.0.1 ")],
        }

    def second_boot(self) -> None:
        for index, node in enumerate(self.nodes):
            before = self.snapshot(node)
            log = self.work / f"second-boot-{index + 1}.log"
            code = self.boot(node, BOOT_SCRIPT, log).wait(timeout=BOOT_SECONDS)
            after = self.snapshot(node)
            changed = [key for key in before if before[key] != after[key]]
            self.check(
                "second boot (as on reboot) duplicates nothing: fstab, user, unit, seeding, mount, service, secrets, schema, hosts",
                str(index + 1),
                code == 0 and not changed and len(after["fstab"]) == len(mount_points(self.settings)),
                f"exit {code}" + (f", changed: {changed}" if changed else ""),
            )
            self.hosts_after_reboot(index, node)

    def stop_node_1(self) -> None:
        node_1, node_2 = self.nodes
        node_1.run("systemctl", "stop", SERVICE)
        own, answer = self.answers(node_1), self.answers(node_2)
        self.check(
            "node 1 stopped: node 2 keeps answering on 9443", "2", answer == "200" and own != "200", f"node 2: {answer}; node 1: {own}"
        )

    def share_lost_while_running(self) -> None:
        """Node 2's share goes away under a running API-M (its mount target stops answering, its mounts are gone); the
        share watch, run here as its timer would, cannot mend it and stops API-M; once the mount target answers again
        it re-mounts what /etc/fstab lists and starts API-M."""
        node, points, target = self.nodes[1], mount_points(self.settings), self.targets[1]
        self.stop_share(target)
        for point in reversed(points):  # the binds, then the file system
            node.run("umount", "-l", point)
        watch = node.run(BOOT_SCRIPT, "check-share", env=self.boot_env(), timeout=120)
        answer = self.answers(node)
        stopped = not self.active(node)
        self.check(
            "share lost while running: the share watch stops API-M before it can undeploy anything",
            "2",
            watch.returncode == 0 and stopped and answer != "200" and "unreachable" in watch.stderr,
            f"watch exit {watch.returncode}: {tail(watch.stderr, 1)}; 9443: {answer}",
        )
        self.share_back(node, target, "share back: the share watch re-mounts it and starts API-M again")

    def share_back(self, node: NodeHost, target: str, name: str, held: bool = False) -> None:
        """Node 2's mount target answers again: the share watch (run here as its timer would) re-mounts what
        /etc/fstab lists and starts API-M (and lifts its hold, when it made one)."""
        self.start_share([target])
        watch = node.run(BOOT_SCRIPT, "check-share", env=self.boot_env(), timeout=120)
        answer = self.answers_within(node)
        unmounted = [p for p in mount_points(self.settings) if node.run("mountpoint", "-q", p).returncode != 0]
        lifted = not (held and node.path(STOPPED_BY_WATCH).exists())
        self.check(
            name,
            "2",
            watch.returncode == 0 and not unmounted and answer == "200" and lifted,
            f"watch exit {watch.returncode}: {tail(watch.stderr, 1)}; not mounted: {unmounted or 'none'}; 9443: {answer}",
        )

    def broken_config_boot(self) -> None:
        """Boot a fresh node 1 whose user data carries a deployment.toml that does not parse."""
        old = self.nodes[0]
        self.lab.remove_node(old)
        broken = self.user_data[0].replace("\n    [server]\n", "\n    [server\n", 1)
        node = self.add_node(0, old.address, broken, self.targets[0])
        log = self.work / "broken-boot.log"
        code = self.boot(node, FIRST_BOOT, log).wait(timeout=BOOT_SECONDS)
        text = log.read_text()
        said = next((line for line in text.splitlines() if line.startswith(f"wso2am-merge-config: {CONFIG_SOURCE}:")), "")
        reported = code != 0 and "line" in said and not self.active(node)
        self.check(
            "broken deployment.toml: boot fails before API-M starts and says which file and line",
            "1",
            reported,
            f"boot exit {code}; {said or tail(text)}",
        )
        try:
            tomllib.loads(node.path(CONFIG_SOURCE).read_text())
            self.check("broken deployment.toml reached the node as given", "1", False)
        except tomllib.TOMLDecodeError:
            pass

    # all of it -------------------------------------------------------------------------------
    def faults(self) -> None:
        """What is checked after the first boot, in order."""
        self.check_log_shipping()
        self.prove_active_active()
        self.second_boot()
        self.check_gateway_node()  # booted beside the checks above, once the pair had booted
        self.check_customization()  # on the three nodes booted so far
        self.rotate_keystore()  # the three nodes rekeyed and restarted, before node 1 stops
        self.stop_node_1()
        self.gateway_follows_pair()  # before node 1's API-M starts again
        self.stale_pid_start()
        self.share_lost_while_running()
        self.share_missing_at_reboot()
        self.replace_node(0)
        self.replace_node(1)
        self.check_no_secret_anywhere()  # the replacements' logs too
        self.broken_config_boot()
        if self.drill:
            self.restore_drill()  # last: the first pair is taken away

    def run(self) -> list[Check]:
        try:
            self.deploy()
            if self.drill:
                self.start_restored_deploy()  # in the background, beside the first pair's rehearsal
            self.open_lab()
            texts = self.first_boot_of_both()
            self.start_gateway_boot()  # with gateway_scale_out: in the background, beside the pair's checks
            self.check_first_boot(texts)
            self.faults()
        except Exception as error:  # noqa: BLE001 (report, then clean up)
            self.check("rehearsal ran to the end", "-", False, f"{type(error).__name__}: {error}")
        finally:
            self.lab.close()
            self.destroy()
            if self.keep:
                self.notes.append(f"work folder kept (--keep): {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)
        return self.checks


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
