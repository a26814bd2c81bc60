"""What scripts/roll.py lets a plan do (read from `terraform show -json`'s resource_changes): the held apply never
replaces a node or what both depend on; a node's replacement replaces that node (and its attachments) only."""

from __future__ import annotations

from scripts.roll import deletions


def change(kind: str, name: str, *actions: str) -> dict:
    return {"address": f"{kind}.{name}", "type": kind, "change": {"actions": list(actions)}}


PLAN = {
    "resource_changes": [
        change("aws_instance", "node_1", "no-op"),
        change("aws_instance", "node_2", "delete", "create"),  # a replacement: Terraform lists delete, then create
        change("aws_lb_target_group_attachment", "node_2_gateway", "delete", "create"),
        change("aws_security_group_rule", "peer_ingress_9443", "delete", "create"),
        change("aws_db_instance", "database", "update"),
        change("aws_efs_mount_target", "mount_target_1", "create", "delete"),  # create_before_destroy
        change("aws_secretsmanager_secret", "admin", "create"),
    ]
}


def test_a_held_plan_may_not_replace_a_node_or_what_both_depend_on():
    assert deletions(PLAN) == ["aws_instance.node_2", "aws_efs_mount_target.mount_target_1"]


def test_a_nodes_replacement_may_replace_that_node_only():
    assert deletions(PLAN, allowed=("aws_instance.node_2",)) == ["aws_efs_mount_target.mount_target_1"]
    assert deletions({"resource_changes": [change("aws_instance", "node_2", "delete", "create")]}, ("aws_instance.node_2",)) == []


def test_an_empty_or_no_op_plan_deletes_nothing():
    assert deletions({}) == [] and deletions({"resource_changes": [change("aws_db_instance", "database", "no-op")]}) == []
