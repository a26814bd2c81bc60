"""The one place that loads the AWS provider bindings (cdktf_cdktf_provider_aws).

The package's own __init__ eagerly imports all ~2,100 resource modules (12-20 s here). We register
the package without running that __init__ and import only the submodules the stack uses. The
synthesized output is identical (`make bench` compares it against a stock import).
Set APIM_STOCK_PROVIDER_IMPORT=1 to load the package the stock way.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

PACKAGE = "cdktf_cdktf_provider_aws"
STOCK_IMPORT_ENV = "APIM_STOCK_PROVIDER_IMPORT"


def _register_bare_package() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed (run `make install`)")
    # module_from_spec sets __path__ but does not execute __init__.py.
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


if os.environ.get(STOCK_IMPORT_ENV) == "1":
    importlib.import_module(PACKAGE)
else:
    _register_bare_package()

if TYPE_CHECKING:  # the same submodules, for the type checker
    from cdktf_cdktf_provider_aws import (
        autoscaling_group,
        autoscaling_lifecycle_hook,
        autoscaling_policy,
        backup_plan,
        backup_selection,
        backup_vault,
        backup_vault_lock_configuration,
        cloudwatch_dashboard,
        cloudwatch_log_group,
        cloudwatch_log_metric_filter,
        cloudwatch_metric_alarm,
        data_aws_acm_certificate,
        data_aws_caller_identity,
        data_aws_route53_zone,
        data_aws_ssm_parameter,
        db_instance,
        db_parameter_group,
        db_subnet_group,
        default_security_group,
        ec2_subnet_cidr_reservation,
        efs_backup_policy,
        efs_file_system,
        efs_file_system_policy,
        efs_mount_target,
        flow_log,
        iam_instance_profile,
        iam_role,
        iam_role_policy,
        iam_role_policy_attachment,
        instance,
        internet_gateway,
        kms_alias,
        kms_key,
        launch_template,
        lb,
        lb_listener,
        lb_listener_rule,
        lb_target_group,
        lb_target_group_attachment,
        provider,
        route,
        route53_record,
        route_table,
        route_table_association,
        s3_bucket,
        s3_bucket_lifecycle_configuration,
        s3_bucket_ownership_controls,
        s3_bucket_policy,
        s3_bucket_public_access_block,
        s3_bucket_server_side_encryption_configuration,
        s3_bucket_versioning,
        s3_object,
        secretsmanager_secret,
        security_group,
        security_group_rule,
        sns_topic,
        sns_topic_policy,
        sns_topic_subscription,
        ssm_parameter,
        subnet,
        vpc,
        vpc_endpoint,
        wafv2_web_acl_association,
    )
else:
    provider = _load("provider")
    vpc = _load("vpc")
    subnet = _load("subnet")
    route_table = _load("route_table")
    route_table_association = _load("route_table_association")
    vpc_endpoint = _load("vpc_endpoint")
    security_group = _load("security_group")
    security_group_rule = _load("security_group_rule")
    efs_file_system = _load("efs_file_system")
    efs_mount_target = _load("efs_mount_target")
    efs_backup_policy = _load("efs_backup_policy")
    iam_role = _load("iam_role")
    iam_role_policy = _load("iam_role_policy")
    iam_role_policy_attachment = _load("iam_role_policy_attachment")
    iam_instance_profile = _load("iam_instance_profile")
    instance = _load("instance")
    data_aws_ssm_parameter = _load("data_aws_ssm_parameter")
    data_aws_caller_identity = _load("data_aws_caller_identity")
    kms_key = _load("kms_key")
    kms_alias = _load("kms_alias")
    efs_file_system_policy = _load("efs_file_system_policy")
    default_security_group = _load("default_security_group")
    flow_log = _load("flow_log")
    cloudwatch_log_group = _load("cloudwatch_log_group")
    db_instance = _load("db_instance")
    db_subnet_group = _load("db_subnet_group")
    db_parameter_group = _load("db_parameter_group")
    ec2_subnet_cidr_reservation = _load("ec2_subnet_cidr_reservation")
    secretsmanager_secret = _load("secretsmanager_secret")
    internet_gateway = _load("internet_gateway")
    route = _load("route")
    lb = _load("lb")
    lb_listener = _load("lb_listener")
    lb_listener_rule = _load("lb_listener_rule")
    lb_target_group = _load("lb_target_group")
    lb_target_group_attachment = _load("lb_target_group_attachment")
    data_aws_acm_certificate = _load("data_aws_acm_certificate")
    data_aws_route53_zone = _load("data_aws_route53_zone")
    route53_record = _load("route53_record")
    wafv2_web_acl_association = _load("wafv2_web_acl_association")
    ssm_parameter = _load("ssm_parameter")
    cloudwatch_dashboard = _load("cloudwatch_dashboard")
    cloudwatch_log_metric_filter = _load("cloudwatch_log_metric_filter")
    cloudwatch_metric_alarm = _load("cloudwatch_metric_alarm")
    sns_topic = _load("sns_topic")
    sns_topic_policy = _load("sns_topic_policy")
    sns_topic_subscription = _load("sns_topic_subscription")
    backup_vault = _load("backup_vault")
    backup_vault_lock_configuration = _load("backup_vault_lock_configuration")
    backup_plan = _load("backup_plan")
    backup_selection = _load("backup_selection")
    launch_template = _load("launch_template")
    autoscaling_group = _load("autoscaling_group")
    autoscaling_lifecycle_hook = _load("autoscaling_lifecycle_hook")
    autoscaling_policy = _load("autoscaling_policy")
    s3_bucket = _load("s3_bucket")
    s3_bucket_lifecycle_configuration = _load("s3_bucket_lifecycle_configuration")
    s3_bucket_ownership_controls = _load("s3_bucket_ownership_controls")
    s3_bucket_policy = _load("s3_bucket_policy")
    s3_bucket_public_access_block = _load("s3_bucket_public_access_block")
    s3_bucket_server_side_encryption_configuration = _load("s3_bucket_server_side_encryption_configuration")
    s3_bucket_versioning = _load("s3_bucket_versioning")
    s3_object = _load("s3_object")
