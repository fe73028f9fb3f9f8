"""EventBridge rules and targets shared by the constructs: a Glue workflow target (aws-cdk-lib has no
L2 for it) and the rules that invoke the pipeline starter (infra/lambdas/start_pipeline).

Rules do not start the SageMaker pipeline themselves: a rule can only pass fixed parameters, so every
trigger would run on the same InputDataUrl. They invoke the starter, which snapshots the curated data
and starts an execution on that snapshot when something changed."""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct


@jsii.implements(events.IRuleTarget)
class GlueWorkflowTarget:
    """Sends the event to a Glue workflow whose start trigger is of type EVENT.

    The role lets EventBridge notify that one workflow and nothing else.
    """

    def __init__(self, scope: Construct, id_: str, *, workflow_arn: str) -> None:
        self.workflow_arn = workflow_arn
        self.role = iam.Role(scope, id_, assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                             description="EventBridge notifies the ETL workflow")
        self.role.add_to_policy(iam.PolicyStatement(actions=["glue:notifyEvent"], resources=[workflow_arn]))

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.workflow_arn, role=self.role)


def starter_rule(
    scope: Construct,
    id_: str,
    *,
    starter: lambda_.IFunction,
    description: str,
    event_pattern: Mapping[str, object] | None = None,
    schedule: str | None = None,
) -> events.Rule:
    """A rule that invokes the pipeline starter (`MlPipeline.starter`) on an event pattern or a
    schedule. The starter receives the event; it decides whether to start the pipeline.

    Invoked asynchronously: EventBridge retries delivery for two hours; the function's own retries
    and dead-letter queue take over from there. The permission for the rule to invoke the function
    is created beside the rule, so a rule in another stack (the drift alarm's) adds no dependency
    from the function's stack on its own.
    """
    if (event_pattern is None) == (schedule is None):
        raise ValueError(f"{id_}: give exactly one of event_pattern and schedule")
    pattern = None
    if event_pattern is not None:
        p = dict(event_pattern)
        pattern = events.EventPattern(source=p.pop("source", None), detail_type=p.pop("detail-type", None),
                                      resources=p.pop("resources", None), detail=p.pop("detail", None))
        if p:
            raise ValueError(f"{id_}: event pattern keys not supported here: {sorted(p)}")
    return events.Rule(
        scope, id_,
        description=description,
        event_pattern=pattern,
        schedule=events.Schedule.expression(schedule) if schedule is not None else None,
        targets=[targets.LambdaFunction(starter, retry_attempts=3, max_event_age=Duration.hours(2))],
    )
