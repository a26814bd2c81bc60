"""Traffic entry in the synthesized stacks: listeners, stickiness, health checks, who may reach what."""

from __future__ import annotations

import pytest

from tests.helpers import ENVS, group_named, only, ref, resources

LISTENERS = {443: 80, 8243: None, 8099: None}  # HTTPS listener: the plain-HTTP port that redirects to it
NODE_PORTS_FROM_LB = {9443, 8243, 8099, 9763}  # traffic, plus Carbon's HTTP port for /services/Version
READINESS = "/api/am/gateway/v2/server-startup-healthcheck"


def _lb(stack: dict) -> tuple[str, dict]:
    return only(stack, "aws_lb")


def _target_groups(stack: dict) -> dict[str, dict]:
    """By name suffix: mgmt, gw, ws."""
    return {group["name"].rsplit("-", 1)[1]: group for group in resources(stack, "aws_lb_target_group").values()}


@pytest.mark.parametrize("env", ENVS)
def test_one_application_load_balancer_across_both_zones(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    _, balancer = _lb(stack)
    lb = settings.load_balancer
    assert balancer["load_balancer_type"] == "application"
    assert balancer["internal"] is (lb.scheme == "internal")
    assert balancer["drop_invalid_header_fields"] is True
    assert balancer["enable_deletion_protection"] is lb.deletion_protection
    subnets = resources(stack, "aws_subnet")
    if settings.network.public_subnet_cidrs:
        public = sorted(name for name, s in subnets.items() if "-public-" in s["tags"]["Name"])
        assert sorted(balancer["subnets"]) == sorted(ref("aws_subnet", name) for name in public)
    elif lb.scheme == "internal":
        node_subnets = sorted({i["subnet_id"] for i in resources(stack, "aws_instance").values()})
        assert sorted(balancer["subnets"]) == node_subnets
    assert len(balancer["subnets"]) == 2


@pytest.mark.parametrize("env", ENVS)
def test_https_listeners_with_a_tls12_policy_and_plain_http_redirected(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    listeners = {listener["port"]: listener for listener in resources(stack, "aws_lb_listener").values()}
    assert set(listeners) == {443, 8243, 8099, 80}, "plain HTTP only on 80, for browsers"
    if settings.load_balancer.certificate_arn:
        certificate = settings.load_balancer.certificate_arn
    else:
        name, lookup = only({"resource": stack["data"]}, "aws_acm_certificate")
        assert (lookup["domain"], lookup["statuses"], lookup["most_recent"]) == ("apim.local.test", ["ISSUED"], True)
        certificate = f"${{data.aws_acm_certificate.{name}.arn}}"
    for https_port, plain_port in LISTENERS.items():
        https = listeners[https_port]
        assert https["protocol"] == "HTTPS" and https["certificate_arn"] == certificate
        assert https["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
        assert https["default_action"][0]["type"] == "forward"
        if plain_port is None:
            continue
        plain = listeners[plain_port]
        assert plain["protocol"] == "HTTP"
        assert plain["default_action"] == [
            {"type": "redirect", "redirect": {"port": str(https_port), "protocol": "HTTPS", "status_code": "HTTP_301"}}
        ]


@pytest.mark.parametrize("env", ENVS)
def test_management_is_sticky_and_every_target_group_checks_apim_health(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    groups = _target_groups(stack)
    assert {name: (g["port"], g["protocol"]) for name, g in groups.items()} == {
        "mgmt": (9443, "HTTPS"),
        "gw": (8243, "HTTPS"),
        "ws": (8099, "HTTPS"),
    }
    assert groups["mgmt"]["stickiness"] == {
        "type": "lb_cookie",
        "enabled": True,
        "cookie_duration": settings.load_balancer.stickiness_seconds,
    }
    assert groups["gw"]["stickiness"]["enabled"] is settings.load_balancer.gateway_stickiness is False
    liveness = ("HTTP", "9763", "/services/Version")
    gateway = liveness if settings.apim.version.startswith("3.") else ("HTTPS", "9443", READINESS)
    for name, expected in (("mgmt", liveness), ("gw", gateway), ("ws", gateway)):
        check = groups[name]["health_check"]
        assert (check["protocol"], check["port"], check["path"], check["matcher"]) == (*expected, "200"), name
    listeners = {listener["port"]: listener for listener in resources(stack, "aws_lb_listener").values()}
    by_arn = {f"${{aws_lb_target_group.{key}.arn}}": g["port"] for key, g in resources(stack, "aws_lb_target_group").items()}
    assert {port: by_arn[listeners[port]["default_action"][0]["target_group_arn"]] for port in LISTENERS} == {
        443: 9443,
        8243: 8243,
        8099: 8099,
    }


@pytest.mark.parametrize("env", ENVS)
def test_both_nodes_registered_in_every_target_group(stacks, env):
    stack = stacks[env]
    instances = {ref("aws_instance", name) for name in resources(stack, "aws_instance")}
    by_arn = {f"${{aws_lb_target_group.{key}.arn}}": g["port"] for key, g in resources(stack, "aws_lb_target_group").items()}
    attachments = resources(stack, "aws_lb_target_group_attachment").values()
    registered = {(a["target_id"], by_arn[a["target_group_arn"]], a["port"]) for a in attachments}
    assert registered == {(i, port, port) for i in instances for port in (9443, 8243, 8099)}


@pytest.mark.parametrize("env", ENVS)
def test_clients_reach_the_load_balancer_only_and_it_reaches_the_node_ports_only(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    lb_group = ref("aws_security_group", group_named(stack, "alb"))
    nodes = ref("aws_security_group", group_named(stack, "nodes"))
    rules = list(resources(stack, "aws_security_group_rule").values())
    lb_rules = [r for r in rules if r["security_group_id"] == lb_group]
    clients = {str(c) for c in settings.load_balancer.client_cidrs}
    ingress = [r for r in lb_rules if r["type"] == "ingress"]
    assert {(r["from_port"], r["cidr_blocks"][0]) for r in ingress} == {(port, cidr) for port in (80, 443, 8243, 8099) for cidr in clients}
    egress = [r for r in lb_rules if r["type"] == "egress"]
    expected = {(p, nodes) for p in NODE_PORTS_FROM_LB}
    if settings.gateway_scale_out:
        expected |= {(p, ref("aws_security_group", group_named(stack, "gateway"))) for p in (8243, 8099, 9443)}
    assert {(r["from_port"], r["source_security_group_id"]) for r in egress} == expected  # the group's: test_gateway_group.py
    from_lb = {
        r["from_port"]
        for r in rules
        if r["security_group_id"] == nodes and r["type"] == "ingress" and r.get("source_security_group_id") == lb_group
    }
    assert from_lb == NODE_PORTS_FROM_LB


@pytest.mark.parametrize("env", ENVS)
def test_route53_alias_access_logs_and_waf_follow_the_settings(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    lb = settings.load_balancer
    lb_name, balancer = _lb(stack)
    records = resources(stack, "aws_route53_record")
    if lb.route53_zone:
        _, record = only(stack, "aws_route53_record")
        assert (record["name"], record["type"]) == (settings.apim.hostname, "A")
        assert record["alias"]["name"] == ref("aws_lb", lb_name, "dns_name")
        zone = next(iter(stack["data"]["aws_route53_zone"].values()))
        assert (zone["name"], zone["private_zone"]) == (lb.route53_zone, lb.scheme == "internal")
    else:
        assert not records
    assert ("access_logs" in balancer) is bool(lb.access_logs_bucket)
    assert bool(resources(stack, "aws_wafv2_web_acl_association")) is bool(lb.web_acl_arn)


def test_an_external_key_manager_is_reached_in_its_network_only(stacks):
    stack = stacks["legacy32"]
    nodes = ref("aws_security_group", group_named(stack, "nodes"))
    rules = [
        r
        for r in resources(stack, "aws_security_group_rule").values()
        if r["security_group_id"] == nodes and "Key Manager" in r["description"]
    ]
    assert [(r["type"], r["from_port"], r["cidr_blocks"]) for r in rules] == [("egress", 9443, ["172.31.80.0/20"])]
    assert not [r for r in resources(stacks["local"], "aws_security_group_rule").values() if "Key Manager" in r["description"]]


@pytest.mark.parametrize("env", ENVS)
def test_outputs_give_the_public_urls(stacks, environments, env):
    outputs, settings = stacks[env]["output"], environments[env]
    name = settings.apim.hostname or f"${{aws_lb.{_lb(stacks[env])[0]}.dns_name}}"
    assert outputs["publisher_url"]["value"] == f"https://{name}/publisher"
    assert outputs["devportal_url"]["value"] == f"https://{name}/devportal"
    assert outputs["admin_url"]["value"] == f"https://{name}/admin"
    assert outputs["gateway_url"]["value"] == f"https://{name}:8243"


@pytest.mark.parametrize("env", ENVS)
def test_console_and_admin_services_answer_403_except_to_admin_cidrs(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    management = next(key for key, listener in resources(stack, "aws_lb_listener").items() if listener["port"] == 443)
    rules = sorted(resources(stack, "aws_lb_listener_rule").values(), key=lambda r: r["priority"])
    assert all(r["listener_arn"] == f"${{aws_lb_listener.{management}.arn}}" for r in rules)
    paths = {"path_pattern": {"values": ["/carbon", "/carbon/*", "/services/*"]}}
    forbidden = rules[-1]
    assert (forbidden["priority"], forbidden["condition"]) == (20, [paths])
    assert forbidden["action"][0]["fixed_response"]["status_code"] == "403"
    admins = [str(c) for c in settings.load_balancer.admin_cidrs]
    if admins:
        allowed = rules[0]
        assert allowed["priority"] == 10 and allowed["action"][0]["type"] == "forward"
        assert allowed["condition"] == [paths, {"source_ip": {"values": admins}}]
    assert len(rules) == (2 if admins else 1)
