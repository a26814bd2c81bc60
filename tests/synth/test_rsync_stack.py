"""content_sync = "rsync" (examples/rsync.toml), synthesized for real: no shared file system, SSH from node 1
to node 2 only, and the public keys handed over through two parameters only the nodes write."""

from __future__ import annotations

import json
import re

import yaml

from apim_active_active.renderers import rsync
from apim_active_active.terraform_text import template_of_base64gzip
from tests.helpers import group_named, named, node_user_data, only, ref, resources, stack_key


def test_no_shared_file_system_and_no_nfs(example_stacks):
    stack = example_stacks["rsync"]
    assert not [kind for kind in stack["resource"] if kind.startswith("aws_efs_")]
    assert not [r for r in resources(stack, "aws_security_group_rule").values() if r["from_port"] == 2049]
    assert not {"efs_id", "efs_dns_name", "efs_security_group_id"} & set(stack["output"])


def test_ssh_only_from_node_1s_group_to_node_2s_group(example_stacks):
    stack = example_stacks["rsync"]
    sender, receiver = group_named(stack, "rsync-sender"), group_named(stack, "rsync-receiver")
    ssh = [r for r in resources(stack, "aws_security_group_rule").values() if r["from_port"] <= 22 <= r["to_port"]]
    assert sorted((r["type"], r["security_group_id"], r["source_security_group_id"], r["to_port"]) for r in ssh) == [
        ("egress", ref("aws_security_group", sender), ref("aws_security_group", receiver), 22),
        ("ingress", ref("aws_security_group", receiver), ref("aws_security_group", sender), 22),
    ]
    nodes = ref("aws_security_group", group_named(stack, "nodes"))
    by_ip = {i["private_ip"]: i["vpc_security_group_ids"] for i in resources(stack, "aws_instance").values()}
    assert by_ip == {
        "10.30.1.10": [nodes, ref("aws_security_group", sender)],
        "10.30.2.10": [nodes, ref("aws_security_group", receiver)],
    }


def test_key_parameters_hold_no_key_and_only_the_nodes_write_them(example_stacks):
    stack = example_stacks["rsync"]
    parameters = resources(stack, "aws_ssm_parameter")
    assert {p["name"] for p in parameters.values()} == {"/apim-sync/rsync/manager-key", "/apim-sync/rsync/worker-host-key"}
    key = ref("aws_kms_key", stack_key(stack)[0], "arn")
    for parameter in parameters.values():
        assert (parameter["type"], parameter["key_id"]) == ("SecureString", key)
        assert "ssh-" not in parameter["value"] and "PRIVATE" not in parameter["value"]
        assert parameter["lifecycle"] == {"ignore_changes": ["value"]}
    _, grant = named(stack, "aws_iam_role_policy", "use-secrets")
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert statements["HandOverPublicKeys"]["Action"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert sorted(statements["HandOverPublicKeys"]["Resource"]) == sorted(ref("aws_ssm_parameter", name, "arn") for name in parameters)
    assert "kms:Encrypt" not in statements["StackKey"]["Action"]
    assert statements["EncryptKeyParameters"]["Action"] == "kms:Encrypt"
    assert statements["EncryptKeyParameters"]["Condition"] == {"StringEquals": {"kms:ViaService": "ssm.eu-west-1.amazonaws.com"}}


def test_user_data_passes_the_stack_key_and_the_roles(example_stacks):
    stack = example_stacks["rsync"]
    key = f"${{aws_kms_key.{only(stack, 'aws_kms_key')[0]}.arn}}"
    roles = {}
    for instance in resources(stack, "aws_instance").values():
        user_data = template_of_base64gzip(node_user_data(stack, instance)).replace("$${", "${").replace("%%{", "%{")
        files = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}
        env = files["/etc/wso2am/node.env"]
        assert f"SYNC_KEY_ARN={key}\n" in env or f"SYNC_KEY_ARN='{key}'\n" in env
        roles[instance["private_ip"]] = re.search(r"^SYNC_ROLE=(\w+)$", env, re.M).group(1)
        assert (rsync.RSYNCD_CONF in files) == (roles[instance["private_ip"]] == "worker")
    assert roles == {"10.30.1.10": "manager", "10.30.2.10": "worker"}


def test_the_destroy_guard_does_not_name_a_share_there_is_not(example_stacks):
    guard = only(example_stacks["rsync"], "terraform_data")[1]
    assert "shared_fs" not in json.dumps(guard["input"])
    assert "node.termination_protection" in json.dumps(guard["input"])
