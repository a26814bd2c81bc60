"""Peer security: the nodes' security group.

Defaults: the peer ports (9443 management, 9611/9711 throttling, 5672 broker) open only between
the two nodes, by security-group reference, never by CIDR; no client CIDR at all (clients reach the load
balancer, which adds its own rules here); egress HTTPS (AWS APIs, S3), the peer ports and, with an external
Key Manager, its port in `key_manager.cidr`. Every rule has a description.
Exposes: group_id.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws, ports
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.names import resource_name
from apim_active_active.settings import KeyManagerSettings


@dataclass(frozen=True)
class PeerSecurityProps:
    name_prefix: str
    vpc_id: str
    key_manager: KeyManagerSettings


class PeerSecurity(Construct):
    def __init__(self, scope: Construct, id_: str, props: PeerSecurityProps) -> None:
        super().__init__(scope, id_)
        group = aws.security_group.SecurityGroup(
            self,
            "nodes",
            name=resource_name(props.name_prefix, "nodes"),
            description="WSO2 API-M active-active nodes",
            vpc_id=props.vpc_id,
            tags={"Name": resource_name(props.name_prefix, "nodes")},
        )
        self.group_id: str = group.id
        for port, what in ports.PEERS.items():
            for direction in ("ingress", "egress"):
                self.rule(f"peer_{direction}_{port}", direction, port, f"Peer {what}", peer_group=group.id)
        key_manager = props.key_manager
        if key_manager.cidr is not None:
            self.rule(
                "egress_key_manager",
                "egress",
                key_manager.port,
                f"External Key Manager at {key_manager.cidr}",
                cidrs=[str(key_manager.cidr)],
            )
        self.rule("egress_https", "egress", ports.HTTPS, "HTTPS to AWS APIs and S3 (packages, product archive)", cidrs=["0.0.0.0/0"])

    def rule(
        self, id_: str, direction: str, port: int, description: str, *, peer_group: str | None = None, cidrs: list[str] | None = None
    ) -> None:
        """One TCP rule on the nodes' group, from/to a security group or CIDRs."""
        tcp_rule(self, id_, self.group_id, direction, port, description, peer_group=peer_group, cidrs=cidrs)
