"""Network: a new VPC with one private subnet per zone, or the existing subnets named in the settings.

Defaults: no public addresses on the nodes; an internet gateway and one public subnet per zone only when
`network.public_subnet_cidrs` is set (for an internet-facing load balancer, nothing else); an S3 gateway endpoint gives the nodes
their packages (Amazon Linux 2023 repositories are in S3) and the product archive; interface
endpoints (private DNS, HTTPS from inside the VPC only) for Secrets Manager and Session Manager (and EC2 Auto
Scaling, ACM Private CA when the settings use them); the VPC's default
security group taken over with no rules; flow logs of all traffic to a CloudWatch log group encrypted
with the stack's key (`network.flow_logs_retention_days`).
Each node's fixed address is an explicit CIDR reservation in its subnet, so nothing else created there
(endpoints, mount targets, the database) can take it first; subnet_ids are read through the
reservations, so everything placed in them waits for those.
Exposes: vpc_id, subnet_ids (zone order), public_subnet_ids (zone order; empty without public subnets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from constructs import Construct

from apim_active_active import aws, ports
from apim_active_active.constructs.security_rules import tcp_rule
from apim_active_active.iam_documents import assume_role_policy, policy_document
from apim_active_active.names import resource_name
from apim_active_active.settings import NetworkSettings

# What a node calls besides S3: its secrets at boot, and Session Manager (no SSH).
INTERFACE_ENDPOINTS = ("secretsmanager", "ssm", "ssmmessages", "ec2messages")


@dataclass(frozen=True)
class NetworkProps:
    name_prefix: str
    region: str
    availability_zones: tuple[str, str]
    network: NetworkSettings
    kms_key_arn: str
    # gateway_scale_out: a leaving gateway node completes the group's lifecycle hook (EC2 Auto Scaling's API).
    autoscaling_endpoint: bool = False
    # keystore.source = "private_ca": the pair's first node has the private CA issue its certificate (ACM Private CA's API).
    acm_pca_endpoint: bool = False


class Network(Construct):
    def __init__(self, scope: Construct, id_: str, props: NetworkProps) -> None:
        super().__init__(scope, id_)
        self._props = props
        net = props.network
        if net.vpc_cidr is None:
            assert net.vpc_id and net.subnet_ids, "settings validate an existing VPC's ids"
            self.vpc_id: str = net.vpc_id
            self.subnet_ids: list[str] = self._reserve_node_addresses(list(net.subnet_ids))
            self.public_subnet_ids: list[str] = list(net.public_subnet_ids or ())
            return
        vpc = aws.vpc.Vpc(
            self,
            "vpc",
            cidr_block=str(net.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": self._name("vpc")},
        )
        aws.default_security_group.DefaultSecurityGroup(self, "default_group", vpc_id=vpc.id, tags={"Name": self._name("default-unused")})
        if net.flow_logs_retention_days:
            self._flow_logs(vpc.id, props.kms_key_arn)
        self.vpc_id = vpc.id
        routes, subnet_ids = self._subnets(vpc.id, "private", "subnet", net.subnet_cidrs)
        self.subnet_ids = self._reserve_node_addresses(subnet_ids)
        self.public_subnet_ids = self._public_subnets(vpc.id) if net.public_subnet_cidrs else []
        self._interface_endpoints(vpc.id, str(net.vpc_cidr))
        aws.vpc_endpoint.VpcEndpoint(
            self,
            "s3_endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{self._props.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            tags={"Name": self._name("s3")},
        )

    def _name(self, suffix: str) -> str:
        return resource_name(self._props.name_prefix, suffix)

    def _public_subnets(self, vpc_id: str) -> list[str]:
        gateway = aws.internet_gateway.InternetGateway(self, "internet_gateway", vpc_id=vpc_id, tags={"Name": self._name("igw")})
        # Only the load balancer lives here.
        routes, subnet_ids = self._subnets(vpc_id, "public", "public_subnet", self._props.network.public_subnet_cidrs or ())
        aws.route.Route(
            self,
            "public_default_route",
            route_table_id=routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
        )
        return subnet_ids

    def _subnets(
        self, vpc_id: str, kind: str, id_prefix: str, cidrs: Sequence[IPv4Network]
    ) -> tuple[aws.route_table.RouteTable, list[str]]:
        """One subnet per zone (no public addresses on launch), sharing one route table."""
        routes = aws.route_table.RouteTable(self, f"{kind}_routes", vpc_id=vpc_id, tags={"Name": self._name(kind)})
        subnet_ids = []
        for index, (zone, cidr) in enumerate(zip(self._props.availability_zones, cidrs)):
            subnet = aws.subnet.Subnet(
                self,
                f"{id_prefix}_{index + 1}",
                vpc_id=vpc_id,
                cidr_block=str(cidr),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": self._name(f"{kind}-{zone}")},
            )
            aws.route_table_association.RouteTableAssociation(
                self, f"{id_prefix}_{index + 1}_routes", subnet_id=subnet.id, route_table_id=routes.id
            )
            subnet_ids.append(subnet.id)
        return routes, subnet_ids

    def _reserve_node_addresses(self, subnet_ids: list[str]) -> list[str]:
        reserved = []
        for index, subnet_id in enumerate(subnet_ids):
            reservation = aws.ec2_subnet_cidr_reservation.Ec2SubnetCidrReservation(
                self,
                f"node_{index + 1}_address",
                subnet_id=subnet_id,
                cidr_block=f"{self._props.network.node_ip(index)}/32",
                reservation_type="explicit",
            )
            reserved.append(reservation.subnet_id)
        return reserved

    def _interface_endpoints(self, vpc_id: str, vpc_cidr: str) -> None:
        group = aws.security_group.SecurityGroup(
            self,
            "endpoints",
            name=self._name("endpoints"),
            description="AWS API interface endpoints of the VPC",
            vpc_id=vpc_id,
            tags={"Name": self._name("endpoints")},
        )
        tcp_rule(self, "endpoints_https", group.id, "ingress", ports.HTTPS, "HTTPS to AWS APIs from inside the VPC", cidrs=[vpc_cidr])
        optional = {"autoscaling": self._props.autoscaling_endpoint, "acm-pca": self._props.acm_pca_endpoint}
        for service in (*INTERFACE_ENDPOINTS, *(name for name, wanted in optional.items() if wanted)):
            aws.vpc_endpoint.VpcEndpoint(
                self,
                f"{service}_endpoint",
                vpc_id=vpc_id,
                service_name=f"com.amazonaws.{self._props.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.subnet_ids,
                security_group_ids=[group.id],
                tags={"Name": self._name(service)},
            )

    def _flow_logs(self, vpc_id: str, kms_key_arn: str) -> None:
        group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self,
            "flow_log_group",
            name=f"/{self._props.name_prefix}/vpc-flow-logs",
            retention_in_days=self._props.network.flow_logs_retention_days,
            kms_key_id=kms_key_arn,
        )
        role = aws.iam_role.IamRole(
            self,
            "flow_log_role",
            name=self._name("flow-logs"),
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
        )
        deliver = {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": f"{group.arn}:*",
        }
        aws.iam_role_policy.IamRolePolicy(
            self, "flow_log_delivery", name="deliver-flow-logs", role=role.id, policy=policy_document([deliver])
        )
        aws.flow_log.FlowLog(
            self,
            "flow_log",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            tags={"Name": self._name("flow-logs")},
        )
