#!/usr/bin/env python3
"""Prove the pair acts as one, after a deploy: through the node shell (Session Manager; no port opened), on the nodes
themselves, with curl to their own 127.0.0.1 (and node 1's 9443, open between the peers, for the revocation).

  scripts/prove.py <environment> --outputs <file> [--json]

Steps, each named, bounded in time and count:
  publish on node 1          a REST API client (DCR) and an admin token; an application throttling policy with a tiny
                             limit; a throwaway API (prove-<utc stamp>), a revision deployed to the gateway, published
  invoke on node 2           two applications (one under that policy) subscribed, keys and a token made on node 2,
                             the API answered by the backend through node 2's own gateway (8243)
  revocation reaches node 2  node 2's token revoked at node 1's /oauth2/revoke; node 2's gateway refuses it (401)
  throttling reaches node 2  the policy exceeded through node 1's gateway: a request a poll until 429 (the traffic
                             manager's decision reaches the gateway seconds after the limit); node 2's gateway refuses
                             (429) before its own requests could reach the limit
  cleanup                    everything the run made removed (applications, API, policy, clients), also after a failed
                             step; names what it could not remove
The admin password is read on the node from Secrets Manager (ADMIN_SECRET_ARN in /etc/wso2am/node.env); secrets and
tokens stay in a root-only folder on the node, removed by cleanup, never in a command's text or in what is printed.
Exits 0 when every step passed, 1 naming the failed step, 2 on bad settings or a version it cannot prove (3.2).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apim_active_active import names  # noqa: E402
from apim_active_active.versions import RestApis, rest_apis, traits  # noqa: E402
from scripts.on_node import NodeShell, Outcome, SessionManagerShell  # noqa: E402
from scripts.ops import Aws, Result, environment_parser, load_environment, report  # noqa: E402

PUBLISH, INVOKE, REVOKE, THROTTLE, CLEANUP = (
    "publish on node 1",
    "invoke on node 2",
    "revocation reaches node 2",
    "throttling reaches node 2",
    "cleanup",
)
THROTTLE_LIMIT = 5  # requests an hour for the run's application policy: node 2 may send fewer than this itself


@dataclass(frozen=True)
class Bounds:
    step_seconds: float  # one command on a node, its waits included
    wait_seconds: float  # a change on one node seen on the other (deploy, revocation, throttle decision)
    poll_seconds: float


# A setting-free constant per environment kind: the stand-ins answer within a second or so (a throttle decision after
# 1 s); on AWS the gateways learn of a deploy or a revocation through the event hub within seconds, a throttle decision
# within the traffic manager's event window.
AWS_BOUNDS = Bounds(step_seconds=600, wait_seconds=180, poll_seconds=5)
REHEARSAL_BOUNDS = Bounds(step_seconds=60, wait_seconds=10, poll_seconds=0.5)


class StepFailed(Exception):
    def __init__(self, step: str, saw: str) -> None:
        super().__init__(f"{step}: {saw}")
        self.step, self.saw = step, saw


def run_name(now: datetime | None = None) -> str:
    """Unique per run, and valid as an API's name and context, an application's and a policy's name."""
    return "prove-" + (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


def node_script(step: str, run: str, params: dict) -> str:
    """The command text for one step: the node program on stdin, only names and ids as arguments."""
    return f"python3 - {step} {run} {shlex.quote(json.dumps(params, sort_keys=True))} <<'WSO2AM_PROVE'\n{NODE_PROGRAM}WSO2AM_PROVE\n"


def answer(outcome: Outcome) -> dict:
    """The node program's last stdout line (JSON), or what the shell said instead."""
    lines = outcome.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        said = None
    if isinstance(said, dict):
        return said
    return {"ok": False, "saw": f"{outcome.status}: {(outcome.stderr or outcome.stdout).strip()[-300:] or 'no output'}"}


class Prover:
    def __init__(self, shell: NodeShell, apis: RestApis, gateway_environment: str, bounds: Bounds, run: str | None = None) -> None:
        self.shell, self.bounds, self.run_id = shell, bounds, run or run_name()
        self.params = {
            "paths": asdict(apis),
            "environment": gateway_environment,
            "limit": THROTTLE_LIMIT,
            "wait": bounds.wait_seconds,
            "poll": bounds.poll_seconds,
        }
        self.made: dict = {}

    def step(self, name: str, node: int, step: str) -> dict:
        said = answer(self.shell.run(node, node_script(step, self.run_id, self.params | self.made), self.bounds.step_seconds))
        if not said.get("ok"):
            raise StepFailed(name, str(said.get("saw", "no detail")))
        return said

    def prove(self) -> list[Result]:
        results: list[Result] = []
        try:
            for name, node, step in (
                (PUBLISH, 1, "publish"),
                (INVOKE, 2, "invoke"),
                (REVOKE, 2, "revoke"),
                (THROTTLE, 1, "exceed"),
                (THROTTLE, 2, "enforced"),
            ):
                said = self.step(name, node, step)
                self.made |= said.get("made", {})
                if results and results[-1].check == name:  # the second half of a step run on both nodes
                    results[-1].detail += "; " + said.get("detail", "")
                else:
                    results.append(Result(name, "pass", said.get("detail", "")))
        except StepFailed as failure:
            results.append(Result(failure.step, "fail", failure.saw))
        finally:
            results.append(self.cleanup())
        return results

    def cleanup(self) -> Result:
        """Node 2 first (what it made), then node 1, which removes whatever is left: the database is shared."""
        left: list[str] = []
        for node in (2, 1):
            said = answer(self.shell.run(node, node_script("cleanup", self.run_id, self.params), self.bounds.step_seconds))
            if not said.get("ok"):
                left.append(f"node {node}: {said.get('saw', 'no detail')}")
            left += [f"node {node}: {item}" for item in said.get("left", [])]
        if left:
            return Result(CLEANUP, "fail", "could not remove: " + "; ".join(left))
        return Result(CLEANUP, "pass", f"removed everything {self.run_id} made")


def main(argv: list[str] | None = None) -> int:
    parser = environment_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="file written by cdktf deploy --outputs-file")
    args = parser.parse_args(argv)
    settings = load_environment(args.environment)
    try:
        apis = rest_apis(settings.apim.version)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if settings.emulator:
        print("the emulator runs no nodes: the rehearsal proves against the stand-ins (make rehearse)", file=sys.stderr)
        return 2
    outputs = json.loads(args.outputs.read_text())[args.environment]
    shell = SessionManagerShell(Aws(settings).client("ssm"), outputs[names.OUTPUT_INSTANCE_IDS])
    prover = Prover(shell, apis, traits(settings.apim.version).gateway_environment_name, AWS_BOUNDS)
    results = prover.prove()
    return report(f"prove {args.environment} ({prover.run_id})", results, args.json)


NODE_PROGRAM = r'''
import base64, json, os, shlex, shutil, subprocess, sys, time
STEP, RUN, P = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
PATHS, WORK = P["paths"], "/run/wso2am-prove/" + RUN
LOCAL, GATEWAY = "https://127.0.0.1:9443", "https://127.0.0.1:8243"
ENV = dict(shlex.split(line)[0].split("=", 1) for line in open("/etc/wso2am/node.env") if "=" in line and not line.lstrip().startswith("#"))


class Failed(Exception):
    pass


def done(**said):
    print(json.dumps({"ok": True, **said}))
    sys.exit(0)


def quoted(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def curl(method, url, auth=None, body=None, form=None, seconds=20):
    """One request with curl, its options (credentials too) on stdin, never in the process list: (status, body)."""
    lines = ["silent", "insecure", "request = " + quoted(method), "url = " + quoted(url), "max-time = " + str(seconds)]
    lines.append("write-out = " + quoted("\\n%{http_code}"))
    if url.startswith("https://" + ENV["PUBLIC_NAME"]):
        lines.append("resolve = " + quoted(ENV["PUBLIC_NAME"] + ":8243:127.0.0.1"))
    if auth:
        lines.append("header = " + quoted("Authorization: " + auth))
    if body is not None:
        lines += ["header = " + quoted("Content-Type: application/json"), "data-binary = " + quoted(json.dumps(body))]
    for key, value in (form or {}).items():
        lines.append("data-urlencode = " + quoted(key + "=" + value))
    done_ = subprocess.run(["curl", "-K", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=seconds + 5)
    text, _, code = done_.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), text


def message(text):
    """The product's own error message (its REST APIs answer {code, message, description}); never a token."""
    try:
        said = json.loads(text)
    except ValueError:
        return text.strip()[:160]
    if isinstance(said, dict):
        words = [str(said[k]) for k in ("message", "description", "error", "error_description") if said.get(k)]
        return " ".join(dict.fromkeys(words))[:200]
    return ""


def expect(what, wanted, got):
    status, text = got
    if status not in wanted:
        raise Failed(f"{what}: HTTP {status or 'no answer'} {message(text)}".strip())
    return json.loads(text) if text.strip().startswith(("{", "[")) else {}


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def private(name, value=None):
    os.makedirs(WORK, mode=0o700, exist_ok=True)
    path = os.path.join(WORK, name)
    if value is None:
        return json.load(open(path)) if os.path.exists(path) else None
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(value, handle)
    return value


def admin_password():
    read = subprocess.run(
        ["aws", "secretsmanager", "get-secret-value", "--region", ENV["AWS_REGION"], "--secret-id", ENV["ADMIN_SECRET_ARN"],
         "--query", "SecretString", "--output", "text"], capture_output=True, text=True, timeout=60)
    if read.returncode != 0:
        raise Failed("the admin secret could not be read: " + read.stderr.strip()[-160:])
    secret = json.loads(read.stdout)
    return secret.get("username", "admin"), secret["password"]


SCOPES = " ".join(["apim:api_view apim:api_create apim:api_publish apim:api_delete apim:api_manage apim:subscribe",
                   "apim:app_manage apim:sub_manage apim:tier_view apim:tier_manage apim:admin"])


def admin():
    """An admin token from this node's own REST API client (registered once per run and node)."""
    session = private("admin.json")
    if session and session["token"]:
        return session["token"]
    user, password = admin_password()
    if not session:  # one client per node and run (named after its peer, which differs per node)
        client = expect("client registration (DCR)", (200, 201), curl("POST", LOCAL + PATHS["dcr"], basic(user, password), {
            "clientName": RUN + "-peer-" + ENV["PEER_IP"].replace(".", "-"), "owner": user, "grantType": "password refresh_token",
            "saasApp": True}))
    else:
        client = {"clientId": session["client_id"], "clientSecret": session["client_secret"]}
    private("admin.json", {"client_id": client["clientId"], "client_secret": client["clientSecret"], "token": ""})
    token = expect("admin token", (200,), curl("POST", LOCAL + PATHS["token"], basic(client["clientId"], client["clientSecret"]),
                                              form={"grant_type": "password", "username": user, "password": password, "scope": SCOPES}))
    private("admin.json", {"client_id": client["clientId"], "client_secret": client["clientSecret"], "token": token["access_token"]})
    return token["access_token"]


def api(kind, path):
    return LOCAL + PATHS[kind] + path


def bearer(token):
    return "Bearer " + token


def invoke(token):
    """The run's API through this node's own gateway, under the public name its gateway environment gives (resolved
    to 127.0.0.1): context and version, then the resource, which the gateway appends to the endpoint's URL."""
    return curl("GET", f"https://{ENV['PUBLIC_NAME']}:8243/{RUN}/1.0.0/Version", bearer(token), seconds=10)


def until(check, what):
    """Poll `check` (-> (passed, seen)) every poll seconds until it passes or `wait` seconds pass."""
    deadline, seen = time.monotonic() + P["wait"], "nothing"
    while True:
        passed, seen = check()
        if passed:
            return seen
        if time.monotonic() > deadline:
            raise Failed(f"{what} within {P['wait']:.0f}s: last saw {seen}")
        time.sleep(P["poll"])


def app_token(application_id, keys_file):
    keys = private(keys_file)
    if keys is None:
        listed = expect("application keys", (200,),
                        curl("GET", api("devportal", f"/applications/{application_id}/oauth-keys"), bearer(admin())))
        production = [k for k in listed.get("list", []) if k.get("keyType") == "PRODUCTION"]
        if not production:
            raise Failed("application keys: none for " + application_id)
        keys = private(keys_file, {"key": production[0]["consumerKey"], "secret": production[0]["consumerSecret"]})
    said = expect("application token", (200,), curl("POST", LOCAL + PATHS["token"], basic(keys["key"], keys["secret"]),
                                                     form={"grant_type": "client_credentials"}))
    return keys, said["access_token"]


def publish():
    token = admin()
    policy = expect("application throttling policy", (201,), curl("POST", api("admin", "/throttling/policies/application"), bearer(token), {
        "policyName": RUN, "displayName": RUN, "description": "scripts/prove.py, removed by its cleanup",
        "defaultLimit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "hour", "unitTime": 1, "requestCount": P["limit"]}}}))
    created = expect("create API", (201,), curl("POST", api("publisher", "/apis"), bearer(token), {
        "name": RUN, "context": "/" + RUN, "version": "1.0.0", "policies": ["Unlimited"],
        # Never public on the Developer Portal while it exists: visible to the admin role (the admin subscribes), and as
        # every API to the tenant's API creators and publishers.
        "visibility": "RESTRICTED", "visibleRoles": ["admin"],
        # Every node's own servlet port answers 200 to GET /services/Version (the load balancer's health check):
        # invoked on node 2's gateway, the backend is node 2 itself, so the answer proves that gateway served it.
        "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": "http://127.0.0.1:9763/services"},
                           "sandbox_endpoints": {"url": "http://127.0.0.1:9763/services"}},
        "operations": [{"target": "/Version", "verb": "GET", "authType": "Application & Application User",
                        "throttlingPolicy": "Unlimited"}]}))
    api_id = created["id"]
    revision = expect("create revision", (201,),
                      curl("POST", api("publisher", f"/apis/{api_id}/revisions"), bearer(token), {"description": RUN}))
    deploy = api("publisher", f"/apis/{api_id}/deploy-revision?revisionId={revision['id']}")
    expect("deploy revision", (200, 201), curl("POST", deploy, bearer(token), [
        {"name": P["environment"], "vhost": ENV["PUBLIC_NAME"], "displayOnDevportal": True}]))
    expect("publish", (200,), curl("POST", api("publisher", f"/apis/change-lifecycle?apiId={api_id}&action=Publish"), bearer(token)))
    done(made={"api": api_id, "policy": policy.get("policyId", "")}, detail=f"API {RUN} created, revision deployed, published on node 1")


def application(token, name, policy):
    app = expect("create application " + name, (201,), curl("POST", api("devportal", "/applications"), bearer(token), {
        "name": name, "throttlingPolicy": policy, "description": "scripts/prove.py", "tokenType": "JWT"}))
    app_id = app["applicationId"]
    expect("subscribe " + name, (201,), curl("POST", api("devportal", "/subscriptions"), bearer(token), {
        "applicationId": app_id, "apiId": P["api"], "throttlingPolicy": "Unlimited"}))
    keys = expect("generate keys " + name, (200,), curl("POST", api("devportal", f"/applications/{app_id}/generate-keys"), bearer(token), {
        "keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"], "validityTime": 3600}))
    private(name + ".keys", {"key": keys["consumerKey"], "secret": keys["consumerSecret"]})
    return app_id


def invoke_step():
    token = admin()
    made = {"app": application(token, RUN, "Unlimited"), "throttled_app": application(token, RUN + "-throttled", RUN)}
    _, app_token_ = app_token(made["app"], RUN + ".keys")
    private("token.json", {"token": app_token_})

    def answered():
        status, text = invoke(app_token_)
        return status == 200, f"HTTP {status} {message(text)}".strip()

    seen = until(answered, "node 2's gateway answering the API")
    done(made=made, detail=f"node 2's gateway: {seen} from its backend, token made on node 2")


def revoke_step():
    keys, token = private(RUN + ".keys"), private("token.json")["token"]
    # At node 1's Key Manager: the token never leaves node 2 (the peer's 9443 is open between the nodes).
    expect("revoke at node 1", (200,), curl("POST", f"https://{ENV['PEER_IP']}:9443{PATHS['revoke']}", basic(keys["key"], keys["secret"]),
                                            form={"token": token, "token_type_hint": "access_token"}))

    def refused():
        status, _ = invoke(token)
        return status == 401, f"HTTP {status}"

    seen = until(refused, "node 2's gateway refusing the token revoked at node 1")
    done(detail=f"revoked at node 1; node 2's gateway: {seen}")


def until_throttled(token, gateway, most, pause, not_yet):
    """The throttled application's requests through this node's gateway, one every `pause` seconds, until one is
    refused 429 (-> the statuses seen), or `most` were sent or `wait` seconds passed (Failed). A status in `not_yet`
    is waited past; any other fails at once, named with its code."""
    deadline, statuses = time.monotonic() + P["wait"], []
    while True:
        status, text = invoke(token)
        statuses.append(status)
        if status == 429:
            return statuses
        if status not in not_yet:
            before = f" (before it: {statuses[:-1]})" if len(statuses) > 1 else ""
            raise Failed(f"{gateway} answered HTTP {status or 'no answer'} {message(text)}".strip() + before)
        left = deadline - time.monotonic()
        if len(statuses) >= most or left <= 0:
            raise Failed(f"{gateway} did not throttle within {P['wait']:.0f}s and {len(statuses)} requests: {statuses}")
        time.sleep(min(pause, left))


def exceed_step():
    _, token = app_token(P["throttled_app"], "throttled.keys")
    # The gateway enforces an application's limit once it holds the traffic manager's decision (its request events go
    # by the binary publisher to the traffic managers' Siddhi, the decision back by JMS): seconds after the limit is
    # reached. Until then 200; 403 while node 1's gateway does not yet know the subscription made on node 2.
    most = max(P["limit"] + 1, int(P["wait"] / P["poll"]) + 1)  # one request a poll over the wait
    statuses = until_throttled(token, "node 1's gateway", most, P["poll"], (200, 403))
    done(detail=f"node 1's gateway: {statuses}")


def enforced_step():
    _, token = app_token(P["throttled_app"], RUN + "-throttled.keys")
    # Fewer requests than the limit, spread over the wait: a 429 then comes from node 1's requests, not node 2's own.
    pause = max(P["poll"], P["wait"] / max(1, P["limit"] - 2))
    statuses = until_throttled(token, "node 2's gateway", P["limit"] - 1, pause, (200,))
    done(detail=f"node 2's gateway: {statuses}, fewer of its own requests than the limit ({P['limit']})")


def removed(what, method_url, token, left):
    status, text = curl("DELETE", method_url, bearer(token) if token else None)
    if status not in (200, 204, 404):
        left.append(f"{what}: HTTP {status or 'no answer'} {message(text)}".strip())


def cleanup_step():
    left = []
    try:
        token = admin()
        apps = expect("list applications", (200,), curl("GET", api("devportal", f"/applications?query={RUN}&limit=100"), bearer(token)))
        for app in apps.get("list", []):
            if app.get("name", "").startswith(RUN):
                removed("application " + app["name"], api("devportal", "/applications/" + app["applicationId"]), token, left)
        apis = expect("list APIs", (200,), curl("GET", api("publisher", f"/apis?query=name:{RUN}&limit=100"), bearer(token)))
        for found in apis.get("list", []):
            if found.get("name") == RUN:
                removed("API " + RUN, api("publisher", "/apis/" + found["id"]), token, left)
        policies = expect("list policies", (200,), curl("GET", api("admin", "/throttling/policies/application"), bearer(token)))
        for policy in policies.get("list", []):
            if policy.get("policyName") == RUN:
                removed("policy " + RUN, api("admin", "/throttling/policies/application/" + policy["policyId"]), token, left)
    except Failed as failure:
        left.append(str(failure))
    session = private("admin.json")
    try:
        if session:
            status, text = curl("DELETE", LOCAL + PATHS["client_removal"] + "/" + session["client_id"], basic(*admin_password()))
            if status not in (200, 204, 404):
                left.append(f"REST API client: HTTP {status or 'no answer'} {message(text)}".strip())
    except Failed as failure:
        left.append("REST API client: " + str(failure))
    shutil.rmtree(WORK, ignore_errors=True)
    done(left=left)


if __name__ == "__main__":  # run on the node (python3 -); the unit tests load the program without running a step
    try:
        {"publish": publish, "invoke": invoke_step, "revoke": revoke_step, "exceed": exceed_step, "enforced": enforced_step,
         "cleanup": cleanup_step}[STEP]()
    except Failed as failure:
        print(json.dumps({"ok": False, "saw": str(failure)}))
        sys.exit(1)
'''


if __name__ == "__main__":
    sys.exit(main())
