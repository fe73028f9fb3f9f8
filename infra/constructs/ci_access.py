"""GitHub Actions access through OIDC: no long-lived keys, three narrowly scoped roles per stage.

- `deploy_role`: `cdk deploy` (deploy-infra.yml, and train.yml's deploy of the ml-pipeline stack).
  Its only permission is sts:AssumeRole on its account's CDK bootstrap roles (deploy, file and
  image publishing, lookup), which do the deployment: what CI may change is what CloudFormation,
  through the bootstrap's execution role, may change, and every change goes through a stack.
- `push_role`: after that deployment, start the pipeline through the starter Lambda (which snapshots
  the curated data and passes the champion and the registered digests, infra/lambdas/start_pipeline)
  and follow the execution. It uploads nothing and edits no pipeline: the pipeline and its code are
  the ml-pipeline stack's, and an UpdatePipeline from CI would drift from CloudFormation.
- `read_only_role`: pull requests. It reads the pipeline and its executions and this stage's
  CloudFormation stacks (for a diff against what is deployed).

Token subjects. A job bound to a GitHub environment presents `repo:<owner>/<name>:environment:<env>`
and no branch, so the deploy and push roles trust exactly their stage's environment (dev: `dev`,
prod: `production`, infra/config.py `github_environment`): the environment's own rules decide who
may use it (deployment branches: main; prod: required reviewers). A pull request presents
`repo:<owner>/<name>:pull_request`.

The account's GitHub OIDC provider is created here only when `create_provider` says so (an
account holds one: infra/config.py `plan_github_oidc` decides which stage creates it); otherwise
it is imported, by the ARN given or by the fixed ARN every account gives it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnOutput, DefaultStackSynthesizer, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.nag import acknowledge

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The context key CDK reads the bootstrap qualifier from (cdk.json); unset: CDK's default.
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"
# The roles `cdk bootstrap` creates that the CDK CLI assumes for a deployment.
BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")


def bootstrap_qualifier(scope: Construct) -> str:
    qualifier = scope.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT)
    return str(qualifier) if qualifier else DefaultStackSynthesizer.DEFAULT_QUALIFIER


def bootstrap_role_arns(qualifier: str) -> list[str]:
    """The CDK bootstrap roles of the deploying stack's account and region."""
    return [f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/cdk-{qualifier}-{kind}-role-{Aws.ACCOUNT_ID}-{Aws.REGION}"
            for kind in BOOTSTRAP_ROLES]


class CiAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        github_repo: str,
        github_environment: str,
        create_provider: bool,
        provider_arn: str | None,
        pipeline_name: str,
        starter: lambda_.IFunction,
        stack_name_prefix: str,
        qualifier: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        if create_provider and provider_arn is not None:
            raise ValueError("CiAccess: create the GitHub OIDC provider or import provider_arn, not both")
        if create_provider:
            self.provider: iam.IOidcProvider | iam.IOpenIdConnectProvider = iam.OidcProviderNative(
                self, "GitHub", url=GITHUB_OIDC_URL, client_ids=["sts.amazonaws.com"])
            arn = self.provider.oidc_provider_arn
        else:
            # IAM names a provider after its URL: in any account this is its ARN.
            arn = provider_arn or stack.format_arn(service="iam", region="", resource="oidc-provider",
                                                   resource_name=GITHUB_OIDC_HOST,
                                                   arn_format=ArnFormat.SLASH_RESOURCE_NAME)
            self.provider = iam.OpenIdConnectProvider.from_open_id_connect_provider_arn(self, "GitHub", arn)

        def github(subject: str) -> iam.WebIdentityPrincipal:
            return iam.WebIdentityPrincipal(arn, conditions={
                "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                                 f"{GITHUB_OIDC_HOST}:sub": f"repo:{github_repo}:{subject}"},
            })

        environment = f"environment:{github_environment}"
        pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        executions_arn = f"{pipeline_arn}/execution/*"
        executions_finding = (r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:pipeline/"
                              + pipeline_name + r"/execution/\*")

        # -- the GitHub environment: cdk deploy, through the bootstrap roles only ----------------------
        self.qualifier = qualifier or bootstrap_qualifier(self)
        self.deploy_role = iam.Role(
            self, "DeployRole", assumed_by=github(environment), max_session_duration=Duration.hours(1),
            description=f"GitHub Actions, {github_repo} environment {github_environment}: cdk deploy "
                        "(assumes the CDK bootstrap roles, nothing else)",
        )
        self.deploy_role.add_to_policy(iam.PolicyStatement(
            sid="AssumeTheCdkBootstrapRoles", actions=["sts:AssumeRole"],
            resources=bootstrap_role_arns(self.qualifier),
        ))

        # -- the same environment: start the pipeline through its starter, follow the execution ----
        self.push_role = iam.Role(
            self, "PushRole", assumed_by=github(environment), max_session_duration=Duration.hours(1),
            description=f"GitHub Actions, {github_repo} environment {github_environment}: start the pipeline "
                        "through its starter and follow the execution",
        )
        # The starter decides the run's parameters (data snapshot, champion, registered digests) and
        # whether there is anything new to train on: one place for schedule, events and CI alike.
        # The unqualified function only (CDK's grant_invoke would add every version, function:name:*).
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="InvokeTheStarter", actions=["lambda:InvokeFunction"], resources=[starter.function_arn],
        ))
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="ReadThePipeline", actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions"],
            resources=[pipeline_arn],
        ))
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="FollowItsExecutions",
            actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"],
            resources=[executions_arn],
        ))
        acknowledge(
            self.push_role, "AwsSolutions-IAM5",
            "Execution ARNs are generated per run of this one pipeline: it reads the executions of this "
            "pipeline only.",
            findings=[executions_finding],
        )

        # -- pull requests: read only -------------------------------------------------------------
        self.read_only_role = iam.Role(
            self, "ReadOnlyRole", assumed_by=github("pull_request"), max_session_duration=Duration.hours(1),
            description=f"GitHub Actions, {github_repo} pull requests: read the pipeline and the stacks",
        )
        self.read_only_role.add_to_policy(iam.PolicyStatement(
            sid="ReadThePipeline",
            actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions"],
            resources=[pipeline_arn],
        ))
        self.read_only_role.add_to_policy(iam.PolicyStatement(
            sid="ReadItsExecutions",
            actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"],
            resources=[executions_arn],
        ))
        self.read_only_role.add_to_policy(iam.PolicyStatement(
            sid="ReadTheStageStacks",
            actions=["cloudformation:DescribeStacks", "cloudformation:GetTemplate",
                     "cloudformation:DescribeStackResources", "cloudformation:ListStackResources"],
            resources=[stack.format_arn(service="cloudformation", resource="stack",
                                        resource_name=f"{stack_name_prefix}-*/*")],
        ))
        acknowledge(
            self.read_only_role, "AwsSolutions-IAM5",
            "Read-only: execution ARNs are generated per run of this one pipeline, and the stage's stacks "
            "are matched by their name prefix (their ARNs end in a generated id).",
            findings=[executions_finding,
                      r"Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/"
                      + stack_name_prefix + r"-\*/\*"],
        )

        CfnOutput(self, "GitHubOidcProviderArn", value=arn,
                  description="created by this stack" if create_provider else
                  "imported: this stack does not create it (see create_github_oidc_provider)")
        CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn,
                  description=f"CDK_DEPLOY_ROLE_ARN of the GitHub environment {github_environment} (cdk deploy)")
        CfnOutput(self, "PushRoleArn", value=self.push_role.role_arn,
                  description=f"MLOPS_CI_ROLE_ARN of the GitHub environment {github_environment} (start the pipeline)")
        CfnOutput(self, "StarterFunctionName", value=starter.function_name,
                  description=f"MLOPS_STARTER_FUNCTION of the GitHub environment {github_environment}")
        CfnOutput(self, "ReadOnlyRoleArn", value=self.read_only_role.role_arn,
                  description="role-to-assume for pull-request checks")
