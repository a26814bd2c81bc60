"""Settings of the escape hatches (`[customization]`, optional: unset, nothing changes): a TOML overlay merged last into
every node's deployment.toml, extra jars, JVM options and a post-boot hook (docs/customization.md).

Which overlay keys the pair owns is decided against the rendered documents (renderers/overlay.py), so that check runs
in settings.Settings with the other cross-checks."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What a JVM option may hold: it goes into the runtime env file systemd reads (which would take quotes, backslashes and
# `$` as its own syntax) and the start script expands $JAVA_OPTS unquoted (a space would split it).
JVM_OPTION = re.compile(r"^-[^\s\"'\\$`]+$")
# Options the pair sets itself, by the start of their text, with the setting that owns each.
REFUSED_JVM_OPTIONS = {
    "-Xms": "the heap is node.heap_percent's (Xms = Xmx, computed at boot)",
    "-Xmx": "the heap is node.heap_percent's (Xms = Xmx, computed at boot)",
    "-XX:InitialHeapSize": "the heap is node.heap_percent's (Xms = Xmx, computed at boot)",
    "-XX:MaxHeapSize": "the heap is node.heap_percent's (Xms = Xmx, computed at boot)",
    "-Dprofile": "a gateway node's profile is the gateway group's (gateway_scale_out); a pair node is all-in-one",
    "-Dcom.sun.management.jmxremote": "JMX is the CloudWatch agent's, on loopback, started in the running JVM (observability.agent)",
    "-DenableCorrelationLogs": "observability.correlation_log (the start script sets it after JAVA_OPTS: this one would lose)",
}


def _fetched_url(value: str, what: str) -> str:
    url = urlparse(value)
    if url.scheme not in ("s3", "https") or not url.netloc or url.path in ("", "/") or url.fragment or any(c.isspace() for c in value):
        raise ValueError(f"{value!r}: {what} must be s3://bucket/key or https://host/path (no spaces, no #fragment)")
    return value


class ExtraJar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="s3://bucket/key.jar (read with the node role) or https://host/path.jar.")
    sha256: str | None = Field(None, description="Hex SHA-256 of the jar: a node refuses (and API-M does not start) on another.")

    @field_validator("url")
    @classmethod
    def _jar_url(cls, value: str) -> str:
        if not value.endswith(".jar"):
            raise ValueError(f"{value!r} is not a .jar")
        return _fetched_url(value, "a jar's url")

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256.match(value.lower()):
            raise ValueError(f"{value!r} is not a hex SHA-256 (64 characters)")
        return value.lower() if value else value

    @property
    def file_name(self) -> str:
        return urlparse(self.url).path.rsplit("/", 1)[-1]


class CustomizationSettings(BaseModel):
    """What an operator adds to the product, beside what the pair sets (docs/customization.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment_toml: dict[str, Any] = Field(
        {},
        description="A TOML table merged last into every node's deployment.toml (pair and gateway nodes), e.g. "
        "`[customization.deployment_toml.apim.cors] allow_credentials = true`. Keys the pair owns (the public name, "
        "addresses, databases, keystores, admin, throttling and event hub URLs, gateway environment, Key Manager) and "
        "secret values are refused, naming the key.",
    )
    extra_jars: tuple[ExtraJar, ...] = Field(
        (),
        description='Jars each node adds to the product, e.g. `[{ url = "s3://bucket/driver.jar", sha256 = "..." }]`: an '
        "OSGi bundle goes to repository/components/dropins, any other jar to repository/components/lib (WSO2's rule).",
    )
    jvm_options: tuple[str, ...] = Field(
        (),
        description="Options API-M's JVM gets (JAVA_OPTS), e.g. `-Dfile.encoding=UTF-8`; each starts with `-`, no "
        "spaces or quotes. The heap (node.heap_percent), the gateway profile, JMX and anything naming a password or "
        "secret are refused.",
    )
    post_boot_hook: str | None = Field(
        None,
        description="s3:// or https:// URL of a script each node runs as root at the end of its boot step, just before "
        "API-M starts (APIM_HOME, OS_USER, NODE_ROLE and AWS_REGION set); its output goes to the boot log; a non-zero "
        "exit stops the boot (API-M not started).",
    )

    @field_validator("extra_jars")
    @classmethod
    def _one_jar_per_name(cls, value: tuple[ExtraJar, ...]) -> tuple[ExtraJar, ...]:
        names = [jar.file_name for jar in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"two jars named {', '.join(twice)}: each lands in the product under its own file name")
        return value

    @field_validator("jvm_options")
    @classmethod
    def _jvm_options(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for option in value:
            refused = next((why for start, why in REFUSED_JVM_OPTIONS.items() if option.startswith(start)), None)
            if not JVM_OPTION.match(option):
                problems.append(f"{option!r} is not one option: it starts with '-' and has no space, quote, backslash or $")
            elif refused:
                problems.append(f"{option!r}: {refused}")
            elif re.search("password|secret", option, re.IGNORECASE):
                problems.append(f"{option!r}: no secret in the user data (anyone allowed ec2:DescribeInstanceAttribute reads it)")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("post_boot_hook")
    @classmethod
    def _hook(cls, value: str | None) -> str | None:
        return _fetched_url(value, "the hook") if value is not None else value

    @property
    def fetched_urls(self) -> tuple[str, ...]:
        """What a node fetches for it at boot (the node roles read those in S3; pre-flight checks they are there)."""
        return (*(jar.url for jar in self.extra_jars), *([self.post_boot_hook] if self.post_boot_hook else []))

    @property
    def customizes_boot(self) -> bool:
        """Whether a node's boot step does anything for it (the overlay is in deployment.toml: nothing to do at boot)."""
        return bool(self.extra_jars or self.jvm_options or self.post_boot_hook)
