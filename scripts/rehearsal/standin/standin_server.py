#!/usr/bin/env python3
"""STAND-IN for WSO2 API Manager (the real product cannot be downloaded here).

Reads repository/conf/deployment.toml as API-M would, listens where an all-in-one node listens
(9443 management HTTPS, 9763 management HTTP, 8243 gateway HTTPS, 8099 WebSocket TLS, 9611 binary TCP,
9711 binary SSL, 5672 broker), answers the health endpoints API-M offers a load balancer
(/services/Version; on 9443 also the 4.x gateway readiness path) and 404 elsewhere, and connects to every traffic-manager
URL and event_duplicate_url the file names, recording what it reached in
repository/logs/standin-status.json. Bounded: it gives up on a peer after CONNECT_SECONDS.

Started with -Dprofile=gateway-worker (a gateway node: WSO2's pack after profileSetup.sh), it is a gateway worker: no
traffic manager or broker of its own (no 9611, 9711, 5672), no apim_db (the template has only shared_db); it reaches
what its deployment.toml names for the pair instead (the event hub's event_listening_endpoints, the throttle decision
endpoints, each url_group's traffic manager URLs, the control plane's service_url through the node's hosts file), and
keeps publishing a throttle event to each traffic manager every PUBLISH_SECONDS, and looking at the control plane,
recording where each went.
"""

import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import standin_api  # the REST APIs' and the gateway's subset scripts/prove.py uses (beside this file in bin/)
import standin_vault  # the placeholders resolved as the config mapper does, $secret{} through the secure vault

HOME = Path(__file__).resolve().parent.parent
CONF = HOME / "repository" / "conf" / "deployment.toml"
STATUS = HOME / "repository" / "logs" / "standin-status.json"
CERT, KEY = HOME / "repository" / "resources" / "security" / "standin.crt", HOME / "repository" / "resources" / "security" / "standin.key"
CONNECT_SECONDS = float(os.environ.get("STANDIN_CONNECT_SECONDS", "90"))
PORTS = {"https": 9443, "binary": 9611, "binary_ssl": 9711, "broker": 5672}
WEB_PORTS = {"https": (9443, True), "http": (9763, False), "gateway": (8243, True), "websocket": (8099, True)}
VERSION_PATH, READINESS_PATH = "/services/Version", "/api/am/gateway/v2/server-startup-healthcheck"
# The readiness check is the gateway REST API's (the api#am#gateway#v2 webapp): answered only while the webapp is there.
GATEWAY_WEBAPP = HOME / "repository" / "deployment" / "server" / "webapps" / "api#am#gateway#v2.war"
# As api-manager.sh hands them to the JVM: `start -Dprofile=gateway-worker` (the unit of a gateway node, 4.0-4.4).
PROFILE = next((arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("-Dprofile=")), "")
GATEWAY = PROFILE == "gateway-worker"
PUBLISH_SECONDS = 2.0
status = {"pid": os.getpid(), "standin": True, "arguments": sys.argv[1:], "profile": PROFILE, "listening": {}, "reached": {}, "errors": []}
lock = threading.Lock()


def save() -> None:
    with lock:
        STATUS.parent.mkdir(parents=True, exist_ok=True)
        tmp = STATUS.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2, sort_keys=True))
        tmp.replace(STATUS)


def tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    return context


class Health(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        if not standin_api.handle(self, "POST"):
            self.send_error(404)

    def do_DELETE(self) -> None:  # noqa: N802
        if not standin_api.handle(self, "DELETE"):
            self.send_error(404)

    def do_GET(self) -> None:  # noqa: N802
        if standin_api.handle(self, "GET"):
            return
        found = self.path == VERSION_PATH or (self.path == READINESS_PATH and GATEWAY_WEBAPP.exists())
        body = b"WSO2 API Manager STAND-IN\n" if found else b"not found\n"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass

    def log_request(self, code="-", size="-") -> None:
        write_access_line(self, code)


# The product's logs, where and as the real one writes them: log4j2's appenders (repository/conf/log4j2.properties)
# open their files at start, Tomcat's AccessLogValve writes http_access_<yyyy-MM-dd>.log per request (its default
# date format), and the correlation log is written only with -DenableCorrelationLogs=true.
LOGS = HOME / "repository" / "logs"
CORRELATION_ON = "-DenableCorrelationLogs=true" in sys.argv[1:]


# The layouts of the product's repository/conf/log4j2.properties (v3.2.0 to v4.7.0): CARBON_LOGFILE
# `TID: [%tenantId] [%appName] [%d] %5p {%c} - %m%ex%n`, AUDIT_LOGFILE `TID: [%tenantId] [%d] %5p {%c} - %m%ex%n`.
def carbon_line(level: str, text: str) -> str:
    return f"TID: [-1234] [] [{time.strftime('%Y-%m-%d %H:%M:%S')},000] {level:>5} {{STAND-IN}} - {text}\n"


def audit_line(text: str) -> str:
    return f"TID: [-1234] [{time.strftime('%Y-%m-%d %H:%M:%S')},000]  INFO {{AUDIT_LOG}} - {text}\n"


def open_product_logs() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / "wso2carbon.log").open("a") as carbon:
        carbon.write(carbon_line("INFO", f"WSO2 API Manager STAND-IN starting (correlation logs {'on' if CORRELATION_ON else 'off'})"))
    with (LOGS / "audit.log").open("a") as audit:
        audit.write(audit_line("Initiator : wso2.system.user | Action : Server start | Result : Success"))
    (LOGS / "wso2-apigw-errors.log").touch()
    if CORRELATION_ON:
        (LOGS / "correlation.log").touch()


def write_access_line(handler: BaseHTTPRequestHandler, code) -> None:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    line = f'{handler.client_address[0]} - - [{stamp}] {handler.requestline} {code} - "-" "-" 0.000\n'
    with lock, (LOGS / f"http_access_{time.strftime('%Y-%m-%d')}.log").open("a") as access:
        access.write(line)
    if CORRELATION_ON:
        with lock, (LOGS / "correlation.log").open("a") as correlation:
            correlation.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')},000|STAND-IN|HTTP-In-Request|{handler.requestline}\n")


def serve_web(name: str, port: int, use_tls: bool) -> None:
    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    if use_tls:
        server.socket = tls_context().wrap_socket(server.socket, server_side=True)
    status["listening"][name] = port
    save()
    server.serve_forever()


def serve_tcp(name: str, port: int, use_tls: bool) -> None:
    listener = socket.create_server(("0.0.0.0", port), reuse_port=True)
    if use_tls:
        listener = tls_context().wrap_socket(listener, server_side=True)
    status["listening"][name] = port
    save()
    while True:
        try:
            connection, _ = listener.accept()
            if use_tls:
                connection.close()
            else:  # 5672 and 9611 carry the pair's events (standin_api)
                threading.Thread(target=standin_api.receive, args=(connection,), daemon=True).start()
        except (OSError, ssl.SSLError):
            continue


def connect(url: str) -> str:
    """Connect to a URL's host and port (TLS for ssl:// and https://, nothing sent); the address it went to."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=2) as raw:
        address = raw.getpeername()[0]
        if parsed.scheme in ("ssl", "https"):
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            context.wrap_socket(raw, server_hostname=parsed.hostname).close()
    return address


def reach(url: str) -> None:
    parsed = urlparse(url)
    deadline = time.monotonic() + CONNECT_SECONDS
    last = "never tried"
    while time.monotonic() < deadline:
        try:
            address = connect(url)
            with lock:
                status["reached"][url] = "ok"
                if address != parsed.hostname:
                    status.setdefault("resolved", {})[parsed.hostname] = address
            save()
            return
        except OSError as error:
            last = str(error)
            time.sleep(1)
    with lock:
        status["reached"][url] = f"failed: {last}"
    save()


def peer_urls(config: dict) -> list[str]:
    throttling = config.get("apim", {}).get("throttling", {})
    urls = list(throttling.get("event_duplicate_url", []))
    for group in throttling.get("url_group", []):
        urls += group.get("traffic_manager_urls", []) + group.get("traffic_manager_auth_urls", [])
    event_hub = config.get("apim", {}).get("event_hub", {})
    urls += event_hub.get("event_duplicate_url", [])
    for group in event_hub.get("publish", {}).get("url_group", []):
        urls += group.get("urls", []) + group.get("auth_urls", [])
    if GATEWAY:  # where a gateway worker gets its APIs, keys and throttle decisions: the pair
        urls += event_hub.get("event_listening_endpoints", []) + throttling.get("throttle_decision_endpoints", [])
        urls += [config.get("apim", {}).get(table, {}).get("service_url") for table in ("event_hub", "throttling", "key_manager")]
    return sorted(set(url for url in urls if url))


def publish_throttle_events(config: dict) -> None:
    """A gateway worker's binary publisher, as the rehearsal sees it: a throttle event to every url_group's traffic
    manager every PUBLISH_SECONDS (each traffic manager counts it under THROTTLE_EVENT_KEY), and a look at the control
    plane's service_url (through the hosts file each time); what went where is recorded."""
    groups = config.get("apim", {}).get("throttling", {}).get("url_group", [])
    managers = [url for group in groups for url in group.get("traffic_manager_urls", [])]
    control_plane = config.get("apim", {}).get("event_hub", {}).get("service_url", "")
    sent: dict[str, dict] = {url: {"sent": 0, "failed": 0} for url in managers}
    while True:
        for url in managers:
            parsed = urlparse(url)
            event = {"kind": "request", "key": standin_api.THROTTLE_EVENT_KEY, "at": time.time()}
            try:
                with socket.create_connection((parsed.hostname, parsed.port), timeout=2) as connection:
                    connection.sendall((json.dumps(event) + "\n").encode())
                sent[url] = {**sent[url], "sent": sent[url]["sent"] + 1, "last_sent": event["at"]}
            except OSError as error:
                sent[url] = {**sent[url], "failed": sent[url]["failed"] + 1, "last_error": str(error)}
        look = {"at": time.time()}
        try:
            look |= {"address": connect(control_plane), "state": "ok"} if control_plane else {"state": "not configured"}
        except OSError as error:
            look["state"] = f"failed: {error}"
        with lock:
            status["throttle_events"] = {url: dict(value) for url, value in sent.items()}
            status["control_plane"] = look
        save()
        time.sleep(PUBLISH_SECONDS)


SECRET_NAMES = ("APIM_ADMIN_PASSWORD", "APIM_DB_USERNAME", "APIM_DB_PASSWORD", "APIM_KEYSTORE_PASSWORD")


# keytool's -storepass:env: the keystore password the configuration resolves to, in this process's environment.
STORE_PASSWORD_ENV = "STANDIN_STORE_PASSWORD"


def secrets_digest(config: dict) -> str:
    """One digest of the secret values the node resolved (admin, database user, keystore, encryption key): the rehearsal
    compares nodes and environments by it, whether the values came from the environment or the vault."""
    databases = config["database"]
    database = databases.get("shared_db", {})
    values = [
        config.get("super_admin", {}).get("password"),
        database.get("username"),
        database.get("password"),
        config["keystore"]["tls"]["password"],
        config.get("encryption", {}).get("key"),
    ]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def check_secrets_and_stores(config: dict) -> None:
    """What the real server needs before it can start: its secrets (names only are recorded), a
    keystore its password opens, and the shared database."""
    status["secrets_digest"] = secrets_digest(config)
    os.environ[STORE_PASSWORD_ENV] = config["keystore"]["tls"]["password"]
    store = HOME / "repository" / "resources" / "security" / config["keystore"]["tls"]["file_name"]
    opened = subprocess.run(
        ["keytool", "-list", "-keystore", str(store), "-storepass:env", STORE_PASSWORD_ENV],
        capture_output=True,
        text=True,
    )
    status["keystore_opens"] = opened.returncode == 0
    check_api_key_signer(config, store)
    databases = config["database"]
    url = urlparse(databases.get("apim_db", databases["shared_db"])["url"].removeprefix("jdbc:"))  # a gateway: shared_db only
    try:
        socket.create_connection((url.hostname, url.port), timeout=3).close()
        status["database_reached"] = "ok"
    except OSError as error:
        status["database_reached"] = f"failed: {error}"
    status["database_login"] = database_login(config)


def certificate(store: Path, alias: str) -> str | None:
    exported = subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-alias", alias, "-keystore", str(store), "-storepass:env", STORE_PASSWORD_ENV],
        capture_output=True,
        text=True,
    )
    return exported.stdout if exported.returncode == 0 else None


def check_api_key_signer(config: dict, keystore: Path) -> None:
    """As the gateway validates an API key or internal key (signed with the keystore's key): against the
    truststore's certificate under gateway_certificate_alias (carbon-apimgt's GATEWAY_PUBLIC_CERTIFICATE_ALIAS)."""
    truststore = HOME / "repository" / "resources" / "security" / config["truststore"]["file_name"]
    listed = subprocess.run(
        ["keytool", "-list", "-keystore", str(truststore), "-storepass:env", STORE_PASSWORD_ENV], capture_output=True, text=True
    ).stdout
    status["truststore_aliases"] = sorted(line.split(",")[0] for line in listed.splitlines() if "Entry," in line)
    signer = certificate(keystore, config["keystore"]["tls"]["alias"])
    status["api_key_signer_trusted"] = signer is not None and certificate(truststore, "gateway_certificate_alias") == signer
    if signer:
        dates = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate"], input=signer, capture_output=True, text=True).stdout
        status["signer_validity"] = dict(line.split("=", 1) for line in dates.splitlines())


def database_login(config: dict) -> dict:
    """Log in as API-M would (the user and password from its environment, over TLS) and count the tables of
    both databases: MySQL protocol only (the rehearsal's database)."""
    counts = {}
    for name in (n for n in ("shared_db", "apim_db") if n in config["database"]):
        url = urlparse(config["database"][name]["url"].removeprefix("jdbc:"))
        if url.scheme != "mysql":
            return {"skipped": url.scheme}
        database = url.path.strip("/")
        query = f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{database}';"
        result = subprocess.run(
            [
                "mysql",
                f"--host={url.hostname}",
                f"--port={url.port}",
                "--ssl",
                "--batch",
                "--skip-column-names",
                f"--user={config['database'][name]['username']}",
                f"--database={database}",
                f"--execute={query}",
            ],
            env={**os.environ, "MYSQL_PWD": config["database"][name]["password"]},
            capture_output=True,
            text=True,
            timeout=30,
        )
        counts[database] = result.stdout.strip() if result.returncode == 0 else f"failed: {result.stderr.strip()}"
    return {"user": config["database"]["shared_db"]["username"], "tables": counts}


def index_registry(config: dict) -> None:
    """As the product's registry indexer: its Solr index under <APIM_HOME>/solr/data (default.json's indexing.location),
    started over under the last-access-time location `[indexing] re_indexing` names (registry.xml.j2)."""
    generation = config.get("indexing", {}).get("re_indexing", 0)
    index = HOME / "solr" / "data"
    status["indexing"] = {"re_indexing": generation, "index_found": sorted(p.name for p in index.glob("*")) if index.exists() else []}
    index.mkdir(parents=True, exist_ok=True)
    (index / f"indexed-{generation}").write_text("stand-in index\n")


def main() -> int:
    try:
        config = tomllib.loads(CONF.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        status["errors"].append(f"{CONF}: {error}")
        save()
        print(f"STAND-IN API-M: cannot start: {CONF}: {error}", file=sys.stderr)
        return 1
    status["secrets_in_environment"] = {name: bool(os.environ.get(name)) for name in SECRET_NAMES}
    try:
        config, status["vault"] = standin_vault.resolve(HOME, config)
    except standin_vault.CannotStart as error:
        status["errors"].append(f"secure vault: {error}")
        save()
        print(f"STAND-IN API-M: cannot start: {error}", file=sys.stderr)
        return 1
    status["hostname"] = config.get("server", {}).get("hostname")
    status["server_role"] = config.get("server", {}).get("server_role")
    open_product_logs()
    standin_api.configure(HOME, config)
    check_secrets_and_stores(config)
    index_registry(config)
    for name, (port, use_tls) in WEB_PORTS.items():
        threading.Thread(target=serve_web, args=(name, port, use_tls), daemon=True).start()
    for name, use_tls in () if GATEWAY else (("binary", False), ("binary_ssl", True), ("broker", False)):
        threading.Thread(target=serve_tcp, args=(name, PORTS[name], use_tls), daemon=True).start()
    for url in peer_urls(config):
        threading.Thread(target=reach, args=(url,), daemon=True).start()
    if GATEWAY:
        threading.Thread(target=publish_throttle_events, args=(config,), daemon=True).start()
    save()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
