"""Shared file system: an encrypted EFS file system with a mount target in each node's subnet.

Defaults: encrypted at rest with the stack's KMS key; a file system policy that lets only the node
role mount, through a mount target, and denies every request made without TLS (`shared_fs.tls_only_policy`); elastic
throughput; its own security group admitting NFS (2049)
only from the nodes' group; the nodes' group may reach it on 2049; EFS's automatic backups (AWS Backup's default
vault, 35 days) with `shared_fs.backup`, unless the stack's own backup plan covers the file system
(docs/backup-and-restore.md).
Exposes: file_system_id, dns_name, security_group_id, mount_targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws, ports
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.iam_documents import deny_without_tls, policy_document
from apim_active_active.names import resource_name
from apim_active_active.settings import SharedFsSettings


@dataclass(frozen=True)
class SharedFileSystemProps:
    name_prefix: str
    shared_fs: SharedFsSettings
    vpc_id: str
    subnet_ids: list[str]
    node_group_id: str  # the nodes' security group: NFS is taken from there only
    kms_key_arn: str
    node_role_arn: str
    covered_by_backup_plan: bool = False  # the stack's daily plan selects the file system: automatic backups would double it


def tls_only_policy(file_system_arn: str, node_role_arn: str) -> str:
    nodes_mount = {
        "Sid": "NodesMountThroughMountTargets",
        "Effect": "Allow",
        "Principal": {"AWS": node_role_arn},
        "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"],
        "Resource": file_system_arn,
        "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}},
    }
    return policy_document([nodes_mount, deny_without_tls("DenyWithoutTls", {"AWS": "*"}, "*", file_system_arn)])


class SharedFileSystem(Construct):
    def __init__(self, scope: Construct, id_: str, props: SharedFileSystemProps) -> None:
        super().__init__(scope, id_)
        prefix, shared_fs = props.name_prefix, props.shared_fs
        group = aws.security_group.SecurityGroup(
            self,
            "efs",
            name=resource_name(prefix, "efs"),
            description="EFS mount targets of the WSO2 API-M share",
            vpc_id=props.vpc_id,
            tags={"Name": resource_name(prefix, "efs")},
        )
        tcp_rule(self, "nfs_from_nodes", group.id, "ingress", ports.NFS, "NFS from the API-M nodes", peer_group=props.node_group_id)
        file_system = aws.efs_file_system.EfsFileSystem(
            self,
            "share",
            creation_token=resource_name(prefix, "share"),
            encrypted=True,
            kms_key_id=props.kms_key_arn,
            performance_mode="generalPurpose",
            throughput_mode=shared_fs.throughput_mode,
            tags={"Name": resource_name(prefix, "share")},
        )
        if shared_fs.tls_only_policy:
            aws.efs_file_system_policy.EfsFileSystemPolicy(
                self,
                "policy",
                file_system_id=file_system.id,
                policy=tls_only_policy(file_system.arn, props.node_role_arn),
            )
        self.mount_targets = [
            aws.efs_mount_target.EfsMountTarget(
                self,
                f"mount_target_{index + 1}",
                file_system_id=file_system.id,
                subnet_id=subnet_id,
                security_groups=[group.id],
            )
            for index, subnet_id in enumerate(props.subnet_ids)
        ]
        if shared_fs.backup and not props.covered_by_backup_plan:
            aws.efs_backup_policy.EfsBackupPolicy(
                self,
                "backup",
                file_system_id=file_system.id,
                backup_policy=aws.efs_backup_policy.EfsBackupPolicyBackupPolicy(status="ENABLED"),
            )
        self.file_system_id: str = file_system.id
        self.dns_name: str = file_system.dns_name
        self.arn: str = file_system.arn
        self.security_group_id: str = group.id
