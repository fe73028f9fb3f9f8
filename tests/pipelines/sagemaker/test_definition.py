"""The SageMaker pipeline definition: built offline and deterministically from the declaration.

The definition is built once per session (the SDK import dominates), with every socket connect
refused, then read the way the service and the infra stack read it: as JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines import definition as d
from pipelines.paths import REPO_ROOT, TRAINING_CODE
from pipelines.sagemaker.build import cache_path, definition_dict, definition_json
from pipelines.sagemaker.wiring import HELPER_STEPS, search_ranges, step_names
from tests.pipelines.sagemaker.targets import TARGET, build_once, target

SNAPSHOT = Path(__file__).parent / "snapshots" / "sagemaker_definition.json"


@dataclass
class Builds:
    cold: dict[str, Any]
    cached: dict[str, Any]
    rebuilt: dict[str, Any]
    connects: list[Any]
    home: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    once = build_once(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(once.home))
        cached = definition_dict(TARGET)
        rebuilt = definition_dict(TARGET, use_cache=False)
    return Builds(once.cold, cached, rebuilt, once.connects, once.home)


def _steps(defn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            out[s["Name"]] = s
            if s["Type"] == "Condition":
                walk(s["Arguments"]["IfSteps"])
                walk(s["Arguments"]["ElseSteps"])

    walk(defn["Steps"])
    return out


def _get(value: Any) -> str | None:
    return value.get("Get") if isinstance(value, dict) else None


# -- building -----------------------------------------------------------------------------------

def test_the_build_makes_no_network_call(built: Builds) -> None:
    assert built.connects == []


def test_two_builds_give_byte_identical_json(built: Builds) -> None:
    assert definition_json(built.rebuilt) == definition_json(built.cold)


def test_the_cached_definition_is_the_built_one_and_is_read_without_the_sdk(built: Builds) -> None:
    from pipelines.sagemaker import build

    assert built.cached == built.cold
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(built.home))
        path = cache_path(TARGET)

        def no_build(target: object) -> dict[str, Any]:
            raise AssertionError("the cached definition was rebuilt")

        mp.setattr(build, "_build_definition", no_build)  # a file read, not a 5-second SDK build
        assert definition_dict(TARGET) == built.cold
    assert path.is_file() and path.parent == built.home / "cache"
    assert json.loads(path.read_text()) == built.cold


def test_a_different_target_does_not_hit_the_cache(built: Builds) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(built.home))
        assert cache_path(replace(TARGET, region="us-east-1")) != cache_path(TARGET)
        assert cache_path(replace(TARGET, kms_key_arn=None)) != cache_path(TARGET)


def test_definition_matches_the_snapshot(built: Builds) -> None:
    text = definition_json(built.cold)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.is_file(), f"no snapshot yet: UPDATE_SNAPSHOTS=1 writes {SNAPSHOT}"
    # Written by an earlier run in another process: equality is determinism across processes too.
    assert text == SNAPSHOT.read_text(), "the definition changed: review the diff, then UPDATE_SNAPSHOTS=1"


def test_target_strings_reach_the_json_verbatim(built: Builds) -> None:
    text = json.dumps(built.cold)
    for value in (TARGET.role_arn, TARGET.code_uri, TARGET.kms_key_arn,
                  *TARGET.subnet_ids, *TARGET.security_group_ids):
        assert value and f'"{value}"' in text, value
    assert f'"s3://{TARGET.bucket}/' in text


def test_no_path_of_the_building_machine_leaks_into_the_json(built: Builds) -> None:
    text = json.dumps(built.cold)
    assert str(REPO_ROOT) not in text and str(Path.home()) not in text


# -- the pipeline -------------------------------------------------------------------------------

def test_steps_run_in_the_definition_order(built: Builds) -> None:
    assert step_names(built.cold) == d.TABULAR.step_names
    top = [s["Name"] for s in built.cold["Steps"]]
    assert top == ["etl", "preprocess", "tune", "train", "evaluate", "check"]
    check = _steps(built.cold)["check"]["Arguments"]
    # Nothing is registered, baselined or transformed unless the metric passes.
    assert [s["Name"] for s in check["IfSteps"]] == ["register", "baseline", "transform-model", "transform"]
    assert [s["Type"] for s in check["ElseSteps"]] == ["Fail"]
    assert set(HELPER_STEPS.values()) <= set(d.TABULAR.step_names)


def test_pipeline_parameters_are_the_definitions(built: Builds) -> None:
    params = {p["Name"]: p for p in built.cold["Parameters"]}
    assert list(params) == [p.name for p in d.PARAMETERS]
    kinds = {"string": "String", "integer": "Integer", "float": "Float"}
    defaults = d.parameter_defaults(d.TABULAR, "binary")
    for p in d.PARAMETERS:
        assert params[p.name]["Type"] == kinds[p.type]
        if p.name != "InputDataUrl":
            assert params[p.name]["DefaultValue"] == defaults[p.name]
    assert params["InputDataUrl"]["DefaultValue"] == f"s3://{TARGET.bucket}/raw/"
    assert params["MetricThreshold"]["DefaultValue"] == 0.75


def test_instance_types_of_the_target_are_the_parameter_defaults(tmp_path_factory: pytest.TempPathFactory) -> None:
    """infra/config.py sets them per stage: they reach the definition as the parameters' defaults."""
    t = replace(TARGET, processing_instance_type="ml.c5.2xlarge", training_instance_type="ml.m5.4xlarge",
                transform_instance_type="ml.c5.xlarge")
    params = {p["Name"]: p["DefaultValue"] for p in build_once(tmp_path_factory, t).cold["Parameters"]}
    assert (params["ProcessingInstanceType"], params["TrainingInstanceType"], params["TransformInstanceType"]) == (
        "ml.c5.2xlarge", "ml.m5.4xlarge", "ml.c5.xlarge")


def test_tuning_uses_the_shared_search_space_and_budget(built: Builds) -> None:
    tuning = search_ranges(built.cold)
    space = d.TABULAR.search_space("binary")
    ranges = tuning["ranges"]
    flat = {r["Name"]: (kind, r) for kind, rs in ranges.items() for r in rs}
    assert set(flat) == {r.name for r in space.ranges}
    for r in space.ranges:
        kind, got = flat[r.name]
        assert kind == {"continuous": "ContinuousParameterRanges", "integer": "IntegerParameterRanges"}[r.kind]
        assert float(got["MinValue"]) == r.min and float(got["MaxValue"]) == r.max
        assert got["ScalingType"] == ("Logarithmic" if r.scale == "log" else "Linear")
    assert tuning["objective"] == {"MetricName": space.objective.metric, "Type": "Maximize"}
    for name, value in space.static.items():
        assert tuning["static"][name] == value
    tune = _steps(built.cold)["tune"]["Arguments"]["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert _get(tune["MaxNumberOfTrainingJobs"]) == "Parameters.TuningMaxTrials"
    assert _get(tune["MaxParallelTrainingJobs"]) == "Parameters.TuningParallelism"


def test_the_objective_regex_reads_what_train_py_prints(built: Builds) -> None:
    from tabular.metrics import format_metric_lines

    (definition,) = search_ranges(built.cold)["metric_definitions"]
    log = "[round 12] something else\n" + format_metric_lines({"train:auc": 0.99, "validation:auc": 0.912345})
    assert definition["Name"] == "validation:auc"
    assert [float(v) for v in re.findall(definition["Regex"], log)] == [0.912345]
    train = _steps(built.cold)["train"]["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
    assert train == [definition]


def test_train_retrains_the_best_candidate(built: Builds) -> None:
    train = _steps(built.cold)["train"]["Arguments"]
    for r in d.TABULAR.search_space("binary").ranges:
        assert _get(train["HyperParameters"][r.name]) == f"Steps.tune.BestTrainingJob.TunedHyperParameters['{r.name}']"
    checkpoint = train["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert {"Get": "Steps.tune.BestTrainingJob.TrainingJobName"} in checkpoint


def test_check_reads_the_metric_evaluate_writes(built: Builds) -> None:
    steps = _steps(built.cold)
    (condition,) = steps["check"]["Arguments"]["Conditions"]
    path = d.TABULAR.gate.path("binary")
    got = condition["LeftValue"]["Std:JsonGet"]
    assert got["Path"] == path and condition["Type"] == "GreaterThanOrEqualTo"
    assert _get(condition["RightValue"]) == "Parameters.MetricThreshold"
    (prop,) = steps["evaluate"]["PropertyFiles"]
    assert _get(got["PropertyFile"]) == f"Steps.evaluate.PropertyFiles.{prop['PropertyFileName']}"
    # The property file is evaluation.json in the output evaluate.py is told to write into.
    args = steps["evaluate"]["Arguments"]
    local = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    argv = args["AppSpecification"]["ContainerArguments"]
    assert argv[argv.index("--output-dir") + 1] == local[prop["OutputName"]]
    assert prop["FilePath"] == "evaluation.json"


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_the_metric_path_exists_in_what_evaluate_py_reports(problem: str) -> None:
    from tabular.evaluate import evaluation_report

    y = np.array([0, 1, 0, 1, 1, 0, 2, 2] if problem == "multiclass" else [0, 1, 0, 1, 1, 0, 1, 0], dtype=float)
    if problem == "regression":
        scores = y + 0.1
    else:
        k = 3 if problem == "multiclass" else 2
        scores = np.full((len(y), k), 0.1)
        scores[np.arange(len(y)), y.astype(int)] = 0.8
    report: Any = evaluation_report(problem, y, scores, [str(i) for i in range(3)])
    for key in d.TABULAR.gate.path(problem).split("."):  # type: ignore[arg-type]
        report = report[key]
    assert isinstance(report, float)


def test_failing_the_check_stops_with_the_metric_and_the_threshold(built: Builds) -> None:
    (fail,) = _steps(built.cold)["check"]["Arguments"]["ElseSteps"]
    values = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert any(isinstance(v, dict) and "Std:JsonGet" in v for v in values)
    assert {"Get": "Parameters.MetricThreshold"} in values
    assert any("auc" in v for v in values if isinstance(v, str))


def test_register_records_the_evaluation_and_the_approval_parameter(built: Builds) -> None:
    register = _steps(built.cold)["register"]["Arguments"]
    assert register["ModelPackageGroupName"] == TARGET.model_package_group
    assert _get(register["ModelApprovalStatus"]) == "Parameters.ModelApprovalStatus"
    stats = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    (container,) = register["InferenceSpecification"]["Containers"]
    assert _get(container["ModelDataUrl"]) == "Steps.train.ModelArtifacts.S3ModelArtifacts"


def test_every_job_step_is_cached(built: Builds) -> None:
    jobs = [s for s in _steps(built.cold).values() if s["Type"] in ("Processing", "Training", "Tuning", "Transform")]
    assert len(jobs) == 7
    for s in jobs:
        assert s["CacheConfig"]["Enabled"] is True, s["Name"]


def test_scripts_come_from_the_code_package_by_s3_uri(built: Builds) -> None:
    steps = _steps(built.cold)
    for name in ("etl", "preprocess", "evaluate", "baseline"):
        args = steps[name]["Arguments"]
        code = [i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"] if i["InputName"] == "code"]
        assert code == [TARGET.code_uri], name
        script = args["AppSpecification"]["ContainerEntrypoint"][-1]
        assert script == d.TABULAR.step(name).script and (TRAINING_CODE / script).is_file()
    for name in ("train",):
        hp = steps[name]["Arguments"]["HyperParameters"]
        assert hp["sagemaker_submit_directory"] == TARGET.code_uri
        assert (TRAINING_CODE / hp["sagemaker_program"]).is_file()
    tune = steps["tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    assert tune["sagemaker_submit_directory"] == TARGET.code_uri
    for env in (steps["transform-model"]["Arguments"]["PrimaryContainer"]["Environment"],
                steps["register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"]):
        assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == TARGET.code_uri
        handlers = importlib.import_module(env["SAGEMAKER_PROGRAM"].removesuffix(".py"))
        assert all(callable(getattr(handlers, f)) for f in ("model_fn", "input_fn", "predict_fn", "output_fn"))


def test_vpc_and_kms_reach_every_job(built: Builds) -> None:
    steps = _steps(built.cold)
    subnets, groups, key = list(TARGET.subnet_ids), list(TARGET.security_group_ids), TARGET.kms_key_arn
    for name in ("etl", "preprocess", "evaluate", "baseline"):
        args = steps[name]["Arguments"]
        vpc = args["NetworkConfig"]["VpcConfig"]
        assert vpc == {"Subnets": subnets, "SecurityGroupIds": groups}, name
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == key
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
    for job in (steps["train"]["Arguments"], steps["tune"]["Arguments"]["TrainingJobDefinition"]):
        assert job["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": groups}
        assert job["OutputDataConfig"]["KmsKeyId"] == key
        assert job["ResourceConfig"]["VolumeKmsKeyId"] == key
    assert steps["transform-model"]["Arguments"]["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": groups}
    transform = steps["transform"]["Arguments"]
    assert transform["TransformOutput"]["KmsKeyId"] == key
    assert transform["TransformResources"]["VolumeKmsKeyId"] == key


def test_the_baseline_lands_where_model_monitor_reads_it(built: Builds) -> None:
    (out,) = _steps(built.cold)["baseline"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert out["S3Output"]["S3Uri"] == f"s3://{TARGET.bucket}/monitoring/baseline"


# -- a bad target fails before the SDK is touched ----------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("bucket", "s3://not-a-bucket-name"),
    ("role_arn", "PipelineRole"),
    ("code_uri", "training_code/"),
    ("region", "Ireland"),
    ("problem_type", "ranking"),
    ("pipeline_name", "churn training"),
    ("spec", "specs/missing.json"),
])
def test_a_bad_target_names_the_field(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        replace(TARGET, **{field: value})


def test_a_vpc_needs_both_subnets_and_security_groups() -> None:
    with pytest.raises(ValueError, match="security_group_ids"):
        replace(TARGET, security_group_ids=())


def test_the_image_workload_runs_on_pytorch_images_without_etl_or_baseline(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    built = build_once(tmp_path_factory, target("image", "binary")).cold
    steps = _steps(built)
    assert step_names(built) == d.IMAGE.step_names
    assert built["PipelineExperimentConfig"] is None or "etl" not in steps
    tune = steps["tune"]["Arguments"]["TrainingJobDefinition"]
    assert "pytorch-training" in tune["AlgorithmSpecification"]["TrainingImage"]
    assert tune["StaticHyperParameters"]["sagemaker_program"] == "image_train.py"
    assert "pytorch-inference" in steps["transform-model"]["Arguments"]["PrimaryContainer"]["Image"]
    assert steps["transform"]["Arguments"]["TransformInput"]["ContentType"] == "image/png"
    assert steps["register"]["Arguments"]["ModelPackageGroupName"] == d.IMAGE.model_name
    (condition,) = steps["check"]["Arguments"]["Conditions"]
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.accuracy.value"


# -- scale and cost -----------------------------------------------------------------------------

def _jobs(defn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The training job requests: train's, and the one tune starts per trial."""
    steps = _steps(defn)
    return {"train": steps["train"]["Arguments"], "tune": steps["tune"]["Arguments"]["TrainingJobDefinition"]}


def test_xgboost_hosts_each_read_a_shard_of_the_train_split(built: Builds) -> None:
    for name, job in _jobs(built.cold).items():
        kinds = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
                 for c in job["InputDataConfig"]}
        assert kinds == {"train": "ShardedByS3Key", "validation": "FullyReplicated",
                         "transformer": "FullyReplicated"}, name
        assert _get(job["ResourceConfig"]["InstanceCount"]) == "Parameters.TrainingInstanceCount"
        assert job["EnableInterContainerTrafficEncryption"] is True, name  # hosts talk to each other


def test_training_and_tuning_run_on_spot_capacity_and_train_resumes_from_s3(built: Builds) -> None:
    for name, job in _jobs(built.cold).items():
        assert job["EnableManagedSpotTraining"] is True, name
        stop = job["StoppingCondition"]
        assert stop["MaxWaitTimeInSeconds"] >= stop["MaxRuntimeInSeconds"], name
    checkpoints = _jobs(built.cold)["train"]["CheckpointConfig"]
    assert checkpoints["LocalPath"] == "/opt/ml/checkpoints"
    assert checkpoints["S3Uri"]["Std:Join"]["Values"][0] == f"{TARGET.pipeline_prefix}/checkpoints"
    # Trials share one job definition: one checkpoint location would let a trial resume another's.
    assert "CheckpointConfig" not in _jobs(built.cold)["tune"]


def test_a_stage_can_turn_spot_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    defn = build_once(tmp_path_factory, replace(TARGET, spot_training=False, training_instance_count=3)).cold
    for name, job in _jobs(defn).items():
        assert job.get("EnableManagedSpotTraining", False) is False, name
        assert "MaxWaitTimeInSeconds" not in job["StoppingCondition"], name
    params = {p["Name"]: p["DefaultValue"] for p in defn["Parameters"]}
    assert params["TrainingInstanceCount"] == 3


def test_the_image_workload_trains_on_gpus_with_torchrun(tmp_path_factory: pytest.TempPathFactory) -> None:
    gpu = replace(target("image", "binary"), training_instance_type="ml.g5.12xlarge", training_instance_count=2)
    defn = build_once(tmp_path_factory, gpu).cold
    steps = _steps(defn)
    for name, job in _jobs(defn).items():
        assert "pytorch-training:2.5.1-gpu-py311" in job["AlgorithmSpecification"]["TrainingImage"], name
        hyperparameters = job.get("HyperParameters") or job["StaticHyperParameters"]
        assert hyperparameters["sagemaker_torch_distributed_enabled"] == "true", name
        assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in job["InputDataConfig"]} == {
            "FullyReplicated"}, name  # every process takes its share of each global batch
    params = {p["Name"]: p["DefaultValue"] for p in defn["Parameters"]}
    assert (params["TrainingInstanceType"], params["TrainingInstanceCount"]) == ("ml.g5.12xlarge", 2)
    # Evaluation and serving stay on CPU types, so on the CPU images.
    assert "-cpu-" in steps["evaluate"]["Arguments"]["AppSpecification"]["ImageUri"]
    assert "-cpu-" in steps["transform-model"]["Arguments"]["PrimaryContainer"]["Image"]
    cpu = _jobs(build_once(tmp_path_factory, target("image", "binary")).cold)["train"]
    assert "-cpu-" in cpu["AlgorithmSpecification"]["TrainingImage"]
    assert "sagemaker_torch_distributed_enabled" not in cpu["HyperParameters"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"training_instance_count": 0}, "training_instance_count"),
    ({"training_instance_count": d.MAX_TRAINING_INSTANCES + 1}, "training_instance_count"),
    ({"training_instance_type": "ml.g5.xlarge"}, "training_instance_type"),  # XGBoost here trains on CPUs
    ({"training_instance_type": "ml.trn1.2xlarge"}, "training_instance_type"),
    ({"workload": "image", "training_instance_count": 2}, "training_instance_count"),  # CPUs: no torchrun
    ({"spot_training": "yes"}, "spot_training"),
])
def test_a_scale_that_would_not_train_one_model_is_refused_naming_the_field(changes: dict[str, Any],
                                                                            field: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        replace(TARGET, pipeline_name="", model_package_group="", **changes)
