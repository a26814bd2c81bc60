"""What the real product and AWS need of the stack, synthesized for real: the load balancer keeps idle WebSocket
connections, 4.7's symmetric internal encryption gets one key for the pair, the nodes may decrypt with the extra keys
the settings name (examples/apim-4-7.toml beside the environments)."""

from __future__ import annotations

import json

import pytest

from apim_active_active.terraform_text import template_of_base64gzip
from tests.helpers import ENVS, named, node_user_data, only, ref, resources

EXTRA_KEY = "arn:aws:kms:eu-west-1:210987654321:key/7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"


@pytest.mark.parametrize("env", ENVS)
def test_the_load_balancer_keeps_idle_connections_as_long_as_the_settings_say(stacks, environments, env):
    _, balancer = only(stacks[env], "aws_lb")
    assert balancer["idle_timeout"] == environments[env].load_balancer.idle_timeout_seconds
    assert balancer["idle_timeout"] > 60, "AWS's default of 60 s drops idle WebSocket connections"


def test_4_7_gets_one_encryption_key_for_the_pair_generated_once(example_stacks):
    stack = example_stacks["apim-4-7"]
    secrets = {s["name"]: name for name, s in resources(stack, "aws_secretsmanager_secret").items()}
    assert "apim-47/encryption-key" in secrets
    arn = ref("aws_secretsmanager_secret", secrets["apim-47/encryption-key"], "arn")
    _, grant = named(stack, "aws_iam_role_policy", "use-secrets")
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert arn in statements["GenerateOnce"]["Resource"] and arn in statements["ReadSecrets"]["Resource"]
    for instance in resources(stack, "aws_instance").values():
        assert f"ENCRYPTION_KEY_SECRET_ARN={arn}" in template_of_base64gzip(node_user_data(stack, instance))


@pytest.mark.parametrize("env", ENVS)
def test_3_2_to_4_6_need_no_encryption_key_the_keystore_is_shared(stacks, env):
    names = [s["name"] for s in resources(stacks[env], "aws_secretsmanager_secret").values()]
    assert not [n for n in names if n.endswith("/encryption-key")]


def test_the_nodes_may_decrypt_with_the_extra_keys_named_and_nothing_more(example_stacks, stacks):
    _, grant = named(example_stacks["apim-4-7"], "aws_iam_role_policy", "use-secrets")
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert statements["OtherKeys"] == {"Sid": "OtherKeys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": [EXTRA_KEY]}
    _, local_grant = named(stacks["local"], "aws_iam_role_policy", "use-secrets")
    assert "OtherKeys" not in local_grant["policy"]
