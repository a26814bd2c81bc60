"""A brought keystore on the synthesized stacks (variants synthesized in this process): the pair's role may read the
brought secret (its exact ARN, or a partial one's six random characters), or have that private CA issue an end-entity
certificate and fetch it, nothing more; a new VPC reaches ACM Private CA through an endpoint of its own; the gateway
nodes' role gets none of it; a restored environment none either (it takes its source's keystore)."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest
from cdktf import Testing as CdktfTesting

from apim_active_active.settings import Settings, parse_settings
from apim_active_active.stacks.active_active import ActiveActiveStack
from tests.conftest import ENVIRONMENTS, local_settings_dict
from tests.helpers import named, resources, restored_local_dict

STATE = Path("/tmp/unused-state")  # a local backend's path only; nothing is written at synth
CA = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/apim-keystore-AbC123"
LOCAL_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:apim-local/brought-keystore"  # local.toml's (partial)


def synth(settings: Settings) -> dict:
    return json.loads(CdktfTesting.synth(ActiveActiveStack(CdktfTesting.app(), "variant", settings, state_dir=STATE)))


def environment(name: str, **keystore: str) -> Settings:
    data = copy.deepcopy(tomllib.loads((ENVIRONMENTS / f"{name}.toml").read_text()))
    data["keystore"] = keystore
    return parse_settings(data, environ={})


def statements(stack: dict, name: str = "use-secrets") -> dict[str, dict]:
    _, grant = named(stack, "aws_iam_role_policy", name)
    return {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}


def interface_endpoints(stack: dict) -> set[str]:
    return {
        e["service_name"].rsplit(".", 1)[1] for e in resources(stack, "aws_vpc_endpoint").values() if e["vpc_endpoint_type"] == "Interface"
    }


@pytest.fixture(scope="module")
def local_stack() -> dict:
    return synth(parse_settings(local_settings_dict(), environ={}))


@pytest.fixture(scope="module")
def private_ca_stack() -> dict:
    """dev (a new VPC) with its keystore issued by a private CA."""
    return synth(environment("dev", source="private_ca", certificate_authority_arn=CA))


def test_the_pairs_role_reads_the_brought_secret_and_the_gateways_role_does_not(local_stack):
    granted = statements(local_stack)
    assert granted["BroughtKeystore"] == {
        "Sid": "BroughtKeystore",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": f"{LOCAL_SECRET}-??????",  # local names it by a partial ARN (the emulator's suffix differs per run)
    }
    assert "PrivateCaIssues" not in granted
    gateway = json.dumps(statements(local_stack, "gateway-use-secrets"))
    assert "brought-keystore" not in gateway and "acm-pca" not in gateway
    assert "acm-pca" not in interface_endpoints(local_stack), "only the private CA source calls it"


def test_a_full_secret_arn_is_granted_as_it_is():
    granted = statements(synth(environment("dev", source="secrets_manager", secret_arn=SECRET)))
    assert granted["BroughtKeystore"]["Resource"] == SECRET


def test_the_pairs_role_has_the_private_ca_issue_end_entity_certificates_only(private_ca_stack):
    granted = statements(private_ca_stack)
    assert granted["PrivateCaIssues"] == {
        "Sid": "PrivateCaIssues",
        "Effect": "Allow",
        "Action": "acm-pca:IssueCertificate",
        "Resource": CA,
        "Condition": {"StringEquals": {"acm-pca:TemplateArn": "arn:aws:acm-pca:::template/BlankEndEntityCertificate_APIPassthrough/V1"}},
    }
    assert granted["PrivateCaCertificate"] == {
        "Sid": "PrivateCaCertificate",
        "Effect": "Allow",
        "Action": "acm-pca:GetCertificate",
        "Resource": CA,
    }
    assert "BroughtKeystore" not in granted


def test_a_new_vpc_reaches_the_private_ca_privately(private_ca_stack):
    assert interface_endpoints(private_ca_stack) == {"ec2messages", "secretsmanager", "ssm", "ssmmessages", "acm-pca"}
    (endpoint,) = [e for e in resources(private_ca_stack, "aws_vpc_endpoint").values() if e["service_name"].endswith(".acm-pca")]
    assert endpoint["service_name"] == "com.amazonaws.eu-west-1.acm-pca"
    assert endpoint["private_dns_enabled"] is True and len(endpoint["subnet_ids"]) == 2


def test_existing_subnets_get_no_endpoint_for_it():
    stack = synth(environment("legacy32", source="private_ca", certificate_authority_arn=CA))
    assert "PrivateCaIssues" in statements(stack)
    assert not resources(stack, "aws_vpc_endpoint"), "existing subnets: their network provides the way out"


def test_a_restored_environment_gets_no_grant_for_what_it_never_reads():
    stack = synth(parse_settings(restored_local_dict(), environ={}))  # local's [keystore] copied, as restore.py writes it
    granted = json.dumps(statements(stack))
    assert "BroughtKeystore" not in granted and "brought-keystore" not in granted
