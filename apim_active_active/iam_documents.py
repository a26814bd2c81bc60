"""IAM policy documents as JSON text (pure; no cdktf import)."""

import json


def policy_document(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (e.g. ec2.amazonaws.com) assume the role."""
    return policy_document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}])
