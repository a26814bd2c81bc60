"""The restore drill (docs/backup-and-restore.md): content written into the running pair, the backups this machine can
take (a dump of the database server, users included, as an RDS snapshot holds them; a copy of the share), then a
second pair booted from them as a restored environment: its settings written by scripts/restore.py's own code, deployed
to the emulator beside `local` (Terraform restoring the database there), its user data read back, the share's restore
done by restore.py's share step with a STAND-IN for AWS Backup's restore job (the emulator lacks StartRestoreJob): the
copy put under aws-backup-restore_<time>/ in the new share, as AWS Backup does, and the real parameter set.

The restored environment is deployed in the background as soon as `local` is (deploy_restored), so that its minutes of
Terraform overlap the rehearsal's; the drill itself runs last, once the first pair is no longer needed."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

from apim_active_active.engines import APIM_DB_MARKER_TABLE, SHARED_DB_MARKER_TABLE
from apim_active_active.names import OUTPUT_EFS_DNS, OUTPUT_EFS_ID, OUTPUT_INSTANCE_IDS, resource_name
from apim_active_active.renderers.boot_script import BOOT_SCRIPT
from apim_active_active.settings import ENDPOINT_ENV, Settings, load_settings, parse_settings
from scripts import restore
from scripts.local_stack import aws_env, cdktf_flags, client, deploy, failure_text, without_table
from scripts.ops import Aws
from scripts.rehearsal.database import MariaDbStandIn

WAITING = "waiting for the share's restore"
BOOT_SECONDS = 300

RESTORED_STACK = "restored"
RESTORED_PREFIX = "apim-local-r1"
DRILL_FILE = "restore-drill.txt"
DRILL_ROWS = 3
RESTORE_POLL_SECONDS = "2"  # the boot step's wait for the share's restore, short here (30 s on AWS)


class ShareRestoreJobStandIn:
    """STAND-IN for AWS Backup's StartRestoreJob/DescribeRestoreJob (the emulator has neither): the recovery point is
    the drill's copy of the share, put into the target file system's export under aws-backup-restore_<time>/, as
    AWS Backup restores into an existing file system (aws-backup/latest/devguide/restoring-efs.html)."""

    def __init__(self, copy: Path, exports: dict[str, Path]) -> None:
        self.copy, self.exports = copy, exports
        self.calls: list[dict] = []

    def start_restore_job(self, **request) -> dict:
        self.calls.append(request)
        export = self.exports[request["Metadata"]["file-system-id"]]
        shutil.copytree(self.copy, export / f"aws-backup-restore_{time.strftime('%Y-%m-%dT%H-%M-%S')}", symlinks=True)
        return {"RestoreJobId": "drill-1"}

    def describe_restore_job(self, RestoreJobId: str) -> dict:  # noqa: N803 (boto3's name)
        return {"RestoreJobId": RestoreJobId, "Status": "COMPLETED"}


class RestoreDrill:
    # in the background, from the start -------------------------------------------------------------------------------
    def deploy_restored(self) -> None:
        """The restored environment's settings, written as restore.py writes them, deployed to the emulator."""
        source = self.settings
        arns, keys = restore.source_secrets(Aws(load_settings(self.environment, environ={ENDPOINT_ENV: self.endpoint})), source)
        args = argparse.Namespace(prefix=RESTORED_PREFIX, generation=1, region=None, zones=None, node_host_number=None)
        restored = {"source_prefix": source.name_prefix, "generation": 1, "database_source": resource_name(source.name_prefix, "db")}
        text = restore.target_settings_text(self.environment.read_text(), "local", args, {**restored, "share": True, "secrets": arns}, keys)
        # The gateway group is rehearsed on the source; here it would only slow the deploy on the rehearsal's path.
        text = without_table(text, "gateway_scale_out")
        folder = self.work / "restored-env"
        folder.mkdir()
        (folder / f"{RESTORED_STACK}.toml").write_text(text)
        self.restored_settings: Settings = parse_settings(restore.tomllib.loads(text), "restored", environ={})
        env = aws_env(self.endpoint, APIM_STATE_DIR=str(self.work / "state-restored"), APIM_ENVIRONMENTS_DIR=str(folder))
        outputs_file = self.work / "outputs-restored.json"
        result, seconds = deploy(RESTORED_STACK, [*cdktf_flags(self.work / "cdktf-restored.out"), "--outputs-file", str(outputs_file)], env)
        if result.returncode != 0:
            raise RuntimeError(f"cdktf deploy {RESTORED_STACK} failed:\n{failure_text(result)}")
        self.restored_outputs = json.loads(outputs_file.read_text())[RESTORED_STACK]
        self.drill_times["deploy of the restored environment (Terraform, the database restored in the emulator)"] = seconds

    def start_restored_deploy(self) -> None:
        self.drill_times: dict[str, float] = {}
        self.restored_error: Exception | None = None

        def run() -> None:
            try:
                self.deploy_restored()
            except Exception as error:  # noqa: BLE001 (reported by the drill)
                self.restored_error = error

        self.restored_deploy = threading.Thread(target=run, name="restored-deploy", daemon=True)
        self.restored_deploy.start()

    # the drill --------------------------------------------------------------------------------------------------------
    def restore_drill(self) -> None:
        started = time.monotonic()
        source_secrets = self.write_and_back_up()
        self.drill_times["backup (database dump, share copy)"] = time.monotonic() - started
        self.restored_deploy.join(timeout=900)
        if self.restored_deploy.is_alive() or self.restored_error:
            raise RuntimeError(f"the restored environment's deploy: {self.restored_error or 'still running after 900s'}")
        for node in list(self.lab.nodes):  # the first pair is gone (as after a lost environment)
            self.lab.remove_node(node)
        started = time.monotonic()
        nodes, database, export, logs, boots = self.boot_restored_pair()
        texts = self.restore_share_while_waiting(nodes, export, logs, boots)
        self.drill_times["restored pair's boot (waiting for the share, moving it into place, starting)"] = time.monotonic() - started
        self.check_restored(nodes, database, export, texts, source_secrets)
        self.notes.append("restore drill: " + "; ".join(f"{what} {seconds:.0f}s" for what, seconds in self.drill_times.items()))

    def write_and_back_up(self) -> str:
        """Content into the running pair (a file on the share, rows in the database), then the backups; the source's
        secrets file, to compare."""
        folder = next(iter(self.folders))
        (self.export / folder / DRILL_FILE).write_text("written before the backup\n")
        self.database.sql(
            f"CREATE TABLE {self.engine.apim_db}.RESTORE_DRILL (ID INT PRIMARY KEY);\n"
            + "".join(f"INSERT INTO {self.engine.apim_db}.RESTORE_DRILL VALUES ({n});\n" for n in range(DRILL_ROWS))
        )
        self.dump = self.work / "drill-dump.sql"
        with self.dump.open("w") as out:
            subprocess.run(
                # Both databases, and the users as CREATE USER IF NOT EXISTS: the restored server's own stay as they are.
                [
                    "mariadb-dump",
                    f"--socket={self.database.socket}",
                    "--user=root",
                    "--system=users",
                    "--insert-ignore",
                    "--databases",
                    self.engine.apim_db,
                    self.engine.shared_db,
                ],  # fmt: skip
                stdout=out,
                check=True,
                timeout=120,
            )
        self.share_copy = self.work / "drill-share-copy"
        shutil.copytree(self.export, self.share_copy, symlinks=True)
        # What the source's API-M resolved its secrets to (the secrets file or the vault), as the stand-in saw them: node 2's
        # (node 1 was last booted with a broken deployment.toml: no API-M).
        return self.resolved_secrets(self.nodes[1])

    def boot_restored_pair(self):
        from scripts.rehearsal.run import FIRST_BOOT  # run.py imports this module

        outputs, settings = self.restored_outputs, self.restored_settings
        db_host, master = self.database_instance(RESTORED_PREFIX)
        address = str(settings.network.subnet_cidrs[0].network_address + 201)
        database = MariaDbStandIn(self.lab, self.work, address, name="db-r")
        database.start(master["username"], master["password"], self.engine.apim_db)
        loaded = database.sql(self.dump.read_text() + f"\nALTER USER '{master['username']}'@'%' IDENTIFIED BY '{master['password']}';\n")
        if loaded.returncode != 0:
            raise RuntimeError(f"restoring the dump: {loaded.stderr[-500:]}")
        user_data, addresses, target_of = self.read_back(outputs)
        targets = [target_of[i] for i in outputs[OUTPUT_INSTANCE_IDS]]
        self.listen_on(targets)
        export = self.work / "efs-export-restored"
        export.mkdir()
        export.chmod(0o755)
        nodes, logs, boots = [], [], []
        env = {**self.boot_env(), "RESTORE_POLL_SECONDS": RESTORE_POLL_SECONDS}
        for index in (0, 1):
            hosts = {outputs[OUTPUT_EFS_DNS]: targets[index], db_host: address}
            node = self.add_node(index, addresses[index], user_data[index], targets[index], hosts, export)
            nodes.append(node)
            logs.append(self.work / f"restored-boot-{index + 1}.log")
            with logs[-1].open("w") as handle:
                boots.append(subprocess.Popen(node.argv("bash", "-c", FIRST_BOOT, env=env), stdout=handle, stderr=subprocess.STDOUT))
        return nodes, database, export, logs, boots

    def listen_on(self, targets: list[str]) -> None:
        """The restored file system's mount targets answer 2049 (a new namespace for addresses the first had not)."""
        new = sorted(set(targets) - set(self.targets))
        namespace = self.lab.add_host("efs-r", new) if new else None
        for address in sorted(set(targets) - set(self.share_listeners)):
            self.share_listeners[address] = self.lab.in_namespace(
                namespace if address in new else self.efs_ns, "socat", f"TCP-LISTEN:2049,bind={address},fork,reuseaddr", "SYSTEM:true"
            )

    def restore_share_while_waiting(self, nodes, export: Path, logs: list[Path], boots: list[subprocess.Popen]) -> list[str]:
        """Both nodes wait for the share's restore; restore.py's share step then restores it (the stand-in job) and
        sets the parameter; both boots must then complete."""
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline and not all(WAITING in log.read_text() for log in logs):
            if any(b.poll() is not None for b in boots):
                break
            time.sleep(0.5)
        self.waited_before_restore = [WAITING in log.read_text() for log in logs]
        self.restore_job = ShareRestoreJobStandIn(self.share_copy, {self.restored_outputs[OUTPUT_EFS_ID]: export})
        started = time.monotonic()
        restore.restore_share(
            self.restore_job, client("ssm", self.endpoint), self.restored_outputs, self.restored_settings, "drill-point", 60
        )
        self.drill_times["share restore (restore.py's share step, the job a stand-in)"] = time.monotonic() - started
        codes = [b.wait(timeout=max(1, deadline - time.monotonic())) for b in boots]
        return [f"exit {code}\n{log.read_text()}" for code, log in zip(codes, logs)]

    def check_restored(self, nodes, database: MariaDbStandIn, export: Path, texts: list[str], source_secrets: str) -> None:
        self.nodes = nodes
        joined = "".join(texts)
        for index, text in enumerate(texts):
            self.check(
                "restored pair: the boot waited for the share's restore, then completed",
                str(index + 1),
                text.startswith("exit 0") and "wso2am-boot: done" in text and self.waited_before_restore[index],
                text.splitlines()[0] + ("" if self.waited_before_restore[index] else f"; never said '{WAITING}'"),
            )
        left = [p.name for p in export.glob("aws-backup-restore_*")]
        job = self.restore_job.calls[0] if self.restore_job.calls else {}
        self.check(
            "restored share: AWS Backup's restore into the new file system (restore.py), moved into place once, not seeded",
            "both",
            joined.count("moved the restored share") == 1
            and "seeded the share" not in joined
            and not left
            and (export / ".wso2am-restored-1").exists()
            and job.get("Metadata") == {"file-system-id": self.restored_outputs[OUTPUT_EFS_ID], "newFileSystem": "false"},
            f"job {job.get('Metadata')}; left: {left}",
        )
        folder = self.folders[next(iter(self.folders))]
        seen = nodes[1].run("cat", f"{folder}/{DRILL_FILE}").stdout.strip()
        rows = database.sql(f"SELECT COUNT(*) FROM {self.engine.apim_db}.RESTORE_DRILL;").stdout.strip()
        self.check(
            "restored pair holds what was written before the backup: the file on the share, the rows in the database",
            "both",
            seen == "written before the backup" and rows == str(DRILL_ROWS),
            f"file: {seen!r}; rows: {rows!r}",
        )
        resolved = [self.resolved_secrets(n) for n in nodes]
        same = [digest == source_secrets for digest in resolved]
        self.check(
            "restored pair read the source's secrets: none generated, each node's API-M resolved the source's values",
            "both",
            "generated the" not in joined and all(same),
            f"same as the source's: {same} (source {source_secrets[:12]}, restored {[d[:12] for d in resolved]})",
        )
        self.check(
            "restored pair did not run the schema again: the restored database's tables kept",
            "both",
            "created the schema" not in joined
            and SHARED_DB_MARKER_TABLE in database.tables(self.engine.shared_db)
            and APIM_DB_MARKER_TABLE in database.tables(self.engine.apim_db),
            "",
        )
        home = self.restored_settings.apim.home
        for index, (node, text) in enumerate(zip(nodes, texts)):
            answer = self.answers_within(node)
            self.check("restored pair answers 9443 (probed from the peer)", str(index + 1), answer == "200", answer)
            read = self.status(node).get("indexing", {})
            again = self.boot(node, BOOT_SCRIPT, self.work / f"restored-second-boot-{index + 1}.log").wait(timeout=BOOT_SECONDS)
            second = (self.work / f"restored-second-boot-{index + 1}.log").read_text()
            kept = node.path(f"{home}/solr/data/indexed-1").exists()
            self.check(
                "restored node rebuilds the search index once: its solr folder removed before API-M's first start, "
                "[indexing] re_indexing = 1 read by API-M, the rebuilt index kept at the next boot",
                str(index + 1),
                "search index rebuilt" in text
                and read == {"re_indexing": 1, "index_found": []}
                and again == 0
                and "search index rebuilt" not in second
                and kept,
                f"read {json.dumps(read)}; second boot exit {again}, index kept: {kept}",
            )
