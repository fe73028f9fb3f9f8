"""GitHub Actions access through OIDC: no long-lived keys, two narrowly scoped roles.

- `push_role`: assumable only from the main branch of the configured repository. It uploads the
  code package under code/ in the artefacts bucket (after a HeadObject that must tell a missing key
  from a forbidden one), a pipeline definition too large to send inline under the pipeline's
  definitions/ prefix, creates or updates the pipeline (passing the pipeline's own execution role),
  starts it and reads its executions. Nothing else.
- `read_only_role`: assumable from pull requests of that repository. It reads the pipeline and its
  executions and this stage's CloudFormation stacks (for a diff against what is deployed).

The account's GitHub OIDC provider is created here only when `create_provider` says so (an
account holds one: infra/config.py `plan_github_oidc` decides which stage creates it); otherwise
it is imported, by the ARN given or by the fixed ARN every account gives it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.data_lake import CODE_PREFIX, PIPELINES_PREFIX
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


class CiAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        github_repo: str,
        create_provider: bool,
        provider_arn: str | None,
        artifacts: s3.IBucket,
        pipeline_name: str,
        pipeline_role_arn: str,
        stack_name_prefix: str,
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

        pipeline_arn = stack.format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name)
        executions_arn = f"{pipeline_arn}/execution/*"

        # -- main branch: ship code, upsert and start the pipeline --------------------------------
        self.push_role = iam.Role(
            self, "PushRole", assumed_by=github("ref:refs/heads/main"), max_session_duration=Duration.hours(1),
            description=f"GitHub Actions, {github_repo} main branch: upload code, upsert and start the pipeline",
        )
        # pipelines/sagemaker/api.py upload_code: HeadObject (s3:GetObject), then PutObject when the key
        # is missing, which it learns from a 404. S3 answers 404 rather than 403 only to a caller that
        # may list the bucket; its check carries no s3:prefix (the request is a HEAD, not a list), so
        # an s3:prefix condition here would bring the 403 back. Key names only, not contents.
        # upsert_pipeline: a definition over 100 KB goes to S3 under the pipeline's definitions/ prefix,
        # from where SageMaker reads it (with the caller's rights, hence the read and decrypt).
        definitions = f"{PIPELINES_PREFIX}{pipeline_name}/definitions/"
        artifacts.grant_put(self.push_role, f"{CODE_PREFIX}*")
        artifacts.grant_put(self.push_role, f"{definitions}*")
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="HeadTheCodeAndReadDefinitions", actions=["s3:GetObject"],
            resources=[artifacts.arn_for_objects(f"{CODE_PREFIX}*"), artifacts.arn_for_objects(f"{definitions}*")],
        ))
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="MissingKeysAnswer404", actions=["s3:ListBucket"], resources=[artifacts.bucket_arn],
        ))
        if artifacts.encryption_key is not None:
            artifacts.encryption_key.grant_decrypt(self.push_role)
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="UpsertAndStartThePipeline",
            actions=["sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:DescribePipeline",
                     "sagemaker:StartPipelineExecution", "sagemaker:AddTags", "sagemaker:ListPipelineExecutions"],
            resources=[pipeline_arn],
        ))
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="FollowItsExecutions",
            actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"],
            resources=[executions_arn],
        ))
        self.push_role.add_to_policy(iam.PolicyStatement(
            sid="PassThePipelineRole", actions=["iam:PassRole"], resources=[pipeline_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        acknowledge(
            self.push_role, "AwsSolutions-IAM5",
            "Uploads go under the code/ prefix (keys are content hashes) and this pipeline's definitions/ "
            "prefix only; execution ARNs are generated per run of this one pipeline.",
            findings=[*GRANT_ACTIONS, bucket_objects("Artifacts", prefix=CODE_PREFIX),
                      bucket_objects("Artifacts", prefix=definitions),
                      r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:pipeline/"
                      + pipeline_name + r"/execution/\*"],
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
            findings=[r"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:pipeline/"
                      + pipeline_name + r"/execution/\*",
                      r"Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/"
                      + stack_name_prefix + r"-\*/\*"],
        )

        CfnOutput(self, "GitHubOidcProviderArn", value=arn,
                  description="created by this stack" if create_provider else
                  "imported: this stack does not create it (see create_github_oidc_provider)")
        CfnOutput(self, "PushRoleArn", value=self.push_role.role_arn,
                  description="role-to-assume for pushes to main (aws-actions/configure-aws-credentials)")
        CfnOutput(self, "ReadOnlyRoleArn", value=self.read_only_role.role_arn,
                  description="role-to-assume for pull-request checks")
