"""The SageMaker side of training: execution role, model package group, the pipeline, what starts it.

The pipeline definition is the one `mlops pipeline upsert` sends: `pipelines.sagemaker` builds it
offline from `pipelines.definition`, here with placeholder strings for what only exists at deploy
time (role, buckets, key, code location, subnets); the placeholders are then swapped for CDK tokens
so CloudFormation fills in the real values.

What starts it is a Lambda function, the starter (infra/lambdas/start_pipeline): the schedule, the
"Glue ETL succeeded" rule and the drift alarm's rule invoke it, and it starts an execution on a
snapshot (manifest) of the curated data only when the data or the pipeline changed since the last
execution. The pipeline reads the curated objects the manifest lists; it no longer reads raw data.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, CfnRule, CfnRuleAssertion, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.data_lake import grant_volume_encryption, s3_uri
from infra.constructs.ecr import grant_pull, repository_arn
from infra.constructs.glue_etl import dataset_name
from infra.constructs.log_encryption import encrypted_log_group
from infra.constructs.network import grant_vpc_access
from infra.constructs.rule_targets import starter_rule
from infra.lambdas.start_pipeline.index import SNAPSHOT_PREFIX  # where the starter writes manifests
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects, checkov_skip
from pipelines import bundles, paths
from pipelines.definition import DEFAULT_SPEC, TABULAR

PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDERS = {
    "role": f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/mlops-placeholder-role",
    "bucket": "mlops-placeholder-artifacts",
    "code": f"s3://mlops-placeholder-code/{bundles.ARCHIVE_NAME}",
    "key": f"arn:aws:kms:us-east-1:{PLACEHOLDER_ACCOUNT}:key/mlops-placeholder-key",
}
# infra/lambdas/: the functions' code, next to the constructs package.
STARTER_CODE = Path(__file__).resolve().parents[1] / "lambdas" / "start_pipeline"
_PLACEHOLDER = re.compile(r"[\w:/.-]*mlops-?placeholder[\w-]*")
_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)")


def subnet_placeholder(i: int) -> str:
    return f"subnet-mlopsplaceholder{i:02d}"


def sg_placeholder(i: int) -> str:
    return f"sg-mlopsplaceholder{i:02d}"


def substitute(value: Any, replacements: Mapping[str, str]) -> Any:
    """`value` with every placeholder in its strings replaced (longest placeholder first)."""
    ordered = sorted(replacements.items(), key=lambda kv: -len(kv[0]))
    if isinstance(value, str):
        for old, new in ordered:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, replacements) for v in value]
    return value


def image_repositories(definition: Any) -> set[tuple[str, str, str]]:
    """(registry account, region, repository) of every ECR image the definition runs."""
    found: set[tuple[str, str, str]] = set()
    if isinstance(definition, str):
        m = _IMAGE.match(definition)
        if m:
            found.add((m["account"], m["region"], m["repo"]))
    elif isinstance(definition, dict):
        for v in definition.values():
            found |= image_repositories(v)
    elif isinstance(definition, list):
        for v in definition:
            found |= image_repositories(v)
    return found


def serving_image_repositories(definition: Any) -> set[tuple[str, str, str]]:
    """(account, region, repository) of the images of the model packages the definition registers:
    what an endpoint serving one of its versions pulls."""
    found: set[tuple[str, str, str]] = set()
    if isinstance(definition, dict):
        if "InferenceSpecification" in definition:
            found |= image_repositories(definition["InferenceSpecification"])
        for v in definition.values():
            found |= serving_image_repositories(v)
    elif isinstance(definition, list):
        for v in definition:
            found |= serving_image_repositories(v)
    return found


def build_definition(*, pipeline_name: str, model_package_group: str, region: str, n_subnets: int,
                     n_security_groups: int, processing_instance_type: str,
                     training_instance_type: str) -> dict[str, Any]:
    """The tabular workload's pipeline definition with placeholders, from the shared builder
    (imported here: slow). The instance types become the defaults of the pipeline's
    ProcessingInstanceType and TrainingInstanceType parameters."""
    from pipelines.sagemaker import SageMakerTarget, definition_dict

    target = SageMakerTarget(
        role_arn=PLACEHOLDERS["role"],
        bucket=PLACEHOLDERS["bucket"],
        code_uri=PLACEHOLDERS["code"],
        region=region,
        workload=TABULAR.name,
        pipeline_name=pipeline_name,
        model_package_group=model_package_group,
        kms_key_arn=PLACEHOLDERS["key"],
        subnet_ids=tuple(subnet_placeholder(i) for i in range(n_subnets)),
        security_group_ids=tuple(sg_placeholder(i) for i in range(n_security_groups)),
        # InputDataUrl's default stays the target's (a manifest name under snapshots/ of the artefacts
        # bucket that no snapshot has): the starter always passes the snapshot's manifest.
        input_data_uri=None,
        processing_instance_type=processing_instance_type,
        training_instance_type=training_instance_type,
    )
    # Canonical key order: the builder's cold result and its cached copy may order keys differently,
    # and the template (its snapshot, `cdk diff`) must not change with the cache.
    return _sorted_keys(definition_dict(target))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def code_tarball() -> Path:
    """The tabular workload's code bundle, the deterministic sourcedir.tar.gz (pipelines.bundles),
    in a folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-sourcedir-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return bundles.tarball(TABULAR, folder)


class MlPipeline(Construct):
    """Execution role, model package group, SageMaker pipeline, its starter (`starter`, a Lambda
    function) and the rules that invoke it, optional MLflow."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        model_package_group_name: str,
        definition_region: str,
        enforce_region: bool,
        key: kms.IKey,
        artifacts: s3.IBucket,
        curated: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        retrain_schedule: str,
        etl_job_name: str,
        processing_instance_type: str,
        training_instance_type: str,
        mlflow_size: str | None = None,
        curated_dataset: str | None = None,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        """`curated_dataset`: the data set's prefix in the curated zone (default: the name in the
        definition's spec, as the Glue job names it)."""
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.pipeline_name = pipeline_name
        self.model_package_group_name = model_package_group_name

        self.code = s3_assets.Asset(self, "Code", path=str(code_tarball()))
        self.role = iam.Role(
            self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker pipeline steps: processing, tuning, training, transform, registry",
        )
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=model_package_group_name,
            model_package_group_description="Versions of the model trained by the pipeline",
        )

        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        definition = build_definition(
            pipeline_name=pipeline_name, model_package_group=model_package_group_name,
            region=definition_region, n_subnets=len(subnet_ids), n_security_groups=1,
            processing_instance_type=processing_instance_type, training_instance_type=training_instance_type,
        )
        self.images = sorted(image_repositories(definition))
        self.serving_images = sorted(serving_image_repositories(definition))
        tokens = {
            PLACEHOLDERS["role"]: self.role.role_arn,
            PLACEHOLDERS["bucket"]: artifacts.bucket_name,
            PLACEHOLDERS["code"]: self.code.s3_object_url,
            PLACEHOLDERS["key"]: key.key_arn,
            sg_placeholder(0): security_group.security_group_id,
            **{subnet_placeholder(i): sid for i, sid in enumerate(subnet_ids)},
        }
        deployed = substitute(definition, tokens)
        leftover = sorted(set(_PLACEHOLDER.findall(json.dumps(deployed))))
        if leftover:  # the builder derived a string from a placeholder that no token replaces
            raise ValueError(f"pipeline definition: placeholders left after substitution: {leftover}")
        self.definition = definition
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_description="preprocess (a curated-data snapshot), tune, train, evaluate, check, register, "
                                 "baseline, transform",
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(deployed)},
        )
        self.pipeline.node.add_dependency(self.model_package_group)
        self.pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)

        if enforce_region:
            # The definition names images of one region; deploying it elsewhere would fail late.
            CfnRule(self, "DefinitionRegion", assertions=[CfnRuleAssertion(
                assert_=Fn.condition_equals(Aws.REGION, definition_region),
                assert_description=(f"The pipeline definition was built for {definition_region}: deploy there "
                                    "or set region (or pipeline_region) in the stage config"),
            )])

        self.curated_prefix = f"{curated_dataset or dataset_name(paths.TRAINING_CODE / DEFAULT_SPEC)}/"
        self._grant(key=key, artifacts=artifacts, curated=curated, vpc=vpc)

        # -- what starts it -----------------------------------------------------------------------
        self.starter = self._starter(key=key, artifacts=artifacts, curated=curated,
                                     log_retention=log_retention, removal_policy=removal_policy)
        starter_rule(self, "OnSchedule", starter=self.starter, schedule=retrain_schedule,
                     description="Scheduled retraining (when the curated data or the pipeline changed)")
        starter_rule(
            self, "OnCuratedData", starter=self.starter,
            description="The Glue ETL landed new curated data: retrain",
            event_pattern={"source": ["aws.glue"], "detail-type": ["Glue Job State Change"],
                           "detail": {"jobName": [etl_job_name], "state": ["SUCCEEDED"]}},
        )
        self.mlflow: sagemaker.CfnMlflowTrackingServer | None = None
        if mlflow_size:
            self._mlflow(artifacts, mlflow_size)

        CfnOutput(self, "PipelineName", value=pipeline_name, description="mlops pipeline start --pipeline-name")
        CfnOutput(self, "CuratedUrl", value=s3_uri(curated, self.curated_prefix),
                  description="what the starter snapshots: mlops pipeline start --curated-url")
        CfnOutput(self, "ModelPackageGroupName", value=model_package_group_name)
        CfnOutput(self, "ExecutionRoleArn", value=self.role.role_arn)
        CfnOutput(self, "CodeUri", value=self.code.s3_object_url,
                  description="sourcedir.tar.gz deployed with the stack")
        CfnOutput(self, "StarterFunctionName", value=self.starter.function_name,
                  description="starts the pipeline on a curated-data snapshot: aws lambda invoke "
                              "--function-name <this> (payload {\"force\": true} to start on unchanged data)")

    # -- permissions ------------------------------------------------------------------------------
    def _grant(self, *, key: kms.IKey, artifacts: s3.IBucket, curated: s3.IBucket, vpc: ec2.IVpc) -> None:
        stack = Stack.of(self)
        role = self.role
        artifacts.grant_read_write(role)
        # preprocess's ManifestFile input: SageMaker reads the objects it lists with this role.
        curated.grant_read(role, f"{self.curated_prefix}*")
        self.code.bucket.grant_read(role, self.code.s3_object_key)  # this object, not the assets bucket
        key.grant_encrypt_decrypt(role)
        grant_volume_encryption(key, role)  # every job's VolumeKmsKeyId

        def arns(*resources: str) -> list[str]:
            return [stack.format_arn(service="sagemaker", resource=r, resource_name="*") for r in resources]

        role.add_to_policy(iam.PolicyStatement(
            sid="RunPipelineJobs",
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                     "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                     "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                     "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                     "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
                     "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags", "sagemaker:ListTags"],
            resources=arns("processing-job", "training-job", "hyper-parameter-tuning-job", "transform-job", "model"),
        ))
        group = self.model_package_group_name
        role.add_to_policy(iam.PolicyStatement(
            sid="RegisterModelVersions",
            actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage",
                     "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages", "sagemaker:AddTags"],
            resources=[
                stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group),
                stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*"),
            ],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassThisRoleToItsJobs", actions=["iam:PassRole"], resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="JobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        ))
        grant_pull(role, [repository_arn(*image) for image in self.images], sid="PullTheDefinitionsImages")
        grant_vpc_access(role, vpc)
        acknowledge(
            role, "AwsSolutions-IAM5",
            "Job, model and model-version names are generated per pipeline execution, so their ARNs end "
            "in a wildcard within this account and region; S3 and KMS wildcards are the object keys of "
            "this stage's buckets; ECR login, CloudWatch metrics (namespace-bound) and VPC network "
            "interfaces (bound to this VPC) take no narrower resource.",
            findings=[
                *GRANT_ACTIONS, bucket_objects("Artifacts"), bucket_objects("Curated", prefix=self.curated_prefix),
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:[a-z-]+/\*",
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
                + re.escape(group) + r"/\*",
                r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/\*",
                r"Resource::\*",
            ],
        )

    def _starter(self, *, key: kms.IKey, artifacts: s3.IBucket, curated: s3.IBucket,
                 log_retention: logs.RetentionDays, removal_policy: RemovalPolicy) -> lambda_.Function:
        """The function every trigger invokes: it snapshots the curated data and starts the pipeline on
        it unless nothing changed (infra/lambdas/start_pipeline). Its role reads what it decides from
        and starts this pipeline only."""
        stack = Stack.of(self)
        group = self.model_package_group_name

        def sm_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        log_group_name = f"/{stack.stack_name}/pipeline-starter"
        log_group = encrypted_log_group(self, "StarterLogs", key=key, log_group_name=log_group_name,
                                        retention=log_retention, removal_policy=removal_policy)
        role = iam.Role(self, "StarterRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="Starts the training pipeline on a snapshot of the curated data")
        # By its (fixed) name, as the key policy names it: the streams of this log group only.
        role.add_to_policy(iam.PolicyStatement(
            sid="WriteItsLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}:*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ListTheCuratedDataSet", actions=["s3:ListBucket"], resources=[curated.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{self.curated_prefix}*"]}},
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="WriteSnapshotManifests", actions=["s3:PutObject"],
            resources=[artifacts.arn_for_objects(f"{SNAPSHOT_PREFIX}*")],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadRegisteredEvaluations", actions=["s3:GetObject"],
            resources=[artifacts.arn_for_objects(f"pipelines/{self.pipeline_name}/*")],
        ))
        # The lake key: SSE-KMS manifests and evaluation.json, and the dead-letter queue below (CDK's
        # dead-letter grant is sqs:SendMessage only; SendMessage to an SSE-KMS queue needs both).
        role.add_to_policy(iam.PolicyStatement(
            sid="ArtefactsKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="StartThisPipeline",
            actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions",
                     "sagemaker:StartPipelineExecution"],
            resources=[self.pipeline_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadItsExecutionsParameters", actions=["sagemaker:ListPipelineParametersForExecution"],
            resources=[f"{self.pipeline_arn}/execution/*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadTheModelVersions", actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
            resources=[sm_arn("model-package-group", group), sm_arn("model-package", f"{group}/*")],
        ))
        acknowledge(
            role, "AwsSolutions-IAM5",
            "The starter lists its data set's prefix of the curated zone, writes manifests under snapshots/ and "
            "reads evaluation.json under this pipeline's prefix of the artefacts bucket; executions, model "
            "versions and log streams are named per run, so their ARNs end in a wildcard under this pipeline, "
            "this group and its own log group.",
            findings=[
                bucket_objects("Artifacts", prefix=SNAPSHOT_PREFIX),
                bucket_objects("Artifacts", prefix=f"pipelines/{self.pipeline_name}/"),
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:pipeline/"
                + re.escape(self.pipeline_name) + r"/execution/\*",
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
                + re.escape(group) + r"/\*",
                r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                + re.escape(log_group_name) + r":\*",
            ],
        )
        # Where an invocation lands that still fails after Lambda's retries (an empty snapshot, a
        # pipeline that cannot be started): kept for 14 days, encrypted with the lake key.
        dead_letters = sqs.Queue(
            self, "StarterDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            retention_period=Duration.days(14), enforce_ssl=True, removal_policy=removal_policy,
        )
        starter = lambda_.Function(
            self, "Starter",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(STARTER_CODE), exclude=["__pycache__", "*.pyc"]),
            role=role,
            log_group=log_group,
            # Lists the data set (1000 keys a call) and reads one evaluation.json per recent version.
            timeout=Duration.minutes(5),
            memory_size=256,
            dead_letter_queue=dead_letters,
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            description=f"Starts {self.pipeline_name} on a snapshot of the curated data when it changed",
            environment={
                "PIPELINE_NAME": self.pipeline_name,
                "MODEL_PACKAGE_GROUP": group,
                "CURATED_URL": s3_uri(curated, self.curated_prefix),
                "SNAPSHOT_URL": s3_uri(artifacts, SNAPSHOT_PREFIX),
            },
        )
        # No reserved concurrency: two triggers at once send the same idempotency token and SageMaker
        # starts one execution (index.request_token); reserving some would also fail to deploy on an
        # account whose concurrency limit is 10, the minimum Lambda keeps unreserved.
        checkov_skip(starter, "CKV_AWS_115",
                     "Concurrent starts are made idempotent by StartPipelineExecution's ClientRequestToken "
                     "(same snapshot, pipeline version and latest execution: same token), not by reserving "
                     "account concurrency, which new accounts (limit 10) cannot spare.")
        checkov_skip(
            starter, "CKV_AWS_117",
            "The starter only calls AWS APIs (S3 list and put, the SageMaker registry and this pipeline), all "
            "bounded by its role; it serves no traffic and reaches no private resource, so a VPC would add "
            "network interfaces and S3/SageMaker API endpoints without narrowing what it can do.",
        )
        checkov_skip(
            starter, "CKV_AWS_173",
            "Its environment holds no secret, only names and S3 URLs that the template itself shows; Lambda "
            "encrypts it at rest with its own key, and a customer managed key would protect nothing more.",
        )
        return starter

    def _mlflow(self, artifacts: s3.IBucket, size: str) -> None:
        role = iam.Role(self, "MlflowRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description="SageMaker managed MLflow: its artefact store")
        artifacts.grant_read_write(role, "mlflow/*")
        self.mlflow = sagemaker.CfnMlflowTrackingServer(
            self, "Mlflow",
            tracking_server_name=f"{self.pipeline_name}-mlflow",
            artifact_store_uri=s3_uri(artifacts, "mlflow/"),
            role_arn=role.role_arn,
            tracking_server_size=size,
        )
        acknowledge(role, "AwsSolutions-IAM5",
                    "MLflow writes run artefacts under the mlflow/ prefix of the artefacts bucket.",
                    findings=[*GRANT_ACTIONS, bucket_objects("Artifacts", prefix="mlflow/")])
        CfnOutput(self, "MlflowTrackingServerArn", value=self.mlflow.attr_tracking_server_arn)

