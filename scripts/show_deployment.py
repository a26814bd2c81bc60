#!/usr/bin/env python3
"""Print a deployed stack's outputs and each node's deployment.toml, read back from EC2 user data.

scripts/show_deployment.py --outputs .state/outputs.json --stack local
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
from pathlib import Path

import boto3
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from apim_active_active.names import OUTPUT_INSTANCE_IDS  # noqa: E402
from apim_active_active.renderers.boot_script import CONFIG_SOURCE  # noqa: E402
from scripts.ops import load_environment  # noqa: E402


def user_data(ec2, instance_id: str) -> str:
    """A node's user data, as the emulator (or AWS) hands it to the instance."""
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    raw = base64.b64decode(attribute["UserData"]["Value"])
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()  # cloud-init reads gzip itself


def user_data_files(ec2, instance_id: str) -> dict[str, str]:
    """The files a node's cloud-config writes."""
    cloud_config = yaml.safe_load(user_data(ec2, instance_id))
    return {entry["path"]: entry["content"] for entry in cloud_config["write_files"]}


def observability(region: str, prefix: str) -> list[str]:
    """What watches the pair: its log groups, alarm topic, alarms and dashboard (all named after the prefix)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    logs, cloudwatch, sns = (boto3.client(s, region_name=region, endpoint_url=endpoint) for s in ("logs", "cloudwatch", "sns"))
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/{prefix}/")["logGroups"]
    lines = [f"  log group  {g['logGroupName']} ({g.get('retentionInDays', 'no')} days)" for g in groups]
    lines += [f"  topic      {t['TopicArn']}" for t in sns.list_topics()["Topics"] if t["TopicArn"].split(":")[-1].startswith(prefix)]
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    lines += [f"  alarm      {a['AlarmName']} ({a['StateValue']})" for a in alarms]
    dashboards = cloudwatch.list_dashboards(DashboardNamePrefix=prefix)["DashboardEntries"]
    return lines + [f"  dashboard  {d['DashboardName']}" for d in dashboards]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, required=True, help="file written by cdktf deploy --outputs-file")
    parser.add_argument("--stack", default="local")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    outputs = json.loads(args.outputs.read_text())[args.stack]
    print(f"== outputs of stack {args.stack}")
    for name, value in outputs.items():
        print(f"  {name:26} {json.dumps(value)}")
    ec2 = boto3.client("ec2", region_name=args.region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    for number, instance_id in enumerate(outputs[OUTPUT_INSTANCE_IDS], start=1):
        print(f"\n== node {number} ({instance_id}): {CONFIG_SOURCE} from its user data")
        print(user_data_files(ec2, instance_id)[CONFIG_SOURCE])
    print(f"== what watches stack {args.stack}")
    print("\n".join(observability(args.region, load_environment(args.stack).name_prefix)))


if __name__ == "__main__":
    main()
