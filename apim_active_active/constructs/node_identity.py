"""Node identity: the IAM role and instance profile both nodes run with.

Defaults: EC2 may assume it; Session Manager access (AmazonSSMManagedInstanceCore) instead of SSH;
read access to exactly the objects the nodes fetch when they are in S3 (the product archive, the JDBC driver, the
customization's jars and hook); `grant()` adds statements on exact ARNs (the stack grants the secrets and the key).
Exposes: instance_profile_name, role_name, role_arn.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from constructs import Construct

from apim_active_active import aws
from apim_active_active.iam_documents import assume_role_policy, policy_document
from apim_active_active.names import resource_name

SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class NodeIdentityProps:
    name_prefix: str
    artifact_urls: tuple[str, ...]  # what the nodes fetch at boot: those in S3 get a read grant


def artifact_read_policy(*urls: str) -> str | None:
    """Least-privilege read of the s3:// artifacts among urls; None when none is in S3."""
    objects = [f"arn:aws:s3:::{u.netloc}{u.path}" for u in map(urlparse, urls) if u.scheme == "s3"]
    if not objects:
        return None
    return policy_document([{"Sid": "ReadArtifacts", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}])


class NodeIdentity(Construct):
    def __init__(self, scope: Construct, id_: str, props: NodeIdentityProps) -> None:
        super().__init__(scope, id_)
        role = aws.iam_role.IamRole(
            self, "role", name=resource_name(props.name_prefix, "node"), assume_role_policy=assume_role_policy("ec2.amazonaws.com")
        )
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(self, "ssm_core", role=role.name, policy_arn=SSM_CORE_POLICY)
        artifacts = artifact_read_policy(*props.artifact_urls)
        if artifacts:
            aws.iam_role_policy.IamRolePolicy(self, "artifacts", name="read-artifacts", role=role.id, policy=artifacts)
        profile = aws.iam_instance_profile.IamInstanceProfile(
            self, "profile", name=resource_name(props.name_prefix, "node"), role=role.name
        )
        self._role_id = role.id
        self.role_name: str = role.name
        self.role_arn: str = role.arn
        self.instance_profile_name: str = profile.name

    def grant(self, id_: str, statements: list[dict]) -> aws.iam_role_policy.IamRolePolicy:
        """An inline policy of the node role with these statements (exact resources, please)."""
        return aws.iam_role_policy.IamRolePolicy(
            self,
            id_,
            name=id_.replace("_", "-"),
            role=self._role_id,
            policy=policy_document(statements),
        )
