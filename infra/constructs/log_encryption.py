"""CloudWatch Logs log groups encrypted with a customer managed KMS key.

CloudWatch Logs encrypts with the key as the regional service principal logs.<region>.amazonaws.com,
so the key policy must let that principal use it (an IAM grant to a role is no use here). The
statement is scoped by the encryption context CloudWatch Logs sends, the log group's ARN: naming
the group keeps one key from serving every log group of the account. The name is fixed for that
reason (a generated name would make the key policy and the log group depend on each other).
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct


def allow_log_group(key: kms.IKey, log_group_name: str) -> bool:
    """Let CloudWatch Logs encrypt and decrypt the log group `log_group_name` with `key`.
    False when the key's policy is not in this app (an imported key)."""
    arn = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}"
    return key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],  # in a key policy: this key
        conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arn}},
    )).statement_added


def encrypted_log_group(scope: Construct, id_: str, *, key: kms.IKey, log_group_name: str,
                        retention: logs.RetentionDays, removal_policy: RemovalPolicy) -> logs.LogGroup:
    """A log group named `log_group_name`, encrypted with `key`, whose policy is extended for it
    (a key of another stack of the app: in that stack; a key imported by ARN cannot be: refused)."""
    if not allow_log_group(key, log_group_name):
        raise ValueError(f"{scope.node.path}/{id_}: the policy of key {key.node.path} cannot be extended "
                         "(imported): let logs.<region>.amazonaws.com use it where it is defined")
    return logs.LogGroup(scope, id_, log_group_name=log_group_name, encryption_key=key, retention=retention,
                         removal_policy=removal_policy)
