"""The rehearsal's keystore rotation with a grace period (issue 19): scripts/rotate_keystore.py's own flow (Rotation)
through the rehearsal's node shell, against the stand-ins (whose DevPortal signs JWT API keys with the keystore's key
under the configured api_key_alias, and whose gateway checks them against the truststore certificate their kid names,
the truststore read at start: scripts/rehearsal/standin/standin_jwt.py). An API key is issued on node 2 before; stage,
roll, switch, roll (the gateway node rekeyed after each roll); the old key is still accepted by both gateways (the grace
period) and a new one too; finishing before the grace period's end is refused; forced, and rolled, the old key is
refused (401) and the new one accepted. Mixed into Rehearsal (EFS mode); each method records its checks with self.check.
The API keys stay on the nodes (a root-only folder, prove.py's), never in what is printed."""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import asdict

from apim_active_active.renderers.boot_script import brings_keystore
from apim_active_active.renderers.node_layout import gateway_home
from apim_active_active.versions import rest_apis, traits
from scripts.on_node import RehearsalShell
from scripts.prove import NODE_PROGRAM, answer
from scripts.prove import REHEARSAL_BOUNDS as PROVE_BOUNDS
from scripts.rehearsal.standin.standin_jwt import SHOWN
from scripts.rotate_keystore import FINISH, REHEARSAL_BOUNDS, RekeyNode, Rotation

RUN = "rotate-rehearsal"
OLD_KEY, NEW_KEY = "apikey-old.json", "apikey-new.json"
ACCEPTED, REFUSED = 200, 401
BOTH_ACCEPT, BOTH_REFUSE = {"own": ACCEPTED, "peer": ACCEPTED}, {"own": REFUSED, "peer": REFUSED}

ISSUED = "rotation: an API key issued on node 2 before the rotation (kid gateway_certificate_alias) is accepted by both gateways"
ROTATED = "rotation: stage, roll, switch, roll (rotate_keystore.py's flow through the node shell) passed, the gateway node rekeyed too"
TRUSTED = "rotation: every node's API-M runs a truststore holding the new certificate under the new alias, and signs API keys under it"
JWKS = "rotation: during the grace period both nodes' JWKS serve the old key's kid and the new key's"
GRACE = "rotation: during the grace period the API key the old key signed is still accepted by both gateways"
NEW = "rotation: an API key issued on node 1 after the switch (kid the new alias) is accepted by both gateways"
RESUMED = "rotation: run again, it finds every step done and restarts no node"
EARLY = "rotation: finishing before the grace period's end is refused without --force, and the secret stays as it was"
FINISHED = "rotation: finished (forced) and rolled: the old API key refused (401) by both gateways, the new one accepted"
# Each check with the node it names (tests/rehearsal/test_rehearsal.py's EXPECTED).
ROTATION_CHECKS = (
    (ISSUED, "both"),
    (ROTATED, "all"),
    (TRUSTED, "all"),
    (JWKS, "both"),
    (GRACE, "both"),
    (NEW, "both"),
    (RESUMED, "all"),
    (EARLY, "1"),
    (FINISHED, "both"),
)

# prove.py's node program (its helpers: the admin's REST token on the node, publish, an application subscribed), with
# the steps of its own.
STEPS = r'''
def issue_step():
    """An API key for the run's application (made here the first time), kept in this node's private folder."""
    token = admin()
    app_id = P.get("app") or application(token, RUN, "Unlimited")
    said = expect("generate an API key", (200,), curl("POST", api("devportal", f"/applications/{app_id}/api-keys/PRODUCTION/generate"),
                                                      bearer(token), {"validityPeriod": 3600}))
    private(P["as"], {"key": said["apikey"]})
    header = json.loads(base64.urlsafe_b64decode(said["apikey"].split(".")[0] + "=="))
    done(made={"app": app_id}, kid=header.get("kid"))


def with_key(key, gateway):
    """The run's API through a gateway with the API key (curl's options on stdin), its status."""
    lines = ["silent", "insecure", "max-time = 10", "output = /dev/null", "write-out = " + quoted("%{http_code}"),
             "header = " + quoted("apikey: " + key), "url = " + quoted(f"https://{gateway}:8243/{RUN}/1.0.0/Version")]
    said = subprocess.run(["curl", "-K", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=20)
    return int(said.stdout) if said.stdout.isdigit() else 0


def call_step():
    key = private(P["as"])["key"]
    done(statuses={"own": with_key(key, "127.0.0.1"), "peer": with_key(key, ENV["PEER_IP"])})


def jwks_step():
    status, text = curl("GET", LOCAL + "/oauth2/jwks")
    done(kids=sorted(k["kid"] for k in json.loads(text).get("keys", [])) if status == 200 else [], status=status)


if __name__ == "__main__":
    try:
        {"publish": publish, "issue": issue_step, "call": call_step, "jwks": jwks_step, "cleanup": cleanup_step}[STEP]()
    except Failed as failure:
        print(json.dumps({"ok": False, "saw": str(failure)}))
        sys.exit(1)
'''
PROGRAM = NODE_PROGRAM.split('if __name__ == "__main__":')[0] + STEPS


def kid(sha256_hex: str) -> str:
    """The JWKS kid of a certificate by its SHA-256 (hex): base64url of the hex, and the algorithm (standin_jwt)."""
    return base64.urlsafe_b64encode(sha256_hex.encode()).decode().rstrip("=") + "_RS256"


class KeystoreRotation:
    def rotate_keystore(self) -> None:
        if not self.settings.apim.version.startswith("4."):
            self.notes.append("keystore rotation not rehearsed: API-M 3.2 has no REST API the stand-in's API keys follow")
            return
        hosts = [*self.nodes, *([self.gateway] if self.gateway else [])]
        self.rotation_shell = RehearsalShell(hosts, self.boot_env())
        self.rotation_made: dict = {}
        try:
            self._rotate_keystore()
        finally:
            left = [said.get("saw", "") for said in (self.on_node(node, "cleanup") for node in (2, 1)) if not said.get("ok")]
            if left:
                self.notes.append(f"rotation: cleanup left: {'; '.join(left)}")

    def on_node(self, node: int, step: str, **params) -> dict:
        version = self.settings.apim.version
        values = {
            "paths": asdict(rest_apis(version)),
            "environment": traits(version).gateway_environment_name,
            "limit": 5,
            "wait": PROVE_BOUNDS.wait_seconds,
            "poll": PROVE_BOUNDS.poll_seconds,
            **self.rotation_made,
            **params,
        }
        script = f"python3 - {step} {RUN} {shlex.quote(json.dumps(values, sort_keys=True))} <<'WSO2AM_ROTATE'\n{PROGRAM}WSO2AM_ROTATE\n"
        return answer(self.rotation_shell.run(node, script, PROVE_BOUNDS.step_seconds))

    def calls(self, node: int, key: str) -> dict:
        """The API key kept on `node` through its own gateway and its peer's: {"own": status, "peer": status}."""
        said = self.on_node(node, "call", **{"as": key})
        return said.get("statuses") or {"own": 0, "peer": 0, "saw": said.get("saw")}

    def rotation(self) -> Rotation:
        rotation = Rotation(self.rotation_shell, REHEARSAL_BOUNDS, self.settings.keystore.rotation_grace_days, say=lambda _: None)
        if self.gateway:
            rotation.gateways = RekeyNode(rotation, 3)  # the third host of the shell
        return rotation

    def _rotate_keystore(self) -> None:
        published = self.on_node(1, "publish")
        self.rotation_made |= published.get("made", {})
        issued = self.on_node(2, "issue", **{"as": OLD_KEY})
        self.rotation_made |= issued.get("made", {})
        before = self.calls(2, OLD_KEY)
        made = published.get("ok") and issued.get("ok") and issued.get("kid") == "gateway_certificate_alias"
        said = f"publish: {published.get('saw', 'ok')}; issue: {issued.get('saw', 'kid ' + str(issued.get('kid')))}; calls {before}"
        self.check(ISSUED, "both", made and before == BOTH_ACCEPT, said)
        if not issued.get("ok"):
            return
        if brings_keystore(self.settings) and self.settings.keystore.source == "secrets_manager":
            # The operator's part of rotating a brought keystore: the new key and certificate into the brought secret
            # first (brought_keystore.py's); the stage takes it from there.
            self.rotated_to = self.put_brought_keystore("rotation")
            self.notes.append(f"rotation: new brought certificate {self.rotated_to['fingerprint'][:16]}")
        rotation = self.rotation()
        results = rotation.rotate()
        failed = [f"{r.check}: {r.detail}" for r in results if r.status != "pass"]
        steps = [r.check for r in results]
        self.check(
            ROTATED,
            "all",
            not failed and any("gateway group" in step for step in steps) == bool(self.gateway),
            "; ".join(failed) or "; ".join(steps),
        )
        if failed:
            return
        held = rotation.status()["secret"]
        self.check_rotated_trust(held)
        kids = {number: self.on_node(number, "jwks").get("kids", []) for number in (1, 2)}
        wanted = sorted(kid(held[entry]["sha256"]) for entry in ("signing", "previous"))
        self.check(JWKS, "both", all(kids[n] == wanted for n in kids), json.dumps(kids))
        grace = self.calls(2, OLD_KEY)
        self.check(GRACE, "both", grace == BOTH_ACCEPT, json.dumps(grace))
        new = self.on_node(1, "issue", **{"as": NEW_KEY})
        calls = self.calls(1, NEW_KEY)
        self.check(
            NEW,
            "both",
            new.get("kid") == held["api_key_alias"] != "gateway_certificate_alias" and calls == BOTH_ACCEPT,
            f"kid {new.get('kid', new.get('saw'))}, the secret's api_key_alias {held['api_key_alias']}; calls {calls}",
        )
        self.check_resumed()
        self.finish_rotation(held)

    def check_rotated_trust(self, held: dict) -> None:
        """Each node's stand-in, started after its rekey, read the new certificate under the new alias and signs API keys
        under it (standin_jwt's SHOWN: what its truststore held at start, its api_key_alias)."""
        alias, problems = held["api_key_alias"], []
        homes = [(str(n), node, self.settings.apim.home) for n, node in enumerate(self.nodes, start=1)]
        if self.gateway:
            homes.append(("gw", self.gateway, gateway_home(self.settings)))
        for name, node, home in homes:
            path = node.path(f"{home}/{SHOWN}")
            shown = json.loads(path.read_text()) if path.exists() else {}
            trusted = shown.get("trusted_at_start", {})
            if trusted.get(alias) != held["signing"]["sha256"] or trusted.get("gateway_certificate_alias") != held["previous"]["sha256"]:
                problems.append(f"node {name}: trusted {trusted}")
            if name != "gw" and shown.get("api_key_alias") != alias:
                problems.append(f"node {name}: signs under {shown.get('api_key_alias')}")
        self.check(TRUSTED, "all", not problems, "; ".join(problems) or f"{alias}: {held['signing']['sha256'][:16]} on every node")

    def pids(self) -> list[str]:
        """Each node's API-M PID file (a restart writes it anew), the gateway node's last."""
        homes = [(node, self.settings.apim.home) for node in self.nodes]
        if self.gateway:
            homes.append((self.gateway, gateway_home(self.settings)))
        return [node.path(f"{home}/wso2carbon.pid").read_text().strip() for node, home in homes]

    def check_resumed(self) -> None:
        pids = self.pids()
        results = self.rotation().rotate()
        again = self.pids()
        failed = [f"{r.check}: {r.detail}" for r in results if r.status != "pass"]
        skipped = [r for r in results if r.check in ("stage", "switch") and r.detail.startswith("already done")]
        self.check(RESUMED, "all", not failed and len(skipped) == 2 and pids == again, "; ".join(failed) or f"PIDs {pids} -> {again}")

    def finish_rotation(self, held: dict) -> None:
        early = self.rotation().finish(force=False)
        after = self.rotation().status()["secret"]
        refused = [r for r in early if r.check == FINISH and r.status == "fail" and "grace period runs until" in r.detail]
        self.check(EARLY, "1", bool(refused) and after == held, "; ".join(f"{r.check}: {r.status} {r.detail}" for r in early))
        results = self.rotation().finish(force=True)
        failed = [f"{r.check}: {r.detail}" for r in results if r.status != "pass"]
        old, new = self.calls(2, OLD_KEY), self.calls(1, NEW_KEY)
        self.check(
            FINISHED,
            "both",
            not failed and old == BOTH_REFUSE and new == BOTH_ACCEPT,
            "; ".join(failed) + f" old key {old}, new key {new}",
        )
