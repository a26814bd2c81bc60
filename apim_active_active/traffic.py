"""Traffic entry, as data: which load-balancer listener reaches which node port, how the load balancer
checks a node's health, and the public URLs. No cdktf here: the load-balancer construct, the node
security group, deployment.toml and the rehearsal all read these tables.

TLS ends at the load balancer on every listener. Plain HTTP is offered only on port 80, for browsers, and only
redirects to 443; the gateway is reached over TLS only (HTTPS 8243, WebSocket wss 8099), and its "http" and
"ws" endpoints are advertised as those TLS URLs.
"""

from __future__ import annotations

from dataclasses import dataclass

from apim_active_active import ports
from apim_active_active.settings import Settings
from apim_active_active.versions import traits

VERSION_PATH = "/services/Version"  # Carbon's version service: answers once the server is up
# Carbon's console and admin services: WSO2's security guidance keeps them off the public entry point.
ADMIN_PATHS = ("/carbon", "/carbon/*", "/services/*")
# ACM key types a certificate lookup accepts (Terraform's and ACM's default is RSA_2048 only).
CERTIFICATE_KEY_TYPES = ("RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1")


@dataclass(frozen=True)
class HealthCheck:
    protocol: str  # HTTP or HTTPS
    port: int
    path: str


@dataclass(frozen=True)
class Route:
    """One HTTPS listener on the load balancer and the node port behind it."""

    name: str
    listener_port: int
    node_port: int
    plain_port: int | None  # a plain-HTTP listener here only redirects to listener_port
    sticky: bool
    health: HealthCheck


# The routes whose target groups the gateway scale-out group's nodes join (the management route is the pair's only).
GATEWAY_ROUTES = ("gateway", "websocket")


def public_name(settings: Settings, lb_dns_name: str) -> str:
    """The name clients use: `apim.hostname`, else the load balancer's own DNS name."""
    return public_name_of(settings.apim.hostname, lb_dns_name)


def public_name_of(hostname: str | None, lb_dns_name: str) -> str:
    return hostname or lb_dns_name


def health_checks(settings: Settings) -> tuple[HealthCheck, HealthCheck]:
    """(management, gateway): the endpoints API-M offers for a load balancer (see the facts file)."""
    liveness = HealthCheck("HTTP", ports.MANAGEMENT_HTTP, VERSION_PATH)
    readiness = traits(settings.apim.version).gateway_readiness_path
    return liveness, (HealthCheck("HTTPS", ports.MANAGEMENT, readiness) if readiness else liveness)


def routes(settings: Settings) -> tuple[Route, ...]:
    lb = settings.load_balancer
    management, gateway = health_checks(settings)
    return (
        Route("management", ports.HTTPS, ports.MANAGEMENT, ports.HTTP, True, management),
        Route("gateway", ports.GATEWAY_HTTPS, ports.GATEWAY_HTTPS, None, lb.gateway_stickiness, gateway),
        Route("websocket", ports.WEBSOCKET_TLS, ports.WEBSOCKET_TLS, None, lb.gateway_stickiness, gateway),
    )


def node_ports_of(routes: tuple[Route, ...]) -> tuple[int, ...]:
    """Every node port the load balancer reaches through these routes: traffic and health checks."""
    return tuple(sorted({r.node_port for r in routes} | {r.health.port for r in routes}))


def _url(scheme: str, host: str, port: int, path: str = "") -> str:
    default = {"https": ports.HTTPS, "http": ports.HTTP}.get(scheme)
    return f"{scheme}://{host}{'' if port == default else f':{port}'}{path}"


def public_urls(public_name: str) -> dict[str, str]:
    """What clients open, by name; the same names as the stack's outputs."""
    return {
        "publisher_url": _url("https", public_name, ports.HTTPS, "/publisher"),
        "devportal_url": _url("https", public_name, ports.HTTPS, "/devportal"),
        "admin_url": _url("https", public_name, ports.HTTPS, "/admin"),
        "carbon_url": _url("https", public_name, ports.HTTPS, "/carbon"),
        "gateway_url": _url("https", public_name, ports.GATEWAY_HTTPS),
    }


def gateway_endpoints(public_name: str, settings: Settings) -> dict[str, str]:
    """The gateway environment's endpoints as clients reach them (deployment.toml): TLS only."""
    by_name = {r.name: r for r in routes(settings)}
    https = _url("https", public_name, by_name["gateway"].listener_port)
    wss = _url("wss", public_name, by_name["websocket"].listener_port)
    return {"http_endpoint": https, "https_endpoint": https, "ws_endpoint": wss, "wss_endpoint": wss}
