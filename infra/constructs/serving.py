"""The real-time endpoint of an approved model package, and how a newly approved version reaches it.

- the endpoint captures requests and responses to the artefacts bucket (KMS), for the monitor;
- it scales on invocations per instance (target tracking);
- CloudFormation updates it blue/green with a canary, rolling back automatically when the 5xx or
  the model-latency alarm fires;
- an EventBridge rule on "SageMaker Model Package State Change" to Approved runs a small Lambda
  function that deploys that version the same way (infra/lambdas/deploy_approved).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.data_lake import CAPTURE_PREFIX, grant_volume_encryption, s3_uri
from infra.constructs.ecr import grant_pull, repository_arn
from infra.constructs.network import grant_vpc_access
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects

VARIANT = "AllTraffic"
# infra/lambdas/: the functions' code, next to the constructs package.
DEPLOYER_CODE = Path(__file__).resolve().parents[1] / "lambdas" / "deploy_approved"


class Serving(Construct):
    """Model role, rollback alarms and the approval deployer; with a model package ARN also the model,
    endpoint config (data capture), endpoint (blue/green + rollback) and its autoscaling."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        model_package_arn: str | None,
        model_package_group_name: str,
        endpoint_name: str,
        instance_type: str,
        min_instances: int,
        max_instances: int,
        invocations_per_instance: int,
        capture_percent: int,
        canary_percent: int,
        canary_wait_s: int,
        error_5xx_threshold: int,
        latency_p99_ms: int,
        key: kms.IKey,
        artifacts: s3.IBucket,
        code: s3_assets.Asset,
        images: Sequence[tuple[str, str, str]],
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.endpoint_name = endpoint_name
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.capture_uri = s3_uri(artifacts, CAPTURE_PREFIX)

        # -- the role the endpoint's containers run as (also used by the deployer's new models) ------
        # `images`: (account, region, repository) of the serving images of the model packages the
        # pipeline registers; SageMaker pulls them with this role, AWS-owned as they are.
        self.model_role = iam.Role(self, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                                   description="The endpoint's containers: image, model artefacts, code, capture")
        grant_pull(self.model_role, [repository_arn(*image) for image in images], sid="PullTheServingImage")
        artifacts.grant_read(self.model_role)  # model.tar.gz and code the pipeline wrote
        artifacts.grant_put(self.model_role, f"{CAPTURE_PREFIX}*")
        code.bucket.grant_read(self.model_role, code.s3_object_key)  # sourcedir.tar.gz of the pipeline stack
        key.grant_encrypt_decrypt(self.model_role)
        self.model_role.add_to_policy(iam.PolicyStatement(
            sid="EndpointLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/*"],
        ))
        # Among CreateModel's documented execution-role permissions: the instances' metrics.
        self.model_role.add_to_policy(iam.PolicyStatement(
            sid="EndpointMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*"]}},
        ))
        grant_vpc_access(self.model_role, vpc)
        acknowledge(
            self.model_role, "AwsSolutions-IAM5",
            "Reads model artefacts anywhere in this stage's artefacts bucket (their keys are generated per "
            "pipeline execution), writes capture files under datacapture/, logs to its endpoint's log "
            "groups; ECR login, CloudWatch metrics (namespace-bound) and VPC network-interface actions "
            "(bound to this VPC) take no narrower resource.",
            findings=[*GRANT_ACTIONS, bucket_objects("Artifacts"), bucket_objects("Artifacts", prefix=CAPTURE_PREFIX),
                      r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/\*",
                      r"Resource::\*"],
        )

        # -- rollback alarms (watched by SageMaker during a blue/green deployment) ----------------
        dims = {"EndpointName": endpoint_name, "VariantName": VARIANT}
        self.errors_alarm = cloudwatch.Alarm(
            self, "Errors5xx",
            alarm_description=f"{endpoint_name}: model 5xx errors; rolls a deployment back",
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors",
                                     dimensions_map=dims, statistic="Sum", period=Duration.minutes(1)),
            threshold=error_5xx_threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_alarm = cloudwatch.Alarm(
            self, "ModelLatency",
            alarm_description=f"{endpoint_name}: p99 model latency above {latency_p99_ms} ms; rolls a deployment back",
            # ModelLatency is reported in microseconds.
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency",
                                     dimensions_map=dims, statistic="p99", period=Duration.minutes(1)),
            threshold=latency_p99_ms * 1000,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        rollback_alarms = [self.errors_alarm, self.latency_alarm]

        self._deployer(
            model_package_group_name=model_package_group_name, key=key, subnet_ids=subnet_ids,
            security_group=security_group, canary_percent=canary_percent, canary_wait_s=canary_wait_s,
            rollback_alarms=rollback_alarms, log_retention=log_retention, removal_policy=removal_policy,
        )
        self.model: sagemaker.CfnModel | None = None
        self.endpoint: sagemaker.CfnEndpoint | None = None
        if model_package_arn is not None:
            self._endpoint(
                model_package_arn=model_package_arn, instance_type=instance_type, min_instances=min_instances,
                max_instances=max_instances, invocations_per_instance=invocations_per_instance,
                capture_percent=capture_percent, canary_percent=canary_percent, canary_wait_s=canary_wait_s,
                key=key, subnet_ids=subnet_ids, security_group=security_group, rollback_alarms=rollback_alarms,
                removal_policy=removal_policy,
            )
            CfnOutput(self, "EndpointName", value=endpoint_name)
        CfnOutput(self, "DataCaptureUri", value=self.capture_uri)

    def _endpoint(
        self, *, model_package_arn: str, instance_type: str, min_instances: int, max_instances: int,
        invocations_per_instance: int, capture_percent: int, canary_percent: int, canary_wait_s: int,
        key: kms.IKey, subnet_ids: list[str], security_group: ec2.ISecurityGroup,
        rollback_alarms: list[cloudwatch.Alarm], removal_policy: RemovalPolicy,
    ) -> sagemaker.CfnEndpoint:
        endpoint_name = self.endpoint_name
        vpc_config = sagemaker.CfnModel.VpcConfigProperty(
            security_group_ids=[security_group.security_group_id], subnets=subnet_ids)
        # No network isolation: the serving container installs the code bundle's requirements.txt from PyPI
        # at start-up (framework script mode). It runs in the private subnets instead.
        self.model = sagemaker.CfnModel(
            self, "Model",
            execution_role_arn=self.model_role.role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=model_package_arn)],
            vpc_config=vpc_config,
        )
        # SageMaker checks the role's permissions when it creates the model: attach them first.
        self.model.node.add_dependency(self.model_role.node.find_child("DefaultPolicy"))
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            kms_key_id=key.key_arn,
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT,
                model_name=self.model.attr_model_name,
                initial_instance_count=min_instances,
                instance_type=instance_type,
                initial_variant_weight=1.0,
            )],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=capture_percent,
                destination_s3_uri=self.capture_uri,
                kms_key_id=key.key_arn,
                capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                                 sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output")],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"], json_content_types=["application/json"]),
            ),
        )

        # -- the endpoint ---------------------------------------------------------------------------
        self.endpoint = endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            # Named: the alarms above must name it before it exists (they are its rollback alarms).
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT",
                                                                                value=canary_percent),
                        wait_interval_in_seconds=canary_wait_s,
                    ),
                    termination_wait_in_seconds=canary_wait_s,
                    maximum_execution_timeout_in_seconds=3600,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in rollback_alarms]
                ),
            ),
        )

        # -- autoscaling ----------------------------------------------------------------------------
        self.scaling = appscaling.ScalableTarget(
            self, "Scaling",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        self.scaling.node.add_dependency(endpoint)
        # Kept when the stack loses it (a deploy without the model package ARN) in a stage that keeps
        # its data: traffic keeps flowing while the mistake is fixed.
        endpoint.apply_removal_policy(removal_policy)
        self.scaling.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )

        return endpoint

    def _deployer(
        self, *, model_package_group_name: str, key: kms.IKey, subnet_ids: list[str],
        security_group: ec2.ISecurityGroup, canary_percent: int, canary_wait_s: int,
        rollback_alarms: list[cloudwatch.Alarm], log_retention: logs.RetentionDays, removal_policy: RemovalPolicy,
    ) -> None:
        """Approved in the registry -> deployed here, blue/green with the same rollback alarms."""
        stack = Stack.of(self)

        def sm_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        log_group = logs.LogGroup(self, "DeployerLogs", retention=log_retention, removal_policy=removal_policy)
        role = iam.Role(self, "DeployerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="Deploys approved model versions to the endpoint")
        log_group.grant_write(role)
        role.add_to_policy(iam.PolicyStatement(
            sid="UpdateTheEndpoint",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
            resources=[sm_arn("endpoint", self.endpoint_name)],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadCurrentConfigAndModels",
            actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            resources=[sm_arn("endpoint-config", "*"), sm_arn("model", "*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="CreateVersionedModelAndConfig",
            actions=["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig"],
            resources=[sm_arn("model", f"{self.endpoint_name}-*"),
                       sm_arn("endpoint-config", f"{self.endpoint_name}-*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadApprovedVersions",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[sm_arn("model-package", f"{model_package_group_name}/*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassTheModelRole", actions=["iam:PassRole"], resources=[self.model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        # SageMaker creates grants on the key for the capture and the endpoint volumes of a new config.
        grant_volume_encryption(key, role)
        acknowledge(
            role, "AwsSolutions-IAM5",
            "New models and endpoint configs are named <endpoint>-v<version>-<time>; the current config and "
            "model have CloudFormation-generated names, so reading them needs the type-wide wildcard "
            "within this account and region; approved versions of the group are read by their ARN.",
            findings=[r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:(endpoint-config|model)/\*",
                      r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:(endpoint-config|model)/"
                      + re.escape(self.endpoint_name) + r"-\*",
                      r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
                      + re.escape(model_package_group_name) + r"/\*"],
        )

        self.deployer = lambda_.Function(
            self, "Deployer",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(DEPLOYER_CODE), exclude=["__pycache__", "*.pyc"]),
            role=role,
            log_group=log_group,
            timeout=Duration.seconds(60),
            memory_size=256,
            description=f"Deploys approved versions of {model_package_group_name} to {self.endpoint_name}",
            environment={
                "ENDPOINT_NAME": self.endpoint_name,
                "MODEL_PACKAGE_GROUP": model_package_group_name,
                "MODEL_ROLE_ARN": self.model_role.role_arn,
                "ROLLBACK_ALARMS": ",".join(a.alarm_name for a in rollback_alarms),
                "CANARY_PERCENT": str(canary_percent),
                "CANARY_WAIT_S": str(canary_wait_s),
                "SUBNET_IDS": ",".join(subnet_ids),
                "SECURITY_GROUP_IDS": security_group.security_group_id,
            },
        )
        self.on_approval = events.Rule(
            self, "OnApproval",
            description=f"A version of {model_package_group_name} is approved: deploy it",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.LambdaFunction(self.deployer, retry_attempts=2, max_event_age=Duration.hours(2))],
        )
