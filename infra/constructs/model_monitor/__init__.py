"""Model Monitor on the endpoint: data quality hourly, model quality daily, each against the
baselines of the version that is serving.

The serving version's baselines are the serving stack's parameters (set from the model package's
DriftCheckBaselines when the version is approved, infra/constructs/serving.py): the data-quality
schedule compares each hour of captured traffic with that version's statistics.json and
constraints.json, the model-quality schedule compares each day of predictions, merged with the
labels that arrived since (groundtruth/<endpoint>/), with its model-quality constraints. Reports go
under monitoring/reports/. Model Monitor publishes each feature's distance from the baseline as
`feature_baseline_drift_<feature>`; one alarm per feature, and a composite alarm over them. When it,
or the model-quality alarm, fires, an EventBridge rule runs the pipeline starter
(infra/lambdas/start_pipeline), which retrains on new data.

    data_quality.py   DataQualityJob: the analyzer job definition and the monitors' role
    model_quality.py  ModelQualityJob: job definition, daily schedule, quality alarm, retraining
    schedule.py       MonitoringSchedule: when a job definition runs
    drift.py          DriftRetraining: the drift alarms and the rule that starts retraining
    images.py         where the analyzer image lives, per region
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.model_monitor.data_quality import (
    GROUND_TRUTH_PREFIX,
    METRICS_NAMESPACE,
    MODEL_METRICS_NAMESPACE,
    DataQualityJob,
)
from infra.constructs.model_monitor.drift import DriftRetraining
from infra.constructs.model_monitor.model_quality import ModelQualityJob
from infra.constructs.model_monitor.schedule import DAILY, HOURLY, MonitoringSchedule

__all__ = ["DAILY", "GROUND_TRUTH_PREFIX", "HOURLY", "MAX_FEATURE_ALARMS", "METRICS_NAMESPACE",
           "MODEL_METRICS_NAMESPACE", "DataQualityJob", "DriftRetraining", "ModelMonitor", "ModelQualityJob",
           "MonitoringSchedule", "monitored_features"]

MAX_FEATURE_ALARMS = 50  # a composite alarm's rule stays readable (and under its size limit)


def monitored_features(spec: Path) -> list[str]:
    """The features the model learns from, as the dataset spec names them (the target is not one)."""
    data = json.loads(spec.read_text(encoding="utf-8"))
    target = data.get("target")
    return [c["name"] for c in data.get("columns", []) if c.get("feature", True) and c["name"] != target]


class ModelMonitor(Construct):
    """Data-quality job definition, hourly schedule, drift alarms and retraining on drift; the
    model-quality job definition, daily schedule, quality alarm and retraining on it.

    `baseline_*` and `model_quality_constraints_uri` are the serving version's (stack parameters);
    `starter` is the pipeline starter Lambda (`MlPipeline.starter`) the retrain rules run.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        schedule_name: str,
        model_quality_schedule_name: str,
        baseline_statistics_uri: str,
        baseline_constraints_uri: str,
        model_quality_constraints_uri: str,
        problem_type: str,
        pipeline_name: str,
        features: Sequence[str],
        drift_threshold: float,
        instance_type: str,
        key: kms.IKey,
        artifacts: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        starter: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id_)
        if not features:
            raise ValueError("ModelMonitor: the dataset spec declares no feature to monitor")
        if len(features) > MAX_FEATURE_ALARMS:
            raise ValueError(f"ModelMonitor: {len(features)} features; at most {MAX_FEATURE_ALARMS} drift alarms")

        self.data_quality = DataQualityJob(
            self, "DataQuality", endpoint=endpoint, endpoint_name=endpoint_name,
            baseline_statistics_uri=baseline_statistics_uri, baseline_constraints_uri=baseline_constraints_uri,
            pipeline_name=pipeline_name, instance_type=instance_type,
            key=key, artifacts=artifacts, vpc=vpc, subnets=subnets, security_group=security_group,
        )
        self.schedule = MonitoringSchedule(
            self, "Schedule", schedule_name=schedule_name, endpoint_name=endpoint_name,
            job_definition_arn=self.data_quality.job_definition.attr_job_definition_arn,
        )
        self.drift = DriftRetraining(
            self, "Drift", endpoint_name=endpoint_name, schedule_name=schedule_name, features=features,
            threshold=drift_threshold, starter=starter,
        )
        self.model_quality = ModelQualityJob(
            self, "ModelQuality", endpoint=endpoint, endpoint_name=endpoint_name,
            schedule_name=model_quality_schedule_name, problem_type=problem_type,
            constraints_uri=model_quality_constraints_uri, role=self.data_quality.role,
            image_uri=self.data_quality.image_uri, instance_type=instance_type, key=key, artifacts=artifacts,
            vpc=vpc, subnets=subnets, security_group=security_group, starter=starter,
        )
