"""What differs between API-M versions (from WSO2's docs; see shared reference facts)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class VersionTraits:
    start_script: str
    jdk_range: tuple[int, int]
    gateway_environment_name: str
    has_gateway_type: bool
    has_throttle_decision_endpoints: bool
    has_event_hub: bool
    # 4.x: answers 200 on 9443 once the gateway has deployed its APIs; 3.2 has no such endpoint.
    gateway_readiness_path: str | None
    # shared_fs.scope = "artifacts": the deployment/server subfolders WSO2's own tools share for the version.
    shared_artifacts: tuple[str, ...]
    # The seed (3.2) shares the whole folder; since 4.0 APIs live in the database and sharing the whole
    # folder only breaks in-place product updates.
    default_share_scope: str
    # The internal crypto provider is symmetric (AES) by default: 4.7 (product default.json; WSO2's "Symmetric
    # encryption" page: "From WSO2 API Manager version 4.7.0 onwards"). Its [encryption] key must then be the same on
    # both nodes before the first start, or what one node encrypts the other cannot read. 3.2-4.6 use the keystore
    # (asymmetric), which the pair already shares.
    symmetric_internal_crypto: bool


def traits(version: str) -> VersionTraits:
    """Traits for an API-M version string like "4.3.0"; raises ValueError if unsupported."""
    major, minor = (int(p) for p in version.split(".")[:2])
    if (major, minor) == (3, 2):
        return VersionTraits(
            "wso2server.sh",
            (8, 11),
            "Production and Sandbox",
            False,
            False,
            False,
            None,
            ("synapse-configs", "executionplans", "userstores"),
            "server",
            False,
        )
    if major != 4 or minor > 7:
        raise ValueError(f"API-M {version} is not supported (3.2.x and 4.0-4.7 are)")
    jdk = {0: (8, 11), 1: (8, 11), 2: (11, 17), 7: (21, 25)}.get(minor, (11, 21))
    return VersionTraits(
        "api-manager.sh",
        jdk,
        "Default",
        True,
        minor >= 2,
        True,
        "/api/am/gateway/v2/server-startup-healthcheck",
        ("userstores",),
        "artifacts",
        minor >= 7,
    )
