"""Drift -> retrain: one alarm per feature on Model Monitor's drift metrics, a composite alarm over
them, and the EventBridge rule that runs the pipeline starter when it fires (the starter snapshots
the curated data and starts the pipeline only when there is new data)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.model_monitor.data_quality import METRICS_NAMESPACE


class DriftRetraining(Construct):
    """`feature_baseline_drift_<feature>` above `threshold` on any feature -> ALARM -> the starter.

    The composite alarm is the `Default` child: its logical id and its generated name (which the
    retrain rule matches on) are the ones from before the split.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint_name: str,
        schedule_name: str,
        features: Sequence[str],
        threshold: float,
        starter: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id_)
        dims = {"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name}
        self.feature_alarms = [
            cloudwatch.Alarm(
                self, f"Feature{i:02d}",
                alarm_description=f"{endpoint_name}: feature {feature!r} drifted from the serving version's baseline",
                metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=f"feature_baseline_drift_{feature}",
                                         dimensions_map=dims, statistic="Maximum", period=Duration.hours(1)),
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for i, feature in enumerate(features)
        ]
        self.alarm = cloudwatch.CompositeAlarm(
            self, "Default",
            alarm_description=f"{endpoint_name}: live data drifted from the serving version's baseline; "
                              "starts retraining",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.feature_alarms),
        )
        self.retrain_rule = events.Rule(
            self, "Retrain",
            description="Data drift alarm: retrain on fresh data",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                resources=[self.alarm.alarm_arn], detail={"state": {"value": ["ALARM"]}}),
            targets=[targets.LambdaFunction(starter, retry_attempts=3)],
        )
