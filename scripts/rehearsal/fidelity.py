"""The rehearsal's checks of what the real product relies on (the stand-ins shaped like WSO2's: a deployment.toml
as the pack ships it, a truststore with the pack's aliases, a database with MySQL 8's defaults, a start script
that trusts any live PID in its PID file). Mixed into Rehearsal; each method records its checks with self.check."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime

from apim_active_active.names import OUTPUT_LB_DNS
from apim_active_active.renderers.boot_script import SERVICE
from apim_active_active.renderers.deployment_toml import render_deployment_toml
from apim_active_active.traffic import public_name
from scripts.rehearsal.lab import NodeHost
from scripts.rehearsal.product import shipped_deployment_toml
from scripts.rehearsal.stage import CLOUD_INIT_MODULE

FIRST_NODE_ANSWERS = re.compile(r"node 1's API-M \(\S+\) answers")


def config_differences(installed: dict, shipped: dict, pair: dict, path: str = "") -> list[str]:
    """Where the installed file is not the shipped one with the pair's merged over it: the pair's keys win (tables
    key by key), everything else as shipped."""
    problems = []
    for key in sorted(shipped.keys() | pair.keys()):
        here = f"{path}{key}"
        if key not in installed:
            problems.append(f"{here} missing")
        elif key in pair and isinstance(pair[key], dict) and isinstance(shipped.get(key), dict):
            problems += config_differences(installed[key], shipped[key], pair[key], f"{here}.")
        elif installed[key] != (pair[key] if key in pair else shipped[key]):
            problems.append(f"{here} is not the {'pair' if key in pair else 'shipped'} value")
    return problems


class ProductFidelity:
    def check_product_config(self, index: int, node: NodeHost) -> None:
        conf = f"{self.settings.apim.home}/repository/conf"
        installed, kept = node.path(f"{conf}/deployment.toml"), node.path(f"{conf}/deployment.toml.shipped")
        shipped_text = shipped_deployment_toml(self.settings.apim.version)
        pair = tomllib.loads(render_deployment_toml(self.settings, index, self.db_host, self.engine.port, self.outputs[OUTPUT_LB_DNS]))
        merged = tomllib.loads(installed.read_text()) if installed.exists() else {}
        problems = config_differences(merged, tomllib.loads(shipped_text), pair) if merged else ["not installed"]
        listeners = [listener.get("id") for listener in merged.get("event_listener", [])]
        headers = merged.get("apim", {}).get("cors", {}).get("allow_headers", [])
        self.check(
            "deployment.toml where API-M reads it: the product's own file with the pair's settings merged over "
            "it (the shipped one kept beside it)",
            str(index + 1),
            not problems and kept.exists() and kept.read_text() == shipped_text,
            "; ".join(problems) or f"kept: event_listener {listeners}, cors allow_headers {headers}, user_store {merged.get('user_store')}",
        )

    def check_truststore(self, index: int, node: NodeHost) -> None:
        status = self.status(node)
        self.check(
            "the truststore holds the pair's certificate under gateway_certificate_alias (API keys and internal "
            "keys signed with the pair's key validate)",
            str(index + 1),
            status.get("api_key_signer_trusted") is True,
            json.dumps({k: status.get(k) for k in ("api_key_signer_trusted", "truststore_aliases")}),
        )

    def check_keystore_validity(self) -> None:
        validity = self.status(self.nodes[0]).get("signer_validity", {})
        days = None
        if {"notBefore", "notAfter"} <= validity.keys():
            start, end = (datetime.strptime(validity[k], "%b %d %H:%M:%S %Y %Z") for k in ("notBefore", "notAfter"))
            days = (end - start).days
        wanted = self.settings.apim.keystore_validity_days
        self.check(
            f"the pair's certificate is valid for apim.keystore_validity_days ({wanted} days)", "both", days == wanted, json.dumps(validity)
        )

    def check_charset(self) -> None:
        databases = (self.engine.shared_db, self.engine.apim_db)
        listed = ", ".join(f"'{d}'" for d in databases)
        rows = self.database.sql(
            "SELECT schema_name, CONCAT(default_character_set_name, '/', default_collation_name) "
            f"FROM information_schema.schemata WHERE schema_name IN ({listed});"
        ).stdout.split()
        charsets = dict(zip(rows[::2], rows[1::2]))
        server = self.database.sql("SELECT @@character_set_server;").stdout.strip()
        tables = self.database.tables(self.engine.apim_db)
        self.check(
            "the database server has MySQL 8's utf8mb4; both databases are latin1 (case-sensitive), so the "
            "schema's 4.2+ key (IDN_OAUTH2_TOKEN_BINDING) was created",
            "both",
            server == "utf8mb4"
            and set(charsets.values()) == {"latin1/latin1_general_cs"}
            and len(charsets) == 2
            and "IDN_OAUTH2_TOKEN_BINDING" in tables,
            f"server {server}, databases {charsets}",
        )

    def check_first_start_order(self, texts: list[str]) -> None:
        answered = FIRST_NODE_ANSWERS.search(texts[1])
        self.check(
            "node 2's first start waited until node 1's API-M answered; node 1 did not wait",
            "2",
            answered is not None and "node 1's API-M" not in texts[0] and answered.start() < texts[1].find("wso2am-boot: done"),
            answered.group(0) if answered else "no such line",
        )

    def stale_pid_start(self) -> None:
        """Carbon never removes wso2carbon.pid: after a crash, its PID may be a live process of something else."""
        node = self.nodes[0]
        pid_file = node.path(f"{self.settings.apim.home}/wso2carbon.pid")
        node.run("systemctl", "stop", SERVICE)
        pid_file.write_text(f"{node.holder.pid}\n")  # a live process that is not API-M
        started = node.run("systemctl", "start", SERVICE)
        answer = self.answers_within(node)
        self.check(
            "a stale wso2carbon.pid naming a live process does not keep API-M from starting",
            "1",
            started.returncode == 0 and answer == "200",
            f"start exit {started.returncode}: {started.stderr.strip()[-200:]}; 9443: {answer}",
        )

    def hosts_after_reboot(self, index: int, node: NodeHost) -> None:
        """A reboot runs cloud-init's per-boot modules again (not the boot step): update_etc_hosts must leave the
        public name's mapping (the stand-in's cloud.cfg manages /etc/hosts, as a distribution's may)."""
        name = public_name(self.settings, self.outputs[OUTPUT_LB_DNS])
        reboot = node.run("bash", "-c", f"{CLOUD_INIT_MODULE} update_etc_hosts", env=self.boot_env())
        resolved = node.run("getent", "hosts", name).stdout.split()
        self.check(
            f"after a reboot's cloud-init (update_etc_hosts) {name} still resolves to the node itself",
            str(index + 1),
            reboot.returncode == 0 and resolved[:1] == ["127.0.0.1"],
            f"update_etc_hosts exit {reboot.returncode}; resolves to {resolved[:1]}",
        )
