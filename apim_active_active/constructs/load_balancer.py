"""Load balancer: one Application Load Balancer across both zones in front of the pair.

Defaults: internal; HTTPS listeners (443 -> management 9443 with load-balancer-cookie stickiness,
8243 -> gateway, 8099 -> WebSocket), plain HTTP only on 80 and only redirecting to 443; the Carbon console
and admin services (/carbon, /services) answered 403 except from `load_balancer.admin_cidrs`; TLS 1.2+
policy; invalid headers dropped; deletion protection on; health checks on the endpoints API-M offers
(apim_active_active.traffic). `load_balancer.client_cidrs` reach the listeners only; the nodes accept the
load balancer's group on the node ports, nothing else (the stack opens them on the nodes' group). Optional: Route 53
alias record, access logs, WAF.
Exposes: dns_name, public_name, security_group_id, node_ports (what it reaches on a node), target_group_arns and
target_group_arn_suffixes (by route name), arn_suffix and certificate_arn (what CloudWatch watches); attach(index,
instance_id). With a gateway scale-out group: gateway_ports, gateway_target_group_arns and gateway_request_label (what
the group registers in and scales by), reach_gateways(group_id) (the group's nodes on the gateway routes' ports only).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.names import resource_name
from apim_active_active.settings import LoadBalancerSettings
from apim_active_active.traffic import ADMIN_PATHS, CERTIFICATE_KEY_TYPES, GATEWAY_ROUTES, Route, node_ports_of, public_name_of

TARGET_GROUP_SUFFIX = {"management": "mgmt", "gateway": "gw", "websocket": "ws"}  # names are at most 32 characters


@dataclass(frozen=True)
class LoadBalancerProps:
    name_prefix: str
    load_balancer: LoadBalancerSettings
    routes: tuple[Route, ...]  # apim_active_active.traffic.routes(): listener, node port and health check of each
    hostname: str | None  # apim.hostname: the public name (with a Route 53 zone, its alias record); else the DNS name
    vpc_id: str
    subnet_ids: list[str]  # public subnets for internet-facing, else the nodes' subnets
    node_group_id: str  # the nodes' security group: the load balancer's egress goes there


class LoadBalancer(Construct):
    def __init__(self, scope: Construct, id_: str, props: LoadBalancerProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        prefix, lb_settings = props.name_prefix, props.load_balancer
        group = self._security_group(props)
        access_logs = None
        if lb_settings.access_logs_bucket:
            access_logs = aws.lb.LbAccessLogs(bucket=lb_settings.access_logs_bucket, prefix=prefix, enabled=True)
        balancer = aws.lb.Lb(
            self,
            "alb",
            name=resource_name(prefix, "alb"),
            load_balancer_type="application",
            internal=lb_settings.scheme == "internal",
            security_groups=[group.id],
            subnets=props.subnet_ids,
            drop_invalid_header_fields=True,
            idle_timeout=lb_settings.idle_timeout_seconds,
            enable_deletion_protection=lb_settings.deletion_protection,
            access_logs=access_logs,
            tags={"Name": resource_name(prefix, "alb")},
        )
        self.dns_name: str = balancer.dns_name
        self.arn_suffix: str = balancer.arn_suffix  # what CloudWatch's metrics name it by
        self.node_ports: tuple[int, ...] = node_ports_of(props.routes)
        self.security_group_id: str = group.id
        self.target_group_arns: dict[str, str] = {}
        self.target_group_arn_suffixes: dict[str, str] = {}
        certificate_arn = self.certificate_arn = self._certificate_arn()
        for route in props.routes:
            target_group = self._target_group(route)
            self.target_group_arns[route.name] = target_group.arn
            self.target_group_arn_suffixes[route.name] = target_group.arn_suffix
            listener = aws.lb_listener.LbListener(
                self,
                f"{route.name}_https",
                load_balancer_arn=balancer.arn,
                port=route.listener_port,
                protocol="HTTPS",
                ssl_policy=lb_settings.ssl_policy,
                certificate_arn=certificate_arn,
                default_action=[aws.lb_listener.LbListenerDefaultAction(type="forward", target_group_arn=target_group.arn)],
            )
            if route.name == "management":
                self._guard_admin_paths(listener.arn, target_group.arn)
            if route.plain_port is None:
                continue
            redirect = aws.lb_listener.LbListenerDefaultActionRedirect(
                port=str(route.listener_port), protocol="HTTPS", status_code="HTTP_301"
            )
            aws.lb_listener.LbListener(
                self,
                f"{route.name}_http_redirect",
                load_balancer_arn=balancer.arn,
                port=route.plain_port,
                protocol="HTTP",
                default_action=[aws.lb_listener.LbListenerDefaultAction(type="redirect", redirect=redirect)],
            )
        gateway_routes = tuple(r for r in props.routes if r.name in GATEWAY_ROUTES)
        self.gateway_ports: tuple[int, ...] = node_ports_of(gateway_routes)  # traffic and health checks
        self.gateway_target_group_arns: tuple[str, ...] = tuple(self.target_group_arns[r.name] for r in gateway_routes)
        # ALBRequestCountPerTarget's resource label (app/<lb>/<id>/targetgroup/<tg>/<id>): the gateway route's requests.
        self.gateway_request_label: str = f"{balancer.arn_suffix}/{self.target_group_arn_suffixes['gateway']}"
        self.public_name: str = public_name_of(props.hostname, balancer.dns_name)
        if lb_settings.route53_zone:
            assert props.hostname, "the settings require apim.hostname with a Route 53 zone"
            private = lb_settings.scheme == "internal"
            zone = aws.data_aws_route53_zone.DataAwsRoute53Zone(
                self,
                "zone",
                name=lb_settings.route53_zone,
                private_zone=private,
                vpc_id=props.vpc_id if private else None,  # one private zone of that name per VPC
            )
            aws.route53_record.Route53Record(
                self,
                "public_name",
                zone_id=zone.zone_id,
                name=props.hostname,
                type="A",
                alias=aws.route53_record.Route53RecordAlias(name=balancer.dns_name, zone_id=balancer.zone_id, evaluate_target_health=True),
            )
        if lb_settings.web_acl_arn:
            aws.wafv2_web_acl_association.Wafv2WebAclAssociation(
                self, "web_acl", resource_arn=balancer.arn, web_acl_arn=lb_settings.web_acl_arn
            )

    def attach(self, index: int, instance_id: str) -> None:
        """Register node `index` (0 or 1) in every target group."""
        for route in self._props.routes:
            aws.lb_target_group_attachment.LbTargetGroupAttachment(
                self,
                f"node_{index + 1}_{route.name}",
                target_group_arn=self.target_group_arns[route.name],
                target_id=instance_id,
                port=route.node_port,
            )

    def reach_gateways(self, group_id: str) -> None:
        """Egress to a gateway scale-out group's nodes (its security group) on the gateway routes' ports only."""
        for port in self.gateway_ports:
            tcp_rule(
                self,
                f"to_gateways_{port}",
                self.security_group_id,
                "egress",
                port,
                f"To the gateway group on {port} (traffic and health checks)",
                peer_group=group_id,
            )

    def _certificate_arn(self) -> str:
        lb_settings = self._props.load_balancer
        if lb_settings.certificate_arn:
            return lb_settings.certificate_arn
        return aws.data_aws_acm_certificate.DataAwsAcmCertificate(
            self,
            "certificate",
            domain=lb_settings.certificate_domain,
            statuses=["ISSUED"],
            most_recent=True,
            key_types=list(CERTIFICATE_KEY_TYPES),
        ).arn

    def _guard_admin_paths(self, listener_arn: str, target_group_arn: str) -> None:
        """/carbon and /services through the load balancer: forwarded from admin_cidrs only, else 403."""
        paths = aws.lb_listener_rule.LbListenerRuleCondition(
            path_pattern=aws.lb_listener_rule.LbListenerRuleConditionPathPattern(values=list(ADMIN_PATHS))
        )
        admins = [str(cidr) for cidr in self._props.load_balancer.admin_cidrs]
        if admins:
            aws.lb_listener_rule.LbListenerRule(
                self,
                "admin_paths_from_admins",
                listener_arn=listener_arn,
                priority=10,
                condition=[
                    paths,
                    aws.lb_listener_rule.LbListenerRuleCondition(
                        source_ip=aws.lb_listener_rule.LbListenerRuleConditionSourceIp(values=admins)
                    ),
                ],
                action=[aws.lb_listener_rule.LbListenerRuleAction(type="forward", target_group_arn=target_group_arn)],
            )
        aws.lb_listener_rule.LbListenerRule(
            self,
            "admin_paths_forbidden",
            listener_arn=listener_arn,
            priority=20,
            condition=[paths],
            action=[
                aws.lb_listener_rule.LbListenerRuleAction(
                    type="fixed-response",
                    fixed_response=aws.lb_listener_rule.LbListenerRuleActionFixedResponse(
                        content_type="text/plain", status_code="403", message_body="Forbidden"
                    ),
                )
            ],
        )

    def _target_group(self, route: Route) -> aws.lb_target_group.LbTargetGroup:
        health, name = route.health, resource_name(self._props.name_prefix, TARGET_GROUP_SUFFIX[route.name])
        return aws.lb_target_group.LbTargetGroup(
            self,
            route.name,
            name=name,
            port=route.node_port,
            protocol="HTTPS",  # the nodes only serve TLS; the load balancer does not verify their certificate
            vpc_id=self._props.vpc_id,
            target_type="instance",
            deregistration_delay=str(self._props.load_balancer.deregistration_delay_seconds),
            health_check=aws.lb_target_group.LbTargetGroupHealthCheck(
                enabled=True,
                protocol=health.protocol,
                port=str(health.port),
                path=health.path,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            stickiness=aws.lb_target_group.LbTargetGroupStickiness(
                type="lb_cookie", enabled=route.sticky, cookie_duration=self._props.load_balancer.stickiness_seconds
            ),
            tags={"Name": name},
        )

    def _security_group(self, props: LoadBalancerProps) -> aws.security_group.SecurityGroup:
        prefix = props.name_prefix
        group = aws.security_group.SecurityGroup(
            self,
            "group",
            name=resource_name(prefix, "alb"),
            description="WSO2 API-M load balancer",
            vpc_id=props.vpc_id,
            tags={"Name": resource_name(prefix, "alb")},
        )
        listener_ports = sorted({p for r in props.routes for p in (r.listener_port, r.plain_port) if p})
        for index, cidr in enumerate(props.load_balancer.client_cidrs):
            for port in listener_ports:
                tcp_rule(
                    self, f"client_{index}_{port}", group.id, "ingress", port, f"Clients from {cidr} to listener {port}", cidrs=[str(cidr)]
                )
        for port in node_ports_of(props.routes):
            tcp_rule(
                self,
                f"to_nodes_{port}",
                group.id,
                "egress",
                port,
                f"To the nodes on {port} (traffic and health checks)",
                peer_group=props.node_group_id,
            )
        return group
