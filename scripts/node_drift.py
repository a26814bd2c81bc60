"""What each node runs against what the settings give it: its user data (file by file, node.env key by key), its
image and its instance type; and the update level each node runs. Shared by verify and scripts/roll.py."""

from __future__ import annotations

import base64
import gzip
import hashlib
import shlex
from dataclasses import dataclass, field

import yaml

from apim_active_active import names
from apim_active_active.renderers.node_layout import NODE_ENV


@dataclass(frozen=True)
class Wanted:
    """What the settings give a node (the stack's outputs, or a plan's)."""

    user_data: str  # base64 of the gzipped cloud-config
    ami_id: str
    instance_type: str


@dataclass
class Running:
    instance_id: str
    state: str
    user_data: str
    ami_id: str
    instance_type: str
    launch_time: str = ""


@dataclass
class Drift:
    number: int
    instance_id: str
    differences: list[str] = field(default_factory=list)
    update_level: str = ""  # what the node was booted with

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


def cloud_config_files(user_data: str) -> dict[str, str]:
    """The files a node's user data writes, by path."""
    if not user_data:
        return {}
    text = gzip.decompress(base64.b64decode(user_data)).decode()
    return {entry["path"]: entry["content"] for entry in yaml.safe_load(text).get("write_files", [])}


def node_env(files: dict[str, str]) -> dict[str, str]:
    values = {}
    for line in files.get(NODE_ENV, "").splitlines():
        key, _, value = line.partition("=")
        values[key] = " ".join(shlex.split(value)) if value else ""
    return values


def update_level(files: dict[str, str]) -> str:
    """The update level a node was booted with: its node.env's UPDATE_LEVEL, "GA" for the base pack."""
    env = node_env(files)
    if not env:
        return "unknown"
    return env.get("UPDATE_LEVEL") or "GA"


def user_data_differences(running: str, wanted: str) -> list[str]:
    """Which files differ; for node.env, which keys and how (node.env holds no secret, only names and ARNs)."""
    have, want = cloud_config_files(running), cloud_config_files(wanted)
    differences = []
    for path in sorted(have.keys() | want.keys()):
        if have.get(path) == want.get(path):
            continue
        if path not in have or path not in want:
            differences.append(f"{path} {'added' if path in want else 'removed'}")
        elif path == NODE_ENV:
            old, new = node_env(have), node_env(want)
            keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            differences.append(f"{path}: " + ", ".join(f"{k} {old.get(k, '(none)')!r} -> {new.get(k, '(none)')!r}" for k in keys))
        else:
            differences.append(f"{path} changed")
    return differences


def compare(number: int, running: Running, wanted: Wanted) -> Drift:
    drift = Drift(number, running.instance_id, update_level=update_level(cloud_config_files(running.user_data)))
    if running.user_data != wanted.user_data:
        drift.differences.append(
            "user data: " + ("; ".join(user_data_differences(running.user_data, wanted.user_data)) or "same files, other bytes")
        )
    if running.ami_id != wanted.ami_id:
        drift.differences.append(f"AMI {running.ami_id} -> {wanted.ami_id}")
    if running.instance_type != wanted.instance_type:
        drift.differences.append(f"instance type {running.instance_type} -> {wanted.instance_type}")
    return drift


def running_node(ec2, instance_id: str) -> Running:
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    (instance,) = reservation["Instances"]
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return Running(
        instance_id,
        instance["State"]["Name"],
        attribute.get("UserData", {}).get("Value", ""),
        instance["ImageId"],
        instance["InstanceType"],
        instance["LaunchTime"].isoformat(),
    )


def user_data_sha256(user_data: str) -> str:
    """As Terraform's sha256() of the base64 text (the stack's node_user_data_sha256 output)."""
    return hashlib.sha256(user_data.encode()).hexdigest()


def wanted_from_outputs(outputs: dict) -> list[Wanted]:
    return [
        Wanted(*values)
        for values in zip(outputs[names.OUTPUT_NODE_USER_DATA], outputs[names.OUTPUT_NODE_AMIS], outputs[names.OUTPUT_NODE_INSTANCE_TYPE])
    ]
