"""The real-time endpoint of the approved model version, and how a newly approved version reaches it.

The registry decides what serves: the stack takes the serving version as CloudFormation PARAMETERS
(`ServingParameters`: the model package ARN and the version's own monitoring baselines), and the
endpoint, its model, config, autoscaling and monitors exist only while ModelPackageArn is set (one
CfnCondition). An approval changes the parameters through CloudFormation itself:

- an EventBridge rule on "SageMaker Model Package State Change" to Approved runs a small Lambda
  function (infra/lambdas/deploy_approved) that calls UpdateStack on this stack with the previous
  template and the version's parameters; nothing edits the endpoint out of band;
- `cdk deploy` keeps the previous parameter values (CDK's --previous-parameters default), so an infra
  deploy never removes or downgrades the live endpoint;
- the endpoint captures requests and responses to the artefacts bucket (KMS), for the monitor;
- it scales on invocations per instance (target tracking);
- CloudFormation updates it blue/green with a canary, rolling back automatically when the 5xx or
  the model-latency alarm fires (a rolled-back update also rolls the stack's parameters back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnCondition, CfnOutput, CfnParameter, CfnResource, Duration, Fn, RemovalPolicy, Stack
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
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra.constructs.data_lake import CAPTURE_PREFIX, s3_uri
from infra.constructs.ecr import grant_pull, repository_arn
from infra.constructs.log_encryption import encrypted_log_group
from infra.constructs.network import grant_vpc_access
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects, checkov_skip

VARIANT = "AllTraffic"
# infra/lambdas/: the functions' code, next to the constructs package.
DEPLOYER_CODE = Path(__file__).resolve().parents[1] / "lambdas" / "deploy_approved"

# The serving stack's parameters (their logical ids are their names: the deployer Lambda sets them
# by these names, infra/lambdas/deploy_approved/index.py PARAMETERS, and a test keeps both equal).
MODEL_PACKAGE_ARN = "ModelPackageArn"
BASELINE_STATISTICS_URI = "BaselineStatisticsUri"
BASELINE_CONSTRAINTS_URI = "BaselineConstraintsUri"
MODEL_QUALITY_CONSTRAINTS_URI = "ModelQualityConstraintsUri"
PROBLEM_TYPE = "ProblemType"
# Model Monitor's problem types (CreateModelQualityJobDefinition ModelQualityAppSpecification.ProblemType).
PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")
HAS_MODEL = "HasModelPackage"
HAS_MODEL_QUALITY = "HasModelQualityBaseline"


@dataclass(frozen=True)
class ServingParameters:
    """The serving version, as stack parameters: what the registry approved, and its own baselines.

    Every default is "": a new stack has no endpoint until a version is approved. `has_model` holds
    when ModelPackageArn is set; `has_model_quality` when, also, the version carries model-quality
    constraints (an image model, say, carries none).
    """

    model_package_arn: CfnParameter
    baseline_statistics_uri: CfnParameter
    baseline_constraints_uri: CfnParameter
    model_quality_constraints_uri: CfnParameter
    problem_type: CfnParameter
    has_model: CfnCondition
    has_model_quality: CfnCondition

    @classmethod
    def of(cls, stack: Stack, *, model_package_group_name: str) -> ServingParameters:
        def param(name: str, description: str, *, pattern: str | None = None,
                  values: Sequence[str] | None = None) -> CfnParameter:
            return CfnParameter(stack, name, type="String", default="", description=description,
                                allowed_pattern=pattern, allowed_values=list(values) if values else None)

        s3_pattern = r"^(s3://\S+)?$"
        arn = param(MODEL_PACKAGE_ARN, f"The approved version of {model_package_group_name} the endpoint serves "
                                       "(set on approval by the deployer Lambda; empty: no endpoint yet)",
                    pattern=r"^(arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]{1,63}/\d+)?$")
        stats = param(BASELINE_STATISTICS_URI, "The serving version's data-quality statistics.json "
                                               "(its DriftCheckBaselines)", pattern=s3_pattern)
        constraints = param(BASELINE_CONSTRAINTS_URI, "The serving version's data-quality constraints.json "
                                                      "(its DriftCheckBaselines)", pattern=s3_pattern)
        quality = param(MODEL_QUALITY_CONSTRAINTS_URI, "The serving version's model-quality constraints "
                                                       "(empty: no model-quality monitoring)", pattern=s3_pattern)
        problem = param(PROBLEM_TYPE, "The serving version's problem type, as Model Monitor names it",
                        values=["", *PROBLEM_TYPES])
        has_model = CfnCondition(stack, HAS_MODEL,
                                 expression=Fn.condition_not(Fn.condition_equals(arn.value_as_string, "")))
        has_quality = CfnCondition(stack, HAS_MODEL_QUALITY, expression=Fn.condition_and(
            has_model, Fn.condition_not(Fn.condition_equals(quality.value_as_string, ""))))
        return cls(arn, stats, constraints, quality, problem, has_model, has_quality)


def only_if(condition: CfnCondition, *scopes: IConstruct) -> None:
    """Every CloudFormation resource under `scopes` exists only when `condition` holds.

    Applied to whole constructs, so a resource a construct adds later (a scaling policy, an alarm)
    cannot be left unconditioned while it references a conditioned one: the template would not deploy.
    """
    for scope in scopes:
        for c in scope.node.find_all():
            if isinstance(c, CfnResource):
                c.cfn_options.condition = condition


class Serving(Construct):
    """Model role, rollback alarms and the approval deployer; under the `has_model` condition also the
    model, endpoint config (data capture), endpoint (blue/green + rollback) and its autoscaling."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        parameters: ServingParameters,
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
        images: Sequence[tuple[str, str, str]],
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.endpoint_name = endpoint_name
        self.parameters = parameters
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.capture_uri = s3_uri(artifacts, CAPTURE_PREFIX)

        # -- the role the endpoint's containers run as ------------------------------------------------
        # `images`: (account, region, repository) of the serving images of the model packages the
        # pipeline registers; SageMaker pulls them with this role, AWS-owned as they are. A version's
        # code travels inside its model.tar.gz (SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code): the
        # role reads no code bundle, so an older version keeps working after a training_code change.
        self.model_role = iam.Role(self, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                                   description="The endpoint's containers: image, model artefacts, capture")
        grant_pull(self.model_role, [repository_arn(*image) for image in images], sid="PullTheServingImage")
        artifacts.grant_read(self.model_role)  # model.tar.gz the pipeline wrote (code/ inside)
        artifacts.grant_put(self.model_role, f"{CAPTURE_PREFIX}*")
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
        # Unconditioned: the endpoint names them before it exists, and they cost nothing without it.
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

        self._deployer(model_package_group_name=model_package_group_name, key=key, log_retention=log_retention,
                       removal_policy=removal_policy)
        self.endpoint = self._endpoint(
            model_package_arn=parameters.model_package_arn.value_as_string, instance_type=instance_type,
            min_instances=min_instances, max_instances=max_instances,
            invocations_per_instance=invocations_per_instance, capture_percent=capture_percent,
            canary_percent=canary_percent, canary_wait_s=canary_wait_s, key=key, subnet_ids=subnet_ids,
            security_group=security_group, rollback_alarms=rollback_alarms, removal_policy=removal_policy,
        )
        only_if(parameters.has_model, self.model, self.endpoint_config, self.endpoint, self.scaling)
        CfnOutput(self, "EndpointName", value=endpoint_name, condition=parameters.has_model)
        CfnOutput(self, "ServingModelPackage", value=parameters.model_package_arn.value_as_string,
                  description="The approved version the endpoint serves (empty: none yet)")
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
        self.model = sagemaker.CfnModel(
            self, "Model",
            execution_role_arn=self.model_role.role_arn,
            # One container: the primary one (the form moto's CloudFormation also models).
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=model_package_arn),
            vpc_config=vpc_config,
        )
        checkov_skip(
            self.model, "CKV_AWS_370",
            "Not network-isolated on purpose: the serving container installs the version's requirements.txt "
            "from PyPI at start-up (framework script mode). It runs in the stage's private subnets, behind its "
            "security group, instead.",
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
        endpoint = sagemaker.CfnEndpoint(
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
        # Kept when a stage that keeps its data loses it (ModelPackageArn set back to ""): traffic
        # keeps flowing while the mistake is fixed.
        endpoint.apply_removal_policy(removal_policy)
        self.scaling.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        return endpoint

    def _deployer(self, *, model_package_group_name: str, key: kms.IKey, log_retention: logs.RetentionDays,
                  removal_policy: RemovalPolicy) -> None:
        """Approved in the registry -> UpdateStack on this stack with that version's parameters."""
        stack = Stack.of(self)
        log_group = encrypted_log_group(self, "DeployerLogs", key=key,
                                        log_group_name=f"/{stack.stack_name}/approval-deployer",
                                        retention=log_retention, removal_policy=removal_policy)
        role = iam.Role(self, "DeployerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="Deploys approved model versions through the serving stack's parameters")
        log_group.grant_write(role)
        # This stack, by name (its id is generated): UpdateStack with the previous template, and
        # DescribeStacks for its parameters and status. No iam:PassRole: UpdateStack without RoleARN
        # reuses the role the stack was deployed with (CDK's CloudFormation execution role), which
        # CloudFormation uses "even if the users don't have permission to pass it" (UpdateStack RoleARN).
        role.add_to_policy(iam.PolicyStatement(
            sid="UpdateTheServingStack",
            actions=["cloudformation:DescribeStacks", "cloudformation:UpdateStack"],
            resources=[stack.format_arn(service="cloudformation", resource="stack",
                                        resource_name=f"{stack.stack_name}/*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadApprovedVersions",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[stack.format_arn(service="sagemaker", resource="model-package",
                                        resource_name=f"{model_package_group_name}/*")],
        ))
        acknowledge(
            role, "AwsSolutions-IAM5",
            "The serving stack is named but its ARN ends in a generated id; approved versions of the group "
            "are read by their ARN (group/<version>).",
            findings=[r"Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/"
                      + stack.stack_name + r"/\*",
                      r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
                      + model_package_group_name + r"/\*"],
        )
        # Where an event lands that still fails after Lambda's retries (a busy stack for hours, a
        # package that cannot be read): kept for 14 days, encrypted with the lake key.
        self.dead_letters = sqs.Queue(
            self, "DeployerDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            retention_period=Duration.days(14), enforce_ssl=True, removal_policy=removal_policy,
        )
        # Lambda sends to it with the function's role, which CDK grants sqs:SendMessage only: an
        # SSE-KMS queue also needs the key.
        key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")

        self.deployer = lambda_.Function(
            self, "Deployer",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(DEPLOYER_CODE), exclude=["__pycache__", "*.pyc"]),
            role=role,
            log_group=log_group,
            # Waits for a busy stack (an update takes minutes: blue/green with a canary) before giving up.
            timeout=Duration.minutes(15),
            memory_size=256,
            dead_letter_queue=self.dead_letters,
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            description=f"Deploys approved versions of {model_package_group_name} through {stack.stack_name}",
            environment={
                "SERVING_STACK_NAME": stack.stack_name,
                "MODEL_PACKAGE_GROUP": model_package_group_name,
            },
        )
        # No reserved concurrency: CloudFormation itself runs one update of the stack at a time (a
        # second approval finds it busy, waits, and Lambda retries it), and reserving some would fail
        # to deploy on an account whose concurrency limit is 10, the minimum Lambda keeps unreserved.
        checkov_skip(self.deployer, "CKV_AWS_115",
                     "One deployment at a time is CloudFormation's own rule for a stack update (a second "
                     "approval finds the stack busy, waits and is retried); reserving account concurrency "
                     "would add nothing and fails on new accounts (limit 10).")
        checkov_skip(
            self.deployer, "CKV_AWS_117",
            "The deployer only calls AWS APIs (DescribeModelPackage, DescribeStacks, UpdateStack), bounded by "
            "its role; it serves no traffic and reaches no private resource, so a VPC would add network "
            "interfaces and CloudFormation/SageMaker API endpoints without narrowing what it can do.",
        )
        checkov_skip(
            self.deployer, "CKV_AWS_173",
            "Its environment holds no secret, only the serving stack's and the model group's names, which the "
            "template itself shows; Lambda encrypts it at rest with its own key.",
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
