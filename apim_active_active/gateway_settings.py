"""Settings of the gateway scale-out group (`[gateway_scale_out]`): gateway-only nodes in an Auto Scaling group beside
the pair, WSO2's "simple scalable" pattern (docs/gateway-scale-out.md). Cross-checks with the rest of the settings
(the version, the pair's zones) are in settings.Settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apim_active_active.versions import gateway_distribution

UNIVERSAL_GATEWAY_PACK = "wso2am-universal-gw-{version}"  # the pack's top folder (its assembly's outputDirectory)


class GatewayScaleOutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_size: int = Field(2, ge=1, le=50, description="Fewest gateway nodes (spread over both zones).")
    max_size: int = Field(6, ge=1, le=100, description="Most gateway nodes the scaling policy may run.")
    instance_type: str = Field(
        "c6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", description="EC2 instance type of a gateway node (CPU-bound)."
    )
    root_volume_gb: int = Field(30, ge=20, le=1024, description="Size of a gateway node's encrypted gp3 root volume, GiB.")
    archive_url: str | None = Field(
        None,
        description="API-M 4.5 and later: where a gateway node gets WSO2's Universal Gateway pack "
        "(wso2am-universal-gw-<version>.zip), s3:// or https://. Up to 4.4 the gateway is a profile of the pair's pack "
        "(apim.archive_url, optimised with profileSetup.sh -Dprofile=gateway-worker): leave it unset.",
    )
    scaling: Literal["cpu", "requests"] = Field(
        "cpu",
        description="What the target-tracking policy keeps at its target: `cpu`, the group's average CPU; `requests`, "
        "the load balancer's requests per gateway target.",
    )
    target_cpu_percent: int = Field(60, ge=10, le=90, description='With scaling = "cpu": the average CPU the group is kept at.')
    target_requests: int = Field(
        6000,
        ge=1,
        le=1_000_000,
        description='With scaling = "requests": requests per gateway target per minute the group is kept at (tune it '
        "from the dashboard: what one node serves at the CPU you want).",
    )
    ready_seconds: int = Field(
        1800,
        ge=300,
        le=7200,
        description="How long a new node has to become ready (packages, the pack, the pair's secrets and API-M, its own "
        "first start, its gate) while the group's launch lifecycle hook holds it out of the target groups; a node not "
        "ready by then is replaced. The first deploy's nodes wait for the pair's first boot within it.",
    )
    warmup_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="After a node joins the target groups (ready): its load balancer health-check grace period and its "
        "instance warm-up (its metrics count for scaling after it).",
    )
    drain_seconds: int = Field(
        120,
        ge=30,
        le=7200,
        description="After the load balancer has drained a leaving node (its deregistration delay), how long the "
        "termination lifecycle hook waits for the node to stop API-M gracefully (it says when it is done).",
    )
    refresh_min_healthy_percent: int = Field(
        100,
        ge=0,
        le=100,
        description="Instance refresh (a new launch template): share of the group kept healthy while nodes are replaced. "
        "100 with `refresh_max_healthy_percent` over 100 launches new nodes before it terminates old ones.",
    )
    refresh_max_healthy_percent: int = Field(
        200, ge=100, le=200, description="Instance refresh: how far above the desired size the group may grow meanwhile."
    )

    update_level: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="API-M 4.5 and later: the WSO2 Updates 2.0 level of the Universal Gateway pack at `archive_url` (a "
        "product of its own, with its own levels); each gateway node refuses a pack at another level. Unset: the GA "
        "pack. Up to 4.4 the gateway is the pair's pack, at `apim.update_level`.",
    )

    @field_validator("archive_url")
    @classmethod
    def _archive_url(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith(("s3://", "https://")) and value.endswith(".zip")):
            raise ValueError(f"{value!r} is not an s3:// or https:// URL of a .zip")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> GatewayScaleOutSettings:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is over max_size {self.max_size}")
        if self.refresh_min_healthy_percent == 100 and self.refresh_max_healthy_percent == 100:
            raise ValueError("refresh_min_healthy_percent 100 needs refresh_max_healthy_percent over 100 (new nodes launched first)")
        if self.refresh_max_healthy_percent - self.refresh_min_healthy_percent > 100:
            raise ValueError(
                f"refresh_max_healthy_percent {self.refresh_max_healthy_percent} is more than 100 over "
                f"refresh_min_healthy_percent {self.refresh_min_healthy_percent} (EC2 Auto Scaling refuses it)"
            )
        return self


def gateway_checks(gateway: GatewayScaleOutSettings, version: str, pair_archive_url: str) -> list[tuple[str, str]]:
    """What the group's settings must agree with in the rest: (field under gateway_scale_out, problem)."""
    try:
        distribution = gateway_distribution(version)
    except ValueError as err:
        return [("", str(err))]
    if distribution == "universal" and gateway.archive_url is None:
        return [("archive_url", f"API-M {version}'s gateway is WSO2's Universal Gateway pack: set its archive_url")]
    if distribution == "profile" and gateway.archive_url not in (None, pair_archive_url):
        return [("archive_url", f"API-M {version}'s gateway is a profile of the pair's pack (apim.archive_url): leave it unset")]
    if distribution == "profile" and gateway.update_level is not None:
        return [("update_level", f"API-M {version}'s gateway is the pair's pack, at apim.update_level: leave it unset")]
    return []
