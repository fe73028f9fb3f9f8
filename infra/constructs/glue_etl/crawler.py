"""The crawler: keeps the lake database's tables in step with the curated data set."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.data_lake import DataLake, s3_uri
from infra.constructs.glue_etl.logs import GLUE_LOGS, grant_glue_logs
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects

# Glue globs, relative to the target: a top-level folder starting with `_`, a file starting with `_`.
NOT_DATA = ("_*/**", "**/_*")


class CuratedCrawler(Construct):
    """A Glue crawler over one data set's prefix of the curated zone, with its own role; the
    crawler itself is the `Default` child (its logical id is the one from before the split)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lake: DataLake,
        dataset: str,
        security_configuration: glue.ISecurityConfiguration,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.target_uri = s3_uri(lake.curated, f"{dataset}/")

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                             description="Glue crawler over the curated zone")
        lake.curated.grant_read(self.role, f"{dataset}/*")
        grant_glue_logs(self.role, lake.key, "crawlers")
        acknowledge(
            self.role, "AwsSolutions-IAM5",
            "The crawler reads its data set's prefix of the curated zone and creates or updates the tables "
            "of the lake database only (their names come from the data); Glue names its log groups under "
            "/aws-glue/crawlers.",
            findings=[*GRANT_ACTIONS, bucket_objects("Curated", prefix=f"{dataset}/"), GLUE_LOGS,
                      rf"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{lake.database_name}/\*"],
        )
        self.role.add_to_policy(iam.PolicyStatement(
            sid="CatalogTablesOfTheLakeDatabase",
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                     "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                     "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition"],
            resources=[
                stack.format_arn(service="glue", resource="catalog"),
                lake.database.database_arn,
                stack.format_arn(service="glue", resource="table", resource_name=f"{lake.database_name}/*"),
            ],
        ))
        self.crawler = glue.CfnCrawler(
            self,
            "Default",
            role=self.role.role_arn,
            database_name=lake.database_name,
            description=f"Tables of the curated {dataset} data",
            targets=glue.CfnCrawler.TargetsProperty(
                # Paths starting with `_` are not data (the ETL's ledger, _ledger/<batch>.json, and
                # Spark's _SUCCESS files), for the crawler as for every reader of the curated zone.
                s3_targets=[glue.CfnCrawler.S3TargetProperty(path=self.target_uri, exclusions=list(NOT_DATA))]
            ),
            crawler_security_configuration=security_configuration.security_configuration_name,
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            configuration=json.dumps(
                {"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}
            ),
        )
