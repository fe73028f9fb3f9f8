"""The data lake: one customer-managed key, the zone buckets, their access logs and the Glue database."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.secure_bucket import AccessLogBucket, SecureBucket
from infra.nag import acknowledge

# Fixed prefixes of the artefacts bucket, shared with the pipeline and the monitor (a file contract).
CODE_PREFIX = "code/"
PIPELINES_PREFIX = "pipelines/"
BASELINE_PREFIX = "monitoring/baseline/"
REPORTS_PREFIX = "monitoring/reports/"
CAPTURE_PREFIX = "datacapture/"
ETL_REPORTS_PREFIX = "etl/reports/"
# The tag the ETL puts on each raw object once its ledger entry is written (training_code/spark_etl/
# ledger.py, PROCESSED_TAG: the same pair, checked by a test): only such objects are archived.
PROCESSED_TAG = ("mlops:processed", "true")


class DataLake(Construct):
    """Raw, curated, quarantine and artefacts zones, encrypted with one rotating customer key.

    Raw data moves to S3 Intelligent-Tiering, and to Glacier Deep Archive `processed_raw_archive_after_days`
    after it was written once the ETL has processed it (tagged PROCESSED_TAG); quarantined rows and
    captured traffic move to infrequent access. Every zone keeps old object versions for
    `noncurrent_days` and then expires them.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        removal_policy: RemovalPolicy,
        database_name: str,
        infrequent_access_after_days: int,
        noncurrent_days: int,
        access_log_days: int,
        # The stage's value comes from infra/config.py (StageConfig.processed_raw_archive_after_days).
        processed_raw_archive_after_days: int = 180,
    ) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self,
            "Key",
            description="MLOps data lake: buckets, Glue, SageMaker volumes and outputs, logs",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(7 if removal_policy == RemovalPolicy.DESTROY else 30),
        )
        # CloudWatch Logs encrypts the Glue and Lambda log groups with this key; the service may use
        # it for log groups of this account and region only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    }
                },
            )
        )

        self.access_logs = AccessLogBucket(
            self, "AccessLogs", removal_policy=removal_policy, expire_after_days=access_log_days
        )
        expire_old_versions = s3.LifecycleRule(
            id="expire-noncurrent-versions",
            noncurrent_version_expiration=Duration.days(noncurrent_days),
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )

        def zone(name: str, *rules: s3.LifecycleRule, event_bridge: bool = False) -> SecureBucket:
            return SecureBucket(
                self, name, key=self.key, access_logs=self.access_logs, removal_policy=removal_policy,
                lifecycle_rules=(expire_old_versions, *rules), event_bridge=event_bridge,
            )

        # Raw objects landing here start the ETL (through EventBridge). The ETL reads each raw object
        # once: its ledger (<curated>/_ledger/) holds what it has processed, and after writing a ledger
        # entry it tags those objects PROCESSED_TAG. The pipeline reads curated data, never raw. So an
        # object may go to an archive class once tagged, and only then: an untagged object may still be
        # unread, and reading an archived one fails with InvalidObjectState until someone restores it.
        # Deep Archive rather than Glacier Flexible Retrieval: Intelligent-Tiering already keeps data
        # nobody reads in its Archive Instant Access tier for about the Flexible Retrieval price; the
        # saving is in Deep Archive, and raw data is read again only to reprocess history (a restore of
        # 12 to 48 hours, planned). Intelligent-Tiering without archive configurations moves each object
        # between tiers that are all read at once, with no retrieval fee.
        self.raw = zone(
            "Raw",
            s3.LifecycleRule(
                id="raw-to-intelligent-tiering",
                transitions=[s3.Transition(storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                                           transition_after=Duration.days(0))],
            ),
            s3.LifecycleRule(
                id="archive-processed-raw",
                tag_filters={PROCESSED_TAG[0]: PROCESSED_TAG[1]},
                transitions=[s3.Transition(storage_class=s3.StorageClass.DEEP_ARCHIVE,
                                           transition_after=Duration.days(processed_raw_archive_after_days))],
            ),
            event_bridge=True,
        )
        self.curated = zone("Curated")
        self.quarantine = zone(
            "Quarantine",
            s3.LifecycleRule(
                id="quarantine-to-infrequent-access",
                transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                           transition_after=Duration.days(infrequent_access_after_days))],
            ),
        )
        self.artifacts = zone(
            "Artifacts",
            s3.LifecycleRule(
                id="datacapture-to-infrequent-access",
                prefix=CAPTURE_PREFIX,
                transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                           transition_after=Duration.days(infrequent_access_after_days))],
            ),
        )

        # S3 -> EventBridge notifications are configured by a CDK-provided Lambda-backed resource.
        handler = next((c for c in Stack.of(self).node.children
                        if c.node.id.startswith("BucketNotificationsHandler")), None)
        if handler is not None:
            acknowledge(handler, "AwsSolutions-IAM4",
                        "CDK's bucket-notifications handler (runs once per deployment to switch on EventBridge "
                        "notifications of the raw bucket) uses the AWS managed basic-execution policy for its logs.",
                        findings=[r"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])

        # A readable name: analysts query it by name in Athena.
        self.database_name = database_name
        self.database = glue.Database(
            self,
            "Database",
            database_name=database_name,
            description="Curated zone of the MLOps data lake (tables kept up to date by the crawler)",
            removal_policy=removal_policy,
        )

    @property
    def zones(self) -> dict[str, s3.Bucket]:
        return {"raw": self.raw, "curated": self.curated, "quarantine": self.quarantine,
                "artifacts": self.artifacts}


def grant_volume_encryption(key: kms.IKey, role: iam.IRole) -> None:
    """`role` creates SageMaker jobs or endpoint configs whose volumes `key` encrypts (VolumeKmsKeyId,
    an endpoint config's KmsKeyId): SageMaker then creates a KMS grant for the instances with the
    caller's rights, and describes the key first. The grant may only be for an AWS resource."""
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="GrantTheKeyToVolumes", actions=["kms:CreateGrant"], resources=[key.key_arn],
        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
    ))
    role.add_to_principal_policy(iam.PolicyStatement(sid="DescribeTheKey", actions=["kms:DescribeKey"],
                                                     resources=[key.key_arn]))


def s3_uri(bucket: s3.IBucket, prefix: str = "") -> str:
    return f"s3://{bucket.bucket_name}/{prefix}"
