"""The SageMaker side of training: execution role, model package group, the pipeline, what starts it.

The pipeline definition is the one `mlops pipeline upsert` sends: `pipelines.sagemaker` builds it
offline from `pipelines.definition`, here with placeholder strings for what only exists at deploy
time (role, buckets, key, code location, subnets); the placeholders are then swapped for CDK tokens
so CloudFormation fills in the real values.
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

from aws_cdk import Aws, CfnOutput, CfnRule, CfnRuleAssertion, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.data_lake import grant_volume_encryption, s3_uri
from infra.constructs.ecr import grant_pull, repository_arn
from infra.constructs.network import grant_vpc_access
from infra.constructs.rule_targets import pipeline_starter_role, start_pipeline_rule
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects
from pipelines import bundles
from pipelines.definition import TABULAR

PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDERS = {
    "role": f"arn:aws:iam::{PLACEHOLDER_ACCOUNT}:role/mlops-placeholder-role",
    "bucket": "mlops-placeholder-artifacts",
    "code": f"s3://mlops-placeholder-code/{bundles.ARCHIVE_NAME}",
    "key": f"arn:aws:kms:us-east-1:{PLACEHOLDER_ACCOUNT}:key/mlops-placeholder-key",
    "raw": "s3://mlops-placeholder-raw/",
}
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
        input_data_uri=PLACEHOLDERS["raw"],
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
    """Execution role, model package group, SageMaker pipeline, its triggers, optional MLflow."""

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
        raw: s3.IBucket,
        curated: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        retrain_schedule: str,
        etl_job_name: str,
        processing_instance_type: str,
        training_instance_type: str,
        mlflow_size: str | None = None,
    ) -> None:
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
            PLACEHOLDERS["raw"]: s3_uri(raw),
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
            pipeline_description="ETL, preprocess, tune, train, evaluate, check, register, baseline, transform",
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

        self._grant(key=key, artifacts=artifacts, raw=raw, curated=curated, vpc=vpc)

        # -- what starts it -----------------------------------------------------------------------
        starter = pipeline_starter_role(self, "StarterRole", pipeline_arn=self.pipeline_arn)
        start_pipeline_rule(self, "OnSchedule", pipeline_arn=self.pipeline_arn, role=starter,
                            schedule=retrain_schedule, description="Scheduled retraining")
        start_pipeline_rule(
            self, "OnCuratedData", pipeline_arn=self.pipeline_arn, role=starter,
            description="The Glue ETL landed new curated data: retrain",
            event_pattern={"source": ["aws.glue"], "detail-type": ["Glue Job State Change"],
                           "detail": {"jobName": [etl_job_name], "state": ["SUCCEEDED"]}},
        )
        self.mlflow: sagemaker.CfnMlflowTrackingServer | None = None
        if mlflow_size:
            self._mlflow(artifacts, mlflow_size)

        CfnOutput(self, "PipelineName", value=pipeline_name, description="mlops pipeline start --name")
        CfnOutput(self, "ModelPackageGroupName", value=model_package_group_name)
        CfnOutput(self, "ExecutionRoleArn", value=self.role.role_arn)
        CfnOutput(self, "CodeUri", value=self.code.s3_object_url,
                  description="sourcedir.tar.gz deployed with the stack")

    # -- permissions ------------------------------------------------------------------------------
    def _grant(self, *, key: kms.IKey, artifacts: s3.IBucket, raw: s3.IBucket, curated: s3.IBucket,
               vpc: ec2.IVpc) -> None:
        stack = Stack.of(self)
        role = self.role
        artifacts.grant_read_write(role)
        raw.grant_read(role)
        curated.grant_read(role)
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
                *GRANT_ACTIONS, bucket_objects("Artifacts", "Raw", "Curated"),
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:[a-z-]+/\*",
                r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/"
                + re.escape(group) + r"/\*",
                r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/\*",
                r"Resource::\*",
            ],
        )

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

