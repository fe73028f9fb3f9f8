"""Roles grant what their jobs do, and the data lake keeps what they re-read readable.

Every row of infra/role_actions.py (an AWS call a job makes at run time) is evaluated, per stage,
against the synthesized policies of its role with an IAM policy evaluator (tests/infra/
policy_check.py: moto's statement matcher, IAM's conditions and deny-overrides); a refused call
fails the test naming the stage, the role, the action, the resource, the code path and why IAM
would refuse. S3 calls are also checked against the bucket's policy (its explicit denies), and KMS
calls against the key policy (it must let IAM policies grant them).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import Stack

from infra.constructs.data_lake import PROCESSED_TAG
from infra.constructs.glue_etl import dataset_name
from infra.constructs.ml_pipeline import PLACEHOLDERS, image_repositories
from infra.constructs.model_monitor.images import analyzer_image_uri
from infra.role_actions import NEEDS, ROLES, SYMBOLS, Need
from infra.stacks import SPEC
from tests.infra.policy_check import (
    Assembly,
    UnknownPolicy,
    Unsupported,
    condition_holds,
    delegates_to_iam,
    evaluate,
)

STAGES = ("dev", "prod")
ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"


@pytest.fixture(scope="module")
def assembly(synth: Any) -> Assembly:
    return Assembly(synth.templates, account=ACCOUNT, region=REGION, partition=PARTITION)


# -- binding the table to one stage ---------------------------------------------------------------

def _value(a: Assembly, scope: Any, token: Any) -> str:
    stack = Stack.of(scope)
    return str(a.resolve(stack.stack_name, stack.resolve(token)))


def _logical(construct: Any) -> tuple[str, str]:
    stack = Stack.of(construct)
    return stack.stack_name, stack.get_logical_id(construct.node.default_child)


def _repo_arns(found: set[tuple[str, str, str]]) -> list[str]:
    return sorted(f"arn:{PARTITION}:ecr:{region}:{account}:repository/{repo}" for account, region, repo in found)


def _serving_images(definition: Any) -> set[tuple[str, str, str]]:
    """The images of the model packages the definition registers (what an endpoint runs)."""
    found: set[tuple[str, str, str]] = set()
    if isinstance(definition, dict):
        if "InferenceSpecification" in definition:
            found |= image_repositories(definition["InferenceSpecification"])
        for v in definition.values():
            found |= _serving_images(v)
    elif isinstance(definition, list):
        for v in definition:
            found |= _serving_images(v)
    return found


def role_constructs(synth: Any, stage: str) -> dict[str, Any]:
    """The role construct of each table role in `stage` (None: the stage has no such job)."""
    st = synth.built.stages[stage]
    ml, serving, etl = st.ml_pipeline.ml, st.serving.serving, st.data_lake.etl
    return {
        "pipeline": ml.role,
        "endpoint-model": serving.model_role,
        "monitor": st.serving.monitor.data_quality.role if st.serving.monitor else None,
        "glue-job": etl.etl_job.role,
        "glue-crawler": etl.curated_crawler.role,
        "ci-push": st.ci_access.ci.push_role if st.ci_access else None,
        "ci-read-only": st.ci_access.ci.read_only_role if st.ci_access else None,
        "ci-deploy": st.ci_access.ci.deploy_role if st.ci_access else None,
        "deployer": serving.deployer.role,
        "pipeline-starter": ml.node.find_child("StarterRole"),
        "etl-events": etl.etl_workflow.node.find_child("EventsRole"),
    }


def bindings(synth: Any, a: Assembly, stage: str) -> dict[str, list[str]]:
    """Each symbol of the table, in `stage`, as the resolved (fake) values of its templates."""
    st, cfg = synth.built.stages[stage], synth.built.configs[stage]
    lake, ml, serving, etl, net = (st.data_lake.lake, st.ml_pipeline.ml, st.serving.serving, st.data_lake.etl,
                                   st.network.network)

    def v(scope: Any, token: Any) -> str:
        return _value(a, scope, token)

    def obj(asset: Any) -> str:
        return f"arn:{PARTITION}:s3:::{v(asset, asset.s3_bucket_name)}/{v(asset, asset.s3_object_key)}"

    monitor = st.serving.monitor
    analyzer = (v(monitor, monitor.data_quality.image_uri) if monitor else analyzer_image_uri(REGION))
    deployer_logs = serving.node.find_child("DeployerLogs")
    scalar = {
        "partition": PARTITION, "region": REGION, "account": ACCOUNT,
        **{zone: v(bucket, bucket.bucket_arn) for zone, bucket in lake.zones.items()},
        "assets": f"arn:{PARTITION}:s3:::{v(ml.code, ml.code.s3_bucket_name)}",
        "code_asset": obj(ml.code),
        "etl_script": obj(etl.etl_job.node.find_child("Script")),
        "etl_modules": obj(etl.etl_job.node.find_child("Modules")),
        "etl_spec": obj(etl.etl_job.node.find_child("Spec")),
        "key": v(lake.key, lake.key.key_arn),
        "pipeline_role": v(ml.role, ml.role.role_arn),
        "model_role": v(serving.model_role, serving.model_role.role_arn),
        "pipeline": v(ml, ml.pipeline_arn),
        "pipeline_name": cfg.pipeline_name,
        "starter": v(ml.starter, ml.starter.function_arn),
        "model_package_group": cfg.model_package_group,
        "endpoint_name": cfg.endpoint_name,
        "dataset": dataset_name(SPEC),
        "database": v(lake.database, lake.database.database_arn),
        "database_name": lake.database_name,
        "stack_prefix": cfg.prefix,
        "vpc": f"arn:{PARTITION}:ec2:{REGION}:{ACCOUNT}:vpc/{v(net.vpc, net.vpc.vpc_id)}",
        "workflow": v(etl.workflow, etl.workflow.workflow_arn),
        "glue_security_configuration": v(etl.security_configuration,
                                         etl.security_configuration.security_configuration_name),
        "glue_job_role": v(etl.etl_job.role, etl.etl_job.role.role_name),
        "glue_crawler_role": v(etl.curated_crawler.role, etl.curated_crawler.role.role_name),
        "deployer_log_group": v(deployer_logs, deployer_logs.log_group_name),
    }
    lists = {
        "pipeline_image": _repo_arns(set(ml.images)),
        "serve_image": _repo_arns(_serving_images(ml.definition)),
        "analyzer_image": _repo_arns(image_repositories(analyzer)),
    }
    return {**{k: [val] for k, val in scalar.items()}, **lists}


@dataclass(frozen=True)
class Check:
    stage: str
    need: Need
    resource: str
    context: dict[str, str]
    s3: tuple[str, str] | None  # (bucket ARN, key prefix)

    def __str__(self) -> str:
        n = self.need
        return f"{self.stage} {n.role}: {n.action} on {self.resource} ({n.why})"


def _symbols(need: Need) -> list[str]:
    text = need.resource + json.dumps(dict(need.context)) + (need.s3[1] if need.s3 else "")
    return sorted(set(re.findall(r"\{(\w+)\}", text)))


def checks(synth: Any, a: Assembly, stage: str) -> list[Check]:
    """Every row of the table, bound to `stage` (one check per value of a multi-valued symbol)."""
    b = bindings(synth, a, stage)
    out: list[Check] = []
    for need in NEEDS:
        names = _symbols(need)
        for values in itertools.product(*(b[n] for n in names)):
            env = dict(zip(names, values, strict=True))
            s3 = None
            if need.s3:
                s3 = (b[need.s3[0]][0], need.s3[1].format(**env))
            out.append(Check(stage, need, need.resource.format(**env),
                             {k: v.format(**env) for k, v in need.context.items()}, s3))
    return out


def decide(a: Assembly, role: tuple[str, str], check: Check) -> tuple[bool, str]:
    statements = a.identity_statements(*role)
    bucket_policy: list[dict[str, Any]] = []
    if check.resource.startswith(f"arn:{PARTITION}:s3:::"):
        bucket_policy = a.bucket_policy(check.resource.removeprefix(f"arn:{PARTITION}:s3:::").split("/")[0])
    decision = evaluate(statements, check.need.action, check.resource, check.context, resource_policy=bucket_policy)
    is_key = check.need.action.startswith("kms:") and a.find(check.resource) is not None
    if decision.allowed and is_key and not delegates_to_iam(a.key_policy(check.resource), ACCOUNT,
                                                            check.need.action, check.resource):
        return False, "the key policy does not let IAM policies grant it"
    return decision.allowed, decision.reason


def refused(synth: Any, a: Assembly, stage: str) -> tuple[list[str], int]:
    roles = role_constructs(synth, stage)
    failures, evaluated = [], 0
    for check in checks(synth, a, stage):
        construct = roles[check.need.role]
        if construct is None:
            continue  # this stage has no such job (prod: no endpoint yet, so no monitor)
        evaluated += 1
        allowed, reason = decide(a, _logical(construct), check)
        if not allowed:
            failures.append(f"{check}: {reason}")
    return failures, evaluated


# -- the checks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_every_role_is_allowed_every_call_its_job_makes(synth: Any, assembly: Assembly, stage: str) -> None:
    failures, evaluated = refused(synth, assembly, stage)
    assert evaluated > 150
    assert not failures, f"{len(failures)} of {evaluated} calls would be refused:\n" + "\n".join(failures)


def test_the_table_names_a_job_for_every_role_and_only_known_symbols() -> None:
    assert {n.role for n in NEEDS} == set(ROLES)
    for need in NEEDS:
        unknown = set(_symbols(need)) - set(SYMBOLS)
        assert not unknown, f"{need.role} {need.action}: unknown symbols {unknown}"
        assert need.why, need


def test_every_s3_location_of_the_pipeline_definition_has_a_row(synth: Any) -> None:
    """The table follows the definition: a new input or output location needs its row."""
    ml = synth.built.stages["dev"].ml_pipeline.ml
    uris: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, str) and x.startswith("s3://"):
            uris.add(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(ml.definition)
    symbol = {PLACEHOLDERS["bucket"]: "artifacts"}  # the curated bucket is reached through manifests only
    pipeline = [n for n in NEEDS if n.role == "pipeline"]
    name = synth.built.configs["dev"].pipeline_name
    assert uris
    for uri in sorted(uris):
        if uri == PLACEHOLDERS["code"]:
            assert any(n.resource == "{code_asset}" and n.action == "s3:GetObject" for n in pipeline)
            continue
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert bucket in symbol, f"{uri}: a bucket the table does not know"
        rows = [n for n in pipeline if n.s3 and n.s3[0] == symbol[bucket]
                and (n.s3[1].format(pipeline_name=name).startswith(key) or key.startswith(
                    n.s3[1].format(pipeline_name=name)))]
        assert rows, f"{uri}: no pipeline row reads or writes it"


# -- the evaluator itself ---------------------------------------------------------------------------

def test_the_evaluator_handles_wildcards_deny_notaction_and_conditions() -> None:
    allow_code = {"Effect": "Allow", "Action": ["s3:Get*", "s3:PutObject"], "Resource": "arn:aws:s3:::b/code/*"}
    assert evaluate([allow_code], "s3:GetObject", "arn:aws:s3:::b/code/x/sourcedir.tar.gz").allowed
    assert evaluate([allow_code], "S3:getobject", "arn:aws:s3:::b/code/x").allowed  # actions ignore case
    assert not evaluate([allow_code], "s3:GetObject", "arn:aws:s3:::b/other/x").allowed
    assert not evaluate([allow_code], "s3:ListBucket", "arn:aws:s3:::b").allowed
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    obj = "arn:aws:s3:::b/code/x"
    assert evaluate([allow_code, deny], "s3:GetObject", obj, {"aws:SecureTransport": "true"}).allowed
    refused_ = evaluate([allow_code, deny], "s3:GetObject", obj, {"aws:SecureTransport": "false"})
    assert not refused_.allowed and "denied" in refused_.reason
    everything_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert evaluate([everything_but_iam], "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k").allowed
    assert not evaluate([everything_but_iam], "iam:PassRole", "arn:aws:iam::1:role/r").allowed
    grant = {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}}}
    assert evaluate([grant], "kms:CreateGrant", "k", {"kms:GrantIsForAWSResource": "true"}).allowed
    assert not evaluate([grant], "kms:CreateGrant", "k", {}).allowed  # a missing key fails a condition
    # A failed Allow condition is no Deny: another statement still allows (moto alone would deny).
    assert evaluate([grant, {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}], "kms:CreateGrant", "k").allowed


def test_conditions_follow_iam_for_missing_keys_negation_and_if_exists() -> None:
    assert condition_holds({"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
                           {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"})
    assert not condition_holds({"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}, {})
    assert condition_holds({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {})  # negated + missing: true
    assert condition_holds({"StringEqualsIfExists": {"s3:prefix": "code/"}}, {})
    assert condition_holds({"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:r:a:vpc/v"}}, {"ec2:Vpc": "arn:aws:ec2:r:a:vpc/v"})
    assert not condition_holds({"NumericLessThan": {"s3:TlsVersion": 1.2}}, {"s3:TlsVersion": "1.3"})
    assert condition_holds({"Null": {"s3:prefix": "true"}}, {})
    with pytest.raises(Unsupported):
        condition_holds({"ForAnyValue:StringLike": {"aws:TagKeys": "x"}}, {"aws:TagKeys": "x"})


def test_aws_managed_policies_are_refused_not_guessed() -> None:
    template = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {},
        "ManagedPolicyArns": [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                 ":iam::aws:policy/service-role/AWSGlueServiceRole"]]}]}}}}
    with pytest.raises(UnknownPolicy, match="AWSGlueServiceRole"):
        Assembly({"s": template}).identity_statements("s", "R")


def test_intrinsics_resolve_to_the_same_arn_in_every_stack(synth: Any, assembly: Assembly) -> None:
    lake = synth.built.stages["dev"].data_lake.lake
    own = _value(assembly, lake, lake.artifacts.bucket_arn)
    statements = assembly.identity_statements(*_logical(synth.built.stages["dev"].ml_pipeline.ml.role))
    resources = {r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert own in resources and f"{own}/*" in resources  # through Fn::ImportValue in another stack
    assert all("{" not in r and "${" not in r for r in resources)


# -- the lake's lifecycle against its readers --------------------------------------------------------

ARCHIVE_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}  # asynchronous: a GET answers InvalidObjectState until restored
ARCHIVE_TIERS = {"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"}  # Intelligent-Tiering's opt-in asynchronous tiers


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _rule_prefix(rule: dict[str, Any]) -> str:
    f = rule.get("Filter") or {}
    return str(rule.get("Prefix") or f.get("Prefix") or (f.get("And") or {}).get("Prefix") or "")


def _rule_tags(rule: dict[str, Any]) -> set[tuple[str, str]]:
    f = rule.get("Filter") or {}
    tags = [*rule.get("TagFilters", []), *([f["Tag"]] if "Tag" in f else []), *(f.get("And") or {}).get("Tags", [])]
    return {(t["Key"], t["Value"]) for t in tags}


def archive_problems(bucket: dict[str, Any], prefix: str, unread_tags: frozenset[tuple[str, str]] = frozenset()
                     ) -> list[str]:
    """Why keys under `prefix` of a bucket (its resolved properties) may become unreadable at once.

    Size filters are not narrowed on: a rule that may apply to a read key counts. A rule filtered on a
    tag in `unread_tags` (objects the reader never reads) does not. Noncurrent version transitions do
    not count: readers read current versions."""
    problems = []
    for rule in (bucket.get("LifecycleConfiguration") or {}).get("Rules", []):
        if rule.get("Status") != "Enabled" or not _overlap(_rule_prefix(rule), prefix):
            continue
        if _rule_tags(rule) & unread_tags:
            continue
        for t in [*rule.get("Transitions", []), *([rule["Transition"]] if "Transition" in rule else [])]:
            if t["StorageClass"] in ARCHIVE_CLASSES:
                problems.append(f"lifecycle rule {rule.get('Id')!r} moves them to {t['StorageClass']}")
    for config in bucket.get("IntelligentTieringConfigurations", []):
        tiers = {t["AccessTier"] for t in config.get("Tierings", [])} & ARCHIVE_TIERS
        if config.get("Status") == "Enabled" and tiers and _overlap(_rule_prefix(config), prefix):
            problems.append(f"Intelligent-Tiering configuration {config.get('Id')!r} archives them ({sorted(tiers)})")
    return problems


# Objects a role never reads, by tag: the Glue job reads only raw objects its ledger does not hold,
# and tags them processed only after the ledger entry is written (training_code/spark_etl/ledger.py).
UNREAD_TAGS: dict[str, frozenset[tuple[str, str]]] = {"glue-job": frozenset({PROCESSED_TAG})}


def lifecycle_conflicts(synth: Any, a: Assembly, stage: str) -> list[str]:
    roles = role_constructs(synth, stage)
    found = []
    for check in checks(synth, a, stage):
        if check.need.action != "s3:GetObject" or check.s3 is None or roles[check.need.role] is None:
            continue
        bucket_arn, prefix = check.s3
        where = a.find(bucket_arn)
        if where is None:
            continue  # not a bucket of this app (the CDK assets bucket)
        props = a.resolve(where[0], a.resource(*where)["Properties"])
        found += [f"{stage} {check.need.role} reads {bucket_arn}/{prefix}* ({check.need.why}), but {p}"
                  for p in archive_problems(props, prefix, UNREAD_TAGS.get(check.need.role, frozenset()))]
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_nothing_a_job_reads_is_moved_to_an_archive_class(synth: Any, assembly: Assembly, stage: str) -> None:
    conflicts = lifecycle_conflicts(synth, assembly, stage)
    assert not conflicts, "\n".join(conflicts)


def test_the_lifecycle_check_sees_archive_rules_and_archive_tiers_on_read_prefixes() -> None:
    def bucket(*rules: dict[str, Any], tiering: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
        return {"LifecycleConfiguration": {"Rules": [
            {"Id": "expire", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}, *rules]},
            **({"IntelligentTieringConfigurations": list(tiering)} if tiering else {})}

    def rule(storage_class: str, **extra: Any) -> dict[str, Any]:
        return {"Id": storage_class.lower(), "Status": "Enabled",
                "Transitions": [{"StorageClass": storage_class, "TransitionInDays": 90}], **extra}

    assert archive_problems(bucket(), "") == []
    glacier = bucket(rule("GLACIER", Prefix="landing/"))
    assert archive_problems(glacier, "") and archive_problems(glacier, "landing/2024/")
    assert archive_problems(glacier, "other/") == []  # a prefix nobody reads may be archived
    assert archive_problems(bucket(rule("DEEP_ARCHIVE", Filter={"And": {"Prefix": "x/"}})), "x/")
    assert archive_problems(bucket(rule("GLACIER", Status="Disabled")), "") == []
    for readable in ("GLACIER_IR", "STANDARD_IA", "INTELLIGENT_TIERING"):  # read synchronously
        assert archive_problems(bucket(rule(readable)), "") == []
    deep = {"Id": "deep", "Status": "Enabled", "Tierings": [{"AccessTier": "DEEP_ARCHIVE_ACCESS", "Days": 180}]}
    assert archive_problems(bucket(rule("INTELLIGENT_TIERING"), tiering=(deep,)), "")
    tagged = bucket(rule("DEEP_ARCHIVE", Filter={"Tag": {"Key": "mlops:processed", "Value": "true"}}))
    assert archive_problems(tagged, "")  # a reader that may read tagged objects is warned
    assert archive_problems(tagged, "", frozenset({PROCESSED_TAG})) == []  # one that never does is not
