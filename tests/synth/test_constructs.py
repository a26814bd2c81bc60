"""Constructs one at a time (cdktf's Testing.synth of a stack holding only the construct): each takes only what it
uses, writes rules only into its own security group, and exposes what the stack wires (its group, its ports)."""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cdktf import TerraformStack
from cdktf import Testing as CdktfTesting

from apim_active_active.constructs.database import Database, DatabaseProps
from apim_active_active.constructs.load_balancer import LoadBalancer, LoadBalancerProps
from apim_active_active.constructs.provider import configure_provider
from apim_active_active.constructs.shared_fs import SharedFileSystem, SharedFileSystemProps

NODES = "sg-0nodes"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
ROLE = "arn:aws:iam::123456789012:role/apim-node"
SUBNETS = ["subnet-0a", "subnet-0b"]


def synth(settings, build: Callable[[TerraformStack], object]) -> tuple[object, dict]:
    stack = TerraformStack(CdktfTesting.app(), "construct")
    configure_provider(stack, settings, "construct")
    construct = build(stack)
    return construct, json.loads(CdktfTesting.synth(stack)).get("resource", {})


def rules(resources: dict) -> list[dict]:
    return list(resources.get("aws_security_group_rule", {}).values())


@pytest.mark.parametrize("env", ["local", "prod"])  # MySQL and PostgreSQL on RDS
def test_an_rds_database_is_reached_from_the_nodes_group_only(environments, env):
    settings = environments[env]
    database, resources = synth(settings, lambda stack: Database(stack, "database", DatabaseProps(
        settings=settings, vpc_id="vpc-0a", subnet_ids=SUBNETS, node_group_id=NODES, kms_key_arn=KEY)))
    (rule,) = rules(resources)
    assert (rule["type"], rule["source_security_group_id"], rule["from_port"]) == ("ingress", NODES, database.port)
    assert rule["security_group_id"].startswith("${aws_security_group.database_group")
    assert database.security_group_id is not None and len(resources["aws_db_instance"]) == 1


def test_an_existing_database_makes_nothing_and_names_its_port(environments):
    settings = environments["legacy32"]
    database, resources = synth(settings, lambda stack: Database(stack, "database", DatabaseProps(
        settings=settings, vpc_id="vpc-0a", subnet_ids=SUBNETS, node_group_id=NODES, kms_key_arn=KEY)))
    assert resources == {}
    assert (database.security_group_id, database.port) == (None, settings.database.existing.port)


def test_the_share_takes_nfs_from_the_nodes_group_only(environments):
    settings = environments["dev"]
    share, resources = synth(settings, lambda stack: SharedFileSystem(stack, "shared_fs", SharedFileSystemProps(
        settings=settings, vpc_id="vpc-0a", subnet_ids=SUBNETS, node_group_id=NODES, kms_key_arn=KEY,
        node_role_arn=ROLE)))
    (rule,) = rules(resources)
    assert (rule["type"], rule["source_security_group_id"], rule["from_port"]) == ("ingress", NODES, 2049)
    assert len(resources["aws_efs_mount_target"]) == 2 and share.security_group_id


@pytest.mark.parametrize("env", ["local", "dev"])  # internet-facing with clients from anywhere; internal
def test_the_load_balancer_reaches_the_nodes_group_on_its_node_ports_only(environments, env):
    settings = environments[env]
    balancer, resources = synth(settings, lambda stack: LoadBalancer(stack, "load_balancer", LoadBalancerProps(
        settings=settings, vpc_id="vpc-0a", subnet_ids=SUBNETS, node_group_id=NODES)))
    egress = sorted((r["from_port"], r["source_security_group_id"]) for r in rules(resources) if r["type"] == "egress")
    assert egress == [(port, NODES) for port in balancer.node_ports]
    assert balancer.node_ports == (8099, 8243, 9443, 9763)
    ingress = {r["from_port"] for r in rules(resources) if r["type"] == "ingress"}
    assert ingress <= {80, 443, 8243, 8099}, "clients reach the listeners only"
