"""The emulator's EC2 Auto Scaling as the gateway scale-out group needs it (scripts/emulator_server.py's fixes of moto
5.2.5), on a moto server of its own: what is made reads back as made (the group made as the provider makes one with
initial lifecycle hooks: at size 0, the hooks put, then sized), and an instance refresh replaces the group's instances
with ones from the launch template's new version."""

from __future__ import annotations

import base64
import gzip

import pytest

from scripts.emulator import free_loopback_url, start
from scripts.local_stack import client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    url = free_loopback_url()
    process = start(url, tmp_path_factory.mktemp("moto-autoscaling"))
    yield url
    process.terminate()
    process.wait(timeout=30)


def _user_data(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


def test_a_group_reads_back_as_made_and_an_instance_refresh_replaces_its_instances(emulator):
    ec2, autoscaling, elb = client("ec2", emulator), client("autoscaling", emulator), client("elbv2", emulator)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    (target_group,) = elb.create_target_group(Name="gw", Protocol="HTTPS", Port=8243, VpcId=vpc, TargetType="instance")["TargetGroups"]
    template = ec2.create_launch_template(
        LaunchTemplateName="gateway",
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "c6i.large",
            "UserData": _user_data("#cloud-config\n# one\n"),
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": [{"Key": "Name", "Value": "gateway"}]} for kind in ("volume", "network-interface")
            ],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "Name", "Value": "gateway"}]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    (first,) = ec2.describe_launch_template_versions(LaunchTemplateId=template)["LaunchTemplateVersions"]
    kinds = [s["ResourceType"] for s in first["LaunchTemplateData"]["TagSpecifications"]]
    assert kinds == ["volume", "network-interface"], "its own tags stay its own"

    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="gateways",
        MinSize=0,
        MaxSize=0,
        VPCZoneIdentifier=subnet,
        DefaultInstanceWarmup=900,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        TargetGroupARNs=[target_group["TargetGroupArn"]],
    )
    for name, transition, seconds, result in (
        ("ready", "autoscaling:EC2_INSTANCE_LAUNCHING", 1800, "ABANDON"),
        ("drain", "autoscaling:EC2_INSTANCE_TERMINATING", 120, "CONTINUE"),
    ):
        autoscaling.put_lifecycle_hook(
            LifecycleHookName=name,
            AutoScalingGroupName="gateways",
            LifecycleTransition=transition,
            HeartbeatTimeout=seconds,
            DefaultResult=result,
        )
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="gateways", MinSize=1, MaxSize=2)
    autoscaling.put_scaling_policy(
        AutoScalingGroupName="gateways",
        PolicyName="cpu",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 60,
        },
    )
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["gateways"])["AutoScalingGroups"]
    assert group["DefaultInstanceWarmup"] == 900
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="gateways")["LifecycleHooks"]
    assert sorted((h["LifecycleHookName"], h["HeartbeatTimeout"], h["DefaultResult"]) for h in hooks) == [
        ("drain", 120, "CONTINUE"),
        ("ready", 1800, "ABANDON"),
    ]
    assert not [h for h in hooks if "RoleARN" in h or "NotificationTargetARN" in h]
    (policy,) = autoscaling.describe_policies(AutoScalingGroupName="gateways")["ScalingPolicies"]
    assert policy["Enabled"] is True and "PredictiveScalingConfiguration" not in policy
    (old,) = [i["InstanceId"] for i in group["Instances"]]
    # moto holds no node in Pending:Wait (docs/local-emulator.md); what a gateway node's watch reads of itself:
    (seen,) = autoscaling.describe_auto_scaling_instances(InstanceIds=[old])["AutoScalingInstances"]
    assert (seen["AutoScalingGroupName"], seen["LifecycleState"]) == ("gateways", "InService")
    assert autoscaling.describe_scaling_activities(AutoScalingGroupName="gateways")["Activities"] == []

    ec2.create_launch_template_version(
        LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={"UserData": _user_data("#cloud-config\n# two\n")}
    )
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="gateways", LaunchTemplate={"LaunchTemplateId": template, "Version": "2"})
    refresh_id = autoscaling.start_instance_refresh(AutoScalingGroupName="gateways", Strategy="Rolling")["InstanceRefreshId"]
    (refresh,) = autoscaling.describe_instance_refreshes(AutoScalingGroupName="gateways")["InstanceRefreshes"]
    assert (refresh["InstanceRefreshId"], refresh["Status"]) == (refresh_id, "Successful")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["gateways"])["AutoScalingGroups"]
    (new,) = [i["InstanceId"] for i in group["Instances"]]
    assert new != old
    user_data = ec2.describe_instance_attribute(InstanceId=new, Attribute="userData")["UserData"]["Value"]
    assert gzip.decompress(base64.b64decode(user_data)) == b"#cloud-config\n# two\n"
    (state,) = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=[old])["Reservations"] for i in r["Instances"]]
    assert state == "terminated"
    targets = elb.describe_target_health(TargetGroupArn=target_group["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [t["Target"]["Id"] for t in targets] == [new]
    with pytest.raises(autoscaling.exceptions.ClientError, match="ActiveInstanceRefreshNotFound"):
        autoscaling.cancel_instance_refresh(AutoScalingGroupName="gateways")
