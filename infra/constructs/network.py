"""The VPC the ML workloads run in: private subnets and VPC endpoints for the AWS services they call,
and what a SageMaker role needs to attach its jobs or endpoint to it (`grant_vpc_access`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.log_encryption import encrypted_log_group
from infra.nag import acknowledge

# What processing, training and endpoint containers call: with these endpoints their AWS traffic
# never leaves the VPC, and an isolated subnet (no NAT) is enough for jobs with network isolation.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
}


class Network(Construct):
    """A VPC with private subnets only for workloads, flow logs, and the endpoints above.

    `nat_gateways=0` makes the private subnets isolated (no internet at all); otherwise they reach
    the internet through NAT gateways in small public subnets (for containers that install
    packages at start-up).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cidr: str,
        max_azs: int,
        nat_gateways: int,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        subnets = [ec2.SubnetConfiguration(name="workloads", subnet_type=private_type, cidr_mask=20)]
        if nat_gateways:
            subnets.append(ec2.SubnetConfiguration(name="nat", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26,
                                                   map_public_ip_on_launch=False))
        # Flow logs name every address and port that talks: encrypted with a key of their own (the
        # lake key lives in a stack that is deployed after this one).
        self.flow_log_key = kms.Key(self, "FlowLogsKey", enable_key_rotation=True, removal_policy=removal_policy,
                                    description=f"{Stack.of(self).stack_name}: VPC flow logs")
        flow_log_group = encrypted_log_group(
            self, "FlowLogs", key=self.flow_log_key, log_group_name=f"/{Stack.of(self).stack_name}/vpc-flow-logs",
            retention=log_retention, removal_policy=removal_policy)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            # Nothing uses the default security group (workloads get their own below); locking it
            # down would take a Lambda-backed custom resource for no gain.
            restrict_default_security_group=False,
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.workload_subnets = ec2.SubnetSelection(subnet_type=private_type)

        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.workload_subnets]
        )
        for name, service in INTERFACE_ENDPOINTS.items():
            # The endpoint's security group admits HTTPS from inside the VPC only.
            self.vpc.add_interface_endpoint(name, service=service, subnets=self.workload_subnets,
                                            private_dns_enabled=True)

        acknowledge(
            self.vpc, "AwsSolutions-EC23",
            "The interface endpoints' security groups admit HTTPS from this VPC's own CIDR only; cdk-nag "
            "cannot read the CIDR through the Fn::GetAtt and reports it as open.",
        )

        # The jobs' and endpoints' security group: no ingress from outside; members talk to each
        # other (distributed training, inter-container traffic) and go out over HTTPS only.
        self.workload_sg = ec2.SecurityGroup(
            self, "Workloads", vpc=self.vpc, allow_all_outbound=False,
            description="SageMaker processing, training, endpoints and monitoring jobs",
        )
        self.workload_sg.add_ingress_rule(self.workload_sg, ec2.Port.all_traffic(), "between workload members")
        self.workload_sg.add_egress_rule(self.workload_sg, ec2.Port.all_traffic(), "between workload members")
        self.workload_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and packages")


def grant_vpc_access(role: iam.Role, vpc: ec2.IVpc) -> None:
    """What SageMaker needs to attach a job or endpoint to `vpc`: its ENIs, in this VPC only."""
    stack = Stack.of(role)
    vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
    role.add_to_policy(iam.PolicyStatement(
        sid="DescribeNetwork",
        actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                 "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
        resources=["*"],
    ))
    role.add_to_policy(iam.PolicyStatement(
        sid="NetworkInterfacesInThisVpc",
        actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                 "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
        resources=["*"],
        conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
    ))
