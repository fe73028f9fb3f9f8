"""What every Glue role needs: its own log groups under /aws-glue/, encrypted with the lake key."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

# The cdk-nag finding of the statement below (Glue names its log groups per job or crawler).
GLUE_LOGS = r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/(jobs|crawlers)\*"


def grant_glue_logs(role: iam.Role, key: kms.IKey, kind: str) -> None:
    """Glue writes its logs to /aws-glue/<kind>* groups (kind: jobs or crawlers), encrypted with `key`."""
    key.grant_encrypt_decrypt(role)
    role.add_to_policy(iam.PolicyStatement(
        sid="GlueLogs",
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
        resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/{kind}*"],
    ))
