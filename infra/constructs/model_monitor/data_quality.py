"""The data-quality job definition: what Model Monitor runs against an hour of captured traffic,
and the role Model Monitor's jobs run as (data and model quality alike)."""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.data_lake import (
    CAPTURE_PREFIX,
    PIPELINES_PREFIX,
    REPORTS_PREFIX,
    grant_volume_encryption,
    s3_uri,
)
from infra.constructs.ecr import grant_pull
from infra.constructs.model_monitor.images import ANALYZER_REGISTRIES, ANALYZER_REPOSITORY
from infra.constructs.network import grant_vpc_access
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects

METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# Where labels that arrive later are uploaded, per endpoint: groundtruth/<endpoint>/yyyy/mm/dd/hh/*.jsonl
# (Model Monitor's ground-truth layout), for the model-quality job.
GROUND_TRUTH_PREFIX = "groundtruth/"
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"

_DQ = sagemaker.CfnDataQualityJobDefinition


class DataQualityJob(Construct):
    """Model Monitor's analyzer, network-isolated in the VPC, comparing the endpoint's captured
    traffic with the serving version's own baseline (its statistics.json and constraints.json, which
    the pipeline wrote under pipelines/<pipeline>/<execution>/ and the model package names in its
    DriftCheckBaselines) and writing its reports and drift metrics; with the role Model Monitor's
    jobs run as. The job definition is the `Default` child (its logical id is the one from before
    the split)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        baseline_statistics_uri: str,
        baseline_constraints_uri: str,
        pipeline_name: str,
        instance_type: str,
        key: kms.IKey,
        artifacts: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, id_)
        # Where the pipeline's steps write (baselines and model-quality constraints among them).
        self.pipeline_outputs = f"{PIPELINES_PREFIX}{pipeline_name}/"
        self.reports_uri = s3_uri(artifacts, REPORTS_PREFIX)

        # The analyzer image's registry account depends on the region: resolved at deploy time.
        images = CfnMapping(self, "AnalyzerRegistry",
                            mapping={region: {"account": account} for region, account in ANALYZER_REGISTRIES.items()})
        self.image_uri = Fn.join("", [images.find_in_map(Aws.REGION, "account"), ".dkr.ecr.", Aws.REGION, ".",
                                      Aws.URL_SUFFIX, f"/{ANALYZER_REPOSITORY}"])

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description="Model Monitor jobs: read capture, baselines, ground truth; write reports")
        artifacts.grant_read(self.role, f"{CAPTURE_PREFIX}*")
        artifacts.grant_read(self.role, f"{self.pipeline_outputs}*")
        artifacts.grant_read(self.role, f"{GROUND_TRUTH_PREFIX}*")  # the model-quality job's labels
        artifacts.grant_read_write(self.role, f"{REPORTS_PREFIX}*")
        key.grant_encrypt_decrypt(self.role)
        grant_volume_encryption(key, self.role)  # the cluster's VolumeKmsKeyId
        # The analyzer image is AWS's, pulled with this role all the same.
        grant_pull(self.role, [Fn.join("", ["arn:", Aws.PARTITION, ":ecr:", Aws.REGION, ":",
                                            images.find_in_map(Aws.REGION, "account"),
                                            f":repository/{ANALYZER_REPOSITORY}"])], sid="PullTheAnalyzerImage")
        self.role.add_to_policy(iam.PolicyStatement(
            sid="MonitorLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="DriftMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": [METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE]}},
        ))
        grant_vpc_access(self.role, vpc)
        acknowledge(
            self.role, "AwsSolutions-IAM5",
            "Reads the capture prefix, the pipeline's outputs (each version's baselines live under its own "
            "execution id) and the ground-truth prefix, and writes the reports prefix of the artefacts "
            "bucket (object keys are per hour); CloudWatch metrics are bound to Model Monitor's namespaces "
            "and network interfaces to this VPC, neither takes a narrower resource, nor does the ECR login.",
            findings=[*GRANT_ACTIONS, r"Resource::\*",
                      *(bucket_objects("Artifacts", prefix=p)
                        for p in (CAPTURE_PREFIX, self.pipeline_outputs, REPORTS_PREFIX, GROUND_TRUTH_PREFIX)),
                      r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/\*"],
        )

        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.job_definition = _DQ(
            self, "Default",
            role_arn=self.role.role_arn,
            endpoint_name=endpoint_name,
            data_quality_app_specification=_DQ.DataQualityAppSpecificationProperty(
                image_uri=self.image_uri,
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=_DQ.DataQualityBaselineConfigProperty(
                constraints_resource=_DQ.ConstraintsResourceProperty(s3_uri=baseline_constraints_uri),
                statistics_resource=_DQ.StatisticsResourceProperty(s3_uri=baseline_statistics_uri),
            ),
            data_quality_job_input=_DQ.DataQualityJobInputProperty(
                endpoint_input=_DQ.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                ),
            ),
            data_quality_job_output_config=_DQ.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[_DQ.MonitoringOutputProperty(
                    s3_output=_DQ.S3OutputProperty(
                        local_path="/opt/ml/processing/output", s3_uri=self.reports_uri, s3_upload_mode="EndOfJob"),
                )],
            ),
            job_resources=_DQ.MonitoringResourcesProperty(
                cluster_config=_DQ.ClusterConfigProperty(
                    instance_count=1, instance_type=instance_type, volume_size_in_gb=20, volume_kms_key_id=key.key_arn),
            ),
            # The analyzer needs no internet: isolate it, inside the VPC.
            network_config=_DQ.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=_DQ.VpcConfigProperty(security_group_ids=[security_group.security_group_id],
                                                 subnets=subnet_ids),
            ),
            stopping_condition=_DQ.StoppingConditionProperty(max_runtime_in_seconds=1800),
        )
        # SageMaker checks that the endpoint exists when the definition is created.
        self.job_definition.node.add_dependency(endpoint)
        self.job_definition.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
