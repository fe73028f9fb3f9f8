"""Model Monitor on the endpoint: hourly data-quality checks against the pipeline's baseline.

The pipeline's `baseline` step writes statistics.json and constraints.json under
s3://<artefacts>/monitoring/baseline/; the schedule compares each hour of captured traffic with
them and writes its reports under monitoring/reports/. Model Monitor publishes each feature's
distance from the baseline as `feature_baseline_drift_<feature>`; one alarm per feature, and a
composite alarm over them: when it fires, an EventBridge rule starts the training pipeline.

    data_quality.py  DataQualityJob: the analyzer job definition and its role
    schedule.py      MonitoringSchedule: when it runs (hourly)
    drift.py         DriftRetraining: the drift alarms and the rule that starts retraining
    images.py        where the analyzer image lives, per region
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.model_monitor.data_quality import METRICS_NAMESPACE, DataQualityJob
from infra.constructs.model_monitor.drift import DriftRetraining
from infra.constructs.model_monitor.schedule import HOURLY, MonitoringSchedule

__all__ = ["HOURLY", "MAX_FEATURE_ALARMS", "METRICS_NAMESPACE", "DataQualityJob", "DriftRetraining", "ModelMonitor",
           "MonitoringSchedule", "monitored_features"]

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

        self.data_quality = DataQualityJob(
            self, "DataQuality", endpoint=endpoint, endpoint_name=endpoint_name, instance_type=instance_type,
            key=key, artifacts=artifacts, vpc=vpc, subnets=subnets, security_group=security_group,
        )
        self.schedule = MonitoringSchedule(
            self, "Schedule", schedule_name=schedule_name, endpoint_name=endpoint_name,
            job_definition=self.data_quality.job_definition,
        )
        self.drift = DriftRetraining(
            self, "Drift", endpoint_name=endpoint_name, schedule_name=schedule_name, features=features,
            threshold=drift_threshold, pipeline_arn=pipeline_arn,
        )
