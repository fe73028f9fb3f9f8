"""Pulling container images from ECR with a job's or a model's execution role.

SageMaker pulls every image with the execution role it is given, AWS-owned framework and Model
Monitor images included: the role needs the ECR login (an action without a resource type) and the
image's manifest and layers in its repository.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def repository_arn(account: str, region: str, repository: str) -> str:
    return f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{repository}"


def grant_pull(role: iam.IRole, repositories: Sequence[str], *, sid: str) -> None:
    """Let `role` pull images from `repositories` (ARNs)."""
    if not repositories:
        raise ValueError(f"grant_pull({sid}): no repository")
    role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=list(PULL_ACTIONS),
                                                     resources=list(repositories)))
    role.add_to_principal_policy(iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"],
                                                     resources=["*"]))
