"""A node of the gateway scale-out group, rehearsed (issue 18): the launch template's user data read back from the
emulator, booted with the real cloud-init modules in a third node host in node 1's subnet once the pair has booted
(beside the pair's checks); then what it must do: start in the gateway profile, read the pair's secrets (never make
them, never run the schema), reach both traffic managers and brokers and the control plane through the public name,
answer its readiness check and 8243; and once node 1's API-M stops, follow the pair to node 2 (its gateway watch).
Mixed into Rehearsal (only with `gateway_scale_out`, up to 4.4: the stand-in pack has no Universal Gateway); each
method records its checks with self.check."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import threading
import time
import tomllib

from apim_active_active.names import OUTPUT_GATEWAY_LAUNCH_TEMPLATE, OUTPUT_LB_DNS
from apim_active_active.renderers.boot_script import BOOT_SCRIPT, SECRETS_FILE
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.node_layout import gateway_home
from apim_active_active.traffic import public_name
from apim_active_active.versions import GATEWAY_PROFILE
from scripts.local_stack import client
from scripts.rehearsal.fidelity import config_differences
from scripts.rehearsal.lab import NodeHost
from scripts.rehearsal.product import GATEWAY_WEBAPP, gateway_template, has_gateway_profile, shipped_deployment_toml
from scripts.rehearsal.standin.standin_api import THROTTLE_EVENT_KEY

GATEWAY_INDEX = 2  # its node host is the third (<tag>-n3)
FIRST_HOST = 20  # its address: the first free one from here in node 1's subnet (node 1 .10, the database .200)
READINESS = "/api/am/gateway/v2/server-startup-healthcheck"
FOLLOW_SECONDS = 15  # after the watch moved the name: the stand-in looks at the control plane every 2 s
GENERATED = "wso2am-boot: generated "  # secrets.sh's lines when a node makes a pair's secret
SCHEMA_RUN = "created the schema of "  # database.sh's line (a gateway node has no database.sh)
SYSTEMCTL_LOG = "/var/log/rehearsal-systemctl.log"

BOOTED = "gateway node: first boot of the launch template's user data (read back from the emulator) completed"
PROFILE = (
    "gateway node: started in the gateway profile (profileSetup.sh put the gateway-worker template in place as the "
    "shipped deployment.toml, the group's settings merged over it, the other webapps removed; the unit ran start "
    "-Dprofile=gateway-worker)"
)
NOTHING_MADE = "gateway node: no secret generated and no schema run (its boot log; Secrets Manager and the tables as before)"
SECRETS = (
    "gateway node: API-M resolved the pair's secret values (sealed in its deployment.toml with the secure vault, else from "
    "a root-only secrets file), opened the keystore, reached shared_db"
)
REACHED = "gateway node: reached both nodes' 9611, 9711 and 5672, and the control plane's 9443 through the public name"
ANSWERS = "gateway node: its readiness check and 8243 answer (probed from node 2), and its gate passes"
MAPPED = "gateway node: the public name maps to node 1 in its hosts file, and its gateway watch keeps it there"
FOLLOWED = (
    "node 1 stopped: the gateway watch maps the public name to node 2, the gateway's control plane is node 2, and it "
    "still answers readiness and 8243"
)
THROTTLED = "node 1 stopped: the gateway's throttle events still reach node 2's traffic manager"
GATEWAY_CHECKS = (BOOTED, PROFILE, NOTHING_MADE, SECRETS, REACHED, ANSWERS, MAPPED, FOLLOWED, THROTTLED)


def launch_template_user_data(ec2, template_id: str) -> str:
    """The group's user data as a new instance gets it: the launch template's latest version, base64 of gzip."""
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Latest"])["LaunchTemplateVersions"]
    raw = base64.b64decode(version["LaunchTemplateData"]["UserData"])
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


class GatewayNode:
    gateway_rehearsed = True  # the rsync mode leaves it to the EFS mode (the group does not depend on content_sync)
    gateway: NodeHost | None = None
    gateway_user_data: list[str] = []

    @property
    def gateway_on(self) -> bool:
        return self.gateway_rehearsed and self.settings.gateway_scale_out is not None and has_gateway_profile(self.settings.apim.version)

    def gateway_path(self, inside: str):
        return self.gateway.path(f"{gateway_home(self.settings)}/{inside}")

    def gateway_status(self) -> dict:
        path = self.gateway_path("repository/logs/standin-status.json")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # not written yet, or being replaced
            return {}

    def probe_gateway(self, path: str, port: int = 9443) -> str:
        from scripts.rehearsal.run import PROBE

        return self.nodes[1].run("python3", "-c", PROBE, f"https://{self.gateway.address}:{port}{path}").stdout.strip()

    def mapped_address(self) -> list[str]:
        name = public_name(self.settings, self.outputs[OUTPUT_LB_DNS])
        return [line.split()[0] for line in self.gateway.path("/etc/hosts").read_text().splitlines() if name in line.split()[1:]]

    # the boot, beside the pair's checks ----------------------------------------------------------------------------
    def gateway_address(self) -> str:
        subnet = self.settings.network.subnet_cidrs[0]
        taken = {*(n.address for n in self.nodes), *self.targets, self.db_address}
        candidates = (str(subnet.network_address + n) for n in range(FIRST_HOST, subnet.num_addresses - 1))
        return next(address for address in candidates if address not in taken)

    def start_gateway_boot(self) -> None:
        """Once the pair has booted: the group's user data read back, a node host for it, its first boot started."""
        from scripts.rehearsal.run import FIRST_BOOT

        if not self.gateway_on:
            if self.gateway_rehearsed and self.settings.gateway_scale_out is not None:
                version = self.settings.apim.version
                self.notes.append(f"gateway node not rehearsed: API-M {version}'s is the Universal Gateway pack (no stand-in of it)")
            return
        self.gateway_times: dict[str, float] = {}
        self.gateway_before = {"Secrets Manager": self.secret_values(), "tables": self.all_tables()}
        self.gateway_started = time.monotonic()
        try:
            text = launch_template_user_data(client("ec2", self.endpoint), self.outputs[OUTPUT_GATEWAY_LAUNCH_TEMPLATE])
            self.gateway_user_data = [text]
            self.gateway = self.add_node(GATEWAY_INDEX, self.gateway_address(), text, None, hosts={self.db_host: self.db_address})
        except Exception as error:  # noqa: BLE001 (the pair's rehearsal goes on; the gateway's checks are missing)
            self.check(BOOTED, "gw", False, f"no gateway node: {type(error).__name__}: {error}")
            return
        self.gateway_log = self.work / "gateway-boot.log"
        self.gateway_boot = self.boot(self.gateway, FIRST_BOOT, self.gateway_log)
        threading.Thread(target=self.time_gateway_boot, daemon=True).start()

    def time_gateway_boot(self) -> None:
        self.gateway_boot.wait()
        self.gateway_times["boot (beside the pair's checks)"] = time.monotonic() - self.gateway_started

    def all_tables(self) -> dict[str, list[str]]:
        return {db: self.database.tables(db) for db in (self.engine.shared_db, self.engine.apim_db)}

    # its checks, before node 1 stops -------------------------------------------------------------------------------
    def check_gateway_node(self) -> None:
        from scripts.rehearsal.run import BOOT_SECONDS, FAILED_BOOT_LINES, tail

        if not self.gateway:
            return
        waited = time.monotonic()
        try:
            code: int | None = self.gateway_boot.wait(timeout=max(1, self.gateway_started + BOOT_SECONDS - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None  # still running after BOOT_SECONDS
        text = self.gateway_log.read_text()
        self.check(
            BOOTED,
            "gw",
            code == 0 and "wso2am-boot: done" in text,
            f"exit {code}; {self.gateway.address}" + ("" if code == 0 else f": {tail(text, FAILED_BOOT_LINES)}"),
        )
        self.check_gateway_profile()
        made = [line for line in text.splitlines() if line.startswith(GENERATED) or SCHEMA_RUN in line]
        after = {"Secrets Manager": self.secret_values(), "tables": self.all_tables()}
        changed = [k for k in after if after[k] != self.gateway_before[k]]
        self.check(NOTHING_MADE, "gw", code == 0 and not made and not changed, "; ".join(made + changed) or "nothing made")
        self.check_gateway_secrets()
        self.check_gateway_reached()
        self.check_gateway_answers()
        self.gateway_times["its checks (on the rehearsal's path, the boot's wait included)"] = time.monotonic() - waited

    def check_gateway_profile(self) -> None:
        conf = "repository/conf"
        read = lambda inside: self.gateway_path(inside).read_text() if self.gateway_path(inside).exists() else ""  # noqa: E731
        template, problems = gateway_template(), []
        if read(f"{conf}/deployment.toml.shipped") != template:
            problems.append("deployment.toml.shipped is not the gateway-worker template")
        if read(f"{conf}/deployment.toml.backup") != shipped_deployment_toml(self.settings.apim.version):
            problems.append("the pack's deployment.toml was not kept as deployment.toml.backup")
        group = tomllib.loads(render_gateway_toml(self.settings, self.db_host, self.engine.port, self.outputs[OUTPUT_LB_DNS]))
        installed = tomllib.loads(read(f"{conf}/deployment.toml") or "")
        problems += config_differences(installed, tomllib.loads(template), group) if installed else ["deployment.toml not installed"]
        folder = self.gateway_path("repository/deployment/server/webapps")
        webapps = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if webapps != [GATEWAY_WEBAPP]:
            problems.append(f"webapps: {webapps}")
        units = self.gateway.path(SYSTEMCTL_LOG)
        lines = units.read_text().splitlines() if units.exists() else []
        started = [line for line in lines if "ExecStart=" in line and f"-Dprofile={GATEWAY_PROFILE}" in line]
        if not started:
            problems.append(f"the unit did not run start -Dprofile={GATEWAY_PROFILE}")
        status = self.gateway_status()
        if (status.get("profile"), status.get("server_role")) != (GATEWAY_PROFILE, GATEWAY_PROFILE):
            problems.append(f"the server runs profile {status.get('profile')!r}, server_role {status.get('server_role')!r}")
        self.check(PROFILE, "gw", not problems, "; ".join(problems) or f"webapps {webapps}; {started[-1].split('ExecStart=')[1]}")

    def check_gateway_secrets(self) -> None:
        secrets = self.gateway.path(SECRETS_FILE)
        status = self.gateway_status()
        same = status.get("secrets_digest") is not None and status.get("secrets_digest") == self.status(self.nodes[0]).get("secrets_digest")
        if self.settings.secure_vault.enabled:
            sealed = self.gateway_path("repository/conf/deployment.toml")
            how = not secrets.exists() and sealed.exists() and "[secrets]" in sealed.read_text() and status.get("vault", {}).get("enabled")
            said = f"vault {status.get('vault')}, secrets file {'present' if secrets.exists() else 'none'}"
        else:
            mode = oct(secrets.stat().st_mode & 0o777) if secrets.exists() else "missing"
            how = mode == "0o600" and all((status.get("secrets_in_environment") or {}).values())
            said = f"secrets file {mode}"
        got = {k: status.get(k) for k in ("keystore_opens", "database_reached")}
        self.check(
            SECRETS,
            "gw",
            bool(how) and same and got["keystore_opens"] is True and got["database_reached"] == "ok",
            f"{said}; {'the pair' if same else 'not the pair'}'s values; {json.dumps(got)}",
        )

    def check_gateway_reached(self) -> None:
        from scripts.rehearsal.run import PEER_SECONDS

        name = public_name(self.settings, self.outputs[OUTPUT_LB_DNS])
        wanted = [f"{s}://{n.address}:{p}" for n in self.nodes for s, p in (("tcp", 9611), ("ssl", 9711), ("tcp", 5672))]
        wanted.append(f"https://{name}:9443/services/")
        deadline = time.monotonic() + PEER_SECONDS
        while time.monotonic() < deadline and not all(u in self.gateway_status().get("reached", {}) for u in wanted):
            time.sleep(1)
        status = self.gateway_status()
        reached, resolved = status.get("reached", {}), status.get("resolved", {}).get(name)
        missing = [f"{u}: {reached.get(u, 'not tried')}" for u in wanted if reached.get(u) != "ok"]
        self.check(
            REACHED,
            "gw",
            not missing and resolved == self.nodes[0].address,
            "; ".join(missing) or f"{len(wanted)} reached; {name} went to {resolved}",
        )

    def check_gateway_answers(self) -> None:
        ready, gateway = self.probe_gateway(READINESS), self.probe_gateway("/", 8243)
        gate = self.gateway.run(BOOT_SCRIPT, "gate", env=self.boot_env(), timeout=120)
        failed = [line for line in gate.stderr.splitlines() if "FAILED" in line]
        self.check(
            ANSWERS,
            "gw",
            ready == "200" and gateway.isdigit() and gate.returncode == 0,
            f"readiness {ready}; 8243 {gateway}; gate exit {gate.returncode}" + (f": {'; '.join(failed)}" if failed else ""),
        )
        watch = self.gateway.run(BOOT_SCRIPT, "gateway-watch", env=self.boot_env(), timeout=120)
        mapped = self.mapped_address()
        self.check(
            MAPPED, "gw", mapped == [self.nodes[0].address] and watch.returncode == 0, f"mapped to {mapped}; watch exit {watch.returncode}"
        )

    # node 1's API-M stopped ---------------------------------------------------------------------------------------
    def gateway_follows_pair(self) -> None:
        """Right after node 1's API-M stopped: the gateway watch (run as its timer would) moves the public name to node 2;
        the gateway still serves, and its throttle events still reach node 2."""
        from scripts.rehearsal.run import tail

        if not self.gateway:
            return
        started = time.monotonic()
        node_2 = self.nodes[1]
        before = self.throttle_counts()
        watch = self.gateway.run(BOOT_SCRIPT, "gateway-watch", env=self.boot_env(), timeout=120)
        mapped = self.mapped_address()
        deadline, control_plane = time.monotonic() + FOLLOW_SECONDS, {}
        while time.monotonic() < deadline:
            control_plane = self.gateway_status().get("control_plane", {})
            if control_plane.get("address") == node_2.address and control_plane.get("at", 0) > time.time() - 2:
                break
            time.sleep(1)
        ready, gateway = self.probe_gateway(READINESS), self.probe_gateway("/", 8243)
        self.check(
            FOLLOWED,
            "gw",
            watch.returncode == 0
            and mapped == [node_2.address]
            and control_plane.get("address") == node_2.address
            and ready == "200"
            and gateway.isdigit(),
            f"watch exit {watch.returncode} ({tail(watch.stderr, 1)}); mapped to {mapped}; control plane "
            f"{control_plane.get('address')} {control_plane.get('state')}; readiness {ready}; 8243 {gateway}",
        )
        after, deadline = self.throttle_counts(), time.monotonic() + FOLLOW_SECONDS
        while time.monotonic() < deadline and not (after[0] > before[0] and after[1] > before[1]):
            time.sleep(1)
            after = self.throttle_counts()
        self.check(
            THROTTLED,
            "gw",
            after[0] > before[0] and after[1] > before[1],
            f"sent to node 2's 9611: {before[0]} -> {after[0]}; counted by node 2: {before[1]} -> {after[1]}",
        )
        self.gateway_times["the move to node 2 (on the rehearsal's path)"] = time.monotonic() - started
        self.notes.append("gateway node: " + "; ".join(f"{what} {seconds:.0f}s" for what, seconds in self.gateway_times.items()))

    def throttle_counts(self) -> tuple[int, int]:
        """The gateway's throttle events sent to node 2's 9611, and those node 2's traffic manager counted."""
        node_2 = self.nodes[1]
        sent = self.gateway_status().get("throttle_events", {}).get(f"tcp://{node_2.address}:9611", {}).get("sent", 0)
        path = node_2.path(f"{self.settings.apim.home}/repository/logs/standin-api.json")
        try:
            counted = json.loads(path.read_text()).get("throttle_events_counted", {}).get(THROTTLE_EVENT_KEY, 0)
        except (OSError, ValueError):
            counted = 0
        return sent, counted
