"""The Glue ETL: training_code/etl.py as a Glue 5 PySpark job, a crawler, and what starts them.

Start: one Glue workflow whose start trigger is an EventBridge (EVENT) trigger. Two EventBridge
rules feed it: "Object Created" in the raw bucket and the ETL schedule. Glue batches the events
(N objects or W seconds, whichever first), so a burst of uploads makes one run, not one per file;
the schedule goes through the same door, so there is one path to reason about and no Lambda or
Step Functions in between. After a successful run the workflow runs the crawler over the curated
zone, which keeps the Glue database's tables up to date.
"""

from __future__ import annotations

import ast
import atexit
import json
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.data_lake import ETL_REPORTS_PREFIX, DataLake, s3_uri
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects
from infra.rule_targets import GlueWorkflowTarget
from pipelines.paths import TRAINING_CODE

ETL_SCRIPT = TRAINING_CODE / "etl.py"
DEFAULT_SPEC = TRAINING_CODE / "specs" / "churn.json"
_GLUE_LOGS = r"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/(jobs|crawlers)\*"


def local_modules(script: Path, root: Path = TRAINING_CODE) -> list[Path]:
    """The modules of `root` that `script` imports, directly or through each other (sorted).

    Glue runs the script alone: every flat module it imports must ship as --extra-py-files.
    """
    found: set[Path] = set()
    todo = [script]
    while todo:
        tree = ast.parse(todo.pop().read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            for name in names:
                candidate = root / f"{name}.py"
                if candidate.is_file() and candidate != script and candidate not in found:
                    found.add(candidate)
                    todo.append(candidate)
    return sorted(found)


def modules_zip(modules: Sequence[Path]) -> Path:
    """The modules in one deterministic zip (fixed times and order), in a folder removed at exit.

    Glue puts an --extra-py-files zip on the Python path; single .py files would arrive under
    their asset names (<hash>.py) and could not be imported by name.
    """
    folder = Path(tempfile.mkdtemp(prefix="mlops-glue-modules-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = folder / "etl_modules.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for module in sorted(modules, key=lambda m: m.name):
            info = zipfile.ZipInfo(module.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, module.read_bytes())
    return target


def dataset_name(spec: Path) -> str:
    return str(json.loads(spec.read_text(encoding="utf-8")).get("name", "dataset"))


class GlueEtl(Construct):
    """The ETL job (own least-privilege role, encrypted with the lake key), crawler and triggers."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lake: DataLake,
        schedule: str,
        workers: int,
        batch_size: int,
        batch_window_s: int,
        removal_policy: RemovalPolicy,
        spec: Path = DEFAULT_SPEC,
    ) -> None:
        super().__init__(scope, id_)
        name = dataset_name(spec)
        self.raw_uri = s3_uri(lake.raw)
        self.curated_uri = s3_uri(lake.curated, f"{name}/")
        self.quarantine_uri = s3_uri(lake.quarantine, f"{name}/")
        self.report_uri = s3_uri(lake.artifacts, f"{ETL_REPORTS_PREFIX}{name}/")

        # Encrypts what Glue writes itself: S3 output, its CloudWatch logs, the job bookmarks.
        self.security_configuration = glue.SecurityConfiguration(
            self,
            "Encryption",
            s3_encryption=glue.S3Encryption.kms(lake.key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(lake.key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(lake.key),
            removal_policy=removal_policy,
        )

        # -- the job ----------------------------------------------------------------------------
        self.job_role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                                 description="Glue ETL job: read raw, write curated/quarantine/report")
        lake.raw.grant_read(self.job_role)
        lake.curated.grant_read_write(self.job_role, f"{name}/*")
        lake.quarantine.grant_read_write(self.job_role, f"{name}/*")
        lake.artifacts.grant_read_write(self.job_role, f"{ETL_REPORTS_PREFIX}{name}/*")
        self._grant_glue_logs(self.job_role, lake.key, "jobs")
        acknowledge(
            self.job_role, "AwsSolutions-IAM5",
            "The job reads every raw object and writes only under its data set's prefix of the curated and "
            "quarantine zones and of the ETL reports; Glue names its log groups per job under /aws-glue/jobs.",
            findings=[*GRANT_ACTIONS, bucket_objects("Raw"), bucket_objects("Curated", "Quarantine", prefix=f"{name}/"),
                      bucket_objects("Artifacts", prefix=f"{ETL_REPORTS_PREFIX}{name}/"), _GLUE_LOGS],
        )

        # File assets, read through Code.from_bucket so the role may read these three objects only.
        self.modules = local_modules(ETL_SCRIPT)
        script = s3_assets.Asset(self, "Script", path=str(ETL_SCRIPT))
        modules = s3_assets.Asset(self, "Modules", path=str(modules_zip(self.modules)))
        spec_file = s3_assets.Asset(self, "Spec", path=str(spec))
        # Glue copies an --extra-files object into the working directory under its key's base
        # name, which for an asset is <hash>.json: that is the name the script is given.
        self.spec_name = spec_file.s3_object_key.rsplit("/", 1)[-1]

        def code(asset: s3_assets.Asset) -> glue.Code:
            return glue.Code.from_bucket(asset.bucket, asset.s3_object_key)

        self.job = glue.PySparkEtlJob(
            self,
            "Job",
            role=self.job_role,
            glue_version=glue.GlueVersion.V5_0,
            script=code(script),
            extra_python_files=[code(modules)],
            extra_files=[code(spec_file)],
            worker_configuration=glue.WorkerConfiguration(worker_type=glue.WorkerType.G_1X,
                                                          number_of_workers=workers),
            max_concurrent_runs=1,
            max_retries=1,
            timeout=Duration.hours(2),
            security_configuration=self.security_configuration,
            continuous_logging=glue.ContinuousLoggingProps(enabled=True),
            description=f"Raw to curated for the {name} data set (training_code/etl.py)",
            default_arguments={
                "--raw_path": self.raw_uri,
                "--curated_path": self.curated_uri,
                "--quarantine_path": self.quarantine_uri,
                "--report_path": self.report_uri,
                "--spec_path": self.spec_name,
                # etl.py calls job.init/job.commit; its re-runs are idempotent through the partition
                # overwrite, and bookmarks record each run for any DynamicFrame source added later.
                "--job-bookmark-option": "job-bookmark-enable",
            },
        )

        # -- the crawler ------------------------------------------------------------------------
        self.crawler_role = iam.Role(self, "CrawlerRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                                     description="Glue crawler over the curated zone")
        lake.curated.grant_read(self.crawler_role, f"{name}/*")
        self._grant_glue_logs(self.crawler_role, lake.key, "crawlers")
        database = lake.database
        acknowledge(
            self.crawler_role, "AwsSolutions-IAM5",
            "The crawler reads its data set's prefix of the curated zone and creates or updates the tables "
            "of the lake database only (their names come from the data); Glue names its log groups under "
            "/aws-glue/crawlers.",
            findings=[*GRANT_ACTIONS, bucket_objects("Curated", prefix=f"{name}/"), _GLUE_LOGS,
                      rf"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{lake.database_name}/\*"],
        )
        self.crawler_role.add_to_policy(iam.PolicyStatement(
            sid="CatalogTablesOfTheLakeDatabase",
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                     "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                     "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition"],
            resources=[
                Stack.of(self).format_arn(service="glue", resource="catalog"),
                database.database_arn,
                Stack.of(self).format_arn(service="glue", resource="table",
                                          resource_name=f"{lake.database_name}/*"),
            ],
        ))
        self.crawler = glue.CfnCrawler(
            self,
            "Crawler",
            role=self.crawler_role.role_arn,
            database_name=lake.database_name,
            description=f"Tables of the curated {name} data",
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[glue.CfnCrawler.S3TargetProperty(path=self.curated_uri)]
            ),
            crawler_security_configuration=self.security_configuration.security_configuration_name,
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            configuration=json.dumps(
                {"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}
            ),
        )

        # -- what starts it ---------------------------------------------------------------------
        self.workflow = glue.Workflow(self, "Workflow", max_concurrent_runs=1,
                                      description=f"ETL of {name}: job, then crawler")
        self.workflow.add_event_trigger(
            "OnEvents",
            actions=[glue.Action.job(self.job)],
            event_batching_condition=glue.EventBatchingCondition(
                batch_size=batch_size, batch_window=Duration.seconds(batch_window_s)
            ),
            description="New raw objects or the schedule (through EventBridge)",
        )
        self.workflow.add_conditional_trigger(
            "AfterEtl",
            predicate=glue.Predicate(conditions=[glue.Condition.job(self.job, state=glue.JobState.SUCCEEDED)]),
            actions=[glue.Action.crawler(self.crawler)],
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
                detail={"bucket": {"name": [lake.raw.bucket_name]}},
            ),
            targets=[target],
        )
        self.on_schedule = events.Rule(
            self, "OnSchedule", description="Scheduled ETL run",
            schedule=events.Schedule.expression(schedule), targets=[target],
        )

    def _grant_glue_logs(self, role: iam.Role, key: kms.IKey, kind: str) -> None:
        """Glue writes its logs to /aws-glue/<kind>* groups, encrypted with the lake key."""
        key.grant_encrypt_decrypt(role)
        role.add_to_policy(iam.PolicyStatement(
            sid="GlueLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/{kind}*"],
        ))
