"""IAM policy documents as JSON text (pure; no cdktf import)."""

import json


def policy_document(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service (e.g. ec2.amazonaws.com) assume the role."""
    return policy_document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}])


def cloudwatch_agent_statements(log_group_arns: list[str], namespace: str) -> list[dict]:
    """What the CloudWatch agent does with `-m ec2` and a configuration file: write into the stack's log groups
    (their streams: `<group arn>:*`) and publish metrics into one namespace. AWS's CloudWatchAgentServerPolicy
    (AmazonCloudWatch/latest/monitoring/create-iam-roles-for-cloudwatch-agent.html) also grants CreateLogGroup,
    PutRetentionPolicy, DescribeLogGroups (the stack makes the groups and their retention), ec2:DescribeTags and
    DescribeVolumes (only for dimensions from tags or volumes, which the pair does not use) and ssm:GetParameter on
    AmazonCloudWatch-* (a configuration kept in SSM; the nodes' is a file)."""
    streams = [f"{arn}:*" for arn in log_group_arns]
    return [
        {
            "Sid": "ShipLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [*log_group_arns, *streams],
        },
        {
            # PutMetricData has no resource to name: the namespace condition is its only scope
            # (AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
            "Sid": "PublishMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
        },
    ]


def deny_without_tls(sid: str, principal: object, action: str, resource: object) -> dict:
    """A resource policy's statement refusing any request made without TLS (aws:SecureTransport false)."""
    return {"Sid": sid, "Effect": "Deny", "Principal": principal, "Action": action, "Resource": resource,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}  # fmt: skip
