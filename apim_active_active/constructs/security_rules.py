"""One TCP port opened in a security group, to or from another group or CIDRs: the one shape every rule of the stack
has (each construct writes rules only into its own group)."""

from __future__ import annotations

from constructs import Construct

from apim_active_active import aws


def tcp_rule(
    scope: Construct,
    id_: str,
    group_id: str,
    direction: str,
    port: int,
    description: str,
    *,
    peer_group: str | None = None,
    cidrs: list[str] | None = None,
) -> None:
    aws.security_group_rule.SecurityGroupRule(
        scope,
        id_,
        type=direction,
        security_group_id=group_id,
        protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
        source_security_group_id=peer_group,
        cidr_blocks=cidrs,
    )
