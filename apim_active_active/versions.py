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


def gateway_distribution(version: str) -> str:
    """What a gateway-only node of the version runs (gateway_scale_out): "profile", the pair's pack optimised for the
    gateway-worker profile (4.0-4.4: bin/profileSetup.sh and conf/deployment-templates/gateway-worker.toml in
    wso2/product-apim at v4.0.0-v4.4.0); "universal", WSO2's Universal Gateway pack (4.5-4.7: the repository's
    gateway/ distribution, wso2am-universal-gw-<version>, bin/gateway.sh; the all-in-one pack has no profileSetup.sh).
    3.2 is refused: WSO2's 3.2 distributed pattern keeps gateway workers in step by synchronising a gateway manager's
    files to them ([apim.event_hub], from which a 4.x gateway pulls what is deployed, came with 4.0)."""
    major, minor = (int(p) for p in version.split(".")[:2])
    if major == 3:
        raise ValueError(
            f"API-M {version}'s gateway workers are kept in step by file synchronisation from a gateway manager (WSO2's "
            "3.2 distributed pattern), which an Auto Scaling group's short-lived nodes cannot follow; the event hub a "
            "gateway pulls its APIs from came with API-M 4.0: scale out from 4.x"
        )
    traits(version)
    return "profile" if minor <= 4 else "universal"


GATEWAY_PROFILE = "gateway-worker"  # profileSetup.sh's and api-manager.sh's -Dprofile value (4.0-4.4)
UNIVERSAL_GATEWAY_START_SCRIPT = "gateway.sh"  # the Universal Gateway pack's bin/gateway.sh (4.5-4.7)


@dataclass(frozen=True)
class RestApis:
    """Where a version's REST APIs are on 9443 (each node's own), as WSO2 publishes them: the OpenAPI files in
    wso2/carbon-apimgt (components/apimgt/org.wso2.carbon.apimgt.rest.api.{publisher,store,admin}.v1/src/main/
    resources/{publisher,devportal,admin}-api.yaml at the version's tag) and the docs' "RESTful APIs" page
    (apim.docs.wso2.com/en/<version>/reference/product-apis/overview/)."""

    publisher: str
    devportal: str
    admin: str
    # Dynamic client registration of a REST API client: the publisher-api.yaml's "Authentication" section
    # (POST /client-registration/v0.17/register, Basic auth of the admin), the same path since 3.x.
    dcr: str = "/client-registration/v0.17/register"
    # The resident Key Manager's own DCR, whose DELETE removes a registered client (carbon-apimgt's
    # KEY_MANAGER_OPERATIONS_DCR_ENDPOINT; the product's access control names it for the admin's application rights).
    client_removal: str = "/keymanager-operations/dcr/register"
    token: str = "/oauth2/token"
    revoke: str = "/oauth2/revoke"  # RFC 7009, the Key Manager's revocation endpoint (the docs' "Revoke access tokens")


def rest_apis(version: str) -> RestApis:
    """The REST APIs scripts/prove.py calls for an API-M version; ValueError for a version it cannot prove."""
    major, minor = (int(p) for p in version.split(".")[:2])
    if major == 3:
        # 3.2 has no API revisions (publisher v1 deploys on publish) and other bodies: not proved here.
        raise ValueError(f"scripts/prove.py proves API-M 4.x only; {version} has no API revisions (publisher v1)")
    traits(version)  # refuses what the toolkit does not deploy
    if minor == 0:  # 4.0.0's overview: Publisher v2, Developer Portal v2, Admin v2
        return RestApis("/api/am/publisher/v2", "/api/am/devportal/v2", "/api/am/admin/v2")
    if minor == 1:  # 4.1: Publisher v3 (operation policies), Developer Portal v2, Admin v3
        return RestApis("/api/am/publisher/v3", "/api/am/devportal/v2", "/api/am/admin/v3")
    # 4.2 and later (4.3.0's and 4.6.0's overview): Publisher v4, Developer Portal v3, Admin v4
    return RestApis("/api/am/publisher/v4", "/api/am/devportal/v3", "/api/am/admin/v4")
