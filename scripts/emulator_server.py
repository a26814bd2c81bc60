"""The local AWS emulator's server: moto's, with what AWS does and moto (5.2.5) does not, where the toolkit relies on
it. Each fix is named here and in docs/local-emulator.md.

- A terminated instance's private address is free at once, as on AWS. moto frees it only when the instance object is
  garbage-collected, which a terminated instance (still listed) never is: a node replaced by scripts/roll.py could not
  take its fixed address back ("IP already in use").
- Each RDS instance has its own resource id (`DbiResourceId`), as on AWS. moto gives every instance the same one, so
  with a second instance in the account (a restore: scripts/restore.py, the rehearsal's restore drill) the AWS
  provider, which finds an instance by that id, finds two and waits for ever.
- The gateway scale-out group (EC2 Auto Scaling), read back as it was made, as on AWS (else every plan shows a change):
  an Auto Scaling group's `DefaultInstanceWarmup` (moto drops it), a lifecycle hook without the notification target
  and role moto makes up, a scaling policy `Enabled` (moto leaves it out) and without an empty predictive scaling
  configuration.
- A launch template's own tags (CreateLaunchTemplate's TagSpecifications, resource type `launch-template`) stay the
  template's: moto also copies them into its first version's data, read back as a tag specification of what it
  launches (every plan then shows a change).
- A new launch template version keeps its user data as the first one does (moto keeps the text as it came, and an
  Auto Scaling group launching from that version fails an assertion: every launch answers 500).
- An instance refresh (`StartInstanceRefresh`, which the provider calls when the launch template has a new version;
  `DescribeInstanceRefreshes`, `CancelInstanceRefresh`): moto has none and answers 500, which the provider retries
  for ever. Here a refresh replaces the group's instances at once (new ones from the launch template, the old ones
  terminated and out of the group's target groups) and is `Successful`.
"""

from __future__ import annotations

import secrets
import string
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.models import FakeScalingPolicy, LifecycleHook
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.models.instances import Instance
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data
from moto.rds.models import DBInstance
from moto.server import main

_terminate = Instance.terminate


def _terminate_and_free_address(self: Instance):  # type: ignore[no-untyped-def]
    state = _terminate(self)
    if self.subnet_id:
        subnet = self.ec2_backend.get_subnet(self.subnet_id)
        for address in list(self._private_ips):
            subnet.del_subnet_ip(address)
    return state


Instance.terminate = _terminate_and_free_address  # type: ignore[method-assign]

_db_instance_init = DBInstance.__init__


def _db_instance_with_own_resource_id(self: DBInstance, *args, **kwargs):  # type: ignore[no-untyped-def]
    _db_instance_init(self, *args, **kwargs)
    self.dbi_resource_id = "db-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(26))


DBInstance.__init__ = _db_instance_with_own_resource_id  # type: ignore[method-assign]

_create_launch_template = LaunchTemplates.create_launch_template


def _launch_template_tags_its_own(self: LaunchTemplates) -> ActionResult:
    result = _create_launch_template(self)
    template = self.ec2_backend.get_launch_template(result.result["LaunchTemplate"]["LaunchTemplateId"])  # type: ignore[index]
    data = template.default_version().data
    kept = [spec for spec in data.get("TagSpecifications", []) if spec["ResourceType"] != "launch-template"]
    if kept:
        data["TagSpecifications"] = kept
    else:
        data.pop("TagSpecifications", None)
    return result


LaunchTemplates.create_launch_template = _launch_template_tags_its_own  # type: ignore[method-assign]

_create_version = LaunchTemplate.create_version


def _version_with_user_data(self: LaunchTemplate, data: dict, description: str):  # type: ignore[no-untyped-def]
    if isinstance(data.get("UserData"), str):
        data = {**data, "UserData": parse_user_data(data["UserData"])}
    return _create_version(self, data, description)


LaunchTemplate.create_version = _version_with_user_data  # type: ignore[method-assign]


# EC2 Auto Scaling ----------------------------------------------------------------------------------------------------
def _keeping_warmup(action: Callable) -> Callable:
    def action_and_warmup(self: AutoScalingResponse):  # type: ignore[no-untyped-def]
        result = action(self)
        warmup = self._get_int_param("DefaultInstanceWarmup")
        if warmup is not None:
            group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
            group.default_instance_warmup = warmup  # type: ignore[attr-defined]
        return result

    return action_and_warmup


AutoScalingResponse.create_auto_scaling_group = _keeping_warmup(AutoScalingResponse.create_auto_scaling_group)  # type: ignore[method-assign]
AutoScalingResponse.update_auto_scaling_group = _keeping_warmup(AutoScalingResponse.update_auto_scaling_group)  # type: ignore[method-assign]

_hook_init = LifecycleHook.__init__


def _hook_as_made(self: LifecycleHook, *args, **kwargs):  # type: ignore[no-untyped-def]
    _hook_init(self, *args, **kwargs)
    self.role_arn = self.notification_target_arn = None  # type: ignore[assignment]


LifecycleHook.__init__ = _hook_as_made  # type: ignore[method-assign]

_policy_init = FakeScalingPolicy.__init__


def _policy_as_made(self: FakeScalingPolicy, *args, **kwargs):  # type: ignore[no-untyped-def]
    _policy_init(self, *args, **kwargs)
    self.enabled = True  # type: ignore[attr-defined]
    self.predictive_scaling_configuration = self.predictive_scaling_configuration or None  # type: ignore[assignment]


FakeScalingPolicy.__init__ = _policy_as_made  # type: ignore[method-assign]


def _start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    backend = self.autoscaling_backend
    group = backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
    old = list(group.instance_states)
    if old:  # the new ones launched first (as with a maximum healthy percentage over 100), then the old terminated
        group.replace_autoscaling_group_instances(len(old), group.get_propagated_tags())
        old_ids = [state.instance.id for state in old]
        backend.ec2_backend.terminate_instances(old_ids)
        backend.elbv2_backend.notify_terminate_instances(old_ids)  # out of the target groups, as on AWS
        group.instance_states = [state for state in group.instance_states if state not in old]
        backend.update_attached_target_groups(group.name)
    now = datetime.now(UTC)
    refresh = {"InstanceRefreshId": str(uuid.uuid4()), "AutoScalingGroupName": group.name, "Status": "Successful",
               "PercentageComplete": 100, "InstancesToUpdate": 0, "StartTime": now, "EndTime": now}  # fmt: skip
    group.instance_refreshes = [refresh, *getattr(group, "instance_refreshes", [])]  # type: ignore[attr-defined]  # newest first
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
    group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
    return ActionResult({"InstanceRefreshes": getattr(group, "instance_refreshes", [])})


def _cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
    raise AutoscalingClientError("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found")


AutoScalingResponse.start_instance_refresh = _start_instance_refresh  # type: ignore[attr-defined]
AutoScalingResponse.describe_instance_refreshes = _describe_instance_refreshes  # type: ignore[attr-defined]
AutoScalingResponse.cancel_instance_refresh = _cancel_instance_refresh  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(main())
