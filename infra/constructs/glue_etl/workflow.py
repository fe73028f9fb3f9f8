"""What starts the ETL: one Glue workflow (job, then crawler) and the two EventBridge rules that feed it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.rule_targets import GlueWorkflowTarget


class EtlWorkflow(Construct):
    """The workflow (the `Default` child, so its logical id and its triggers' are those from before
    the split): an EVENT trigger that batches events into one job run, and a conditional trigger
    that runs the crawler after a successful one; "Object Created" in the raw bucket and the
    schedule both reach it through EventBridge."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dataset: str,
        job: glue.IJob,
        crawler: glue.CfnCrawler,
        raw: s3.IBucket,
        schedule: str,
        batch_size: int,
        batch_window_s: int,
    ) -> None:
        super().__init__(scope, id_)
        self.workflow = glue.Workflow(self, "Default", max_concurrent_runs=1,
                                      description=f"ETL of {dataset}: job, then crawler")
        self.workflow.add_event_trigger(
            "OnEvents",
            actions=[glue.Action.job(job)],
            event_batching_condition=glue.EventBatchingCondition(
                batch_size=batch_size, batch_window=Duration.seconds(batch_window_s)
            ),
            description="New raw objects or the schedule (through EventBridge)",
        )
        self.workflow.add_conditional_trigger(
            "AfterEtl",
            predicate=glue.Predicate(conditions=[glue.Condition.job(job, state=glue.JobState.SUCCEEDED)]),
            actions=[glue.Action.crawler(crawler)],
            start_on_creation=True,
            description="Crawl the curated zone after a successful ETL run",
        )
        target = GlueWorkflowTarget(self, "EventsRole", workflow_arn=self.workflow.workflow_arn)
        self.on_raw_data = events.Rule(
            self,
            "OnRawData",
            description="New raw object: start (a batch of) the ETL",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [raw.bucket_name]}},
            ),
            targets=[target],
        )
        self.on_schedule = events.Rule(
            self, "OnSchedule", description="Scheduled ETL run",
            schedule=events.Schedule.expression(schedule), targets=[target],
        )
