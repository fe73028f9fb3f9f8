"""Every request the SageMaker pipeline definition makes, checked against botocore's service model.

The definitions are the ones the session builds once (tests.pipelines.sagemaker.targets); the bad
inputs are either edits of a built definition or real builds through `definition_dict`, which must
refuse them before anything is cached.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipelines.definition import workloads
from pipelines.definition.contract import Range
from pipelines.sagemaker import requests, shapes
from pipelines.sagemaker.build import cache_path, definition_dict
from tests.pipelines.sagemaker.targets import TARGET, build_once, target

PLAIN = replace(TARGET, kms_key_arn=None, subnet_ids=(), security_group_ids=())  # no VPC, no KMS
TARGETS = {
    "tabular-binary-vpc-kms": TARGET,
    "tabular-regression-vpc-kms": target("tabular", "regression"),
    "image-multiclass-vpc-kms": target("image", "multiclass"),
    "tabular-binary-plain": PLAIN,
}
ALL_OPERATIONS = {op for op, _ in requests.OPERATIONS.values()}


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_once(tmp_path_factory).cold


def _step(definition: dict[str, Any], name: str) -> Any:
    return next(s for s in requests.steps(definition) if s["Name"] == name)


def _problems(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(ValueError, match="SageMaker would reject") as raised:
        requests.ensure_valid(definition)
    return str(raised.value).splitlines()[1:]


# -- the definitions we build -------------------------------------------------------------------

@pytest.mark.parametrize("name", TARGETS)
def test_every_request_of_the_definition_is_one_sagemaker_accepts(
        tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    definition = build_once(tmp_path_factory, TARGETS[name]).cold
    report = requests.check_definition(definition)
    assert report.problems == []
    assert report.unchecked_patterns == set()
    # one request per step that makes one, and all six kinds of request are there
    expected = [s["Name"] for s in requests.steps(definition) if s["Type"] not in requests.NO_REQUEST]
    assert [r.step for r in report.requests] == expected
    assert {r.operation for r in report.requests} == ALL_OPERATIONS
    assert report.members > 50 * len(report.requests)


def test_expressions_become_values_of_their_members_types(tabular: dict[str, Any]) -> None:
    rendered = {r.step: r.params for r in requests.requests(tabular)}
    train, transform = rendered["train"], rendered["transform"]
    # a parameter: its default; a step property: a value of the property's shape; a join: its parts
    assert train["ResourceConfig"]["InstanceType"] == TARGET.training_instance_type
    assert train["ResourceConfig"]["InstanceCount"] == 1
    assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].startswith("s3://")
    assert train["OutputDataConfig"]["S3OutputPath"] == (
        f"{TARGET.pipeline_prefix}/{requests.EXECUTION_ID}/train/model")
    assert isinstance(train["HyperParameters"]["eta"], str)
    # the names the service adds, valid for their shapes
    assert train["TrainingJobName"] and transform["TransformJobName"]
    assert rendered["tune"]["HyperParameterTuningJobName"]
    assert "ModelName" in rendered["transform-model"] and "ModelPackageName" not in rendered["register"]


# -- bad input fails, naming the step and the member ---------------------------------------------

def test_a_257_character_entrypoint_fails_naming_the_step_and_the_member(tabular: dict[str, Any]) -> None:
    definition = copy.deepcopy(tabular)
    entrypoint = _step(definition, "preprocess")["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    entrypoint[2] = "x" * 256
    requests.ensure_valid(definition)  # 256 is the limit: accepted
    entrypoint[2] = "x" * 257
    assert _problems(definition) == [
        "  step 'preprocess' (CreateProcessingJob): AppSpecification.ContainerEntrypoint[2]: length 257 > 256"]


def test_an_instance_type_sagemaker_does_not_have_fails_at_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    bad = replace(TARGET, processing_instance_type="ml.m5.huge")
    with pytest.raises(ValueError, match="SageMaker would reject") as raised:
        definition_dict(bad)
    lines = str(raised.value).splitlines()[1:]
    steps = ["preprocess", "evaluate", "check", "baseline"]
    assert len(lines) == len(steps)
    field = "ProcessingResources.ClusterConfig.InstanceType"
    for step, line in zip(steps, lines, strict=True):
        assert line.startswith(f"  step '{step}' (CreateProcessingJob): {field}: 'ml.m5.huge' is not one of the ")
        assert line.endswith("(the default of parameter ProcessingInstanceType)")
    assert not cache_path(bad).exists()  # nothing is cached, embedded or uploaded


def test_a_bad_hyperparameter_range_fails_at_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    space = workloads.IMAGE.search["multiclass"]
    bad = replace(space, ranges=(Range("lr", "continuous", 0.0, 1e-2, "log"), Range("width", "integer", 32, 8)))
    monkeypatch.setitem(workloads.IMAGE.search, "multiclass", bad)
    with pytest.raises(ValueError, match="SageMaker would reject") as raised:
        definition_dict(target("image", "multiclass"), use_cache=False)
    at = "  step 'tune' (CreateHyperParameterTuningJob): HyperParameterTuningJobConfig.ParameterRanges."
    assert str(raised.value).splitlines()[1:] == [
        f"{at}IntegerParameterRanges[0]: MinValue 32 >= MaxValue 8: an empty range",
        f"{at}ContinuousParameterRanges[0]: Logarithmic scaling needs MinValue > 0, got 0.0",
    ]


@pytest.mark.parametrize(("kind", "index", "edit", "expected"), [
    ("ContinuousParameterRanges", 0, {"MinValue": "0.3", "MaxValue": "0.01"}, "MinValue 0.3 >= MaxValue 0.01"),
    ("ContinuousParameterRanges", 0, {"MinValue": "-1"}, "Logarithmic scaling needs MinValue > 0, got -1"),
    ("ContinuousParameterRanges", 3, {"ScalingType": "ReverseLogarithmic"},
     "ReverseLogarithmic scaling needs 0 <= MinValue and MaxValue < 1, got [0.5, 1.0]"),
    ("ContinuousParameterRanges", 0, {"MaxValue": "high"}, "MaxValue: 'high' is not a number written as a string"),
    ("IntegerParameterRanges", 0, {"MaxValue": "10.5"}, "MaxValue: '10.5' is not an integer written as a string"),
    ("IntegerParameterRanges", 0, {"MaxValue": 10}, "MaxValue: 10 is a int, expected str"),
])
def test_a_bad_hyperparameter_range_names_the_range(
        tabular: dict[str, Any], kind: str, index: int, edit: dict[str, Any], expected: str) -> None:
    definition = copy.deepcopy(tabular)
    ranges = _step(definition, "tune")["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
    ranges[kind][index].update(edit)
    problems = _problems(definition)
    at = f"HyperParameterTuningJobConfig.ParameterRanges.{kind}[{index}]"
    assert any(p.startswith(f"  step 'tune' (CreateHyperParameterTuningJob): {at}") and expected in p
               for p in problems), problems


def test_a_hyperparameter_both_static_and_tuned_fails(tabular: dict[str, Any]) -> None:
    definition = copy.deepcopy(tabular)
    _step(definition, "tune")["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]["eta"] = "0.1"
    assert _problems(definition) == [
        "  step 'tune' (CreateHyperParameterTuningJob): TrainingJobDefinition.StaticHyperParameters.eta: 'eta' is "
        "also tuned at HyperParameterTuningJobConfig.ParameterRanges.ContinuousParameterRanges[0]: a hyperparameter "
        "is static or tuned"]


def test_hyperparameter_values_must_be_strings(tabular: dict[str, Any]) -> None:
    definition = copy.deepcopy(tabular)
    _step(definition, "train")["Arguments"]["HyperParameters"]["num_round"] = 400
    # an Integer parameter where a string goes: the service does not convert it either
    _step(definition, "train")["Arguments"]["HyperParameters"]["seed"] = {"Get": "Parameters.TuningMaxTrials"}
    assert _problems(definition) == [
        "  step 'train' (CreateTrainingJob): HyperParameters.num_round: 400 is a int, expected str",
        "  step 'train' (CreateTrainingJob): HyperParameters.seed: 20 is a int, expected str "
        "(the default of parameter TuningMaxTrials)",
    ]


def test_references_the_service_cannot_resolve_fail(tabular: dict[str, Any]) -> None:
    definition = copy.deepcopy(tabular)
    arguments = _step(definition, "transform")["Arguments"]
    arguments["TransformResources"]["InstanceType"] = {"Get": "Parameters.TransformInstance"}
    arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] = {"Get": "Steps.train.ModelArtifacts.S3Uri"}
    assert sorted(_problems(definition)) == [
        "  step 'transform' (CreateTransformJob): TransformInput.DataSource.S3DataSource.S3Uri: "
        "Steps.train.ModelArtifacts.S3Uri: Training step properties have no 'ModelArtifacts.S3Uri'",
        "  step 'transform' (CreateTransformJob): TransformResources.InstanceType: {'Get': "
        "'Parameters.TransformInstance'}: the definition has no parameter 'TransformInstance'",
    ]


def test_a_step_type_without_a_request_mapping_fails(tabular: dict[str, Any]) -> None:
    definition = copy.deepcopy(tabular)
    definition["Steps"].append({"Name": "notify", "Type": "Lambda", "Arguments": {}})
    assert _problems(definition) == [
        "  step 'notify' (): Type: step type 'Lambda' has no request mapping in pipelines/sagemaker/requests.py"]


# -- the checker itself -------------------------------------------------------------------------

def test_botocore_alone_skips_max_lengths_enums_and_patterns_and_shapes_does_not() -> None:
    from botocore.validate import ParamValidator

    request = {
        "ProcessingJobName": "bad_name",  # pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AppSpecification": {"ImageUri": "i", "ContainerEntrypoint": ["x" * 257]},  # max 256
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.huge",  # enum
                                                  "VolumeSizeInGB": 30}},
    }
    shape = shapes.input_shape("CreateProcessingJob")
    assert not ParamValidator().validate(request, shape).has_errors()
    assert [str(p) for p in shapes.check(request, "CreateProcessingJob").problems] == [
        "ProcessingJobName: 'bad_name' does not match ProcessingJobName's pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        "AppSpecification.ContainerEntrypoint[0]: length 257 > 256",
        "ProcessingResources.ClusterConfig.InstanceType: 'ml.m5.huge' is not one of the "
        f"{len(shape.members['ProcessingResources'].members['ClusterConfig'].members['InstanceType'].enum)} values "
        "of ProcessingInstanceType; did you mean 'ml.m5.large' or 'ml.m5.xlarge'?",
    ]


def _patterns(operation: str) -> set[str]:
    found: set[str] = set()
    seen: set[str] = set()

    def walk(shape: Any) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        if "pattern" in shape.metadata:
            found.add(shape.metadata["pattern"])
        children = {"structure": lambda: shape.members.values(), "list": lambda: [shape.member],
                    "map": lambda: [shape.key, shape.value]}.get(shape.type_name, lambda: [])()
        for child in children:
            walk(child)

    walk(shapes.input_shape(operation))
    return found


@pytest.mark.parametrize("operation", sorted(ALL_OPERATIONS | {
    "CreateEndpointConfig", "CreateEndpoint", "CreateDataQualityJobDefinition", "CreateMonitoringSchedule",
    "CreatePipeline", "CreateModelPackageGroup", "CreateMlflowTrackingServer"}))
def test_every_pattern_of_the_requests_we_make_translates_to_python(operation: str) -> None:
    for pattern in _patterns(operation):
        shapes.java_pattern(pattern, ascii_only=True)
        shapes.java_pattern(pattern, ascii_only=False)


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "Grüße aus Köln 2024", True),  # Unicode letters, as in Java
    (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "a\nb", False),  # a newline is none of those
    (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", "s3://bucket/key.tar.gz", True),  # Java's quantified anchor
    (r"arn:[\p{Alnum}\-]+:lambda:.*", "arn:aws:lambda:x", True),  # POSIX class
    (r".*", "a\rb", False),  # Java's dot stops at \r too
    (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*", "emoji \U0001F600", True),  # surrogate pair
    (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "pipelines-abc", True),
    (r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "pipelines-abc-", False),  # the whole value must match
])
def test_java_patterns_match_as_the_service_matches(pattern: str, value: str, matches: bool) -> None:
    assert bool(shapes.java_pattern(pattern, ascii_only=value.isascii()).fullmatch(value)) is matches


def test_placeholders_fit_the_shapes_they_stand_for() -> None:
    for operation, name in requests.SERVICE_NAMED.items():
        shape = shapes.input_shape(operation).members[name]
        assert shapes.fits(shapes.placeholder(shape), shape), (operation, name)
    artifacts = shapes.member_shape(shapes.output_shape("DescribeTrainingJob"), ["ModelArtifacts", "S3ModelArtifacts"])
    assert re.fullmatch(r"s3://[^/]+/.+", shapes.placeholder(artifacts))
