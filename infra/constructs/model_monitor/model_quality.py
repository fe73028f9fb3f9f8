"""Model quality against ground truth: the job definition, its daily schedule, the quality alarm, and
retraining when it fires.

Labels arrive after the predictions: whoever learns them uploads them under
s3://<artefacts>/groundtruth/<endpoint>/yyyy/mm/dd/hh/*.jsonl in Model Monitor's ground-truth layout
({"groundTruthData": {"data": "yes", "encoding": "CSV"}, "eventMetadata": {"eventId": <the request's
InferenceId or event id>}, "eventVersion": "0"}). Each day the job merges the day-before's captured
predictions with their labels, computes the problem type's metrics, checks them against the serving
version's own constraints (model_quality_constraints.json, from its evaluate step) and publishes them
to CloudWatch (`aws/sagemaker/Endpoints/model-metrics`).

Where the prediction sits in a captured response: training_code/tabular/inference.py answers JSON
(`application/json`, the default accept) as {"predictions": [{"label": .., "probability": ..,
"probabilities": {..}}]} for classification and {"predictions": [{"prediction": ..}]} for regression.
The job reads the first record (ground truth is matched per request: one row per request). No
probability attribute: "probability" is the predicted label's, not the positive class's, so an AUC
computed from it would be wrong; the label metrics (accuracy, f1, ...) are exact.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnMapping, Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.data_lake import REPORTS_PREFIX, s3_uri
from infra.constructs.model_monitor.data_quality import GROUND_TRUTH_PREFIX, MODEL_METRICS_NAMESPACE
from infra.constructs.model_monitor.schedule import DAILY, MonitoringSchedule

_MQ = sagemaker.CfnModelQualityJobDefinition

# Per Model Monitor problem type: where the prediction is in the JSON response (the SDK documents the
# attribute as "Index or JSONpath to locate predicted label(s)"; these paths read the same in JSONPath
# and JMESPath, which the tests evaluate against inference.py's own output), and the
# live metric the alarm watches with its floor: below it the model fails whatever its baseline said.
INFERENCE_ATTRIBUTES: dict[str, str] = {
    "BinaryClassification": "predictions[0].label",
    "MulticlassClassification": "predictions[0].label",
    "Regression": "predictions[0].prediction",
}
QUALITY_FLOORS: dict[str, tuple[str, float]] = {
    "BinaryClassification": ("accuracy", 0.7),
    "MulticlassClassification": ("accuracy", 0.6),
    "Regression": ("r2", 0.3),
}
# Ground truth needs time to arrive: the daily job looks at the traffic of 48 to 24 hours ago.
START_OFFSET, END_OFFSET = "-PT48H", "-PT24H"


class ModelQualityJob(Construct):
    """The model-quality job definition (`Default`), its daily schedule, the alarm on the problem
    type's metric, and the rule that starts the pipeline starter when the alarm fires."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        schedule_name: str,
        problem_type: str,
        constraints_uri: str,
        role: iam.IRole,
        image_uri: str,
        instance_type: str,
        key: kms.IKey,
        artifacts: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        starter: lambda_.IFunction,
        floors: Mapping[str, tuple[str, float]] = QUALITY_FLOORS,
    ) -> None:
        super().__init__(scope, id_)
        self.ground_truth_uri = s3_uri(artifacts, f"{GROUND_TRUTH_PREFIX}{endpoint_name}/")
        by_problem = CfnMapping(self, "ByProblemType", mapping={
            problem: {"inference": INFERENCE_ATTRIBUTES[problem], "metric": floors[problem][0],
                      "floor": str(floors[problem][1])} for problem in INFERENCE_ATTRIBUTES})
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.job_definition = _MQ(
            self, "Default",
            role_arn=role.role_arn,
            endpoint_name=endpoint_name,
            model_quality_app_specification=_MQ.ModelQualityAppSpecificationProperty(
                image_uri=image_uri, problem_type=problem_type,
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            model_quality_baseline_config=_MQ.ModelQualityBaselineConfigProperty(
                constraints_resource=_MQ.ConstraintsResourceProperty(s3_uri=constraints_uri)),
            model_quality_job_input=_MQ.ModelQualityJobInputProperty(
                endpoint_input=_MQ.EndpointInputProperty(
                    endpoint_name=endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                    inference_attribute=by_problem.find_in_map(problem_type, "inference"),
                    start_time_offset=START_OFFSET,
                    end_time_offset=END_OFFSET,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                ),
                ground_truth_s3_input=_MQ.MonitoringGroundTruthS3InputProperty(s3_uri=self.ground_truth_uri),
            ),
            model_quality_job_output_config=_MQ.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[_MQ.MonitoringOutputProperty(s3_output=_MQ.S3OutputProperty(
                    local_path="/opt/ml/processing/output", s3_uri=s3_uri(artifacts, REPORTS_PREFIX),
                    s3_upload_mode="EndOfJob"))],
            ),
            job_resources=_MQ.MonitoringResourcesProperty(cluster_config=_MQ.ClusterConfigProperty(
                instance_count=1, instance_type=instance_type, volume_size_in_gb=20, volume_kms_key_id=key.key_arn)),
            network_config=_MQ.NetworkConfigProperty(
                enable_network_isolation=True,
                enable_inter_container_traffic_encryption=True,
                vpc_config=_MQ.VpcConfigProperty(security_group_ids=[security_group.security_group_id],
                                                 subnets=subnet_ids),
            ),
            stopping_condition=_MQ.StoppingConditionProperty(max_runtime_in_seconds=1800),
        )
        # SageMaker checks that the endpoint exists when the definition is created.
        self.job_definition.node.add_dependency(endpoint)
        default_policy = role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            self.job_definition.node.add_dependency(default_policy)
        self.schedule = MonitoringSchedule(
            self, "Schedule", schedule_name=schedule_name, endpoint_name=endpoint_name,
            job_definition_arn=self.job_definition.attr_job_definition_arn, monitoring_type="ModelQuality",
            expression=DAILY,
        )

        # L1: the metric and its floor depend on the ProblemType parameter (a mapping look-up).
        self.alarm = cloudwatch.CfnAlarm(
            self, "Alarm",
            alarm_description=f"{endpoint_name}: live model quality (against ground truth) fell below its floor; "
                              "starts retraining",
            namespace=MODEL_METRICS_NAMESPACE,
            metric_name=by_problem.find_in_map(problem_type, "metric"),
            dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name="Endpoint", value=endpoint_name),
                        cloudwatch.CfnAlarm.DimensionProperty(name="MonitoringSchedule", value=schedule_name)],
            statistic="Minimum",
            period=int(Duration.days(1).to_seconds()),
            evaluation_periods=1,
            threshold=Token.as_number(by_problem.find_in_map(problem_type, "floor")),
            comparison_operator="LessThanThreshold",
            treat_missing_data="notBreaching",
        )
        self.retrain_rule = events.Rule(
            self, "Retrain",
            description="Live model quality fell below its floor: retrain on fresh data",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                resources=[self.alarm.attr_arn], detail={"state": {"value": ["ALARM"]}}),
            targets=[targets.LambdaFunction(starter, retry_attempts=3)],
        )
