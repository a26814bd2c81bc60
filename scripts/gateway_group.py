"""The gateway scale-out group as AWS reports it (read-only): what scripts/verify.py checks and scripts/status.py shows
(docs/gateway-scale-out.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apim_active_active import names
from apim_active_active.settings import Settings
from scripts.ops import Aws

# Lifecycle states of a node on its way in: booting, held by the launch hook until it is ready (then InService).
ARRIVING = ("Pending", "Pending:Wait", "Pending:Proceed")
# Lifecycle states of a node on its way out (AWS's LifecycleState values): neither serving nor expected to.
LEAVING = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching", "Detached")
# An instance refresh that ended without every node on the new launch template.
REFRESH_FAULTS = ("Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful")
# A scaling activity that did not do what it set out to (AWS's StatusCode values), and how far back one counts: a
# deploy does not wait for the group's launches (wait_for_capacity_timeout "0"), so a launch refused (a KMS grant, a
# quota, an instance type out of capacity) is seen only here.
ACTIVITY_FAULTS = ("Failed", "Cancelled")
ACTIVITY_WINDOW = timedelta(hours=1)
ACTIVITY_PAGE = 50  # the newest activities read (AWS's most per call is 100)


@dataclass(frozen=True)
class Group:
    name: str
    min_size: int
    max_size: int
    desired: int
    template_id: str | None
    version: int | None  # the launch template version the group launches ($Latest and $Default resolved)
    latest: int | None  # the launch template's latest version
    default: int | None
    instances: tuple[dict, ...]  # describe_auto_scaling_groups' Instances
    ready_hook: dict | None  # the launch lifecycle hook, as described
    drain_hook: dict | None  # the termination lifecycle hook, as described

    def instance_version(self, instance: dict) -> int | None:
        return resolve(instance.get("LaunchTemplate", {}).get("Version"), self.latest, self.default)

    def serving(self) -> list[dict]:
        return [i for i in self.instances if i["LifecycleState"] == "InService"]

    def staying(self) -> list[dict]:
        return [i for i in self.instances if i["LifecycleState"] not in LEAVING]


def resolve(version: str | None, latest: int | None, default: int | None) -> int | None:
    """A launch template version as a number: $Latest and $Default as the template says."""
    if version == "$Latest":
        return latest
    if version == "$Default":
        return default
    return int(version) if version and version.isdigit() else None


def group_name(outputs: dict) -> str:
    if names.OUTPUT_GATEWAY_GROUP not in outputs:
        raise KeyError(f"no {names.OUTPUT_GATEWAY_GROUP} in the outputs: deploy with [gateway_scale_out] set, then write them again")
    return outputs[names.OUTPUT_GATEWAY_GROUP]


def read_group(aws: Aws, settings: Settings, outputs: dict) -> Group | None:
    """The group, its launch template's versions and its lifecycle hooks; None when there is no such group."""
    name, autoscaling = group_name(outputs), aws.client("autoscaling")
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not found:
        return None
    group = found[0]
    template = group.get("LaunchTemplate") or group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification", {}
    )
    template_id, latest, default = template.get("LaunchTemplateId"), None, None
    if template_id:
        described = aws.client("ec2").describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
        latest, default = described["LatestVersionNumber"], described["DefaultVersionNumber"]
    hooks = {h["LifecycleHookName"]: h for h in autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]}
    instances = sorted(group.get("Instances", []), key=lambda i: (i["AvailabilityZone"], i["InstanceId"]))
    return Group(
        name,
        group["MinSize"],
        group["MaxSize"],
        group["DesiredCapacity"],
        template_id,
        resolve(template.get("Version"), latest, default),
        latest,
        default,
        tuple(instances),
        hooks.get(names.gateway_ready_hook_name(settings.name_prefix)),
        hooks.get(names.gateway_lifecycle_hook_name(settings.name_prefix)),
    )


def target_states(aws: Aws, outputs: dict) -> dict[str, dict[str, dict]]:
    """Route -> instance id -> its TargetHealth, for every target group of the load balancer."""
    elb, states = aws.client("elbv2"), {}
    for route, arn in outputs[names.OUTPUT_TARGET_GROUPS].items():
        health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        states[route] = {h["Target"]["Id"]: h["TargetHealth"] for h in health}
    return states


def latest_refresh(aws: Aws, name: str) -> dict | None:
    """The group's newest instance refresh (AWS lists them newest first), or None."""
    found = aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name, MaxRecords=1)["InstanceRefreshes"]
    return found[0] if found else None


def failed_activity(aws: Aws, group: Group, now: datetime | None = None) -> tuple[dict | None, bool]:
    """The group's newest scaling activity that failed or was cancelled within ACTIVITY_WINDOW (AWS lists them newest
    first), or None; and whether it has been made good since: a later activity succeeded (a launch retried and done)
    and the group runs its desired size."""
    since = (now or datetime.now(UTC)) - ACTIVITY_WINDOW
    found = aws.client("autoscaling").describe_scaling_activities(AutoScalingGroupName=group.name, MaxRecords=ACTIVITY_PAGE)
    recent = [a for a in found["Activities"] if a["StartTime"] >= since]
    for newer, activity in enumerate(recent):
        if activity["StatusCode"] in ACTIVITY_FAULTS:
            succeeded = any(a["StatusCode"] == "Successful" for a in recent[:newer])
            return activity, succeeded and len(group.staying()) >= group.desired
    return None, False


def activity_text(activity: dict) -> str:
    """A scaling activity in one line: its state, start, what it set out to do and AWS's reason (its description
    repeats the reason after "Status Reason:")."""
    started = activity["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
    what = activity.get("Description", "-").split("Status Reason:")[0].strip().rstrip(".")
    return f"{activity['StatusCode']} at {started}: {what}: {activity.get('StatusMessage', '-')}"[:400]
