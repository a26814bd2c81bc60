"""STAND-IN for the part of API-M scripts/prove.py uses: the REST APIs' subset (DCR, token, revoke, publisher,
devportal, admin) on 9443 and the gateway on 8243.

Each node keeps its own state in memory, and the pair shares it the way the real pair does, through what its
deployment.toml names: what the real product keeps in the shared database (clients, tokens, APIs, applications,
subscriptions, policies) and its deploy notifications go as events to the event hub's event_duplicate_url (the peer's
5672); a revocation goes there too, and only that event tells the gateway (as a JWT is checked without the database);
each gateway request goes to every traffic manager of apim.throttling's url_group (9611), and each node's traffic
manager counts what it receives. A marker file in the product home makes a node drop the revocations it receives.
What the real product keeps in the database outlives a restart: each node keeps its tables in a file of its own
(TABLES_FILE), read at start. JWT API keys (signed by the DevPortal, checked by the gateway against the truststore
certificate their kid names) and the JWKS endpoint are standin_jwt's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

try:
    import standin_jwt  # beside this file in the stand-in pack's bin/
except ModuleNotFoundError:  # read by the rehearsal for its names (scripts.rehearsal.standin.standin_api)
    from scripts.rehearsal.standin import standin_jwt

DROP_REVOCATIONS = "standin-drop-revocations"  # in the product home: this node drops the revocation events it receives
THROTTLE_EVENT_KEY = "standin-gateway-heartbeat"  # a gateway worker's throttle events (standin_server.py): no application's
TABLES = ("clients", "tokens", "apis", "applications", "keys", "subscriptions", "policies")
BUILT_IN_POLICIES = {"Unlimited"}
VISIBILITIES = ("PUBLIC", "PRIVATE", "RESTRICTED")  # the publisher API's API.visibility enum
# As the real traffic manager's decision reaches the gateways only after the requests' events were counted (binary
# publisher -> Siddhi -> JMS), a request counts against its limit here this long after it was made.
DECISION_SECONDS = 1.0
REST = re.compile(r"^/api/am/(publisher|devportal|admin)/v\d+(/.*)$")
TABLES_FILE = "repository/data/standin-tables.json"  # in the product home: this node's copy of "the database"
KEY_TYPES = ("PRODUCTION", "SANDBOX")

home = Path(".")
config: dict = {}
tables: dict[str, dict] = {name: {} for name in TABLES}
revoked: set[str] = set()
requests_seen: dict[str, list[float]] = {}
dropped = {"revocations": 0}
lock = threading.RLock()
keys: standin_jwt.Keys | None = None
keys_error = ""


def configure(product_home: Path, deployment: dict) -> None:
    global home, config, keys, keys_error
    home, config = product_home, deployment
    stored = home / TABLES_FILE
    if stored.exists():
        kept = json.loads(stored.read_text())
        for name in TABLES:
            tables[name].update(kept.get("tables", {}).get(name, {}))
        revoked.update(kept.get("revoked", []))
    try:
        keys = standin_jwt.Keys(home, config)
    except (OSError, ValueError, KeyError) as failure:  # no keystore yet: API keys and the JWKS answer 500
        keys_error = str(failure)


# events ------------------------------------------------------------------------------------------------------------
def event_hub_peers() -> list[str]:
    return list(config.get("apim", {}).get("event_hub", {}).get("event_duplicate_url", []))


def traffic_managers() -> list[str]:
    groups = config.get("apim", {}).get("throttling", {}).get("url_group", [])
    return [url for group in groups for url in group.get("traffic_manager_urls", [])]


def send(urls: list[str], event: dict) -> None:
    line = (json.dumps(event) + "\n").encode()
    for url in urls:
        parsed = urlparse(url)
        try:
            with socket.create_connection((parsed.hostname, parsed.port), timeout=2) as connection:
                connection.sendall(line)
        except OSError:
            pass  # as the real publisher: an unreachable peer loses the event


def receive(connection: socket.socket) -> None:
    """Events on 5672 (event hub) and 9611 (traffic manager): one JSON object a line. A bare connect (the peers'
    reachability probe) sends nothing and is closed after the timeout."""
    connection.settimeout(3)
    buffer = b""
    try:
        while chunk := connection.recv(65536):
            buffer += chunk
    except OSError:
        pass
    finally:
        connection.close()
    for line in buffer.decode(errors="replace").splitlines():
        try:
            apply(json.loads(line))
        except (ValueError, KeyError):
            continue


def apply(event: dict) -> None:
    with lock:
        if event["kind"] == "put":
            tables[event["table"]][event["key"]] = event["value"]
        elif event["kind"] == "delete":
            tables[event["table"]].pop(event["key"], None)
        elif event["kind"] == "revoke":
            if (home / DROP_REVOCATIONS).exists():
                dropped["revocations"] += 1
            else:
                revoked.add(event["token"])
        elif event["kind"] == "request":
            requests_seen.setdefault(event["key"], []).append(event["at"])
    save()


def put(table: str, key: str, value: dict) -> None:
    apply({"kind": "put", "table": table, "key": key, "value": value})
    send(event_hub_peers(), {"kind": "put", "table": table, "key": key, "value": value})


def delete(table: str, key: str) -> None:
    apply({"kind": "delete", "table": table, "key": key})
    send(event_hub_peers(), {"kind": "delete", "table": table, "key": key})


def save() -> None:
    """What the node holds, by name (never a secret or token), for the rehearsal to see what a run left behind."""
    shown = {
        "apis": sorted(a["name"] for a in tables["apis"].values()),
        "api_visibility": {a["name"]: [a.get("visibility", "PUBLIC"), *a.get("visibleRoles", [])] for a in tables["apis"].values()},
        "applications": sorted(a["name"] for a in tables["applications"].values()),
        "policies": sorted(p["policyName"] for p in tables["policies"].values()),
        "clients": sorted(c["name"] for c in tables["clients"].values()),
        "subscriptions": len(tables["subscriptions"]),
        "revocations_dropped": dropped["revocations"],
        "throttle_events_counted": {key: len(times) for key, times in requests_seen.items()},  # by key: application:user
    }
    path = home / "repository" / "logs" / "standin-api.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(shown, indent=2))
    path.with_suffix(".tmp").replace(path)
    stored = home / TABLES_FILE
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.with_suffix(".tmp").write_text(json.dumps({"tables": tables, "revoked": sorted(revoked)}))
    stored.with_suffix(".tmp").replace(stored)


# HTTP --------------------------------------------------------------------------------------------------------------
def respond(handler, status: int, body: dict | list | None = None) -> bool:
    data = json.dumps(body).encode() if body is not None else b""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    return True


def error(handler, status: int, message: str) -> bool:
    return respond(handler, status, {"code": status, "message": message, "description": message})


def credentials(handler) -> tuple[str, str] | None:
    header = handler.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


def bearer(handler) -> dict | None:
    header = handler.headers.get("Authorization", "")
    return tables["tokens"].get(digest(header[7:])) if header.startswith("Bearer ") else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_admin(user_password: tuple[str, str] | None) -> bool:
    return user_password is not None and user_password[1] == config.get("super_admin", {}).get("password") and user_password[0] == "admin"


def body(handler) -> dict:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length).decode() if length else ""
    if handler.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(raw or "{}")
    return {k: v[0] for k, v in parse_qs(raw).items()}


def handle(handler, method: str) -> bool:
    """Answer the request when it is one of this subset; False leaves it to the health handler."""
    port = handler.server.server_address[1]
    url = urlparse(handler.path)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    if port == 8243:
        return gateway(handler, method, url.path)
    if port != 9443:
        return False  # 9763 (the backend the proof's API calls) stays the health handler's
    with lock:
        if url.path == "/client-registration/v0.17/register" and method == "POST":
            return register(handler)
        if url.path.startswith("/keymanager-operations/dcr/register/") and method == "DELETE":
            if not is_admin(credentials(handler)):
                return error(handler, 401, "not the admin")
            delete("clients", url.path.rsplit("/", 1)[1])
            return respond(handler, 204)
        if url.path == "/oauth2/token" and method == "POST":
            return token(handler)
        if url.path == "/oauth2/revoke" and method == "POST":
            return revoke(handler)
        if url.path == "/oauth2/jwks" and method == "GET":
            return respond(handler, 200, keys.jwks()) if keys else error(handler, 500, f"no keystore: {keys_error}")
        match = REST.match(url.path)
        if not match:
            return False
        if bearer(handler) is None or bearer(handler).get("kind") != "rest":
            return error(handler, 401, "Invalid Credentials")
        return rest(handler, method, match.group(1), match.group(2), query)


def register(handler) -> bool:
    if not is_admin(credentials(handler)):
        return error(handler, 401, "not the admin")
    asked = body(handler)
    client_id, secret = secrets.token_hex(12), secrets.token_hex(12)
    put("clients", client_id, {"name": asked["clientName"], "secret": digest(secret), "owner": asked.get("owner", "admin")})
    return respond(handler, 200, {"clientId": client_id, "clientSecret": secret, "clientName": asked["clientName"]})


def token(handler) -> bool:
    client, form = credentials(handler), body(handler)
    if client is None:
        return error(handler, 401, "invalid_client")
    rest_client = tables["clients"].get(client[0])
    app_key = tables["keys"].get(client[0])
    issued = secrets.token_hex(16)
    if form.get("grant_type") == "password" and rest_client and rest_client["secret"] == digest(client[1]):
        if not is_admin((form.get("username", ""), form.get("password", ""))):
            return error(handler, 400, "invalid_grant")
        put("tokens", digest(issued), {"kind": "rest", "client": client[0]})
    elif form.get("grant_type") == "client_credentials" and app_key and app_key["secret"] == digest(client[1]):
        put("tokens", digest(issued), {"kind": "app", "client": client[0], "application": app_key["application"], "user": "admin"})
    else:
        return error(handler, 401, "invalid_client")
    return respond(handler, 200, {"access_token": issued, "token_type": "Bearer", "expires_in": 3600})


def revoke(handler) -> bool:
    client, form = credentials(handler), body(handler)
    key = tables["keys"].get(client[0]) if client else None
    if key is None or key["secret"] != digest(client[1]):
        return error(handler, 401, "invalid_client")
    known = tables["tokens"].get(digest(form.get("token", "")))
    if known and known["client"] == client[0]:
        apply({"kind": "revoke", "token": digest(form["token"])})
        send(event_hub_peers(), {"kind": "revoke", "token": digest(form["token"])})
    return respond(handler, 200)  # RFC 7009: 200 whether or not the token was known


def named(table: str, field: str, value: str) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in tables[table].items() if value in v.get(field, "")]


def rest(handler, method: str, api: str, path: str, query: dict) -> bool:
    parts = path.strip("/").split("/")
    if api == "admin" and parts[:3] == ["throttling", "policies", "application"]:
        if method == "POST" and len(parts) == 3:
            asked, policy_id = body(handler), secrets.token_hex(8)
            put("policies", policy_id, {"policyName": asked["policyName"], "limit": asked["defaultLimit"]["requestCount"]})
            return respond(handler, 201, {"policyId": policy_id, **asked})
        if method == "GET" and len(parts) == 3:
            return respond(handler, 200, {"list": [{"policyId": k, **v} for k, v in tables["policies"].items()]})
        if method == "DELETE" and len(parts) == 4:
            name = tables["policies"].get(parts[3], {}).get("policyName")
            if any(a["policy"] == name for a in tables["applications"].values()):
                return error(handler, 409, f"policy {name} is used by an application")
            delete("policies", parts[3])
            return respond(handler, 200)
    if api == "publisher":
        return publisher(handler, method, parts, query)
    if api == "devportal":
        return devportal(handler, method, parts, query)
    return error(handler, 404, "not in the stand-in's subset")


def gateway_environments() -> dict[str, str]:
    """Each [[apim.gateway.environment]]'s name and its vhost (the host of its endpoints)."""
    return {
        e["name"]: urlparse(e.get("https_endpoint", "https://localhost")).hostname
        for e in config.get("apim", {}).get("gateway", {}).get("environment", [])
    }


def publisher(handler, method: str, parts: list[str], query: dict) -> bool:
    if parts == ["apis"] and method == "POST":
        asked, api_id = body(handler), secrets.token_hex(8)
        asked.setdefault("visibility", "PUBLIC")
        if asked["visibility"] not in VISIBILITIES:
            return error(handler, 400, f"visibility {asked['visibility']} is not one of {', '.join(VISIBILITIES)}")
        if asked["visibility"] == "RESTRICTED" and not asked.get("visibleRoles"):
            return error(handler, 400, "a RESTRICTED API needs visibleRoles")
        put("apis", api_id, {**asked, "state": "CREATED", "deployed": []})
        return respond(handler, 201, {"id": api_id, **asked})
    if parts == ["apis"] and method == "GET":
        name = query.get("query", "").removeprefix("name:")
        return respond(handler, 200, {"list": [{"id": k, "name": v["name"]} for k, v in named("apis", "name", name)]})
    if parts == ["apis", "change-lifecycle"] and method == "POST":
        api = tables["apis"].get(query.get("apiId", ""))
        if api is None or query.get("action") != "Publish":
            return error(handler, 404, "no such API or action")
        put("apis", query["apiId"], {**api, "state": "PUBLISHED"})
        return respond(handler, 200, {"lifecycleState": {"state": "Published"}})
    api_id = parts[1] if len(parts) > 1 else ""
    api = tables["apis"].get(api_id)
    if api is None:
        return error(handler, 404, "no such API")
    if parts[2:] == ["revisions"] and method == "POST":
        return respond(handler, 201, {"id": secrets.token_hex(8)})
    if parts[2:] == ["deploy-revision"] and method == "POST":
        environments = gateway_environments()
        for target in body(handler):
            if environments.get(target["name"]) != target["vhost"]:
                return error(handler, 400, f"no gateway environment {target['name']} with vhost {target['vhost']}")
        put("apis", api_id, {**api, "deployed": list(environments)})
        return respond(handler, 201, [])
    if parts[2:] == [] and method == "DELETE":
        if any(s["api"] == api_id for s in tables["subscriptions"].values()):
            return error(handler, 409, "the API has subscriptions")
        delete("apis", api_id)
        return respond(handler, 200)
    return error(handler, 404, "not in the stand-in's subset")


def devportal(handler, method: str, parts: list[str], query: dict) -> bool:
    if parts == ["applications"] and method == "POST":
        asked, app_id = body(handler), secrets.token_hex(8)
        if asked["throttlingPolicy"] not in BUILT_IN_POLICIES | {p["policyName"] for p in tables["policies"].values()}:
            return error(handler, 400, f"no application policy {asked['throttlingPolicy']}")
        put("applications", app_id, {"name": asked["name"], "policy": asked["throttlingPolicy"]})
        return respond(handler, 201, {"applicationId": app_id, **asked})
    if parts == ["applications"] and method == "GET":
        found = named("applications", "name", query.get("query", ""))
        return respond(handler, 200, {"list": [{"applicationId": k, "name": v["name"]} for k, v in found]})
    if parts == ["subscriptions"] and method == "POST":
        asked = body(handler)
        api = tables["apis"].get(asked["apiId"], {})
        if api.get("state") != "PUBLISHED" or asked["applicationId"] not in tables["applications"]:
            return error(handler, 400, "no such published API or application")
        subscription = secrets.token_hex(8)
        put("subscriptions", subscription, {"api": asked["apiId"], "application": asked["applicationId"]})
        return respond(handler, 201, {"subscriptionId": subscription})
    app_id = parts[1] if parts[:1] == ["applications"] and len(parts) > 1 else ""
    if app_id not in tables["applications"]:
        return error(handler, 404, "no such application")
    if parts[2:] == ["generate-keys"] and method == "POST":
        key, secret = secrets.token_hex(12), secrets.token_hex(12)
        put("keys", key, {"application": app_id, "secret": digest(secret), "plain": secret})
        return respond(handler, 200, {"keyType": "PRODUCTION", "consumerKey": key, "consumerSecret": secret})
    if len(parts) == 5 and parts[2] == "api-keys" and parts[3] in KEY_TYPES and parts[4] == "generate" and method == "POST":
        return api_key(handler, app_id, parts[3])
    if parts[2:] == ["oauth-keys"] and method == "GET":
        keys = [
            {"keyType": "PRODUCTION", "consumerKey": k, "consumerSecret": v["plain"]}
            for k, v in tables["keys"].items()
            if v["application"] == app_id
        ]
        return respond(handler, 200, {"list": keys})
    if parts[2:] == [] and method == "DELETE":
        for table, field in (("subscriptions", "application"), ("keys", "application")):
            for key in [k for k, v in tables[table].items() if v[field] == app_id]:
                delete(table, key)
        delete("applications", app_id)
        return respond(handler, 200)
    return error(handler, 404, "not in the stand-in's subset")


def api_key(handler, app_id: str, key_type: str) -> bool:
    """POST .../applications/{id}/api-keys/{keyType}/generate: a JWT API key for the application's subscriptions (the
    DevPortal's DefaultApiKeyGenerator: the subscribed APIs in the key; validityPeriod -1 or absent: no expiry)."""
    if keys is None:
        return error(handler, 500, f"no keystore: {keys_error}")
    asked, now = body(handler), int(time.time())
    application = tables["applications"][app_id]
    mine = [s["api"] for s in tables["subscriptions"].values() if s["application"] == app_id]
    subscribed = [tables["apis"][api_id] for api_id in mine if api_id in tables["apis"]]
    claims = {
        "sub": "admin@carbon.super",
        "application": {"id": app_id, "name": application["name"], "tier": application["policy"]},
        "keytype": key_type,
        "subscribedAPIs": [{"name": a["name"], "context": f"{a['context']}/{a['version']}", "version": a["version"]} for a in subscribed],
        "iat": now,
        "jti": secrets.token_hex(16),
    }
    validity = int(asked.get("validityPeriod", -1) or -1)
    if validity > 0:
        claims["exp"] = now + validity
    try:
        token = keys.sign(claims)
    except ValueError as failure:
        return error(handler, 500, str(failure))
    return respond(handler, 200, {"apikey": token, "validityTime": validity})


# the gateway -------------------------------------------------------------------------------------------------------
def gateway(handler, method: str, path: str) -> bool:
    with lock:
        target = admitted(handler, method, path)
    return target if isinstance(target, bool) else forward(handler, target)


def admitted(handler, method: str, path: str) -> bool | str:
    """The backend URL to forward to, or True once refused (answered)."""
    found = [(k, a) for k, a in tables["apis"].items() if path.startswith(f"{a['context']}/{a['version']}/")]
    if not found or method != "GET" or not found[0][1]["deployed"] or found[0][1]["state"] != "PUBLISHED":
        return error(handler, 404, "No matching resource found for given API Request")
    api_id, api = found[0]
    if handler.headers.get("apikey") is not None:
        return by_api_key(handler, api, path)
    presented = handler.headers.get("Authorization", "").removeprefix("Bearer ")
    known = tables["tokens"].get(digest(presented))
    if known is None or known.get("kind") != "app" or digest(presented) in revoked:
        return error(handler, 401, "Invalid Credentials")
    if not any(s["api"] == api_id and s["application"] == known["application"] for s in tables["subscriptions"].values()):
        return error(handler, 403, "Resource forbidden")
    if throttled(known["application"]):
        return error(handler, 429, "Message throttled out")
    send(traffic_managers(), {"kind": "request", "key": f"{known['application']}:{known['user']}", "at": time.time()})
    rest = path.removeprefix(f"{api['context']}/{api['version']}")
    return api["endpointConfig"]["production_endpoints"]["url"] + rest


def by_api_key(handler, api: dict, path: str) -> bool | str:
    """An API key (header apikey): its signature checked against the truststore's certificate under its kid, the API
    among those it was issued for."""
    claims, why = keys.verify(handler.headers["apikey"]) if keys else (None, keys_error)
    if claims is None:
        return error(handler, 401, f"Invalid Credentials: {why}")
    if not any(s.get("context") == f"{api['context']}/{api['version']}" for s in claims.get("subscribedAPIs", [])):
        return error(handler, 403, "Resource forbidden: the API key was not issued for this API")
    rest = path.removeprefix(f"{api['context']}/{api['version']}")
    return api["endpointConfig"]["production_endpoints"]["url"] + rest


def throttled(app_id: str) -> bool:
    """This node's traffic manager's count of the application's requests (from every gateway) against its policy, as
    decided DECISION_SECONDS ago."""
    policy = tables["applications"][app_id]["policy"]
    limits = [p["limit"] for p in tables["policies"].values() if p["policyName"] == policy]
    if not limits:
        return False
    window = {"min": 60, "hour": 3600, "day": 86400}[limits[0]["timeUnit"]] * limits[0]["unitTime"]
    now = time.time()
    seen = [at for at in requests_seen.get(f"{app_id}:admin", []) if now - window < at <= now - DECISION_SECONDS]
    return len(seen) >= limits[0]["requestCount"]


def forward(handler, url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            status, data = answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        status, data = refused.code, refused.read()
    except OSError as failure:
        return error(handler, 502, f"backend: {failure}")
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    return True
