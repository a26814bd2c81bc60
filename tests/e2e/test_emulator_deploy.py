"""`cdktf deploy local` against a moto server: what was built, a no-change plan, bad settings refused."""

from __future__ import annotations

import json
import shlex
import subprocess
import time

import pytest

from apim_active_active import names
from apim_active_active.observability import log_group_name, shipped_logs
from apim_active_active.policy import secret_literals
from apim_active_active.renderers import shared_folders
from apim_active_active.renderers.alarms import boot_log_key, log_metric_filters
from apim_active_active.renderers.boot_script import CONFIG_SOURCE, FSTAB_ENTRIES, Deployed, render_deployment_toml
from apim_active_active.renderers.gateway_toml import render_gateway_toml
from apim_active_active.renderers.gateway_user_data import render_gateway_node_env
from apim_active_active.renderers.node_layout import NODE_ENV
from scripts.show_deployment import user_data, user_data_files
from tests.conftest import ENVIRONMENTS
from tests.e2e.conftest import STACK, aws_env, cdktf, client

pytestmark = pytest.mark.e2e


def test_both_nodes_run_at_their_fixed_addresses_behind_the_peer_group(deployment, emulator, environments):
    outputs, settings = deployment["outputs"], environments[STACK]
    ec2 = client("ec2", emulator)
    reservations = ec2.describe_instances(InstanceIds=outputs[names.OUTPUT_INSTANCE_IDS])["Reservations"]
    instances = sorted((i for r in reservations for i in r["Instances"]), key=lambda i: i["PrivateIpAddress"])
    assert [i["PrivateIpAddress"] for i in instances] == outputs[names.OUTPUT_NODE_IPS] == ["10.0.1.10", "10.0.2.10"]
    assert all(i["State"]["Name"] == "running" for i in instances)
    assert instances[0]["SubnetId"] != instances[1]["SubnetId"]
    assert all(i["MetadataOptions"]["HttpTokens"] == "required" for i in instances)
    # local ignores moto's drift on vpc_security_group_ids; prove the group really is on each node's interface.
    for instance in instances:
        groups = {g["GroupId"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"]}
        assert groups == {outputs[names.OUTPUT_NODE_SG]}
    subnets = ec2.describe_subnets(SubnetIds=[i["SubnetId"] for i in instances])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == list(settings.availability_zones)


def test_peer_rules_reference_the_group_never_a_cidr(deployment, emulator):
    group_id = deployment["outputs"][names.OUTPUT_NODE_SG]
    group = client("ec2", emulator).describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    by_port = {p["FromPort"]: p for p in group["IpPermissions"]}
    lb_group, gateways = deployment["outputs"][names.OUTPUT_LB_SG], deployment["outputs"][names.OUTPUT_GATEWAY_SG]
    for port in (9611, 9711, 5672):
        assert sorted(p["GroupId"] for p in by_port[port]["UserIdGroupPairs"]) == sorted([group_id, gateways])
    assert sorted(p["GroupId"] for p in by_port[9443]["UserIdGroupPairs"]) == sorted([group_id, lb_group, gateways])
    for port in (8243, 8099, 9763):
        assert [p["GroupId"] for p in by_port[port]["UserIdGroupPairs"]] == [lb_group]
    assert all(p["IpRanges"] == [] for p in group["IpPermissions"]), "clients reach the load balancer only"


def test_load_balancer_listeners_targets_and_health_checks(deployment, emulator, environments):
    outputs, settings = deployment["outputs"], environments[STACK]
    elb = client("elbv2", emulator)
    (balancer,) = elb.describe_load_balancers(Names=[f"{settings.name_prefix}-alb"])["LoadBalancers"]
    assert balancer["DNSName"] == outputs[names.OUTPUT_LB_DNS]
    # moto does not report Scheme; the synth tests check `internal` against load_balancer.scheme.
    assert balancer["Type"] == "application"
    assert sorted(z["ZoneName"] for z in balancer["AvailabilityZones"]) == list(settings.availability_zones)
    described = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    listeners = {listener["Port"]: listener for listener in described}
    certificate = client("acm", emulator).list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    (arn,) = [c["CertificateArn"] for c in certificate if c["DomainName"] == settings.load_balancer.certificate_domain]
    assert sorted(listeners) == [80, 443, 8099, 8243]
    for https in (443, 8243, 8099):
        assert (listeners[https]["Protocol"], listeners[https]["SslPolicy"]) == ("HTTPS", settings.load_balancer.ssl_policy)
        assert listeners[https]["Certificates"][0]["CertificateArn"] == arn
    redirect = listeners[80]["DefaultActions"][0]["RedirectConfig"]
    assert (redirect["Protocol"], redirect["Port"], redirect["StatusCode"]) == ("HTTPS", "443", "HTTP_301")
    rules = [r for r in elb.describe_rules(ListenerArn=listeners[443]["ListenerArn"])["Rules"] if not r["IsDefault"]]
    (forbidden,) = rules  # local has no admin_cidrs: the console and admin services answer 403 to everyone
    assert forbidden["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "403"
    assert sorted(forbidden["Conditions"][0]["PathPatternConfig"]["Values"]) == ["/carbon", "/carbon/*", "/services/*"]
    groups = {g["Port"]: g for g in elb.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])["TargetGroups"]}
    assert (groups[9443]["HealthCheckProtocol"], groups[9443]["HealthCheckPort"], groups[9443]["HealthCheckPath"]) == (
        "HTTP",
        "9763",
        "/services/Version",
    )
    assert groups[8243]["HealthCheckPath"] == "/api/am/gateway/v2/server-startup-healthcheck"
    attributes = {
        a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=groups[9443]["TargetGroupArn"])["Attributes"]
    }
    assert (attributes["stickiness.enabled"], attributes["stickiness.type"]) == ("true", "lb_cookie")
    gateways = [i["InstanceId"] for i in _gateway_group(emulator, outputs)["Instances"]]
    for port, group in groups.items():
        targets = elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        expected = outputs[names.OUTPUT_INSTANCE_IDS] + (gateways if port in (8243, 8099) else [])  # the group: not 9443
        assert sorted(t["Target"]["Id"] for t in targets) == sorted(expected), port


def test_public_name_is_an_alias_of_the_load_balancer(deployment, emulator, environments):
    settings, outputs = environments[STACK], deployment["outputs"]
    route53 = client("route53", emulator)
    (zone,) = route53.list_hosted_zones_by_name(DNSName=settings.load_balancer.route53_zone)["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    (alias,) = [r for r in records if r["Type"] == "A" and r["Name"].rstrip(".") == settings.apim.hostname]
    assert alias["AliasTarget"]["DNSName"].rstrip(".").lower() == outputs[names.OUTPUT_LB_DNS].lower()
    assert outputs["publisher_url"] == "https://apim.local.test/publisher"
    assert outputs["gateway_url"] == "https://apim.local.test:8243"


def test_efs_has_a_mount_target_in_each_node_subnet(deployment, emulator):
    outputs = deployment["outputs"]
    efs = client("efs", emulator)
    (file_system,) = efs.describe_file_systems(FileSystemId=outputs[names.OUTPUT_EFS_ID])["FileSystems"]
    assert file_system["Encrypted"] is True and file_system["KmsKeyId"].startswith("arn:aws:kms:")
    targets = efs.describe_mount_targets(FileSystemId=file_system["FileSystemId"])["MountTargets"]
    assert sorted(t["IpAddress"][:7] for t in targets) == ["10.0.1.", "10.0.2."]
    groups = {g for t in targets for g in efs.describe_mount_target_security_groups(MountTargetId=t["MountTargetId"])["SecurityGroups"]}
    assert groups == {outputs[names.OUTPUT_EFS_SG]}


def test_database_private_encrypted_and_generated_secrets_still_without_value(deployment, emulator, environments):
    settings = environments[STACK]
    (instance,) = client("rds", emulator).describe_db_instances(DBInstanceIdentifier=f"{settings.name_prefix}-db")["DBInstances"]
    assert instance["StorageEncrypted"] is True and instance["PubliclyAccessible"] is False
    assert instance["MasterUserSecret"]["SecretArn"]
    secrets = client("secretsmanager", emulator)
    names = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    for name in ("apim-admin", "keystore", "database-app"):
        assert f"{settings.name_prefix}/{name}" in names
        with pytest.raises(secrets.exceptions.ResourceNotFoundException):
            secrets.get_secret_value(SecretId=f"{settings.name_prefix}/{name}")  # generated at first boot only


def test_user_data_read_back_from_the_emulator_is_the_rendered_node_config(deployment, emulator, environments):
    settings, outputs = environments[STACK], deployment["outputs"]
    ec2 = client("ec2", emulator)
    (db,) = client("rds", emulator).describe_db_instances(DBInstanceIdentifier=f"{settings.name_prefix}-db")["DBInstances"]
    for node, instance_id in enumerate(outputs[names.OUTPUT_INSTANCE_IDS]):
        files = user_data_files(ec2, instance_id)
        assert files[CONFIG_SOURCE] == render_deployment_toml(settings, node, db["Endpoint"]["Address"], 3306, outputs[names.OUTPUT_LB_DNS])
        assert "PUBLIC_NAME=apim.local.test\n" in files["/etc/wso2am/node.env"]
        assert f"EFS_DNS={outputs[names.OUTPUT_EFS_DNS]}\n" in files["/etc/wso2am/node.env"]
        assert f"EFS_ID={outputs[names.OUTPUT_EFS_ID]}\n" in files["/etc/wso2am/node.env"]
        assert f"SHARED_FOLDERS='{shared_folders.env_value(settings)}'\n" in files["/etc/wso2am/node.env"]
        assert files[FSTAB_ENTRIES] == shared_folders.render_fstab(settings, outputs[names.OUTPUT_EFS_ID])


def _gateway_group(emulator: str, outputs: dict) -> dict:
    (group,) = client("autoscaling", emulator).describe_auto_scaling_groups(AutoScalingGroupNames=[outputs[names.OUTPUT_GATEWAY_GROUP]])[
        "AutoScalingGroups"
    ]
    return group


def test_the_gateway_group_runs_its_launch_template_behind_its_own_group(deployment, emulator, environments):
    outputs, settings = deployment["outputs"], environments[STACK]
    gateway, prefix = settings.gateway_scale_out, settings.name_prefix
    group = _gateway_group(emulator, outputs)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (gateway.min_size, gateway.max_size, gateway.min_size)
    assert (group["HealthCheckType"], group["HealthCheckGracePeriod"]) == ("ELB", gateway.warmup_seconds)
    assert group["LaunchTemplate"]["LaunchTemplateId"] == outputs[names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE]
    assert "GroupInServiceInstances" in {m["Metric"] for m in group["EnabledMetrics"]}
    assert group["DefaultInstanceWarmup"] == gateway.warmup_seconds
    autoscaling = client("autoscaling", emulator)
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group["AutoScalingGroupName"])["LifecycleHooks"]
    assert sorted((h["LifecycleHookName"], h["LifecycleTransition"], h["HeartbeatTimeout"], h["DefaultResult"]) for h in hooks) == [
        (names.gateway_lifecycle_hook_name(prefix), "autoscaling:EC2_INSTANCE_TERMINATING", gateway.drain_seconds, "CONTINUE"),
        (names.gateway_ready_hook_name(prefix), "autoscaling:EC2_INSTANCE_LAUNCHING", gateway.ready_seconds, "ABANDON"),
    ]
    (policy,) = autoscaling.describe_policies(AutoScalingGroupName=group["AutoScalingGroupName"])["ScalingPolicies"]
    metric = policy["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
    assert (metric, policy["TargetTrackingConfiguration"]["TargetValue"]) == ("ASGAverageCPUUtilization", gateway.target_cpu_percent)

    ec2 = client("ec2", emulator)
    version = ec2.describe_launch_template_versions(LaunchTemplateId=outputs[names.OUTPUT_GATEWAY_LAUNCH_TEMPLATE], Versions=["$Latest"])
    data = version["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    (root,) = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["KmsKeyId"] == _stack_key_arn(emulator, prefix=prefix)
    assert data["SecurityGroupIds"] == [outputs[names.OUTPUT_GATEWAY_SG]]
    instance_ids = [i["InstanceId"] for i in group["Instances"]]
    assert len(instance_ids) == gateway.min_size
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert {i["State"]["Name"] for i in instances} == {"running"}
    assert all({g["GroupId"] for g in i["SecurityGroups"]} == {outputs[names.OUTPUT_GATEWAY_SG]} for i in instances)
    tags = {**names.default_tags(settings, STACK), "Name": f"{prefix}-gateway"}
    assert all({t["Key"]: t["Value"] for t in i["Tags"]}.items() >= tags.items() for i in instances)
    assert {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in data["TagSpecifications"]} == {
        "volume": tags,
        "network-interface": tags,
    }

    rules = ec2.describe_security_groups(GroupIds=[outputs[names.OUTPUT_GATEWAY_SG]])["SecurityGroups"][0]
    ingress = {(p["FromPort"], g["GroupId"]) for p in rules["IpPermissions"] for g in p["UserIdGroupPairs"]}
    assert ingress == {(port, outputs[names.OUTPUT_LB_SG]) for port in (8243, 8099, 9443)}
    assert all(p["IpRanges"] == [] for p in rules["IpPermissions"])
    to_pair = {
        p["FromPort"] for p in rules["IpPermissionsEgress"] for g in p["UserIdGroupPairs"] if g["GroupId"] == outputs[names.OUTPUT_NODE_SG]
    }
    assert to_pair == {9443, 9611, 9711, 5672}


def test_gateway_user_data_read_back_from_the_emulator_is_the_rendered_gateway_config(deployment, emulator, environments):
    """Gzipped by Terraform (base64gzip), unzipped here as cloud-init does: the gateway cloud-config, with what the
    apply made in place of the placeholders, and no secret in it."""
    settings, outputs = environments[STACK], deployment["outputs"]
    ec2, prefix = client("ec2", emulator), settings.name_prefix
    (db,) = client("rds", emulator).describe_db_instances(DBInstanceIdentifier=f"{prefix}-db")["DBInstances"]
    arns = {s["Name"]: s["ARN"] for s in client("secretsmanager", emulator).list_secrets()["SecretList"]}
    deployed = Deployed(
        efs_id="",
        db_host=db["Endpoint"]["Address"],
        db_port=3306,
        db_secret_arn=db["MasterUserSecret"]["SecretArn"],
        admin_secret_arn=arns[f"{prefix}/apim-admin"],
        keystore_secret_arn=arns[f"{prefix}/keystore"],
        lb_dns_name="",  # local names the public name (apim.hostname)
        db_app_secret_arn=arns[f"{prefix}/database-app"],
    )
    for instance in _gateway_group(emulator, outputs)["Instances"]:
        text = user_data(ec2, instance["InstanceId"])
        assert text.startswith("#cloud-config\n") and list(secret_literals(text)) == []
        files = user_data_files(ec2, instance["InstanceId"])
        assert files[CONFIG_SOURCE] == render_gateway_toml(settings, deployed.db_host, deployed.db_port, deployed.lb_dns_name)
        # By value: Terraform puts an ARN where the rendering had a placeholder that needed no quotes (rds!db-...).
        assert _env_values(files[NODE_ENV]) == _env_values(render_gateway_node_env(settings, deployed))


def _env_values(text: str) -> dict[str, str]:
    return {key: " ".join(shlex.split(value)) for key, _, value in (line.partition("=") for line in text.splitlines())}


def test_emulator_holds_the_log_groups_alarms_topic_and_dashboard(deployment, emulator, environments):
    outputs, settings = deployment["outputs"], environments[STACK]
    prefix, key_arn = settings.name_prefix, _stack_key_arn(emulator, prefix=settings.name_prefix)
    groups = client("logs", emulator).describe_log_groups(logGroupNamePrefix=f"/{prefix}/")["logGroups"]
    shipped = {group["logGroupName"]: group for group in groups if group["logGroupName"] in outputs[names.OUTPUT_LOG_GROUPS].values()}
    assert sorted(shipped) == sorted(log_group_name(prefix, log.key) for log in shipped_logs(settings))
    assert {(g["retentionInDays"], g["kmsKeyId"]) for g in shipped.values()} == {(settings.observability.log_retention_days, key_arn)}
    filters = client("logs", emulator).describe_metric_filters(logGroupName=log_group_name(prefix, boot_log_key(settings)))["metricFilters"]
    assert sorted(f["filterName"] for f in filters) == sorted(f.name for f in log_metric_filters(prefix))

    topic_arn = outputs[names.OUTPUT_ALARM_TOPIC]
    attributes = client("sns", emulator).get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == key_arn
    assert "cloudwatch.amazonaws.com" in attributes["Policy"]
    alarms = client("cloudwatch", emulator).describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]
    assert len(alarms) >= 10
    assert all(topic_arn in a["AlarmActions"] and a["OKActions"] == [topic_arn] for a in alarms)
    recover = [a["AlarmName"] for a in alarms if f"arn:aws:automate:{settings.region}:ec2:recover" in a["AlarmActions"]]
    assert sorted(recover) == [f"{prefix}-node-1-system-check", f"{prefix}-node-2-system-check"]
    (heap,) = [a for a in alarms if a["AlarmName"] == f"{prefix}-node-1-heap"]
    assert sorted(m["Id"] for m in heap["Metrics"]) == ["max", "result", "used"]  # the emulator keeps no order

    dashboard = client("cloudwatch", emulator).get_dashboard(DashboardName=outputs[names.OUTPUT_DASHBOARD])
    titles = [w["properties"]["title"] for w in json.loads(dashboard["DashboardBody"])["widgets"]]
    assert "Target health (both nodes, per route)" in titles and "JVM heap (used, max)" in titles


def test_emulator_holds_the_backup_vault_under_the_stack_key_and_both_plans(deployment, emulator, environments):
    """local has no selections (moto 5.2.5's backup backend has no CreateBackupSelection): vault and plans only."""
    outputs, settings = deployment["outputs"], environments[STACK]
    prefix, backup = settings.name_prefix, client("backup", emulator)
    assert outputs[names.OUTPUT_BACKUP_VAULTS] == {"primary": prefix}
    vault = backup.describe_backup_vault(BackupVaultName=prefix)
    assert vault["EncryptionKeyArn"] == _stack_key_arn(emulator, prefix=prefix)
    plan_ids = outputs[names.OUTPUT_BACKUP_PLANS]
    assert sorted(plan_ids) == [f"{prefix}-daily", f"{prefix}-database-continuous"]
    listed = {p["BackupPlanName"]: p["BackupPlanId"] for p in backup.list_backup_plans()["BackupPlansList"]}
    assert {name: listed[name] for name in plan_ids} == plan_ids
    (daily,) = backup.get_backup_plan(BackupPlanId=plan_ids[f"{prefix}-daily"])["BackupPlan"]["Rules"]
    assert (daily["ScheduleExpression"], daily["Lifecycle"]["DeleteAfterDays"], daily["TargetBackupVaultName"]) == (
        settings.backup.schedule,
        settings.backup.retention_days,
        prefix,
    )
    assert "CopyActions" not in daily or daily["CopyActions"] == []
    (continuous,) = backup.get_backup_plan(BackupPlanId=plan_ids[f"{prefix}-database-continuous"])["BackupPlan"]["Rules"]
    assert continuous["EnableContinuousBackup"] is True
    assert continuous["Lifecycle"]["DeleteAfterDays"] == settings.database.backup_retention_days


def _stack_key_arn(emulator: str, prefix: str) -> str:
    return client("kms", emulator).describe_key(KeyId=f"alias/{prefix}")["KeyMetadata"]["Arn"]


def test_second_plan_shows_no_changes(deployment):
    stack_dir = deployment["outdir"] / "stacks" / STACK
    started = time.monotonic()
    result = subprocess.run(
        ["terraform", "plan", "-detailed-exitcode", "-input=false", "-lock=false", "-no-color"],
        cwd=stack_dir,
        env=deployment["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    print(f"\n[timing] terraform plan -detailed-exitcode: {time.monotonic() - started:.1f}s")


def test_bad_settings_stop_cdktf_deploy_before_anything_is_created(emulator, tmp_path):
    bad = tmp_path / "environments"
    bad.mkdir()
    text = (ENVIRONMENTS / "local.toml").read_text().replace('"us-east-1b"', '"us-east-1a"')
    (bad / "local.toml").write_text(text)
    vpcs_before = client("ec2", emulator).describe_vpcs()["Vpcs"]
    env = aws_env(emulator, APIM_ENVIRONMENTS_DIR=str(bad), APIM_STATE_DIR=str(tmp_path / "state"))
    result, _ = cdktf(["deploy", STACK, "--auto-approve", "--skip-provider-lock", "--output", str(tmp_path / "out")], env)
    assert result.returncode != 0
    assert "availability_zones: the same zone twice" in result.stdout + result.stderr
    assert client("ec2", emulator).describe_vpcs()["Vpcs"] == vpcs_before
    assert not (tmp_path / "state").exists()
