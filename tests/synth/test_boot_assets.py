"""The boot steps as objects of the stack's boot bucket (constructs/boot_assets.py), and the loader each node's user
data carries instead (renderers/boot_loader.py): EC2 takes at most 16 KB of user data, the boot step alone is more."""

from __future__ import annotations

import gzip
import json
import re
import subprocess

import pytest
import yaml

from apim_active_active.renderers.boot_loader import BOOT_LOADER, asset_key, digest, render_loader
from apim_active_active.renderers.boot_script import BOOT_SCRIPT, node_boot_script
from apim_active_active.renderers.gateway_user_data import gateway_boot_script
from apim_active_active.terraform_text import escape_template, template_of_base64gzip
from tests.helpers import node_user_data, only, ref, resources

ENVS = ["local", "dev", "legacy32", "prod"]


@pytest.mark.parametrize("env", ENVS)
def test_the_bucket_holds_each_boot_step_by_its_digest_encrypted_private_and_tls_only(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    bucket_name, bucket = only(stack, "aws_s3_bucket")
    bucket_id = ref("aws_s3_bucket", bucket_name)
    objects = {o["key"]: o for o in resources(stack, "aws_s3_object").values()}
    steps = [node_boot_script(settings), *([gateway_boot_script(settings)] if settings.gateway_scale_out else [])]
    assert objects.keys() == {asset_key(step) for step in steps}
    # Named by whose step it is (a changed step replaces its own object), not by position.
    assert {name.split("_object_")[1].rsplit("_", 1)[0] for name in resources(stack, "aws_s3_object")} == (
        {"pair", "gateway"} if settings.gateway_scale_out else {"pair"}
    )
    assert all(objects[asset_key(step)]["content"] == escape_template(step) for step in steps)
    assert bucket["bucket_prefix"].startswith(settings.name_prefix) and bucket["force_destroy"] is True
    (_, block), (_, encryption) = (
        only(stack, "aws_s3_bucket_public_access_block"),
        only(stack, "aws_s3_bucket_server_side_encryption_configuration"),
    )
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    rule = encryption["rule"][0]["apply_server_side_encryption_by_default"]
    assert rule["sse_algorithm"] == "aws:kms" and rule["kms_master_key_id"].startswith("${aws_kms_key.")
    assert only(stack, "aws_s3_bucket_versioning")[1]["versioning_configuration"]["status"] == "Enabled"
    if settings.emulator:  # plain http: moto would apply the policy to Terraform's own uploads
        assert not resources(stack, "aws_s3_bucket_policy") and not settings.emulator.boot_bucket_tls_only
    else:
        assert '"aws:SecureTransport":"false"' in only(stack, "aws_s3_bucket_policy")[1]["policy"].replace(" ", "")
    assert only(stack, "aws_s3_bucket_public_access_block")[1]["bucket"] == bucket_id


@pytest.mark.parametrize("env", ENVS)
def test_a_nodes_user_data_carries_the_loader_of_its_own_step_and_is_small(stacks, environments, env):
    stack, settings = stacks[env], environments[env]
    for instance in resources(stack, "aws_instance").values():
        text = template_of_base64gzip(node_user_data(stack, instance))
        cloud_config = yaml.safe_load(text.replace("$${", "${").replace("%%{", "%{"))
        files = {f["path"]: f["content"] for f in cloud_config["write_files"]}
        assert cloud_config["runcmd"] == [[BOOT_LOADER]] and BOOT_SCRIPT not in files
        assert f"/{asset_key(node_boot_script(settings))} " in files[BOOT_LOADER]
        assert digest(node_boot_script(settings)) in files[BOOT_LOADER]
        assert len(gzip.compress(text.encode())) < 8 * 1024, "half of EC2's 16 KB: the boot step is in S3"


def test_each_role_reads_exactly_the_boot_steps(stacks):
    stack = stacks["local"]
    objects = sorted(
        f"{ref('aws_s3_bucket', only(stack, 'aws_s3_bucket')[0], 'arn')}/{o['key']}" for o in resources(stack, "aws_s3_object").values()
    )
    reads = [
        statement
        for policy in resources(stack, "aws_iam_role_policy").values()
        for statement in json.loads(policy["policy"])["Statement"]
        if statement.get("Sid") == "ReadBootStep"
    ]
    assert len(reads) == 2, "the pair's role and the gateway group's"
    assert all(sorted(s["Resource"]) == objects and s["Action"] == "s3:GetObject" for s in reads)


def test_the_loader_runs_the_step_it_names_and_refuses_another(tmp_path):
    """The loader run for real, with `aws s3 cp` a STAND-IN copying from a folder, and its paths under tmp_path."""
    step = '#!/bin/bash\necho booted > "$(dirname "$0")/ran"\n'
    loader = render_loader("bucket", "eu-west-1", step).replace(BOOT_SCRIPT, str(tmp_path / "wso2am-boot"))
    (tmp_path / "bin").mkdir()
    (tmp_path / "s3").mkdir()
    (tmp_path / "bin" / "aws").write_text(f'#!/bin/sh\ncp "{tmp_path}/s3/$(basename "$6")" "$7"\n')
    (tmp_path / "bin" / "aws").chmod(0o755)
    (tmp_path / "s3" / asset_key(step).split("/")[1]).write_text(step)
    env = {"PATH": f"{tmp_path}/bin:/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", loader], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran").read_text() == "booted\n"
    (tmp_path / "s3" / asset_key(step).split("/")[1]).write_text(step + "echo tampered\n")
    done = subprocess.run(["bash", "-c", loader], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "is not the boot step this node was made for" in done.stderr
    assert re.search(r"--region eu-west-1 s3://bucket/boot/[0-9a-f]{64}\.sh ", loader)
