"""The active-active stack: network, peer security, load balancer, shared file system (or, with
content_sync = "rsync", the rsync channel), database, identity, secrets, two nodes, the gateway scale-out group (with
`gateway_scale_out`), what observes them (log groups, alarms, the dashboard) and the backup plans (with a copy region:
its provider, key and vault). It only composes them, giving each construct its own part of the settings, and wires who
may reach whom; the backend, the nodes' user data and the outputs are rooms of their own."""

from __future__ import annotations

from pathlib import Path

from cdktf import TerraformResource, TerraformStack, TerraformVariable
from constructs import Construct

from apim_active_active import aws, names, ports
from apim_active_active.constructs.alarms import Alarms, AlarmsProps
from apim_active_active.constructs.backup import BackupPlans, BackupPlansProps, CopyTarget, continuous_database
from apim_active_active.constructs.boot_assets import BootAssets, BootAssetsProps, boot_step_statement
from apim_active_active.constructs.dashboard import Dashboard, DashboardProps
from apim_active_active.constructs.database import Database, DatabaseProps
from apim_active_active.constructs.destroy_guard import DestroyGuard, DestroyGuardProps
from apim_active_active.constructs.encryption import CopyRegionKey, CopyRegionKeyProps, StackKey, StackKeyProps
from apim_active_active.constructs.gateway_group import GatewayGroup, GatewayGroupProps
from apim_active_active.constructs.generated_secrets import GeneratedSecrets, GeneratedSecretsProps, SourceSecrets
from apim_active_active.constructs.load_balancer import LoadBalancer, LoadBalancerProps
from apim_active_active.constructs.log_groups import LogGroups, LogGroupsProps
from apim_active_active.constructs.network import Network, NetworkProps
from apim_active_active.constructs.node import Node, NodeProps
from apim_active_active.constructs.node_identity import NodeIdentity, NodeIdentityProps
from apim_active_active.constructs.peer_security import PeerSecurity, PeerSecurityProps
from apim_active_active.constructs.restore_signal import RestoreSignal, RestoreSignalProps
from apim_active_active.constructs.rsync_channel import RsyncChannel, RsyncChannelProps
from apim_active_active.constructs.shared_fs import SharedFileSystem, SharedFileSystemProps
from apim_active_active.iam_documents import cloudwatch_agent_statements
from apim_active_active.observability import metric_namespace, shipped_logs
from apim_active_active.protection import destroy_refusal
from apim_active_active.renderers.alarms import Observed, alarm_specs, boot_log_key, log_metric_filters
from apim_active_active.renderers.boot_script import brings_keystore
from apim_active_active.renderers.dashboard import dashboard_body
from apim_active_active.renderers.node_layout import gateway_archive_url
from apim_active_active.settings import Settings
from apim_active_active.stacks.backend import configure_backend
from apim_active_active.stacks.node_grants import brought_keystore_statements, gateway_secret_statements, secret_statements
from apim_active_active.stacks.observed import observed_ids
from apim_active_active.stacks.outputs import add_backup_outputs, add_gateway_outputs, add_observability_outputs, add_outputs
from apim_active_active.stacks.provider import configure_copy_provider, configure_provider
from apim_active_active.stacks.user_data import NodeUserData, boot_steps
from apim_active_active.traffic import routes
from apim_active_active.versions import traits


class ActiveActiveStack(TerraformStack):
    def __init__(self, scope: Construct, environment: str, settings: Settings, *, state_dir: Path) -> None:
        super().__init__(scope, environment)
        self.settings, self.prefix = settings, settings.name_prefix
        configure_backend(self, settings, environment, state_dir)
        configure_provider(self, settings, environment)
        copy_provider = configure_copy_provider(self, settings, environment)
        key = self._stack_key()
        uses_copy_key = settings.backup.plan or settings.backup.replicate_secrets
        copy_key = self._copy_key(key, copy_provider) if copy_provider and uses_copy_key else None
        network = self._network(key)
        peers = self._peer_security(network)
        identity = self._node_identity()

        balancer = self._load_balancer(network, peers)
        for port in balancer.node_ports:
            peers.rule(f"from_load_balancer_{port}", "ingress", port, f"Load balancer to node port {port} (traffic and health "
                       "checks)", peer_group=balancer.security_group_id)  # fmt: skip

        share = self._shared_fs(network, peers, key, identity) if settings.uses_efs else None
        channel = None if settings.uses_efs else self._rsync_channel(network, key)
        if share:
            peers.rule("egress_nfs", "egress", ports.NFS, "NFS to the EFS mount targets", peer_group=share.security_group_id)

        database = self._database(network, peers, key)
        existing = settings.database.existing
        if existing:
            peers.rule("egress_database", "egress", database.port, f"Database at {existing.cidr}", cidrs=[str(existing.cidr)])
        else:
            peers.rule("egress_database", "egress", database.port, "Database (RDS)", peer_group=database.security_group_id)

        secrets = self._secrets(key, copy_key)
        copy_region = settings.backup.copy_region
        replica = (copy_region, copy_key.key_arn) if copy_region and copy_key and settings.backup.replicate_secrets else None
        signal = (
            RestoreSignal(self, "restore", RestoreSignalProps(self.prefix, key.key_arn))
            if settings.restore and settings.restore.share
            else None
        )
        statements = secret_statements(
            database, secrets, key, channel, settings.encryption.node_decrypt_key_arns, replica, signal.arn if signal else None
        )
        if brings_keystore(settings):  # the first node makes the pair's keystore from it
            statements += brought_keystore_statements(settings.keystore)
        grant = identity.grant("use_secrets", statements)
        boot = self._boot_assets(key)
        read_boot = identity.grant("read_boot_step", [boot_step_statement(boot)])
        user_data = self._user_data(database, secrets, balancer, share, channel, key, boot)
        ami_id = self._ami_id()
        nodes = self._nodes(
            environment, network, peers, identity, key, ami_id, user_data, channel, share, (grant, read_boot, *boot.objects)
        )
        for index, node in enumerate(nodes):
            balancer.attach(index, node.instance_id)
        gateways = None
        if settings.gateway_scale_out:
            gateway_grants = [
                *gateway_secret_statements(database, secrets, key, settings.encryption.node_decrypt_key_arns),
                boot_step_statement(boot),
            ]
            gateways = self._gateway_group(environment, network, peers, balancer, key, ami_id, user_data, gateway_grants)
            self._reach_gateways(gateways, peers, balancer, database)

        add_outputs(self, network, peers, share, balancer, nodes, boot.bucket_name)
        if gateways:
            add_gateway_outputs(self, gateways.group_name, gateways.launch_template_id, gateways.security_group_id)
        self._observability(key, (identity, *([gateways] if gateways else [])), observed_ids(balancer, database, share, nodes))
        if settings.backup.plan:
            self._backup(key, database, share, CopyTarget(copy_provider, copy_key.key_arn) if copy_provider and copy_key else None)
        resources = tuple(c for c in self.node.find_all() if isinstance(c, TerraformResource))
        DestroyGuard(self, "destroy_guard", DestroyGuardProps(refusal=destroy_refusal(settings, environment), protected=resources))

    # The parts, each given its own part of the settings and what it is wired to ---------------------------------------
    def _stack_key(self) -> StackKey:
        encryption = self.settings.encryption
        props = StackKeyProps(
            name_prefix=self.prefix,
            region=self.settings.region,
            deletion_window_days=encryption.deletion_window_days,
            autoscaling_volumes=self.settings.gateway_scale_out is not None,
        )
        return StackKey(self, "encryption", props)

    def _copy_key(self, key: StackKey, provider: aws.provider.AwsProvider) -> CopyRegionKey:
        settings = self.settings
        assert settings.backup.copy_region, "a copy provider exists only with backup.copy_region"
        props = CopyRegionKeyProps(
            name_prefix=self.prefix,
            region=settings.backup.copy_region,
            account_id=key.account_id,
            deletion_window_days=settings.encryption.deletion_window_days,
            provider=provider,
        )
        return CopyRegionKey(self, "copy_encryption", props)

    def _network(self, key: StackKey) -> Network:
        settings = self.settings
        props = NetworkProps(
            name_prefix=self.prefix,
            region=settings.region,
            availability_zones=settings.availability_zones,
            network=settings.network,
            kms_key_arn=key.key_arn,
            autoscaling_endpoint=settings.gateway_scale_out is not None,
            acm_pca_endpoint=brings_keystore(settings) and settings.keystore.source == "private_ca",
        )
        return Network(self, "network", props)

    def _peer_security(self, network: Network) -> PeerSecurity:
        props = PeerSecurityProps(name_prefix=self.prefix, vpc_id=network.vpc_id, key_manager=self.settings.key_manager)
        return PeerSecurity(self, "peer_security", props)

    def _node_identity(self) -> NodeIdentity:
        settings = self.settings
        artifacts = (settings.apim.archive_url, settings.database.jdbc_driver_url, *settings.customization.fetched_urls)
        return NodeIdentity(self, "node_identity", NodeIdentityProps(name_prefix=self.prefix, artifact_urls=artifacts))

    def _load_balancer(self, network: Network, peers: PeerSecurity) -> LoadBalancer:
        settings = self.settings
        internet_facing = settings.load_balancer.scheme == "internet-facing"
        props = LoadBalancerProps(
            name_prefix=self.prefix,
            load_balancer=settings.load_balancer,
            routes=routes(settings),
            hostname=settings.apim.hostname,
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids if internet_facing else network.subnet_ids,
            node_group_id=peers.group_id,
        )
        return LoadBalancer(self, "load_balancer", props)

    def _shared_fs(self, network: Network, peers: PeerSecurity, key: StackKey, identity: NodeIdentity) -> SharedFileSystem:
        props = SharedFileSystemProps(
            name_prefix=self.prefix,
            shared_fs=self.settings.shared_fs,
            vpc_id=network.vpc_id,
            subnet_ids=network.subnet_ids,
            node_group_id=peers.group_id,
            kms_key_arn=key.key_arn,
            node_role_arn=identity.role_arn,
            covered_by_backup_plan=self.settings.backup.plan and self.settings.backup.selections,
        )
        return SharedFileSystem(self, "shared_fs", props)

    def _rsync_channel(self, network: Network, key: StackKey) -> RsyncChannel:
        props = RsyncChannelProps(name_prefix=self.prefix, region=self.settings.region, vpc_id=network.vpc_id, kms_key_arn=key.key_arn)
        return RsyncChannel(self, "rsync", props)

    def _database(self, network: Network, peers: PeerSecurity, key: StackKey) -> Database:
        props = DatabaseProps(
            name_prefix=self.prefix,
            database=self.settings.database,
            vpc_id=network.vpc_id,
            subnet_ids=network.subnet_ids,
            node_group_id=peers.group_id,
            kms_key_arn=key.key_arn,
            retention_owned_by_backup=self._continuous_database() and self.settings.backup.selections,
            restore=self.settings.restore,
        )
        return Database(self, "database", props)

    def _secrets(self, key: StackKey, copy_key: CopyRegionKey | None) -> GeneratedSecrets | SourceSecrets:
        settings = self.settings
        if settings.restore:  # the source's: what the restored database and share were encrypted with
            source = settings.restore.secrets
            return SourceSecrets(source.admin_arn, source.keystore_arn, source.database_app_arn, source.encryption_key_arn)
        replicate = settings.backup.replicate_secrets and copy_key is not None
        props = GeneratedSecretsProps(
            name_prefix=self.prefix,
            kms_key_arn=key.key_arn,
            recovery_window_days=settings.encryption.secret_recovery_days,
            db_app_user=settings.database.existing is None,
            encryption_key=traits(settings.apim.version).symmetric_internal_crypto,
            replica_region=settings.backup.copy_region if replicate else None,
            replica_kms_key_arn=copy_key.key_arn if replicate and copy_key else None,
        )
        return GeneratedSecrets(self, "secrets", props)

    def _continuous_database(self) -> bool:
        return continuous_database(self.settings.backup, makes_database=self.settings.database.existing is None)

    def _backup(self, key: StackKey, database: Database, share: SharedFileSystem | None, copy: CopyTarget | None) -> None:
        """The backup plans of the database and the share, their vaults (docs/backup-and-restore.md)."""
        settings = self.settings
        props = BackupPlansProps(
            name_prefix=self.prefix,
            backup=settings.backup,
            kms_key_arn=key.key_arn,
            database_arn=database.arn,
            file_system_arn=share.arn if share else None,
            continuous_retention_days=settings.database.backup_retention_days,
            copy=copy,
            ignore_tag_drift=settings.emulator is not None,
        )
        plans = BackupPlans(self, "backup", props)
        add_backup_outputs(self, plans.vault_names, plans.plan_ids, plans.role_arn)

    def _boot_assets(self, key: StackKey) -> BootAssets:
        emulator = self.settings.emulator
        tls_only = emulator is None or emulator.boot_bucket_tls_only
        props = BootAssetsProps(self.prefix, key.key_arn, boot_steps(self.settings), tls_only=tls_only)
        return BootAssets(self, "boot_assets", props)

    def _user_data(self, database: Database, secrets: GeneratedSecrets | SourceSecrets, balancer: LoadBalancer,
                   share: SharedFileSystem | None, channel: RsyncChannel | None, key: StackKey,
                   boot: BootAssets) -> NodeUserData:  # fmt: skip
        # What only an apply knows, by Deployed field; None where this stack has no such thing (rendered empty).
        known = {
            "db_host": database.host,
            "db_secret_arn": database.secret_arn,
            "admin_secret_arn": secrets.admin_arn,
            "keystore_secret_arn": secrets.keystore_arn,
            "lb_dns_name": None if self.settings.apim.hostname else balancer.dns_name,
            "efs_id": share.file_system_id if share else None,
            "stack_key_arn": key.key_arn if channel else None,
            "db_app_secret_arn": secrets.db_app_arn or None,
            "encryption_key_secret_arn": secrets.encryption_key_arn,
            "boot_bucket": boot.bucket_name,
        }
        return NodeUserData(self, self.settings, known, database.port)

    def _nodes(self, environment: str, network: Network, peers: PeerSecurity, identity: NodeIdentity, key: StackKey,
               ami_id: str, user_data: NodeUserData, channel: RsyncChannel | None, share: SharedFileSystem | None,
               ready: tuple[TerraformResource, ...]) -> list[Node]:  # fmt: skip
        settings = self.settings
        roll = TerraformVariable(self, names.ROLL_VARIABLE, type="bool", default=False, nullable=False,
                                 description="Set only by scripts/roll.py, which replaces the nodes one at a time")  # fmt: skip
        own_groups = (channel.sender_group_id, channel.receiver_group_id) if channel else ()
        return [
            Node(
                self,
                f"node_{index + 1}",
                NodeProps(
                    name_prefix=self.prefix,
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
                    # Booting needs the mount targets, its boot step and the grants, and may read the secrets at once.
                    depends_on=(*(share.mount_targets if share else ()), *ready),
                    ignore_security_group_drift=bool(settings.emulator and settings.emulator.ignore_instance_sg_drift),
                ),
            )
            for index in range(2)
        ]

    def _gateway_group(self, environment: str, network: Network, peers: PeerSecurity, balancer: LoadBalancer, key: StackKey,
                       ami_id: str, user_data: NodeUserData, statements: list[dict]) -> GatewayGroup:  # fmt: skip
        settings = self.settings
        assert settings.gateway_scale_out, "only with gateway_scale_out"
        props = GatewayGroupProps(
            name_prefix=self.prefix,
            gateway=settings.gateway_scale_out,
            region=settings.region,
            account_id=key.account_id,
            vpc_id=network.vpc_id,
            subnet_ids=network.subnet_ids,
            ami_id=ami_id,
            kms_key_arn=key.key_arn,
            user_data=user_data.of_gateway(),
            artifact_urls=(gateway_archive_url(settings), settings.database.jdbc_driver_url, *settings.customization.fetched_urls),
            statements=tuple(statements),
            pair_group_id=peers.group_id,
            key_manager=settings.key_manager,
            target_group_arns=balancer.gateway_target_group_arns,
            request_label=balancer.gateway_request_label,
            tags=names.default_tags(settings, environment),
        )
        return GatewayGroup(self, "gateway_group", props)

    def _reach_gateways(self, gateways: GatewayGroup, peers: PeerSecurity, balancer: LoadBalancer, database: Database) -> None:
        """Who the gateway nodes reach and who reaches them: the pair's peer ports (their control plane), the database;
        the load balancer on the gateway routes' ports only."""
        for port, what in ports.PEERS.items():
            peers.rule(f"from_gateways_{port}", "ingress", port, f"Gateway group: {what}", peer_group=gateways.security_group_id)
        balancer.reach_gateways(gateways.security_group_id)
        for port in balancer.gateway_ports:
            gateways.rule(f"from_load_balancer_{port}", "ingress", port, f"Load balancer to gateway port {port} (traffic and "
                          "health checks)", peer_group=balancer.security_group_id)  # fmt: skip
        existing = self.settings.database.existing
        if existing:
            gateways.rule("egress_database", "egress", database.port, f"Database at {existing.cidr}", cidrs=[str(existing.cidr)])
        else:
            assert database.security_group_id, "an RDS database has its group"
            gateways.rule("egress_database", "egress", database.port, "Database (RDS)", peer_group=database.security_group_id)
            database.admit("from_gateways", gateways.security_group_id, "Database from the gateway group")

    def _observability(self, key: StackKey, shippers: tuple[NodeIdentity | GatewayGroup, ...], observed: Observed) -> None:
        """Log groups the agent ships to (and its grant to every node's role), alarms to the stack's topic, the dashboard
        (docs/observability.md)."""
        settings = self.settings
        log_groups = {}
        if settings.observability.agent:
            logs = self._log_groups(key)
            for shipper in shippers:
                shipper.grant("cloudwatch_agent", cloudwatch_agent_statements(logs.arns, metric_namespace(self.prefix)))
            log_groups = logs.names
        alarms = Alarms(
            self,
            "alarms",
            AlarmsProps(
                name_prefix=self.prefix,
                region=settings.region,
                account_id=key.account_id,
                kms_key_arn=key.key_arn,
                subscriptions=settings.observability.alarm_subscriptions,
                specs=alarm_specs(settings, observed),
            ),
        )
        dashboard = None
        if settings.observability.dashboard:
            dashboard = Dashboard(self, "dashboard", DashboardProps(name_prefix=self.prefix, body=dashboard_body(settings, observed)))
        add_observability_outputs(self, alarms.topic_arn, dashboard.name if dashboard else None, log_groups)

    def _log_groups(self, key: StackKey) -> LogGroups:
        settings = self.settings
        props = LogGroupsProps(
            name_prefix=self.prefix,
            keys=tuple(log.key for log in shipped_logs(settings)),
            retention_days=settings.observability.log_retention_days,
            kms_key_arn=key.key_arn,
            metric_filters=log_metric_filters(self.prefix),
            filter_key=boot_log_key(settings),
        )
        return LogGroups(self, "log_groups", props)

    def _ami_id(self) -> str:
        ami = self.settings.node.ami
        if ami.id:
            return ami.id
        assert ami.ssm_parameter, "settings require an AMI id or its parameter"
        return aws.data_aws_ssm_parameter.DataAwsSsmParameter(self, "ami", name=ami.ssm_parameter).insecure_value
