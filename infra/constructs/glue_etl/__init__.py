"""The Glue ETL: training_code/etl.py as a Glue 5 PySpark job, a crawler, and what starts them.

Start: one Glue workflow whose start trigger is an EventBridge (EVENT) trigger. Two EventBridge
rules feed it: "Object Created" in the raw bucket and the ETL schedule. Glue batches the events
(N objects or W seconds, whichever first), so a burst of uploads makes one run, not one per file;
the schedule goes through the same door, so there is one path to reason about and no Lambda or
Step Functions in between. Each run processes only the raw objects its ledger (<curated>/_ledger/)
does not hold, then tags them mlops:processed=true, which lets the raw lifecycle archive them.
After a successful run the workflow runs the crawler over the curated zone, which keeps the Glue
database's tables up to date.

    job.py        EtlJob: the job, its role, and its assets (script, modules zip, spec)
    crawler.py    CuratedCrawler: the crawler over the curated data set and its role
    workflow.py   EtlWorkflow: the workflow, its two triggers, the EventBridge rules and their role
    logs.py       the log permissions both roles need
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_glue as glue
from constructs import Construct

from infra.constructs.data_lake import DataLake
from infra.constructs.glue_etl.crawler import CuratedCrawler
from infra.constructs.glue_etl.job import ETL_SCRIPT, EtlJob, etl_modules, modules_zip
from infra.constructs.glue_etl.workflow import EtlWorkflow

__all__ = ["ETL_SCRIPT", "CuratedCrawler", "EtlJob", "EtlWorkflow", "GlueEtl", "dataset_name", "etl_modules",
           "modules_zip"]


def dataset_name(spec: Path) -> str:
    return str(json.loads(spec.read_text(encoding="utf-8")).get("name", "dataset"))


class GlueEtl(Construct):
    """The ETL of one data set: its job, its crawler and their workflow, sharing one Glue security
    configuration (Glue encrypts what it writes itself with the lake key)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lake: DataLake,
        spec: Path,
        schedule: str,
        workers: int,
        batch_size: int,
        batch_window_s: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        name = dataset_name(spec)

        # Encrypts what Glue writes itself: S3 output, its CloudWatch logs, the job bookmarks.
        # Shared by the job and the crawler, so it stays here (its generated name comes from this path).
        self.security_configuration = glue.SecurityConfiguration(
            self,
            "Encryption",
            s3_encryption=glue.S3Encryption.kms(lake.key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(lake.key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(lake.key),
            removal_policy=removal_policy,
        )
        self.etl_job = EtlJob(self, "Job", lake=lake, dataset=name, spec=spec, workers=workers,
                              security_configuration=self.security_configuration)
        self.curated_crawler = CuratedCrawler(self, "Crawler", lake=lake, dataset=name,
                                              security_configuration=self.security_configuration)
        self.etl_workflow = EtlWorkflow(
            self, "Workflow", dataset=name, job=self.etl_job.job, crawler=self.curated_crawler.crawler,
            raw=lake.raw, schedule=schedule, batch_size=batch_size, batch_window_s=batch_window_s,
        )

        # What the other stacks and the tests read.
        self.job = self.etl_job.job
        self.crawler = self.curated_crawler.crawler
        self.workflow = self.etl_workflow.workflow
