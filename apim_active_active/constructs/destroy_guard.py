"""Destroy guard: `cdktf destroy` stops before deleting anything while a protective setting is on.

A `terraform_data` resource that depends on every other resource of the stack is the first one a
destroy deletes; its destroy-time step fails with apim_active_active.protection.destroy_refusal(), so
Terraform deletes nothing else. The message lives in `input` (updated in place, never replaced), so
lifting the protections with `cdktf deploy` clears it without running the step.
(The AWS provider lifts EC2 termination protection by itself on destroy; this guard is what holds.)
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import DataResource, ITerraformDependable, LocalExecProvisioner
from constructs import Construct

REFUSE = 'if [ -n "$REFUSAL" ]; then echo "$REFUSAL" >&2; exit 1; fi'


@dataclass(frozen=True)
class DestroyGuardProps:
    refusal: str  # apim_active_active.protection.destroy_refusal(): empty when nothing protects the stack
    protected: tuple[ITerraformDependable, ...]  # every resource of the stack


class DestroyGuard(Construct):
    def __init__(self, scope: Construct, id_: str, props: DestroyGuardProps) -> None:
        super().__init__(scope, id_)
        DataResource(
            self,
            "guard",
            input={"refusal": props.refusal},
            depends_on=list(props.protected),
            provisioners=[
                LocalExecProvisioner(
                    type="local-exec",
                    when="destroy",
                    command=REFUSE,
                    environment={"REFUSAL": "${self.input.refusal}"},
                )
            ],
        )
