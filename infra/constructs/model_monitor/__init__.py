"""Model Monitor on the endpoint: hourly data-quality checks against the pipeline's baseline.

The pipeline's `baseline` step writes statistics.json and constraints.json under
s3://<artefacts>/monitoring/baseline/; the schedule compares each hour of captured traffic with
them and writes its reports under monitoring/reports/. Model Monitor publishes each feature's
distance from the baseline as `feature_baseline_drift_<feature>`; one alarm per feature, and a
composite alarm over them: when it fires, an EventBridge rule starts the training pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, CfnMapping, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.data_lake import BASELINE_PREFIX, CAPTURE_PREFIX, REPORTS_PREFIX, s3_uri
from infra.ml_pipeline import grant_vpc_access
from infra.monitor_images import ANALYZER_REGISTRIES, ANALYZER_REPOSITORY
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects
from infra.rule_targets import start_pipeline_rule

HOURLY = "cron(0 * ? * * *)"
METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MAX_FEATURE_ALARMS = 50  # a composite alarm's rule stays readable (and under its size limit)


def monitored_features(spec: Path) -> list[str]:
    """The features the model learns from, as the dataset spec names them (the target is not one)."""
    data = json.loads(spec.read_text(encoding="utf-8"))
    target = data.get("target")
    return [c["name"] for c in data.get("columns", []) if c.get("feature", True) and c["name"] != target]


class ModelMonitor(Construct):
    """Data-quality job definition, hourly schedule, drift alarms, and retraining on drift."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        schedule_name: str,
        features: Sequence[str],
        drift_threshold: float,
        instance_type: str,
        key: kms.IKey,
        artifacts: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        pipeline_arn: str,
    ) -> None:
        super().__init__(scope, id_)
        if not features:
            raise ValueError("ModelMonitor: the dataset spec declares no feature to monitor")
        if len(features) > MAX_FEATURE_ALARMS:
            raise ValueError(f"ModelMonitor: {len(features)} features; at most {MAX_FEATURE_ALARMS} drift alarms")
        self.baseline_uri = s3_uri(artifacts, BASELINE_PREFIX)
        self.reports_uri = s3_uri(artifacts, REPORTS_PREFIX)

        # The analyzer image's registry account depends on the region: resolved at deploy time.
        images = CfnMapping(self, "AnalyzerRegistry",
                            mapping={region: {"account": account} for region, account in ANALYZER_REGISTRIES.items()})
        image_uri = Fn.join("", [images.find_in_map(Aws.REGION, "account"), ".dkr.ecr.", Aws.REGION, ".",
                                 Aws.URL_SUFFIX, f"/{ANALYZER_REPOSITORY}"])

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description="Model Monitor jobs: read capture and baseline, write reports")
        artifacts.grant_read(self.role, f"{CAPTURE_PREFIX}*")
        artifacts.grant_read(self.role, f"{BASELINE_PREFIX}*")
        artifacts.grant_read_write(self.role, f"{REPORTS_PREFIX}*")
        key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(iam.PolicyStatement(
            sid="MonitorLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="DriftMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        ))
        grant_vpc_access(self.role, vpc)
        acknowledge(
            self.role, "AwsSolutions-IAM5",
            "Reads the capture and baseline prefixes and writes the reports prefix of the artefacts bucket "
            "(object keys are per hour); CloudWatch metrics are bound to Model Monitor's namespace and "
            "network interfaces to this VPC, neither takes a narrower resource.",
            findings=[*GRANT_ACTIONS, r"Resource::\*",
                      *(bucket_objects("Artifacts", prefix=p)
                        for p in (CAPTURE_PREFIX, BASELINE_PREFIX, REPORTS_PREFIX)),
                      r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/\*"],
        )

        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.job_definition = sagemaker.CfnDataQualityJobDefinition(
            self, "DataQuality",
            role_arn=self.role.role_arn,
            endpoint_name=endpoint_name,
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=image_uri,
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=f"{self.baseline_uri}constraints.json"),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=f"{self.baseline_uri}statistics.json"),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                ),
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                    s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                        local_path="/opt/ml/processing/output", s3_uri=self.reports_uri, s3_upload_mode="EndOfJob"),
                )],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1, instance_type=instance_type, volume_size_in_gb=20, volume_kms_key_id=key.key_arn),
            ),
            # The analyzer needs no internet: isolate it, inside the VPC.
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                    security_group_ids=[security_group.security_group_id], subnets=subnet_ids),
            ),
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=1800),
        )
        # SageMaker checks that the endpoint exists when the definition is created.
        self.job_definition.node.add_dependency(endpoint)
        self.job_definition.node.add_dependency(self.role.node.find_child("DefaultPolicy"))

        self.schedule = sagemaker.CfnMonitoringSchedule(
            self, "Schedule",
            monitoring_schedule_name=schedule_name,
            endpoint_name=endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                # No physical name for the definition (any change replaces it): read it off its ARN.
                monitoring_job_definition_name=Fn.select(1, Fn.split("/", self.job_definition.attr_job_definition_arn)),
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=HOURLY),
            ),
        )

        # -- drift -> retrain -----------------------------------------------------------------------
        dims = {"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name}
        self.feature_alarms = [
            cloudwatch.Alarm(
                self, f"Drift{i:02d}",
                alarm_description=f"{endpoint_name}: feature {feature!r} drifted from the training baseline",
                metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=f"feature_baseline_drift_{feature}",
                                         dimensions_map=dims, statistic="Maximum", period=Duration.hours(1)),
                threshold=drift_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for i, feature in enumerate(features)
        ]
        self.drift_alarm = cloudwatch.CompositeAlarm(
            self, "Drift",
            alarm_description=f"{endpoint_name}: live data drifted from the training baseline; starts retraining",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.feature_alarms),
        )
        self.retrain_rule = start_pipeline_rule(
            self, "RetrainOnDrift", pipeline_arn=pipeline_arn,
            description="Data drift alarm: retrain on fresh data",
            event_pattern={"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                           "resources": [self.drift_alarm.alarm_arn], "detail": {"state": {"value": ["ALARM"]}}},
        )
