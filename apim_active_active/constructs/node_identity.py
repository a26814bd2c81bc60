"""Node identity: the IAM role and instance profile both nodes run with.

Defaults: EC2 may assume it; Session Manager access (AmazonSSMManagedInstanceCore) instead of SSH;
read access to exactly the product archive object when it is in S3.
Exposes: instance_profile_name, role_name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlparse

from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import resource_name
from apim_active_active.settings import Settings

SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class NodeIdentityProps:
    settings: Settings


def archive_read_policy(archive_url: str) -> str | None:
    """Least-privilege policy for an s3:// product archive; None for https://."""
    url = urlparse(archive_url)
    if url.scheme != "s3":
        return None
    statement = {
        "Sid": "ReadProductArchive",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{url.netloc}{url.path}",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class NodeIdentity(Construct):
    def __init__(self, scope: Construct, id_: str, props: NodeIdentityProps) -> None:
        super().__init__(scope, id_)
        settings = props.settings
        assume = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = aws.iam_role.IamRole(
            self, "role", name=resource_name(settings, "node"), assume_role_policy=json.dumps(assume)
        )
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self, "ssm_core", role=role.name, policy_arn=SSM_CORE_POLICY
        )
        archive_policy = archive_read_policy(settings.apim.archive_url)
        if archive_policy:
            aws.iam_role_policy.IamRolePolicy(
                self, "archive", name="read-product-archive", role=role.id, policy=archive_policy
            )
        profile = aws.iam_instance_profile.IamInstanceProfile(
            self, "profile", name=resource_name(settings, "node"), role=role.name
        )
        self.role_name: str = role.name
        self.instance_profile_name: str = profile.name
