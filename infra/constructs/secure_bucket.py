"""An S3 bucket with the settings every bucket of the platform must have."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import checkov_skip


class SecureBucket(s3.Bucket):
    """KMS-encrypted, versioned, private, TLS-only, access-logged.

    `removal_policy=DESTROY` also empties the bucket on deletion (a dev stage can be torn down);
    `RETAIN` keeps bucket and data when the stack goes.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        access_logs: s3.IBucket,
        removal_policy: RemovalPolicy,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        event_bridge: bool = False,
    ) -> None:
        super().__init__(
            scope,
            id_,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            # One data key per bucket, not per object: far fewer KMS calls (cost and throttling).
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{id_.lower()}/",
            lifecycle_rules=list(lifecycle_rules),
            event_bridge_enabled=event_bridge,
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )


class AccessLogBucket(s3.Bucket):
    """Target of the other buckets' server access logs.

    S3 server access logging delivers only to SSE-S3 buckets, so this one cannot use the KMS key.
    """

    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy, expire_after_days: int) -> None:
        super().__init__(
            scope,
            id_,
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(expire_after_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
        checkov_skip(self, "CKV_AWS_18",
                     "This is the access-log bucket itself: logging it into itself would log every delivery of "
                     "a log (a loop), and a second log bucket would only move the finding there.")
