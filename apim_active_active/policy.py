"""The project's own policy checks that checkov lacks, on a parsed cdk.tf.json (a plain dict: no cdktf here).

violations(stack) returns one human-readable finding per breach, empty when the stack is clean:
  (a) a security-group ingress from anywhere (0.0.0.0/0, ::/0) that reaches a port only the peers (9443 management,
      9611/9711 throttling, 5672 event hub) or the nodes (2049 NFS to EFS) may use: aws_security_group_rule (type
      ingress), inline `ingress` blocks of aws_security_group, aws_vpc_security_group_ingress_rule;
  (b) a password-like literal in EC2 user data (aws_instance.user_data / user_data_base64, aws_launch_template.user_data)
      or in the boot steps it fetches (aws_s3_object.content):
      a line assigning a value (TOML `key = "value"`, shell/env `KEY=value`, YAML `key: value`) to a key naming a
      password, passwd, secret, token or private key, unless the value is a placeholder resolved elsewhere.

User data in cdk.tf.json is Terraform-escaped: `${...}` is a Terraform reference, `$${` a literal `${` on the node.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import ipaddress
import re
from collections.abc import Iterator

import yaml

from apim_active_active import ports
from apim_active_active.terraform_text import GZIP_CALL, template_of_base64gzip

PROTECTED_PORTS = (*ports.PEERS, ports.NFS)
ALL_PROTOCOLS = {"-1", "all"}
TCP = {"tcp", "6"}

SECRET_WORD = re.compile(r"password|passwd|secret|token|private[_-]?key", re.IGNORECASE)
# A key ending in one of these names where a secret is, or something about it, not the secret itself
# (SECRET_ARN, private_key_file, show_as_token_endpoint_url).
LOCATOR_SUFFIX = re.compile(r"[_.\-](arn|id|name|url|uri|endpoint|file|path|dir|region|ttl|expiry|length)$", re.IGNORECASE)
# Resolved elsewhere: WSO2 $env{}/$sys{}, Terraform ${...}, a literal ${...} ($${ escaped), shell $(...) or $VAR.
PLACEHOLDER = re.compile(r"^(\$env\{|\$sys\{|\$\{|\$\$\{|\$\(|\$[A-Za-z_])")
NOT_A_SECRET = {"true", "false"}

KEY = r"""["']?(?P<key>[A-Za-z0-9_.\-]+)["']?"""
ASSIGNMENTS = (
    re.compile(rf"^{KEY}\s*=\s*(?P<value>.*)$"),  # TOML key = "value"
    re.compile(r"^(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$"),  # shell / env KEY=value
    re.compile(rf"^(?:-\s+)?{KEY}\s*:(?:\s+(?P<value>.*))?$"),  # YAML key: value
)


def violations(stack: dict) -> list[str]:
    """Every finding of checks (a) and (b) on one synthesized stack, as 'kind.name: what is wrong'."""
    return [*open_ingress(stack), *user_data_secrets(stack)]


def resources(stack: dict, kind: str) -> dict[str, dict]:
    found = (stack.get("resource") or {}).get(kind) or {}
    return {name: body for name, body in found.items() if isinstance(body, dict)}


# (a) ---------------------------------------------------------------------------------------------


def open_ingress(stack: dict) -> list[str]:
    findings = []
    for address, rule in ingress_rules(stack):
        protocol = str(rule.get("protocol", "")).lower()
        if protocol not in ALL_PROTOCOLS | TCP:
            continue
        ports = covered_ports(rule.get("from_port"), rule.get("to_port"), protocol)
        if not ports:
            continue
        for cidr in rule["cidrs"]:
            if is_anywhere(cidr):
                span = "all ports" if protocol in ALL_PROTOCOLS else f"{rule.get('from_port')}-{rule.get('to_port')}"
                findings.append(
                    f"{address}: ingress from {cidr} ({protocol} {span}) reaches port(s) "
                    f"{', '.join(map(str, ports))}, which only the peers/nodes may use"
                )
    return findings


def ingress_rules(stack: dict) -> Iterator[tuple[str, dict]]:
    """(address, {protocol, from_port, to_port, cidrs}) for every ingress rule, whichever resource holds it."""
    for name, rule in resources(stack, "aws_security_group_rule").items():
        if rule.get("type") == "ingress":
            yield f"aws_security_group_rule.{name}", normalised(rule, "protocol", "cidr_blocks", "ipv6_cidr_blocks")
    for name, group in resources(stack, "aws_security_group").items():
        blocks = group.get("ingress") or []
        for index, block in enumerate([blocks] if isinstance(blocks, dict) else blocks):
            if isinstance(block, dict):
                yield f"aws_security_group.{name}.ingress[{index}]", normalised(block, "protocol", "cidr_blocks", "ipv6_cidr_blocks")
    for name, rule in resources(stack, "aws_vpc_security_group_ingress_rule").items():
        yield f"aws_vpc_security_group_ingress_rule.{name}", normalised(rule, "ip_protocol", "cidr_ipv4", "cidr_ipv6")


def normalised(rule: dict, protocol_key: str, *cidr_keys: str) -> dict:
    cidrs: list[str] = []
    for key in cidr_keys:
        value = rule.get(key)
        cidrs.extend([value] if isinstance(value, str) else list(value or []))
    return {"protocol": rule.get(protocol_key), "from_port": rule.get("from_port"), "to_port": rule.get("to_port"), "cidrs": cidrs}


def covered_ports(from_port, to_port, protocol: str) -> list[int]:
    if protocol in ALL_PROTOCOLS or (from_port is None and to_port is None):
        return list(PROTECTED_PORTS)
    low, high = as_port(from_port), as_port(to_port if to_port is not None else from_port)
    if low is None or high is None:  # a Terraform expression: cannot prove it misses the ports
        return list(PROTECTED_PORTS)
    return [port for port in PROTECTED_PORTS if low <= port <= high]


def as_port(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_anywhere(cidr) -> bool:
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False).prefixlen == 0
    except ValueError:  # a Terraform reference or a prefix list: not a literal "anywhere"
        return False


# (b) ---------------------------------------------------------------------------------------------


def user_data_secrets(stack: dict) -> list[str]:
    findings = []
    for kind, attribute in (
        ("aws_instance", "user_data"),
        ("aws_instance", "user_data_base64"),
        ("aws_launch_template", "user_data"),
        ("aws_s3_object", "content"),  # the boot steps the user data's loader fetches (constructs/boot_assets.py)
    ):
        for name, body in resources(stack, kind).items():
            text = through_local(stack, body.get(attribute))
            if not isinstance(text, str):
                continue
            if text.startswith(GZIP_CALL[0]):  # base64gzip("...") of the template: read the template
                text = template_of_base64gzip(text)
            for number, key, value in secret_literals(text):
                findings.append(
                    f"{kind}.{name}.{attribute} line {number}: {key!r} is given a literal value ({len(value)} characters);"
                    " use a placeholder ($env{...}, ${...}) resolved on the node"
                )
    return findings


def through_local(stack: dict, value: object) -> object:
    """A value that is only a local's reference (`${local.name}`: the nodes' user data) as the local's expression."""
    if isinstance(value, str) and value.startswith("${local.") and value.endswith("}"):
        return stack.get("locals", {}).get(value[len("${local.") : -1], value)
    return value


def secret_literals(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, key, value) of every password-like literal in the text, in its base64 decoding, or in a
    file a cloud-config carries compressed."""
    for candidate in (text, decoded(text), *compressed_files(text)):
        for number, line in enumerate((candidate or "").splitlines(), start=1):
            found = secret_assignment(line)
            if found:
                yield number, *found


def secret_assignment(line: str) -> tuple[str, str] | None:
    stripped = line.strip().lstrip("#").strip()  # commented out is still readable by anyone who reads user data
    if not stripped:
        return None
    for pattern in ASSIGNMENTS:
        match = pattern.match(stripped)
        if not match:
            continue
        key, value = match.group("key"), unquoted(match.group("value") or "")
        if not SECRET_WORD.search(key) or LOCATOR_SUFFIX.search(key):
            return None
        if not value or PLACEHOLDER.match(value) or value.lower() in NOT_A_SECRET:
            return None
        return key, value
    return None


def compressed_files(text: str) -> list[str]:
    """The files a cloud-config carries gzipped (write_files with encoding gz+b64), decompressed."""
    if not text.startswith("#cloud-config"):
        return []
    try:
        document = yaml.safe_load(text.replace("$${", "${").replace("%%{", "%{"))
    except yaml.YAMLError:
        return []
    files = []
    for entry in (document or {}).get("write_files") or []:
        if isinstance(entry, dict) and entry.get("encoding") in ("gz+b64", "gzip+base64", "gz+base64"):
            try:
                files.append(gzip.decompress(base64.b64decode(entry["content"])).decode("utf-8"))
            except (OSError, binascii.Error, UnicodeDecodeError, EOFError):
                continue
    return files


def unquoted(value: str) -> str:
    value = value.strip()
    if value[:1] in {'"', "'"}:
        end = value.find(value[0], 1)
        return value[1:end] if end > 0 else value[1:]
    return value


def decoded(text: str) -> str | None:
    """The text base64-decoded, when it is base64 of UTF-8 text (launch templates, user_data_base64)."""
    compact = "".join(text.split())
    if not compact or len(compact) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact):
        return None
    try:
        return base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
