"""When Model Monitor runs: a monitoring schedule for one job definition (data or model quality)."""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

HOURLY = "cron(0 * ? * * *)"
DAILY = "cron(0 0 ? * * *)"


class MonitoringSchedule(Construct):
    """Runs the job definition `job_definition_arn` (of `monitoring_type`: DataQuality, ModelQuality)
    against `endpoint_name`'s captured traffic on `expression` (hourly by default). The schedule is
    the `Default` child (its logical id is the one from before the split)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        schedule_name: str,
        endpoint_name: str,
        job_definition_arn: str,
        monitoring_type: str = "DataQuality",
        expression: str = HOURLY,
    ) -> None:
        super().__init__(scope, id_)
        self.schedule_name = schedule_name
        self.schedule = sagemaker.CfnMonitoringSchedule(
            self, "Default",
            monitoring_schedule_name=schedule_name,
            endpoint_name=endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                # No physical name for the definition (any change replaces it): read it off its ARN.
                monitoring_job_definition_name=Fn.select(1, Fn.split("/", job_definition_arn)),
                monitoring_type=monitoring_type,
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=expression),
            ),
        )
