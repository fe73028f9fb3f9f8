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

def _gate(defn: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two ConditionSteps on check.json: "gate" (passed) and, in its "if" branch, "new-model"."""
    (gate,) = [s for s in defn["Steps"] if s["Type"] == "Condition"]
    (new_model,) = gate["Arguments"]["IfSteps"]
    return gate, new_model


def test_steps_run_in_the_definition_order(built: Builds) -> None:
    assert step_names(built.cold) == d.TABULAR.step_names
    top = [s["Name"] for s in built.cold["Steps"]]
    assert top == ["preprocess", "tune", "train", "evaluate", "check", "gate"]  # no ETL: it ran before
    assert set(HELPER_STEPS.values()) <= set(d.TABULAR.step_names)


@pytest.mark.parametrize("workload", ["tabular", "image"])
def test_the_gated_steps_run_only_for_a_new_model_that_passed(tmp_path_factory: pytest.TempPathFactory,
                                                              workload: str) -> None:
    """Nothing is baselined, registered or transformed unless check.json says "passed" (else the run
    fails with its message) and "register" (a model no registered version has the digest of)."""
    defn = build_once(tmp_path_factory, target(workload, d.workload(workload).default_problem)).cold
    gate, new_model = _gate(defn)
    assert (gate["Name"], new_model["Name"], new_model["Type"]) == ("gate", "new-model", "Condition")
    gated = ["baseline", "register", "transform-model", "transform"] if workload == "tabular" else [
        "register", "transform-model", "transform"]
    assert [s["Name"] for s in new_model["Arguments"]["IfSteps"]] == gated
    assert new_model["Arguments"]["ElseSteps"] == []  # a duplicate: nothing to do, the run succeeds
    assert [(s["Name"], s["Type"]) for s in gate["Arguments"]["ElseSteps"]] == [("check-failed", "Fail")]
    for condition, field in ((gate, "passed"), (new_model, "register")):
        (test,) = condition["Arguments"]["Conditions"]
        assert (test["Type"], test["RightValue"]) == ("Equals", True)
        assert test["LeftValue"]["Std:JsonGet"]["Path"] == field
        assert _get(test["LeftValue"]["Std:JsonGet"]["PropertyFile"]) == "Steps.check.PropertyFiles.CheckReport"



def test_pipeline_parameters_are_the_definitions(built: Builds) -> None:
    params = {p["Name"]: p for p in built.cold["Parameters"]}
    assert list(params) == [p.name for p in d.PARAMETERS]
    kinds = {"string": "String", "integer": "Integer", "float": "Float"}
    defaults = d.parameter_defaults(d.TABULAR, "binary")
    for p in d.PARAMETERS:
        assert params[p.name]["Type"] == kinds[p.type]
        if p.name != "InputDataUrl":
            assert params[p.name]["DefaultValue"] == defaults[p.name]
    # A snapshot manifest: the starter names one per execution (this one fails, naming itself).
    assert params["InputDataUrl"]["DefaultValue"] == f"s3://{TARGET.bucket}/snapshots/unset.manifest"
    assert (params["GateMargin"]["DefaultValue"], params["MetricThreshold"]["DefaultValue"]) == (0.05, "")
    assert params["ChampionModelUrl"]["DefaultValue"] == params["RegisteredModelDigests"]["DefaultValue"] == ""


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


def test_check_runs_check_py_on_what_evaluate_writes_and_the_gate_reads_its_verdict(built: Builds) -> None:
    steps = _steps(built.cold)
    check = steps["check"]["Arguments"]
    assert check["AppSpecification"]["ContainerEntrypoint"][-1] == "check.py"
    argv = check["AppSpecification"]["ContainerArguments"]
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    assert flags["--metric"] == d.TABULAR.gate.path("binary") and flags["--op"] == "gte"
    assert _get(flags["--threshold"]) == "Parameters.MetricThreshold"
    assert _get(flags["--registered-digests"]) == "Parameters.RegisteredModelDigests"
    # A number parameter is a container argument as its text.
    assert flags["--margin"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.GateMargin"}]}}
    (evaluation,) = [i for i in check["ProcessingInputs"] if i["InputName"] == "evaluation"]
    assert evaluation["S3Input"]["LocalPath"] == flags["--evaluation"]
    assert _get(evaluation["S3Input"]["S3Uri"]["Std:Join"]["Values"][0]) == \
        "Steps.evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"
    # The property file the conditions read is check.json in the output check.py is told to write into.
    (prop,) = steps["check"]["PropertyFiles"]
    local = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in check["ProcessingOutputConfig"]["Outputs"]}
    assert (prop["PropertyFileName"], prop["FilePath"]) == ("CheckReport", "check.json")
    assert flags["--output"] == local[prop["OutputName"]]
    assert "PropertyFiles" not in steps["evaluate"]
    # check.py exits 3 when the gate does not pass: the job succeeds then, for the gate to read why.
    assert check["AppSpecification"]["ContainerEntrypoint"][2].endswith('python3 "$0" "$@"||[ $? -eq 3 ]')
    assert steps["evaluate"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"][2].endswith(
        'exec python3 "$0" "$@"')


def test_evaluate_scores_the_champion_the_starter_names(built: Builds) -> None:
    argv = _steps(built.cold)["evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert _get(argv[argv.index("--champion") + 1]) == "Parameters.ChampionModelUrl"
    assert {"--train", "--raw-test", "--raw-test-labels"} <= {a for a in argv if isinstance(a, str)}


def test_the_tabular_snapshot_is_read_as_a_manifest_and_images_as_a_prefix(
        built: Builds, tmp_path_factory: pytest.TempPathFactory) -> None:
    """InputDataUrl names a manifest of curated objects: its URI changes exactly when the data does,
    which is what SageMaker's cache keys on."""
    (data,) = [i["S3Input"] for i in _steps(built.cold)["preprocess"]["Arguments"]["ProcessingInputs"]
               if i["InputName"] != "code"]
    assert (data["S3DataType"], _get(data["S3Uri"])) == ("ManifestFile", "Parameters.InputDataUrl")
    image = _steps(build_once(tmp_path_factory, target("image", "multiclass")).cold)
    (raw,) = [i["S3Input"] for i in image["preprocess"]["Arguments"]["ProcessingInputs"] if i["InputName"] != "code"]
    assert (raw["S3DataType"], _get(raw["S3Uri"])) == ("S3Prefix", "Parameters.InputDataUrl")
    for steps in (_steps(built.cold), image):  # every other input is a folder another step wrote
        others = [i["S3Input"]["S3DataType"] for s in steps.values() if s["Type"] == "Processing"
                  for i in s["Arguments"]["ProcessingInputs"] if i["InputName"] not in ("curated", "raw")]
        assert set(others) == {"S3Prefix"}


def test_only_the_step_that_fetches_the_champion_leaves_network_isolation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing to pip-install, processing jobs are isolated, except evaluate: ChampionModelUrl
    may be "", so it cannot be a ProcessingInput, and evaluate.py fetches it itself."""
    from pipelines.sagemaker import steps as sagemaker_steps

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setattr(sagemaker_steps, "needs_pypi", lambda requirements: False)
    defn = definition_dict(TARGET, use_cache=False)
    isolated = {s["Name"]: s["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"]
                for s in _steps(defn).values() if s["Type"] == "Processing"}
    assert isolated == {"preprocess": True, "evaluate": False, "check": True, "baseline": True}


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


def test_failing_the_check_stops_with_its_message(built: Builds) -> None:
    """check.py's one-line message names each comparison with its numbers: the Fail step shows it."""
    gate, _ = _gate(built.cold)
    (fail,) = gate["Arguments"]["ElseSteps"]
    values = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    (message,) = [v["Std:JsonGet"] for v in values if isinstance(v, dict)]
    assert message["Path"] == "message" and _get(message["PropertyFile"]) == "Steps.check.PropertyFiles.CheckReport"


def test_register_records_the_evaluation_and_the_approval_parameter(built: Builds) -> None:
    register = _steps(built.cold)["register"]["Arguments"]
    assert register["ModelPackageGroupName"] == TARGET.model_package_group
    assert _get(register["ModelApprovalStatus"]) == "Parameters.ModelApprovalStatus"
    stats = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    (container,) = register["InferenceSpecification"]["Containers"]
    assert _get(container["ModelDataUrl"]) == "Steps.train.ModelArtifacts.S3ModelArtifacts"
    assert _get(register["CustomerMetadataProperties"]["data"]) == "Parameters.InputDataUrl"


def _file(source: dict[str, Any]) -> tuple[str | None, str]:
    """(the step output, the file name) of a metrics source: a Join of an output's URI and a name."""
    assert source["ContentType"] == "application/json"
    folder, name = source["S3Uri"]["Std:Join"]["Values"]
    return _get(folder), name


def _output(step: str, output: str) -> str:
    return f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"


@pytest.mark.parametrize("workload", ["tabular", "image"])
def test_each_version_carries_its_metrics_and_its_monitoring_baselines(tmp_path_factory: pytest.TempPathFactory,
                                                                       workload: str) -> None:
    """ModelMetrics and DriftCheckBaselines point at this execution's files: a version's baseline is
    its own, and the monitor of the serving version reads it from the model package."""
    steps = _steps(build_once(tmp_path_factory, target(workload, d.workload(workload).default_problem)).cold)
    register = steps["register"]["Arguments"]
    quality = register["ModelMetrics"]["ModelQuality"]
    assert _file(quality["Statistics"]) == (_output("evaluate", "evaluation"), "evaluation.json")
    assert _file(quality["Constraints"]) == (_output("evaluate", "evaluation"), "model_quality_constraints.json")
    drift = register["DriftCheckBaselines"]
    assert _file(drift["ModelQuality"]["Constraints"]) == (_output("evaluate", "evaluation"),
                                                           "model_quality_constraints.json")
    if workload == "image":  # no data-quality baseline for images
        assert "ModelDataQuality" not in drift
        return
    data = drift["ModelDataQuality"]
    assert _file(data["Statistics"]) == (_output("baseline", "baseline"), "statistics.json")
    assert _file(data["Constraints"]) == (_output("baseline", "baseline"), "constraints.json")
    (out,) = steps["baseline"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    values = out["S3Output"]["S3Uri"]["Std:Join"]["Values"]  # under the execution, never a shared place
    assert values[:2] == [TARGET.pipeline_prefix, {"Get": "Execution.PipelineExecutionId"}]


def test_every_job_step_is_cached(built: Builds) -> None:
    jobs = [s for s in _steps(built.cold).values() if s["Type"] in ("Processing", "Training", "Tuning", "Transform")]
    assert len(jobs) == 7
    for s in jobs:
        assert s["CacheConfig"]["Enabled"] is True, s["Name"]


def test_scripts_come_from_the_code_package_by_s3_uri(built: Builds) -> None:
    steps = _steps(built.cold)
    for name in ("preprocess", "evaluate", "check", "baseline"):
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
    # A model serves the code inside its own model.tar.gz (code/): an older version keeps its code,
    # and the model role needs no read on the code bundles.
    for env in (steps["transform-model"]["Arguments"]["PrimaryContainer"]["Environment"],
                steps["register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"]):
        assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code" != TARGET.code_uri
        handlers = importlib.import_module(env["SAGEMAKER_PROGRAM"].removesuffix(".py"))
        assert all(callable(getattr(handlers, f)) for f in ("model_fn", "input_fn", "predict_fn", "output_fn"))


def test_vpc_and_kms_reach_every_job(built: Builds) -> None:
    steps = _steps(built.cold)
    subnets, groups, key = list(TARGET.subnet_ids), list(TARGET.security_group_ids), TARGET.kms_key_arn
    for name in ("preprocess", "evaluate", "check", "baseline"):
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
    argv = steps["check"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert argv[argv.index("--metric") + 1] == "binary_classification_metrics.accuracy.value"
    assert "baseline" not in steps


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
