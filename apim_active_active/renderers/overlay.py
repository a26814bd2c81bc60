"""customization.deployment_toml: the operator's overlay, merged last into every node's deployment.toml (the part the
user data carries, which the boot step merges over the product's own file), and the keys it may not set.

A key is the pair's when it is under one of OWNED's prefixes, or when a node's rendered document sets it (or a key
under it): a key the pair comes to set later is the pair's at once. Secret values are refused by the key's name: the
overlay is in the user data."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

Path = tuple[str, ...]

# (prefix, what it is, what decides it). Listed even where the rendered documents set it too, for the reason.
OWNED: tuple[tuple[str, str, str], ...] = (
    ("server.hostname", "the public name", "apim.hostname; unset, the load balancer's name"),
    ("server.node_ip", "each node's fixed address", "network.subnet_cidrs, network.node_host_number"),
    ("server.offset", "the ports the load balancer, the security groups and the peers use", "fixed: apim_active_active/ports.py"),
    ("database", "the shared database: its data sources, URLs, driver and user", "database.*"),
    ("keystore", "the pair's keystore, the same on every node", "generated once into Secrets Manager"),
    ("truststore", "the pair's truststore: the product's with the pair's certificate", "key_manager.ca_certificate adds a CA"),
    ("super_admin", "the pair's admin", "generated once into Secrets Manager"),
    ("secrets", "secret values", "they reach API-M through its environment, or sealed by the secure vault"),
    ("encryption", "4.7's internal encryption key, the same on every node", "generated once into Secrets Manager"),
    ("apim.throttling.url_group", "the traffic managers every event goes to", "both nodes'"),
    ("apim.throttling.event_duplicate_url", "the peer's broker", "the other node's"),
    ("apim.throttling.throttle_decision_endpoints", "where throttle decisions come from", "the nodes' brokers"),
    ("apim.throttling.service_url", "the control plane", "the pair"),
    ("apim.event_hub", "the event hub", "both nodes' brokers and service URLs"),
    ("apim.gateway.environment", "the gateway environment: public endpoints, service URL", "apim.hostname, content_sync"),
    ("apim.key_manager.service_url", "the Key Manager", "key_manager.type, key_manager.url"),
    ("apim.key_manager.type", "the Key Manager", "key_manager.type"),
    ("apim.key_manager.username", "the Key Manager's user", "the pair's admin"),
    ("apim.key_manager.password", "the Key Manager's user", "the pair's admin"),
    ("apim.sync_runtime_artifacts", "the gateway environment a gateway takes its APIs from", "gateway_scale_out"),
    ("monitoring.jmx", "JMX", "observability.agent: on loopback, started in the running JVM"),
    ("indexing.re_indexing", "the search index's rebuild after a restore", "restore.generation"),
)
# Under an owned prefix, yet the operator's: the data sources' pool tuning, as WSO2's own deployments give it
# (wso2/helm-apim, all-in-one/confs/instance-1/deployment.toml: [database.apim_db.pool_options]).
OPERATORS_UNDER_OWNED = ("database.apim_db.pool_options", "database.shared_db.pool_options")
SECRET_NAME = re.compile("password|secret", re.IGNORECASE)
# A value that names a secret instead of holding it: $ref{super_admin.password}, ${admin.password}, $env{NAME}.
REFERENCE = re.compile(r"^\$(ref|env|secret)?\{[^{}]+\}$")
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dotted(path: Path) -> str:
    """A key's path as TOML writes it: bare parts as they are, others quoted (`passthru_http."http.socket.timeout"`)."""
    return ".".join(part if BARE_KEY.match(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in path)


def leaves(document: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every key that holds a value (an array, an array of tables included), with its path; tables are walked."""
    for key, value in document.items():
        if isinstance(value, dict):
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


def merge_overlay(document: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The document with the overlay merged over it: tables key by key, anything else the overlay's (the boot step's
    merge-config merges the result over the product's file the same way). The pool tuning of a data source the
    document has not is left out: a gateway node has shared_db only."""
    databases = document.get("database", {})
    pools = {name: table for name, table in overlay.get("database", {}).items() if name in databases}
    return _merge(document, {**overlay, "database": pools} if "database" in overlay else overlay)


def _merge(document: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(document)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _related(first: Path, second: Path) -> bool:
    """One path is the other or under it (setting either would change the other)."""
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


def _secret_values(value: Any, path: Path) -> Iterator[Path]:
    """Keys named like a secret holding a value rather than a reference, in arrays of tables too."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _secret_values(inner, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item, path)
    elif path and SECRET_NAME.search(path[-1]) and not (isinstance(value, str) and REFERENCE.match(value)):
        yield path


def refusals(overlay: dict[str, Any], rendered: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(dotted key, why) for each overlay key the pair owns or that holds a secret value; rendered: every node's
    document (both pair nodes', the gateway group's)."""
    owned = [(tuple(prefix.split(".")), what, owner) for prefix, what, owner in OWNED]
    operators = [tuple(prefix.split(".")) for prefix in OPERATORS_UNDER_OWNED]
    set_by_pair = {path for document in rendered for path, _ in leaves(document)}
    found: dict[Path, str] = {}
    for path, _ in leaves(overlay):
        if any(path[: len(allowed)] == allowed for allowed in operators):
            continue
        listed = next(((what, owner) for prefix, what, owner in owned if _related(path, prefix)), None)
        if listed:
            found[path] = f"the pair's: {listed[0]} ({listed[1]})"
        elif any(_related(path, pair_key) for pair_key in set_by_pair):
            found[path] = "the pair's deployment.toml sets it (docs/architecture.md: what the pair sets, and why)"
    for path in _secret_values(overlay, ()):
        found.setdefault(
            path,
            "a secret value would be in the user data (anyone allowed ec2:DescribeInstanceAttribute reads it): name one "
            "instead ($ref{super_admin.password}, ${admin.password})",
        )
    for path, value in leaves(overlay):
        if isinstance(value, str) and "$secret{" in value:
            # The vault seals only the pair's own secrets ([secrets] is the pair's): any other alias stops API-M at start.
            found.setdefault(path, "$secret{...} names what the secure vault seals, the pair's own secrets only")
    return [(dotted(path), why) for path, why in sorted(found.items())]
