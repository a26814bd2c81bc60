"""scripts/preflight.py, verify.py and status.py on the gateway scale-out group, against moto in-process: a group made
as the stack makes it (launch template, both subnets, the gateway and websocket target groups, the launch and
termination hooks), then each fault the scripts must name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from apim_active_active import names
from apim_active_active.settings import Settings, parse_settings
from scripts import gateway_group, preflight, status, verify
from scripts.ops import Aws
from tests.conftest import local_settings_dict

REGION, ZONES = "us-east-1", ("us-east-1a", "us-east-1b")
PREFIX = "apim-local"
GROUP = names.gateway_group_name(PREFIX)


def settings_of(**apim: str) -> Settings:
    data = local_settings_dict()
    data["apim"] |= apim
    if apim.get("version", "4.3.0") >= "4.5":
        data["gateway_scale_out"]["archive_url"] = f"s3://apim-local-artifacts/wso2am-universal-gw-{apim['version']}.zip"
    return parse_settings(data, environ={})


def aws_of(settings: Settings) -> Aws:
    aws = Aws(settings)
    aws.endpoint = None  # moto in-process answers AWS's own endpoints
    return aws


@pytest.fixture()
def moto(monkeypatch):
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


@pytest.fixture()
def deployed(moto) -> dict:
    """The group as the stack makes it, with one node per zone (min 1 and max 2 as local.toml), and the outputs."""
    ec2, elb = boto3.client("ec2", REGION), boto3.client("elbv2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for n, z in ((1, ZONES[0]), (2, ZONES[1]))
    ]
    image = "ami-0123456789abcdef0"  # moto launches from any id
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{PREFIX}-gateway", LaunchTemplateData={"ImageId": image, "InstanceType": "c6i.large"}
    )
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    groups = {
        route: elb.create_target_group(Name=f"{PREFIX}-{route[:4]}", Protocol="HTTPS", Port=port, VpcId=vpc, TargetType="instance")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for route, port in (("management", 9443), ("gateway", 8243), ("websocket", 8099))
    }
    autoscaling = boto3.client("autoscaling", REGION)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(subnets),
        TargetGroupARNs=[groups["gateway"], groups["websocket"]],
        HealthCheckType="ELB",
    )
    autoscaling.put_lifecycle_hook(
        LifecycleHookName=names.gateway_ready_hook_name(PREFIX),
        AutoScalingGroupName=GROUP,
        LifecycleTransition=names.LAUNCHING,
        HeartbeatTimeout=1800,
        DefaultResult="ABANDON",
    )
    autoscaling.put_lifecycle_hook(
        LifecycleHookName=names.gateway_lifecycle_hook_name(PREFIX),
        AutoScalingGroupName=GROUP,
        LifecycleTransition=names.TERMINATING,
        HeartbeatTimeout=120,
        DefaultResult="CONTINUE",
    )
    return {
        names.OUTPUT_GATEWAY_GROUP: GROUP,
        names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE: template_id,
        names.OUTPUT_TARGET_GROUPS: groups,
    }


def checks(outputs: dict, settings: Settings | None = None) -> dict[str, verify.Result]:
    settings = settings or settings_of()
    return {r.check: r for r in verify.gateway_checks(aws_of(settings), settings, outputs)}


def instance_ids() -> list[str]:
    (group,) = boto3.client("autoscaling", REGION).describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return sorted(i["InstanceId"] for i in group["Instances"])


# verify -------------------------------------------------------------------------------------------------------------
def test_verify_passes_a_group_as_the_settings_give_it(deployed):
    results = checks(deployed)
    assert {c: r.status for c, r in results.items()} == {
        verify.GATEWAY_GROUP_CHECK: "pass",
        verify.GATEWAY_TEMPLATE_CHECK: "pass",
        verify.GATEWAY_ACTIVITY_CHECK: "pass",
        verify.GATEWAY_NODES_CHECK: "pass",
        verify.GATEWAY_TARGETS_CHECK: "pass",
    }, results
    assert results[verify.GATEWAY_NODES_CHECK].detail.startswith("2 InService in us-east-1")  # moto fills one zone first
    assert results[verify.GATEWAY_GROUP_CHECK].detail == (
        f"{GROUP}: min 1, max 2, desired 2, hooks {PREFIX}-gateway-ready, {PREFIX}-gateway-drain"
    )
    assert results[verify.GATEWAY_ACTIVITY_CHECK].detail == "none failed in the last hour"  # moto lists none


def test_verify_names_sizes_that_differ_from_the_settings_and_a_missing_hook(deployed):
    autoscaling = boto3.client("autoscaling", REGION)
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=3)
    autoscaling.delete_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=names.gateway_lifecycle_hook_name(PREFIX))
    result = checks(deployed)[verify.GATEWAY_GROUP_CHECK]
    assert result.status == "fail"
    assert result.detail == (
        "max_size 3, gateway_scale_out.max_size says 2; "
        f"no lifecycle hook {PREFIX}-gateway-drain: a scale-in would not wait for API-M to stop"
    )


def test_verify_names_a_missing_launch_hook_and_one_not_as_set(deployed):
    autoscaling = boto3.client("autoscaling", REGION)
    autoscaling.delete_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=names.gateway_ready_hook_name(PREFIX))
    result = checks(deployed)[verify.GATEWAY_GROUP_CHECK]
    assert result.status == "fail"
    assert result.detail == f"no lifecycle hook {PREFIX}-gateway-ready: a new node would join the target groups before it is ready"
    autoscaling.put_lifecycle_hook(
        LifecycleHookName=names.gateway_ready_hook_name(PREFIX),
        AutoScalingGroupName=GROUP,
        LifecycleTransition=names.LAUNCHING,
        HeartbeatTimeout=1800,
        DefaultResult="CONTINUE",  # a node never ready would serve
    )
    result = checks(deployed)[verify.GATEWAY_GROUP_CHECK]
    assert result.status == "fail"
    assert result.detail == (
        f"lifecycle hook {PREFIX}-gateway-ready on {names.LAUNCHING} with 1800 s, then CONTINUE; not on "
        f"{names.LAUNCHING} with gateway_scale_out.ready_seconds 1800, then ABANDON"
    )


def test_verify_says_an_instance_refresh_is_pending_when_the_template_moved_on(deployed):
    template = deployed[names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE]
    boto3.client("ec2", REGION).create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData={"InstanceType": "c6i.xlarge"})
    result = checks(deployed)[verify.GATEWAY_TEMPLATE_CHECK]
    assert result.status == "fail"
    assert f"the group launches version 1 of {template}, the latest is 2: an instance refresh is pending" in result.detail


def test_verify_says_a_refresh_is_pending_or_under_way_while_nodes_run_an_older_version():
    node = {"InstanceId": "i-1", "AvailabilityZone": ZONES[0], "LifecycleState": "InService", "HealthStatus": "Healthy"}
    nodes = ({**node, "LaunchTemplate": {"Version": "1"}}, {**node, "InstanceId": "i-2", "LaunchTemplate": {"Version": "$Latest"}})
    group = gateway_group.Group(GROUP, 1, 2, 2, "lt-1", 2, 2, 2, nodes, None, None)
    result = verify.group_template(group, {names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE: "lt-1"})
    assert result.status == "fail"
    assert (
        result.detail
        == "i-1 on another version than the group's 2: an instance refresh is pending or under way (scripts/status.py shows it)"
    )


def test_verify_names_a_group_on_another_launch_template(deployed):
    result = checks({**deployed, names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE: "lt-0123456789abcdef0"})[verify.GATEWAY_TEMPLATE_CHECK]
    assert result.status == "fail" and "the stack's launch template is lt-0123456789abcdef0" in result.detail


def test_verify_fails_on_an_unhealthy_node_and_one_out_of_its_target_groups(deployed):
    first, second = instance_ids()
    boto3.client("autoscaling", REGION).set_instance_health(InstanceId=first, HealthStatus="Unhealthy")
    boto3.client("elbv2", REGION).deregister_targets(
        TargetGroupArn=deployed[names.OUTPUT_TARGET_GROUPS]["websocket"], Targets=[{"Id": second}]
    )
    results = checks(deployed)
    nodes, targets = results[verify.GATEWAY_NODES_CHECK], results[verify.GATEWAY_TARGETS_CHECK]
    assert nodes.status == "fail" and f"{first} (" in nodes.detail and "InService, Unhealthy" in nodes.detail
    assert targets.status == "fail" and f"websocket: {second} not registered" in targets.detail


def test_verify_fails_on_a_gateway_node_in_the_management_target_group(deployed):
    first, _ = instance_ids()
    boto3.client("elbv2", REGION).register_targets(
        TargetGroupArn=deployed[names.OUTPUT_TARGET_GROUPS]["management"], Targets=[{"Id": first}]
    )
    result = checks(deployed)[verify.GATEWAY_TARGETS_CHECK]
    assert result.status == "fail" and result.detail == f"management: {first} registered (the pair's only)"


def test_verify_fails_on_fewer_nodes_in_service_than_min_size(deployed):
    ids = instance_ids()
    boto3.client("autoscaling", REGION).enter_standby(InstanceIds=ids, AutoScalingGroupName=GROUP, ShouldDecrementDesiredCapacity=True)
    results = checks(deployed)
    nodes = results[verify.GATEWAY_NODES_CHECK]
    assert nodes.status == "fail" and nodes.detail.endswith("0 InService, fewer than min_size 1")
    assert all(f"{i} (" in nodes.detail for i in ids) and "Standby" in nodes.detail
    assert results[verify.GATEWAY_TARGETS_CHECK].status == "skip"


def test_verify_fails_clearly_without_the_group_or_its_output(deployed):
    autoscaling = boto3.client("autoscaling", REGION)
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    (result,) = checks(deployed).values()
    assert result.status == "fail" and result.detail == f"no Auto Scaling group {GROUP}"
    with pytest.raises(KeyError, match="deploy with \\[gateway_scale_out\\] set"):
        gateway_group.group_name({})


# status -------------------------------------------------------------------------------------------------------------
def rows_of(outputs: dict, settings: Settings) -> list[status.Row]:
    return status.gateway_rows(aws_of(settings), settings, outputs)


def test_status_shows_the_group_each_node_and_says_the_emulator_has_no_instance_refreshes(deployed):
    rows = rows_of(deployed, settings_of())
    group, ready, drain, *nodes, activity, refresh = rows
    assert (group.part, group.what, group.state, group.ok) == ("gateway group", GROUP, "2 desired", True)
    assert group.detail.startswith("min 1, max 2, 2 InService; launch template lt-") and group.detail.endswith("version 1 (latest 1)")
    assert (ready.what, ready.state, ready.detail, ready.ok) == ("launch hook", "present", "1800 s, then ABANDON", True)
    assert (drain.what, drain.state, drain.detail, drain.ok) == ("termination hook", "present", "120 s, then CONTINUE", True)
    assert (activity.what, activity.state, activity.detail, activity.ok) == ("scaling activity", "none failed", "in the last hour", True)
    assert [(n.part, n.state, n.ok) for n in nodes] == [("gateway node", "InService", True)] * 2
    assert all(n.detail.endswith(", Healthy, launch template version 1; gateway healthy, websocket healthy") for n in nodes)
    assert all(n.detail.startswith("us-east-1") for n in nodes)
    assert (refresh.what, refresh.state, refresh.ok) == ("instance refresh", "unknown", True)
    assert refresh.detail == "the emulator (moto) has no DescribeInstanceRefreshes"


def test_status_on_aws_does_not_hide_an_instance_refresh_it_cannot_read(deployed):
    with pytest.raises(NotImplementedError):
        rows_of(deployed, settings_of().model_copy(update={"emulator": None}))


def test_status_marks_a_node_out_of_a_target_group(deployed):
    first, second = instance_ids()
    boto3.client("elbv2", REGION).deregister_targets(
        TargetGroupArn=deployed[names.OUTPUT_TARGET_GROUPS]["gateway"], Targets=[{"Id": first}]
    )
    rows = {r.what: r for r in rows_of(deployed, settings_of())}
    assert not rows[first].ok and "gateway not registered, websocket healthy" in rows[first].detail
    assert rows[second].ok


def test_status_marks_a_missing_launch_hook(deployed):
    boto3.client("autoscaling", REGION).delete_lifecycle_hook(
        AutoScalingGroupName=GROUP, LifecycleHookName=names.gateway_ready_hook_name(PREFIX)
    )
    (ready,) = [r for r in rows_of(deployed, settings_of()) if r.what == "launch hook"]
    assert (ready.state, ready.detail, ready.ok) == ("missing", "a new node would join the target groups before it is ready", False)


def test_status_leaves_a_node_on_its_way_in_unmarked():
    group = gateway_group.Group(GROUP, 1, 2, 1, "lt-1", 1, 1, 1, (), None, None)
    booting = {"InstanceId": "i-3", "AvailabilityZone": ZONES[1], "LifecycleState": "Pending:Wait", "HealthStatus": "Healthy"}
    row = status.gateway_node_row(group, {**booting, "LaunchTemplate": {"Version": "1"}}, {})
    assert (row.state, row.ok) == ("Pending:Wait", True)
    assert row.detail.endswith("gateway not registered, websocket not registered (out of the target groups until it is ready)")


def test_status_leaves_a_node_on_its_way_out_unmarked_and_shows_one_on_an_older_version():
    group = gateway_group.Group(GROUP, 1, 2, 1, "lt-1", 2, 2, 1, (), None, None)
    leaving = {"InstanceId": "i-1", "AvailabilityZone": ZONES[0], "LifecycleState": "Terminating:Wait", "HealthStatus": "Healthy"}
    older = {**leaving, "InstanceId": "i-2", "LifecycleState": "InService", "LaunchTemplate": {"Version": "1"}}
    states = {"gateway": {"i-2": {"State": "healthy"}}, "websocket": {"i-2": {"State": "healthy"}}}
    row = status.gateway_node_row(group, leaving, states)
    assert (row.state, row.ok) == ("Terminating:Wait", True) and row.detail.endswith("gateway not registered, websocket not registered")
    row = status.gateway_node_row(group, older, states)
    assert row.ok and "launch template version 1 (the group's is 2)" in row.detail


class RefreshesStandIn:
    """STAND-IN for Auto Scaling's describe_instance_refreshes (moto 5.2 has none): the refreshes it is given."""

    def __init__(self, refreshes: list[dict]) -> None:
        self.refreshes = refreshes

    def client(self, service: str):
        assert service == "autoscaling"
        return self

    def describe_instance_refreshes(self, AutoScalingGroupName, MaxRecords):  # noqa: N803
        return {"InstanceRefreshes": self.refreshes[:MaxRecords]}


STARTED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


class ActivitiesStandIn:
    """STAND-IN for Auto Scaling's describe_scaling_activities (moto 5.2 lists none): the activities it is given,
    newest first as AWS lists them."""

    def __init__(self, activities: list[dict]) -> None:
        self.activities = activities

    def client(self, service: str):
        assert service == "autoscaling"
        return self

    def describe_scaling_activities(self, AutoScalingGroupName, MaxRecords):  # noqa: N803
        assert AutoScalingGroupName == GROUP
        return {"Activities": self.activities[:MaxRecords]}


ABANDONED = "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token 1 was abandoned: Heartbeat Timeout"
KMS_REFUSED = (
    "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: "
    "Client.InternalError: Client error on launch"
)


def activity(minutes_ago: int, code: str, message: str = "") -> dict:
    return {
        "ActivityId": f"a-{minutes_ago}",
        "AutoScalingGroupName": GROUP,
        "Description": "Launching a new EC2 instance" + (": i-0abc" if code == "Successful" else ".  Status Reason: " + message),
        "StartTime": STARTED - timedelta(minutes=minutes_ago),
        "StatusCode": code,
        **({"StatusMessage": message} if message else {}),
    }


NODE = {"InstanceId": "i-1", "AvailabilityZone": ZONES[0], "LifecycleState": "InService", "HealthStatus": "Healthy"}


@pytest.mark.parametrize(
    "activities, nodes, found, made_good",
    [
        ([], (NODE,), None, False),
        ([activity(5, "Successful"), activity(90, "Failed", KMS_REFUSED)], (NODE,), None, False),  # older than an hour
        ([activity(5, "Failed", KMS_REFUSED), activity(20, "Cancelled", ABANDONED)], (), "a-5", False),  # the newest
        ([activity(5, "Successful"), activity(20, "Cancelled", ABANDONED)], (), "a-20", False),  # never ready
        ([activity(5, "Successful"), activity(20, "Failed", KMS_REFUSED)], (NODE,), "a-20", True),  # retried, at size
        ([activity(5, "Successful"), activity(20, "Failed", KMS_REFUSED)], (), "a-20", False),  # below its desired size
    ],
)
def test_the_newest_failed_scaling_activity_of_the_last_hour_and_whether_it_was_made_good(activities, nodes, found, made_good):
    group = gateway_group.Group(GROUP, 1, 2, 1, "lt-1", 1, 1, 1, nodes, None, None)
    failed, good = gateway_group.failed_activity(ActivitiesStandIn(activities), group, now=STARTED)  # type: ignore[arg-type]
    assert (failed and failed["ActivityId"], good) == (found, made_good)


def test_verify_fails_and_status_marks_a_failed_launch_with_aws_reason():
    failed = activity(5, "Failed", KMS_REFUSED)
    said = f"Failed at 2025-05-01T11:55:00Z: Launching a new EC2 instance: {KMS_REFUSED}"
    result = verify.group_activities(failed, False)
    assert (result.check, result.status, result.detail) == (verify.GATEWAY_ACTIVITY_CHECK, "fail", said)
    row = status.activity_row(failed, False)
    assert (row.what, row.state, row.detail, row.ok) == ("scaling activity", "Failed", said, False)
    result, row = verify.group_activities(failed, True), status.activity_row(failed, True)
    assert result.status == "pass" and row.ok
    assert result.detail.endswith("since then one succeeded and the group is at its desired size") and row.detail == result.detail


@pytest.mark.parametrize(
    "refreshes, state, detail, ok",
    [
        ([], "none", "", True),
        (
            [{"Status": "InProgress", "PercentageComplete": 50, "InstancesToUpdate": 1, "StartTime": STARTED}],
            "InProgress",
            "started 2025-05-01T12:00:00Z, 50% done, 1 node(s) to replace",
            True,
        ),
        (
            [{"Status": "Failed", "PercentageComplete": 0, "InstancesToUpdate": 2, "StartTime": STARTED, "StatusReason": "health checks"}],
            "Failed",
            "started 2025-05-01T12:00:00Z, 0% done, 2 node(s) to replace: health checks",
            False,
        ),
    ],
)
def test_status_shows_the_latest_instance_refresh(refreshes, state, detail, ok):
    row = status.refresh_row(RefreshesStandIn(refreshes), settings_of(), GROUP)  # type: ignore[arg-type]
    assert (row.what, row.state, row.detail, row.ok) == ("instance refresh", state, detail, ok)


# pre-flight ---------------------------------------------------------------------------------------------------------
def test_preflight_checks_the_gateway_instance_type_and_skips_the_archive_up_to_4_4(moto):
    settings = settings_of()
    found = {r.check: r for r in preflight.gateway_group(aws_of(settings), settings)}
    assert found["gateway instance type c6i.large offered in both zones"].status == "pass"
    assert found["gateway archive in S3"].status == "skip" and "the pair's pack" in found["gateway archive in S3"].detail


def test_preflight_names_a_missing_universal_gateway_pack(moto):
    settings = settings_of(version="4.5.0", archive_url="s3://apim-local-artifacts/wso2am-4.5.0.zip")
    s3 = boto3.client("s3", REGION)
    s3.create_bucket(Bucket="apim-local-artifacts")
    result = {r.check: r for r in preflight.gateway_group(aws_of(settings), settings)}["gateway archive in S3"]
    assert result.status == "fail"
    assert result.detail.startswith("gateway_scale_out.archive_url s3://apim-local-artifacts/wso2am-universal-gw-4.5.0.zip: ")
    s3.put_object(Bucket="apim-local-artifacts", Key="wso2am-universal-gw-4.5.0.zip", Body=b"PK")
    result = {r.check: r for r in preflight.gateway_group(aws_of(settings), settings)}["gateway archive in S3"]
    assert result.status == "pass"


def test_preflight_names_a_gateway_instance_type_a_zone_lacks(moto):
    data = local_settings_dict()
    data["gateway_scale_out"]["instance_type"] = "vt1.3xlarge"
    settings = parse_settings(data, environ={})
    result = preflight.gateway_group(aws_of(settings), settings)[0]
    assert (result.check, result.status, result.detail) == (
        "gateway instance type vt1.3xlarge offered in both zones",
        "fail",
        "not offered in us-east-1b",
    )


def test_preflight_names_the_missing_auto_scaling_role_and_how_to_make_it(moto):
    """The stack key's policy names EC2 Auto Scaling's service-linked role (constructs/encryption.py): KMS refuses a
    policy naming a role that does not exist."""
    settings = settings_of()
    check = "EC2 Auto Scaling's service-linked role exists"
    result = {r.check: r for r in preflight.gateway_group(aws_of(settings), settings)}[check]
    assert result.status == "fail" and "aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com" in result.detail
    boto3.client("iam", REGION).create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    assert {r.check: r for r in preflight.gateway_group(aws_of(settings), settings)}[check].status == "pass"
