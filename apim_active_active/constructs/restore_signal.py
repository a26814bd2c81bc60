"""The restored share's signal: an SSM parameter, "waiting" until scripts/restore.py has put the source's recovery point
into this environment's file system and set it to "restored". The restored nodes wait for it before they seed
(docs/backup-and-restore.md). Terraform leaves its value alone after creating it. A SecureString under the stack's key,
as every parameter of the stack (nothing secret in it, but checkov's CKV2_AWS_34 holds for all of them alike); the
nodes read it with the stack key's kms:Decrypt they have anyway.
Exposes: name, arn.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import restore_share_parameter

WAITING = "waiting"
RESTORED = "restored"
FAILED = "failed"  # the restore job failed: the nodes stop waiting and say so


@dataclass(frozen=True)
class RestoreSignalProps:
    name_prefix: str
    kms_key_arn: str


class RestoreSignal(Construct):
    def __init__(self, scope: Construct, id_: str, props: RestoreSignalProps) -> None:
        super().__init__(scope, id_)
        parameter = aws.ssm_parameter.SsmParameter(
            self,
            "share",
            name=restore_share_parameter(props.name_prefix),
            description=f'"{RESTORED}" once scripts/restore.py has restored the share into this environment',
            type="SecureString",
            key_id=props.kms_key_arn,
            value=WAITING,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["value"]),
        )
        self.name: str = parameter.name
        self.arn: str = parameter.arn
