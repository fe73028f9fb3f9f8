"""EventBridge targets aws-cdk-lib has no L2 for: a Glue workflow and a SageMaker pipeline."""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
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


def start_pipeline_rule(
    scope: Construct,
    id_: str,
    *,
    pipeline_arn: str,
    description: str,
    event_pattern: Mapping[str, object] | None = None,
    schedule: str | None = None,
    role: iam.IRole | None = None,
) -> events.CfnRule:
    """A rule that starts a SageMaker pipeline execution (with its default parameters) on an event
    pattern or a schedule.

    L1: the L2 rule target has no SageMaker pipeline target. Pass `role` to share one role between
    the rules of a stack; otherwise one is made, allowed to start this pipeline only.
    """
    if (event_pattern is None) == (schedule is None):
        raise ValueError(f"{id_}: give exactly one of event_pattern and schedule")
    if role is None:
        role = pipeline_starter_role(scope, f"{id_}Role", pipeline_arn=pipeline_arn)
    return events.CfnRule(
        scope,
        id_,
        description=description,
        event_pattern=dict(event_pattern) if event_pattern is not None else None,
        schedule_expression=schedule,
        state="ENABLED",
        targets=[events.CfnRule.TargetProperty(
            arn=pipeline_arn, id="pipeline", role_arn=role.role_arn,
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=3),
        )],
    )


def pipeline_starter_role(scope: Construct, id_: str, *, pipeline_arn: str) -> iam.Role:
    role = iam.Role(scope, id_, assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                    description="EventBridge starts the SageMaker training pipeline")
    role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]))
    return role
