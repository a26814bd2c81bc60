"""The project's own checks (apim_active_active.policy): the real stacks pass, hand-built breaches are caught."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys

import pytest

from apim_active_active.policy import violations
from apim_active_active.terraform_text import base64gzip_of
from tests.conftest import GATEWAY_47, ROOT

ENVS = ["local", "dev", "legacy32", "prod"]


def stack(**resources: dict) -> dict:
    return {"resource": resources}


def sg_rule(kind: str, from_port, to_port, protocol="tcp", cidrs=(), ipv6=()) -> dict:
    return {
        "type": kind,
        "from_port": from_port,
        "to_port": to_port,
        "protocol": protocol,
        "cidr_blocks": list(cidrs),
        "ipv6_cidr_blocks": list(ipv6),
        "security_group_id": "${aws_security_group.sg.id}",
    }


def with_user_data(text: str) -> dict:
    return stack(aws_instance={"node": {"ami": "ami-0", "instance_type": "m6i.xlarge", "user_data": text}})


def user_data(*lines: str) -> str:
    return "\n".join(["#cloud-config", "write_files:", "- path: /etc/app/conf", "  content: |", *lines])


# --- the real synthesized stacks ----------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_synthesized_stack_has_no_violation(stacks, env):
    stack_ = stacks[env]
    instances = stack_["resource"]["aws_instance"]
    assert len(instances) == 2 and all(i.get("user_data_base64") for i in instances.values()), "nothing to check"
    assert any(r.get("type") == "ingress" for r in stack_["resource"]["aws_security_group_rule"].values())
    assert violations(stack_) == []


def test_the_scan_reads_the_user_data_behind_the_nodes_locals(stacks):
    """The nodes name their user data through a local: a literal password put there is found."""
    stack_ = copy.deepcopy(stacks["local"])
    instance = next(iter(stack_["resource"]["aws_instance"].values()))
    local = instance["user_data_base64"].removeprefix("${local.").removesuffix("}")
    stack_["locals"][local] = base64gzip_of('#cloud-config\nwrite_files:\n  - content: |\n      password = "hunter2"\n')
    assert any(".user_data_base64 line 4: 'password'" in v for v in violations(stack_)), violations(stack_)


def test_the_gateway_groups_stack_has_no_violation_and_its_launch_template_is_scanned(gateway_stacks):
    """The gateway scale-out group's launch template carries its user data as a base64gzip expression: clean as
    synthesized, and a literal password put there is found."""
    stack_ = copy.deepcopy(gateway_stacks[GATEWAY_47])
    assert violations(stack_) == []
    template = next(iter(stack_["resource"]["aws_launch_template"].values()))
    assert template["user_data"].startswith("${base64gzip(")
    template["user_data"] = base64gzip_of('#cloud-config\nwrite_files:\n  - content: |\n      password = "hunter2"\n')
    assert any("aws_launch_template." in v and ".user_data line 4: 'password'" in v for v in violations(stack_)), violations(stack_)


def test_policy_module_is_pure():
    code = (
        "import sys, apim_active_active.policy\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('cdktf', 'constructs', 'jsii')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- (a) ingress from anywhere to a peer or NFS port ------------------------------------------


@pytest.mark.parametrize(
    "bad, where",
    [
        (stack(aws_security_group_rule={"amqp": sg_rule("ingress", 5672, 5672, cidrs=["0.0.0.0/0"])}), "aws_security_group_rule.amqp"),
        (
            stack(
                aws_security_group={
                    "efs": {
                        "name": "efs",
                        "ingress": [
                            {"from_port": 2049, "to_port": 2049, "protocol": "tcp", "cidr_blocks": [], "ipv6_cidr_blocks": ["::/0"]}
                        ],
                    }
                }
            ),
            "aws_security_group.efs.ingress[0]",
        ),
        (
            stack(aws_security_group_rule={"range": sg_rule("ingress", 9000, 9999, cidrs=["10.0.0.0/8", "0.0.0.0/0"])}),
            "aws_security_group_rule.range",
        ),
        (
            stack(
                aws_vpc_security_group_ingress_rule={
                    "range": {"security_group_id": "sg", "cidr_ipv4": "0.0.0.0/0", "ip_protocol": "tcp", "from_port": 9000, "to_port": 9999}
                }
            ),
            "aws_vpc_security_group_ingress_rule.range",
        ),
        (
            stack(aws_security_group_rule={"everything": sg_rule("ingress", 0, 0, protocol="-1", ipv6=["::/0"])}),
            "aws_security_group_rule.everything",
        ),
        (
            stack(
                aws_vpc_security_group_ingress_rule={"everything": {"security_group_id": "sg", "cidr_ipv6": "::/0", "ip_protocol": "-1"}}
            ),
            "aws_vpc_security_group_ingress_rule.everything",
        ),
    ],
    ids=["5672-rule", "2049-inline-ipv6", "9000-9999-rule", "9000-9999-vpc-rule", "all-protocols", "vpc-rule-all"],
)
def test_open_ingress_to_a_protected_port_is_flagged(bad, where):
    found = violations(bad)
    assert len(found) == 1 and found[0].startswith(f"{where}:"), found


def test_the_finding_names_the_port_and_the_source():
    [finding] = violations(stack(aws_security_group_rule={"range": sg_rule("ingress", 9000, 9999, cidrs=["0.0.0.0/0"])}))
    assert "0.0.0.0/0" in finding and "9443" in finding and "9611" in finding and "9711" in finding
    assert "5672" not in finding and "2049" not in finding


@pytest.mark.parametrize(
    "fine",
    [
        stack(aws_security_group_rule={"https_out": sg_rule("egress", 443, 443, cidrs=["0.0.0.0/0"])}),
        stack(aws_security_group_rule={"all_out": sg_rule("egress", 0, 0, protocol="-1", cidrs=["0.0.0.0/0"])}),
        stack(aws_security_group_rule={"https_in": sg_rule("ingress", 443, 443, cidrs=["0.0.0.0/0"], ipv6=["::/0"])}),
        stack(aws_security_group_rule={"clients": sg_rule("ingress", 9443, 9443, cidrs=["10.0.0.0/8"])}),
        stack(aws_security_group_rule={"peer": {**sg_rule("ingress", 5672, 5672), "source_security_group_id": "sg"}}),
        stack(aws_security_group_rule={"nfs_udp": sg_rule("ingress", 2049, 2049, protocol="udp", cidrs=["0.0.0.0/0"])}),
        stack(
            aws_security_group={
                "web": {"name": "web", "ingress": [{"from_port": 80, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]}]}
            }
        ),
    ],
    ids=["443-egress", "all-egress", "443-ingress", "9443-from-clients", "5672-from-peer-group", "2049-udp", "inline-80-443"],
)
def test_other_rules_are_not_flagged(fine):
    assert violations(fine) == []


# --- (b) password-like literals in user data ----------------------------------------------------


def test_a_literal_secret_in_a_gzipped_cloud_config_file_is_flagged():
    import gzip

    packed = base64.b64encode(gzip.compress(b"#!/bin/bash\nDB_PASSWORD=hunter2\n", mtime=0)).decode()
    text = f"#cloud-config\nwrite_files:\n- path: /usr/local/sbin/boot\n  encoding: gz+b64\n  content: {packed}\n"
    found = violations(with_user_data(text))
    assert len(found) == 1 and "'DB_PASSWORD'" in found[0] and "hunter2" not in found[0], found


@pytest.mark.parametrize(
    "line",
    [
        '    password = "hunter2"',
        "    DB_PASSWORD=hunter2",
        "    export DB_PASSWORD='hunter2'",
        "    secret: abc",
        "    - client_secret: abc",
        '    keystore.private_key = "-----BEGIN PRIVATE KEY-----"',
        "    api_token: 0123456789abcdef",
        "    PASSWD=123456",
        '    # password = "hunter2"',
    ],
)
def test_a_literal_secret_in_user_data_is_flagged(line):
    found = violations(with_user_data(user_data("    [server]", line)))
    assert len(found) == 1 and found[0].startswith("aws_instance.node.user_data line 6:"), found
    assert "hunter2" not in found[0] and "abc" not in found[0], "the finding must not repeat the secret"


def test_a_literal_secret_in_a_terraform_gzipped_template_is_flagged():
    from apim_active_active.terraform_text import base64gzip_of

    template = user_data('    password = "hunter2"', "    host = ${aws_db_instance.db.address}")
    instance = {"node": {"ami": "ami-0", "instance_type": "m6i.xlarge", "user_data_base64": base64gzip_of(template)}}
    found = violations(stack(aws_instance=instance))
    assert len(found) == 1 and found[0].startswith("aws_instance.node.user_data_base64 line 5:"), found


def test_a_literal_secret_in_a_launch_template_is_flagged():
    encoded = base64.b64encode(user_data('    password = "hunter2"').encode()).decode()
    found = violations(stack(aws_launch_template={"nodes": {"name": "nodes", "user_data": encoded}}))
    assert len(found) == 1 and found[0].startswith("aws_launch_template.nodes.user_data"), found


@pytest.mark.parametrize(
    "line",
    [
        '    password = "$env{ADMIN_PASSWORD}"',
        '    password = "$sys{admin.password}"',
        '    password = "$${admin.password}"',
        '    password = "${aws_secretsmanager_secret_version.admin.secret_string}"',
        '    password = ""',
        "    DB_PASSWORD=",
        '    DB_PASSWORD="$(aws secretsmanager get-secret-value --secret-id apim --query SecretString --output text)"',
        '    TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 60")',
        "    secret:",
        "    show_as_token_endpoint_url = true",
        "    ADMIN_SECRET_ARN=arn:aws:secretsmanager:eu-west-1:111122223333:secret:apim-admin",
        "    private_key_file: /etc/pki/node.key",
        '    getent passwd "$OS_USER" >/dev/null || useradd "$OS_USER"',
        '    description = "handles both production and sandbox token traffic"',
    ],
)
def test_placeholders_and_non_secrets_are_not_flagged(line):
    assert violations(with_user_data(user_data("    [server]", line))) == []
