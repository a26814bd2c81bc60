"""The active-active stack: network, peer security, load balancer, shared file system (or, with
content_sync = "rsync", the rsync channel), database, identity, secrets and two nodes."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cdktf import (
    DefaultTokenResolver,
    LocalBackend,
    S3Backend,
    StringConcat,
    TerraformOutput,
    TerraformResource,
    TerraformStack,
    Token,
    Tokenization,
)
from constructs import Construct

from apim_active_active import aws
from apim_active_active import names
from apim_active_active.constructs.network import Network, NetworkProps
from apim_active_active.constructs.node import Node, NodeProps
from apim_active_active.constructs.node_identity import NodeIdentity, NodeIdentityProps
from apim_active_active.constructs.peer_security import PeerSecurity, PeerSecurityProps
from apim_active_active.constructs.provider import configure_provider
from apim_active_active.constructs.encryption import StackKey, StackKeyProps
from apim_active_active.constructs.rsync_channel import RsyncChannel, RsyncChannelProps
from apim_active_active.constructs.shared_fs import SharedFileSystem, SharedFileSystemProps
from apim_active_active.constructs.database import Database, DatabaseProps
from apim_active_active.constructs.generated_secrets import GeneratedSecrets, GeneratedSecretsProps
from apim_active_active.constructs.destroy_guard import DestroyGuard, DestroyGuardProps
from apim_active_active.constructs.load_balancer import LoadBalancer, LoadBalancerProps
from apim_active_active.renderers.boot_script import Deployed, render_user_data
from apim_active_active.settings import Settings
from apim_active_active.terraform_text import base64gzip_of, embed
from apim_active_active.traffic import public_urls

# Rendered with placeholders, then swapped for Terraform references (the renderers stay cdktf-free).
PLACEHOLDERS = Deployed(
    efs_id="@@EFS_ID@@", db_host="@@DB_HOST@@", db_port=0, db_secret_arn="@@DB_SECRET_ARN@@",
    admin_secret_arn="@@ADMIN_SECRET_ARN@@", keystore_secret_arn="@@KEYSTORE_SECRET_ARN@@",
    lb_dns_name="@@LB_DNS_NAME@@", db_app_secret_arn="@@DB_APP_SECRET_ARN@@", stack_key_arn="@@STACK_KEY_ARN@@",
    encryption_key_secret_arn="@@ENCRYPTION_KEY_SECRET_ARN@@",
)


def secret_statements(database: Database, secrets: GeneratedSecrets, key: StackKey,
                      channel: RsyncChannel | None, decrypt_key_arns: tuple[str, ...]) -> list[dict]:
    """What the nodes may do with the secrets: read them all, write the ones they generate; with rsync, hand
    over the public keys (SecureString parameters under the stack key); decrypt with the other keys the settings
    name (what they encrypt was made outside the stack)."""
    generated = [arn for arn in (secrets.admin_arn, secrets.keystore_arn, secrets.db_app_arn,
                                 secrets.encryption_key_arn) if arn]
    return [
        {"Sid": "ReadSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": [database.secret_arn, *generated]},
        {"Sid": "GenerateOnce", "Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": generated},
        {"Sid": "StackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key.key_arn},
        *([{"Sid": "OtherKeys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": list(decrypt_key_arns)}]
          if decrypt_key_arns else []),
        *(channel.statements(key.key_arn) if channel else []),
    ]


class ActiveActiveStack(TerraformStack):
    def __init__(self, scope: Construct, environment: str, settings: Settings, *, state_dir: Path) -> None:
        super().__init__(scope, environment)
        self._backend(settings, environment, state_dir)
        configure_provider(self, settings, environment)
        key = StackKey(self, "encryption", StackKeyProps(settings=settings))
        network = Network(self, "network", NetworkProps(settings=settings, kms_key_arn=key.key_arn))
        peers = PeerSecurity(self, "peer_security", PeerSecurityProps(settings=settings, vpc_id=network.vpc_id))
        identity = NodeIdentity(self, "node_identity", NodeIdentityProps(settings=settings))
        entry_subnets = network.public_subnet_ids if settings.load_balancer.scheme == "internet-facing" else network.subnet_ids
        balancer = LoadBalancer(
            self, "load_balancer",
            LoadBalancerProps(settings=settings, vpc_id=network.vpc_id, subnet_ids=entry_subnets, peers=peers),
        )
        share, channel = None, None
        if settings.uses_efs:
            share = SharedFileSystem(
                self,
                "shared_fs",
                SharedFileSystemProps(
                    settings=settings, vpc_id=network.vpc_id, subnet_ids=network.subnet_ids, peers=peers,
                    kms_key_arn=key.key_arn, node_role_arn=identity.role_arn,
                ),
            )
        else:
            channel = RsyncChannel(
                self, "rsync", RsyncChannelProps(settings=settings, vpc_id=network.vpc_id, kms_key_arn=key.key_arn)
            )
        database = Database(
            self,
            "database",
            DatabaseProps(
                settings=settings, vpc_id=network.vpc_id, subnet_ids=network.subnet_ids, peers=peers,
                kms_key_arn=key.key_arn,
            ),
        )
        secrets = GeneratedSecrets(self, "secrets", GeneratedSecretsProps(settings=settings, kms_key_arn=key.key_arn))
        grant = identity.grant("use_secrets", secret_statements(database, secrets, key, channel,
                                                                settings.encryption.node_decrypt_key_arns))
        # What only an apply knows, by Deployed field; None where this stack has no such thing (rendered empty).
        known = {
            "db_host": database.host,
            "db_secret_arn": database.secret_arn,
            "admin_secret_arn": secrets.admin_arn,
            "keystore_secret_arn": secrets.keystore_arn,
            "lb_dns_name": None if settings.apim.hostname else balancer.dns_name,
            "efs_id": share.file_system_id if share else None,
            "stack_key_arn": key.key_arn if channel else None,
            "db_app_secret_arn": secrets.db_app_arn or None,
            "encryption_key_secret_arn": secrets.encryption_key_arn,
        }
        placeholders = replace(PLACEHOLDERS, db_port=database.port,
                               **{field: "" for field, token in known.items() if token is None})
        # Terraform references as plain text: the user data is one base64gzip("...") expression, and cdktf would
        # render a token inside it without its ${}.
        references = {getattr(PLACEHOLDERS, field): self._reference(token)
                      for field, token in known.items() if token is not None}
        ami_id = self._ami_id(settings)
        own_groups = (channel.sender_group_id, channel.receiver_group_id) if channel else ()
        nodes = [
            Node(
                self,
                f"node_{index + 1}",
                NodeProps(
                    settings=settings,
                    index=index,
                    ami_id=ami_id,
                    subnet_id=network.subnet_ids[index],
                    security_group_ids=(peers.group_id, *own_groups[index:index + 1]),
                    instance_profile_name=identity.instance_profile_name,
                    kms_key_arn=key.key_arn,
                    # EC2 takes at most 16 KB of user data: Terraform gzips it, cloud-init unzips it.
                    user_data=base64gzip_of(embed(render_user_data(settings, index, placeholders), references)),
                    # Booting needs the mount targets and may read the secrets at once.
                    depends_on=(*(share.mount_targets if share else ()), grant),
                ),
            )
            for index in range(2)
        ]
        for index, node in enumerate(nodes):
            balancer.attach(index, node.instance_id)
        self._outputs(network, peers, share, balancer, nodes)
        resources = tuple(c for c in self.node.find_all() if isinstance(c, TerraformResource))
        DestroyGuard(self, "destroy_guard",
                     DestroyGuardProps(settings=settings, environment=environment, protected=resources))

    def _backend(self, settings: Settings, environment: str, state_dir: Path) -> None:
        """S3 with a DynamoDB lock for every environment that names `state`; else a local file."""
        state = settings.state
        if state is None:
            LocalBackend(self, path=str(state_dir / f"{environment}.tfstate"))
            return
        emulator = {}
        if settings.emulator:
            url = settings.emulator.endpoint_url
            emulator = dict(
                endpoints={"s3": url, "dynamodb": url, "sts": url, "iam": url}, use_path_style=True,
                access_key="test", secret_key="test",  # the emulator's fixed dummy credentials
                skip_credentials_validation=True, skip_requesting_account_id=True, skip_metadata_api_check=True,
            )
        S3Backend(self, bucket=state.bucket, key=state.state_key(environment), region=state.region, encrypt=True,
                  dynamodb_table=state.lock_table, **emulator)

    def _reference(self, token: str) -> str:
        """A resource attribute's token as the Terraform reference text it stands for (`${aws_x.y.attr}`);
        a plain value (an existing database's host) as it is."""
        if not Token.is_unresolved(token):
            return token
        resolved = Tokenization.resolve(token, scope=self, preparing=False,
                                        resolver=DefaultTokenResolver(StringConcat()))
        if not (isinstance(resolved, str) and resolved.startswith("${") and resolved.endswith("}")):
            raise ValueError(f"not a single Terraform reference: {resolved!r}")
        return resolved

    def _ami_id(self, settings: Settings) -> str:
        ami = settings.node.ami
        if ami.id:
            return ami.id
        return aws.data_aws_ssm_parameter.DataAwsSsmParameter(self, "ami", name=ami.ssm_parameter).insecure_value

    def _outputs(self, network: Network, peers: PeerSecurity, share: SharedFileSystem | None, balancer: LoadBalancer,
                 nodes: list[Node]) -> None:
        values = {
            names.OUTPUT_VPC_ID: (network.vpc_id, "VPC of the pair"),
            names.OUTPUT_NODE_IPS: ([n.private_ip for n in nodes], "Fixed private addresses, node 1 first"),
            names.OUTPUT_INSTANCE_IDS: ([n.instance_id for n in nodes], "EC2 instance ids, node 1 first"),
            names.OUTPUT_NODE_SG: (peers.group_id, "Security group of both nodes"),
            names.OUTPUT_LB_DNS: (balancer.dns_name, "DNS name of the load balancer"),
            names.OUTPUT_LB_SG: (balancer.security_group_id, "Security group of the load balancer"),
            names.OUTPUT_PUBLIC_NAME: (balancer.public_name, "The name clients use ([server] hostname)"),
            names.OUTPUT_TARGET_GROUPS: (balancer.target_group_arns, "Target groups by route"),
        }
        if share:
            values |= {
                names.OUTPUT_EFS_ID: (share.file_system_id, "EFS file system shared at repository/deployment/server"),
                names.OUTPUT_EFS_DNS: (share.dns_name, "EFS DNS name the nodes mount"),
                names.OUTPUT_EFS_SG: (share.security_group_id, "Security group of the EFS mount targets"),
            }
        for name, url in public_urls(balancer.public_name).items():
            values[name] = (url, f"{name.removesuffix('_url').capitalize()} URL, through the load balancer")
        for name, (value, description) in values.items():
            TerraformOutput(self, name, value=value, description=description)
