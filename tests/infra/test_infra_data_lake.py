"""The data-lake stack: zones, lifecycle, Glue database, the ETL job and what starts it; a moto deploy."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.constructs.data_lake import PROCESSED_TAG
from infra.constructs.glue_etl import ETL_SCRIPT, etl_modules, modules_zip
from pipelines.bundles import import_closure
from pipelines.definition import IMAGE, TABULAR
from pipelines.paths import TRAINING_CODE
from tests.infra.moto_env import mocked_aws
from tests.infra.policy_check import Assembly, evaluate

STACK = "mlops-dev-data-lake"


def bucket(synth: Any, stack: str, zone: str) -> dict[str, Any]:
    found = [v["Properties"] for k, v in synth.resources(stack, "AWS::S3::Bucket").items()
             if k.startswith(f"DataLake{zone}")]
    assert len(found) == 1
    return found[0]


ARCHIVE_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}


def archive_rules(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in props["LifecycleConfiguration"]["Rules"]
            if any(t["StorageClass"] in ARCHIVE_CLASSES for t in r.get("Transitions", []))]


def test_raw_moves_to_intelligent_tiering_and_old_versions_expire(synth: Any) -> None:
    raw = bucket(synth, STACK, "Raw")
    rules = {r["Id"]: r for r in raw["LifecycleConfiguration"]["Rules"]}
    transitions = rules["raw-to-intelligent-tiering"]["Transitions"]
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in transitions] == [("INTELLIGENT_TIERING", 0)]
    # Its archive tiers are opt-in, per bucket, and would archive objects the ETL has not read yet.
    assert "IntelligentTieringConfigurations" not in raw
    for zone in ("Raw", "Curated", "Quarantine", "Artifacts"):
        rules = {r["Id"]: r for r in bucket(synth, STACK, zone)["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90


def test_only_raw_objects_the_etl_has_processed_are_archived(synth: Any) -> None:
    """The ETL tags an object mlops:processed=true after its ledger entry: before that, it may be unread."""
    for stage in ("dev", "prod"):
        stack = f"mlops-{stage}-data-lake"
        [rule] = archive_rules(bucket(synth, stack, "Raw"))
        assert rule["Status"] == "Enabled" and rule["TagFilters"] == [{"Key": PROCESSED_TAG[0],
                                                                       "Value": PROCESSED_TAG[1]}]
        assert "Prefix" not in rule and "ObjectSizeGreaterThan" not in rule  # the tag, and only the tag, decides
        days = synth.built.configs[stage].processed_raw_archive_after_days
        assert [(t["StorageClass"], t["TransitionInDays"]) for t in rule["Transitions"]] == [("DEEP_ARCHIVE", days)]
        for zone in ("Curated", "Quarantine", "Artifacts"):  # read by the pipeline, the monitor, people
            assert archive_rules(bucket(synth, stack, zone)) == []


def test_the_etl_tags_with_the_tag_the_lifecycle_filters_on() -> None:
    from spark_etl.ledger import PROCESSED_TAG as ETL_TAG

    assert ETL_TAG == PROCESSED_TAG


def test_the_archive_age_is_a_validated_stage_field() -> None:
    from infra.config import ConfigError, stage_config

    assert stage_config("dev", {"processed_raw_archive_after_days": 365}).processed_raw_archive_after_days == 365
    with pytest.raises(ConfigError, match=r"dev\.processed_raw_archive_after_days: must be at least 1"):
        stage_config("dev", {"processed_raw_archive_after_days": 0})
    with pytest.raises(ConfigError, match="raw data is never archived before the ETL has processed it"):
        stage_config("dev", {"raw_archive_after_days": 90})


def test_the_glue_role_may_tag_raw_objects_but_not_change_them(synth: Any) -> None:
    from aws_cdk import Stack

    a = Assembly(synth.templates)
    st = synth.built.stages["dev"]
    role, lake = st.data_lake.etl.etl_job.role, st.data_lake.lake
    stack = Stack.of(role)
    statements = a.identity_statements(stack.stack_name, stack.get_logical_id(role.node.default_child))

    def arn(bucket_: Any) -> str:
        return str(a.resolve(stack.stack_name, stack.resolve(bucket_.bucket_arn)))

    raw = f"{arn(lake.raw)}/landing/2026/churn.csv"
    policy = a.bucket_policy(str(a.resolve(stack.stack_name, stack.resolve(lake.raw.bucket_name))))
    tls = {"aws:SecureTransport": "true"}
    # tag_processed (training_code/spark_etl/s3_objects.py): HeadObject, Get/PutObject(Version)Tagging.
    for action in ("s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging",
                   "s3:PutObjectVersionTagging"):
        decision = evaluate(statements, action, raw, tls, resource_policy=policy)
        assert decision.allowed, f"{action}: {decision.reason}"
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectTagging"):  # tags raw data, never changes it
        assert not evaluate(statements, action, raw, tls).allowed, action


def test_only_the_raw_zone_sends_events(synth: Any) -> None:
    notifications = synth.resources(STACK, "Custom::S3BucketNotifications")
    assert len(notifications) == 1
    props = next(iter(notifications.values()))["Properties"]
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}
    assert "DataLakeRaw" in json.dumps(props["BucketName"])


def test_glue_job_runs_etl_py_on_glue_5_with_its_modules_and_spec(synth: Any) -> None:
    job = synth.one(STACK, "AWS::Glue::Job")
    args = job["DefaultArguments"]
    assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl"
    assert job["SecurityConfiguration"]
    # The ledger (<curated>/_ledger/) makes the job incremental; bookmarks would filter nothing (Spark's reader).
    assert args["--job-bookmark-option"] == "job-bookmark-disable"
    for name in ("--raw_path", "--curated_path", "--quarantine_path", "--report_path"):
        assert json.dumps(args[name]).startswith('{"Fn::Join": ["", ["s3://"'), name
    assert "/churn/" in json.dumps(args["--curated_path"])
    assert "/etl/reports/churn/" in json.dumps(args["--report_path"])
    # Modules travel as one zip (importable by name); the spec under its asset name, which the job is told.
    assert json.dumps(args["--extra-py-files"]).endswith('.zip"]]}')
    assert json.dumps(args["--extra-files"]).endswith(f'/{args["--spec_path"]}"]]}}')
    assert args["--spec_path"].endswith(".json")


def test_the_modules_zip_ships_exactly_what_etl_py_imports_as_packages(tmp_path: Path) -> None:
    modules = etl_modules()
    script = ETL_SCRIPT.resolve()
    assert modules and modules == [p for p in import_closure([script]) if p != script]
    # The zip is deterministic (its asset hash, so the deployed job, changes only with the code).
    data = modules_zip(modules).read_bytes()
    assert data == modules_zip(etl_modules()).read_bytes()
    (tmp_path / "etl_modules.zip").write_bytes(data)
    names = zipfile.ZipFile(tmp_path / "etl_modules.zip").namelist()
    files = [n for n in names if not n.endswith("/")]
    # At their paths under training_code/: a package arrives as a package, its __init__.py with it.
    assert sorted(files) == sorted(p.relative_to(TRAINING_CODE).as_posix() for p in modules)
    for name in files:
        for parent in PurePosixPath(name).parents:
            if parent != PurePosixPath("."):
                assert f"{parent}/" in names, f"{name}: no folder entry {parent}/"
    # Nothing of the other workloads: the ETL does not import the model code (if it ever needs to,
    # that is a design change to review, not a module to add here).
    assert not [n for n in names if n.startswith(("image/", "tabular/")) or n.startswith("image_")]
    other_entries = {s for w in (TABULAR, IMAGE) for s in w.entry_scripts} - {ETL_SCRIPT.name}
    assert other_entries and not other_entries & set(files)


def test_the_modules_zip_alone_resolves_etl_py_imports(tmp_path: Path) -> None:
    """As on Glue: etl.py run with the zip on sys.path and training_code/ not on it."""
    archive = tmp_path / "etl_modules.zip"
    archive.write_bytes(modules_zip(etl_modules()).read_bytes())
    shipped = sorted(p.relative_to(TRAINING_CODE).with_suffix("").as_posix().removesuffix("/__init__").replace("/", ".")
                     for p in etl_modules())
    check = (
        "import importlib, json, runpy, sys\n"
        "archive, script, code = sys.argv[1:4]\n"
        "assert not [p for p in sys.path if p.rstrip('/') == code], sys.path\n"
        "sys.path.insert(0, archive)\n"
        "runpy.run_path(script, run_name='glue_job')\n"  # module level only: main() is not run
        "for name in sys.argv[4:]:\n"  # and what it imports lazily, inside functions
        "    importlib.import_module(name)\n"
        "print(json.dumps({n: getattr(m, '__file__', None) for n, m in sys.modules.items()}))\n"
    )
    # -I: no PYTHONPATH, no current directory on sys.path; run from elsewhere.
    proc = subprocess.run([sys.executable, "-I", "-c", check, str(archive), str(ETL_SCRIPT), str(TRAINING_CODE),
                           *shipped],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {n: f for n, f in loaded.items() if f and str(TRAINING_CODE) in f}
    assert ours == {}, f"imported from training_code/, not from the zip: {ours}"
    from_zip = {n for n, f in loaded.items() if f and f.startswith(str(archive))}
    assert set(shipped) <= from_zip, set(shipped) - from_zip


def test_glue_encrypts_its_output_logs_and_bookmarks_with_the_lake_key(synth: Any) -> None:
    config = synth.one(STACK, "AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    assert config["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert config["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert config["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"


def test_new_raw_data_and_the_schedule_start_one_batched_workflow_then_the_crawler(synth: Any) -> None:
    t = synth.template(STACK)
    t.has_resource_properties("AWS::Glue::Trigger", {
        "Type": "EVENT", "EventBatchingCondition": {"BatchSize": 50, "BatchWindow": 900},
        "Actions": [{"JobName": Match.any_value()}]})
    t.has_resource_properties("AWS::Glue::Trigger", {
        "Type": "CONDITIONAL", "Actions": [{"CrawlerName": Match.any_value()}],
        "Predicate": {"Conditions": [Match.object_like({"State": "SUCCEEDED", "LogicalOperator": "EQUALS"})]}})
    rules = [r["Properties"] for r in synth.resources(STACK, "AWS::Events::Rule").values()]
    on_raw = [r for r in rules if r.get("EventPattern", {}).get("detail-type") == ["Object Created"]]
    scheduled = [r for r in rules if r.get("ScheduleExpression") == "cron(0 2 * * ? *)"]
    assert len(on_raw) == 1 and len(scheduled) == 1
    assert "DataLakeRaw" in json.dumps(on_raw[0]["EventPattern"]["detail"])
    for rule in (on_raw[0], scheduled[0]):
        assert ":workflow/" in json.dumps(rule["Targets"][0]["Arn"])
    # EventBridge may notify that workflow, nothing else.
    t.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": [
        {"Action": "glue:notifyEvent", "Effect": "Allow",
         "Resource": Match.object_like({"Fn::Join": Match.any_value()})}]}})


def test_crawler_catalogs_the_curated_zone_into_the_lake_database(synth: Any) -> None:
    crawler = synth.one(STACK, "AWS::Glue::Crawler")
    assert crawler["DatabaseName"] == "mlops_dev_lake"
    [target] = crawler["Targets"]["S3Targets"]
    assert "DataLakeCurated" in json.dumps(target["Path"])
    # Not data: the ETL's ledger (<curated>/churn/_ledger/<batch>.json) and Spark's _SUCCESS files.
    # (fnmatch's `*` crosses folders like Glue's `**`: close enough for these paths)
    def excluded(key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, glob) for glob in target["Exclusions"])

    assert excluded("_ledger/0123456789abcdef.json") and excluded("ingestion_date=2026-07-01/batch=ab/_SUCCESS")
    assert not excluded("ingestion_date=2026-07-01/batch=ab/part-00000-x.snappy.parquet")
    assert crawler["CrawlerSecurityConfiguration"]
    assert synth.one(STACK, "AWS::Glue::Database")["DatabaseInput"]["Name"] == "mlops_dev_lake"


def moto_ready(template: dict[str, Any]) -> dict[str, Any]:
    """The template minus what moto cannot run: Lambda-backed custom resources (they would need
    Docker), the bootstrap-version rule; KMS tags in the API's TagKey form moto's parser reads."""
    t = json.loads(json.dumps(template))
    t.pop("Rules", None)
    t.get("Parameters", {}).pop("BootstrapVersion", None)
    drop = {k for k, v in t["Resources"].items()
            if v["Type"].startswith("Custom::") or v["Type"] == "AWS::Lambda::Function"}
    for k in drop:
        del t["Resources"][k]
    for v in t["Resources"].values():
        if isinstance(v.get("DependsOn"), list):
            v["DependsOn"] = [d for d in v["DependsOn"] if d not in drop]
        elif v.get("DependsOn") in drop:
            del v["DependsOn"]
        if v["Type"] == "AWS::KMS::Key":
            v["Properties"]["Tags"] = [{"TagKey": x["Key"], "TagValue": x["Value"]} for x in v["Properties"]["Tags"]]
    return t


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from mocked_aws(monkeypatch, "eu-west-1")


@pytest.mark.parametrize("stack", ["mlops-dev-data-lake", "mlops-prod-data-lake"])
def test_data_lake_template_deploys_to_moto(synth: Any, aws: Any, stack: str) -> None:
    import boto3

    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(moto_ready(synth.templates[stack])),
                     Capabilities=["CAPABILITY_IAM"])
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    key_id = next(r["PhysicalResourceId"] for k, r in resources.items() if k.startswith("DataLakeKey"))

    s3 = boto3.client("s3")
    names = {k: r["PhysicalResourceId"] for k, r in resources.items() if r["ResourceType"] == "AWS::S3::Bucket"}
    assert len(names) == 5 and {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(names.values())
    for logical_id, name in names.items():
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
        sse = rule["ApplyServerSideEncryptionByDefault"]
        if logical_id.startswith("DataLakeAccessLogs"):
            assert sse["SSEAlgorithm"] == "AES256"
        else:
            assert sse["SSEAlgorithm"] == "aws:kms" and sse["KMSMasterKeyID"].endswith(key_id)

    # The rule that starts the ETL watches the bucket CloudFormation actually created.
    events = boto3.client("events")
    patterns = [json.loads(r["EventPattern"]) for r in events.list_rules()["Rules"] if "EventPattern" in r]
    raw_name = next(n for k, n in names.items() if k.startswith("DataLakeRaw"))
    assert {"source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [raw_name]}}} in patterns
    roles = {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}
    assert any("EtlJobRole" in r for r in roles) and any("EtlCrawlerRole" in r for r in roles)
