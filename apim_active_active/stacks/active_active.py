"""The active-active stack: network, peer security, load balancer, shared file system (or, with
content_sync = "rsync", the rsync channel), database, identity, secrets and two nodes. It only composes them, giving
each construct its own part of the settings, and wires who may reach whom; the backend, the nodes' user data and the
outputs are rooms of their own."""

from __future__ import annotations

from pathlib import Path

from cdktf import TerraformResource, TerraformStack, TerraformVariable
from constructs import Construct

from apim_active_active import aws, names, ports
from apim_active_active.constructs.database import Database, DatabaseProps
from apim_active_active.constructs.destroy_guard import DestroyGuard, DestroyGuardProps
from apim_active_active.constructs.encryption import StackKey, StackKeyProps
from apim_active_active.constructs.generated_secrets import GeneratedSecrets, GeneratedSecretsProps
from apim_active_active.constructs.load_balancer import LoadBalancer, LoadBalancerProps
from apim_active_active.constructs.network import Network, NetworkProps
from apim_active_active.constructs.node import Node, NodeProps
from apim_active_active.constructs.node_identity import NodeIdentity, NodeIdentityProps
from apim_active_active.constructs.peer_security import PeerSecurity, PeerSecurityProps
from apim_active_active.constructs.rsync_channel import RsyncChannel, RsyncChannelProps
from apim_active_active.constructs.shared_fs import SharedFileSystem, SharedFileSystemProps
from apim_active_active.protection import destroy_refusal
from apim_active_active.settings import Settings
from apim_active_active.stacks.backend import configure_backend
from apim_active_active.stacks.node_grants import secret_statements
from apim_active_active.stacks.outputs import add_outputs
from apim_active_active.stacks.provider import configure_provider
from apim_active_active.stacks.user_data import NodeUserData
from apim_active_active.traffic import routes
from apim_active_active.versions import traits


class ActiveActiveStack(TerraformStack):
    def __init__(self, scope: Construct, environment: str, settings: Settings, *, state_dir: Path) -> None:
        super().__init__(scope, environment)
        prefix = settings.name_prefix
        configure_backend(self, settings, environment, state_dir)
        configure_provider(self, settings, environment)
        key = StackKey(
            self,
            "encryption",
            StackKeyProps(name_prefix=prefix, region=settings.region, deletion_window_days=settings.encryption.deletion_window_days),
        )
        network = Network(
            self,
            "network",
            NetworkProps(
                name_prefix=prefix,
                region=settings.region,
                availability_zones=settings.availability_zones,
                network=settings.network,
                kms_key_arn=key.key_arn,
            ),
        )
        peers = PeerSecurity(
            self, "peer_security", PeerSecurityProps(name_prefix=prefix, vpc_id=network.vpc_id, key_manager=settings.key_manager)
        )
        identity = NodeIdentity(
            self,
            "node_identity",
            NodeIdentityProps(name_prefix=prefix, artifact_urls=(settings.apim.archive_url, settings.database.jdbc_driver_url)),
        )

        internet_facing = settings.load_balancer.scheme == "internet-facing"
        balancer = LoadBalancer(
            self,
            "load_balancer",
            LoadBalancerProps(
                name_prefix=prefix,
                load_balancer=settings.load_balancer,
                routes=routes(settings),
                hostname=settings.apim.hostname,
                vpc_id=network.vpc_id,
                subnet_ids=network.public_subnet_ids if internet_facing else network.subnet_ids,
                node_group_id=peers.group_id,
            ),
        )
        for port in balancer.node_ports:
            peers.rule(
                f"from_load_balancer_{port}",
                "ingress",
                port,
                f"Load balancer to node port {port} (traffic and health checks)",
                peer_group=balancer.security_group_id,
            )

        share, channel = None, None
        if settings.uses_efs:
            share = SharedFileSystem(
                self,
                "shared_fs",
                SharedFileSystemProps(
                    name_prefix=prefix,
                    shared_fs=settings.shared_fs,
                    vpc_id=network.vpc_id,
                    subnet_ids=network.subnet_ids,
                    node_group_id=peers.group_id,
                    kms_key_arn=key.key_arn,
                    node_role_arn=identity.role_arn,
                ),
            )
            peers.rule("egress_nfs", "egress", ports.NFS, "NFS to the EFS mount targets", peer_group=share.security_group_id)
        else:
            channel = RsyncChannel(
                self, "rsync", RsyncChannelProps(name_prefix=prefix, region=settings.region, vpc_id=network.vpc_id, kms_key_arn=key.key_arn)
            )

        database = Database(
            self,
            "database",
            DatabaseProps(
                name_prefix=prefix,
                database=settings.database,
                vpc_id=network.vpc_id,
                subnet_ids=network.subnet_ids,
                node_group_id=peers.group_id,
                kms_key_arn=key.key_arn,
            ),
        )
        existing = settings.database.existing
        if existing:
            peers.rule("egress_database", "egress", database.port, f"Database at {existing.cidr}", cidrs=[str(existing.cidr)])
        else:
            peers.rule("egress_database", "egress", database.port, "Database (RDS)", peer_group=database.security_group_id)

        secrets = GeneratedSecrets(
            self,
            "secrets",
            GeneratedSecretsProps(
                name_prefix=prefix,
                kms_key_arn=key.key_arn,
                recovery_window_days=settings.encryption.secret_recovery_days,
                db_app_user=existing is None,
                encryption_key=traits(settings.apim.version).symmetric_internal_crypto,
            ),
        )
        grant = identity.grant("use_secrets", secret_statements(database, secrets, key, channel, settings.encryption.node_decrypt_key_arns))

        # What only an apply knows, by Deployed field; None where this stack has no such thing (rendered empty).
        user_data = NodeUserData(
            self,
            settings,
            {
                "db_host": database.host,
                "db_secret_arn": database.secret_arn,
                "admin_secret_arn": secrets.admin_arn,
                "keystore_secret_arn": secrets.keystore_arn,
                "lb_dns_name": None if settings.apim.hostname else balancer.dns_name,
                "efs_id": share.file_system_id if share else None,
                "stack_key_arn": key.key_arn if channel else None,
                "db_app_secret_arn": secrets.db_app_arn or None,
                "encryption_key_secret_arn": secrets.encryption_key_arn,
            },
            database.port,
        )
        ami_id = self._ami_id(settings)
        roll = TerraformVariable(
            self,
            names.ROLL_VARIABLE,
            type="bool",
            default=False,
            nullable=False,
            description="Set only by scripts/roll.py, which replaces the nodes one at a time",
        )
        own_groups = (channel.sender_group_id, channel.receiver_group_id) if channel else ()
        nodes = [
            Node(
                self,
                f"node_{index + 1}",
                NodeProps(
                    name_prefix=prefix,
                    node=settings.node,
                    index=index,
                    private_ip=str(settings.network.node_ip(index)),
                    ami_id=ami_id,
                    subnet_id=network.subnet_ids[index],
                    security_group_ids=(peers.group_id, *own_groups[index : index + 1]),
                    instance_profile_name=identity.instance_profile_name,
                    kms_key_arn=key.key_arn,
                    user_data=user_data.of_node(index),
                    roll_variable=roll.friendly_unique_id,
                    roll_command=f"scripts/roll.py {environment}",
                    # Booting needs the mount targets and may read the secrets at once.
                    depends_on=(*(share.mount_targets if share else ()), grant),
                    ignore_security_group_drift=bool(settings.emulator and settings.emulator.ignore_instance_sg_drift),
                ),
            )
            for index in range(2)
        ]
        for index, node in enumerate(nodes):
            balancer.attach(index, node.instance_id)

        add_outputs(self, network, peers, share, balancer, nodes)
        resources = tuple(c for c in self.node.find_all() if isinstance(c, TerraformResource))
        DestroyGuard(self, "destroy_guard", DestroyGuardProps(refusal=destroy_refusal(settings, environment), protected=resources))

    def _ami_id(self, settings: Settings) -> str:
        ami = settings.node.ami
        if ami.id:
            return ami.id
        assert ami.ssm_parameter, "settings require an AMI id or its parameter"
        return aws.data_aws_ssm_parameter.DataAwsSsmParameter(self, "ami", name=ami.ssm_parameter).insecure_value
