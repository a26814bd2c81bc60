"""rsync channel (content_sync = "rsync"): how node 1 reaches node 2, and how they hand over public keys.

Defaults: SSH (22) from node 1's own group to node 2's own group and nowhere else (the nodes' shared group
does not open it); two SecureString parameters encrypted with the stack's key, created with a placeholder
and then written by the nodes only: node 2's SSH host key (which node 1 pins) and node 1's public push key
(which node 2 authorizes for rsync alone). No private key is ever in Terraform: node 1 creates its own at
first boot. The nodes may read and overwrite exactly these two parameters.
Exposes: sender_group_id (node 1), receiver_group_id (node 2), statements(key_arn) (for the node role).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from apim_active_active import aws, ports
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.names import resource_name, rsync_parameter
from apim_active_active.renderers.rsync import MANAGER_KEY, WORKER_HOST_KEY

PLACEHOLDER = "written by the node at first boot"


@dataclass(frozen=True)
class RsyncChannelProps:
    name_prefix: str
    region: str
    vpc_id: str
    kms_key_arn: str


class RsyncChannel(Construct):
    def __init__(self, scope: Construct, id_: str, props: RsyncChannelProps) -> None:
        super().__init__(scope, id_)
        self._prefix = props.name_prefix
        sender = self._group("sender", "node 1: pushes artifacts to node 2 over SSH", props.vpc_id)
        receiver = self._group("receiver", "node 2: receives the pushes of node 1 over SSH", props.vpc_id)
        self._rule("ssh_to_receiver", "egress", sender.id, receiver.id, "SSH (rsync) to node 2")
        self._rule("ssh_from_sender", "ingress", receiver.id, sender.id, "SSH (rsync) from node 1")
        parameters = [
            aws.ssm_parameter.SsmParameter(
                self,
                what.replace("-", "_"),
                name=rsync_parameter(props.name_prefix, what),
                description=description,
                type="SecureString",
                key_id=props.kms_key_arn,
                value=PLACEHOLDER,
                lifecycle=TerraformResourceLifecycle(ignore_changes=["value"]),
            )
            for what, description in (
                (MANAGER_KEY, "Public SSH key node 1 pushes with (node 2 allows it rsync only)"),
                (WORKER_HOST_KEY, "SSH host key of node 2 (node 1 pins it)"),
            )
        ]
        self._arns = [parameter.arn for parameter in parameters]
        self._region = props.region
        self.sender_group_id: str = sender.id
        self.receiver_group_id: str = receiver.id

    def statements(self, key_arn: str) -> list[dict]:
        """For the node role: read and write the two parameters, and encrypt with the stack key only through SSM."""
        return [
            {"Sid": "HandOverPublicKeys", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:PutParameter"], "Resource": self._arns},
            {
                "Sid": "EncryptKeyParameters",
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"ssm.{self._region}.amazonaws.com"}},
            },
        ]

    def _group(self, id_: str, description: str, vpc_id: str) -> aws.security_group.SecurityGroup:
        name = resource_name(self._prefix, f"rsync-{id_}")
        return aws.security_group.SecurityGroup(
            self,
            id_,
            name=name,
            description=f"WSO2 API-M {description}",
            vpc_id=vpc_id,
            tags={"Name": name},
        )

    def _rule(self, id_: str, direction: str, group_id: str, peer_group_id: str, description: str) -> None:
        tcp_rule(self, id_, group_id, direction, ports.SSH, description, peer_group=peer_group_id)
