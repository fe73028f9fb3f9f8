"""The local executor of the SageMaker pipeline definition JSON: expressions and property references,
the processing container contract (S3 prefix semantics, /opt/ml, pip offline, the Spark launcher),
what the tuning service adds to its training jobs, and the loop (order, branches, Fail steps).

Training and transform jobs are fakes here (their runtimes have their own tests); the whole
definition, with the real runtimes, runs in tests/e2e/test_sagemaker_local.py.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines import cli
from pipelines.sagemaker.runtime import expressions as ex
from pipelines.sagemaker.runtime.executor import Executor, dependencies, flatten, typed_parameters, upload_data
from pipelines.sagemaker.runtime.processing import JobFailed, run_processing_job, tools
from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.tuning import TUNING_OBJECTIVE, run_tuning_job

OUTPUTS = {"ProcessingOutputConfig": {"Outputs": [
    {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/run/preprocess/train", "LocalPath": "/opt/ml/x"}},
    {"OutputName": "raw_test", "S3Output": {"S3Uri": "s3://b/run/preprocess/raw_test", "LocalPath": "/opt/ml/y"}},
]}}
TUNED = {"BestTrainingJob": {"TrainingJobName": "tune-001-abc",
                             "TunedHyperParameters": {"eta": "0.05", "max_depth": "6"}}}


def scope(**steps: dict[str, Any]) -> ex.Scope:
    return ex.Scope(parameters={"Threshold": 0.75, "Trials": 3, "Url": "s3://b/raw/"},
                    execution={"PipelineExecutionId": "abc123def456"}, steps=dict(steps))


# -- expressions ------------------------------------------------------------------------------------

def test_parameters_execution_variables_and_joins() -> None:
    s = scope()
    joined = {"Std:Join": {"On": "/", "Values": ["s3://b/pipelines", {"Get": "Execution.PipelineExecutionId"},
                                                  "etl", {"Get": "Parameters.Trials"}]}}
    assert ex.evaluate(joined, s) == "s3://b/pipelines/abc123def456/etl/3"
    assert ex.evaluate({"Get": "Parameters.Threshold"}, s) == 0.75  # typed, not text
    nested = {"A": [{"Get": "Parameters.Url"}, 1], "B": {"C": "plain"}}
    assert ex.evaluate(nested, s) == {"A": ["s3://b/raw/", 1], "B": {"C": "plain"}}
    with pytest.raises(ex.ExpressionError, match="no parameter 'Nope'"):
        ex.evaluate({"Get": "Parameters.Nope"}, s)
    with pytest.raises(ex.ExpressionError, match="unknown execution variable"):
        ex.evaluate({"Get": "Execution.Nope"}, s)


def test_property_paths_pick_named_list_members_map_keys_and_indexes() -> None:
    s = scope(preprocess=OUTPUTS, tune=TUNED, train={"FinalMetricDataList": [{"MetricName": "validation:auc",
                                                                              "Value": 0.9}]})
    get = ex.get
    assert get("Steps.preprocess.ProcessingOutputConfig.Outputs['raw_test'].S3Output.S3Uri", s) \
        == "s3://b/run/preprocess/raw_test"
    assert get("Steps.preprocess.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri", s) == "s3://b/run/preprocess/train"
    assert get("Steps.tune.BestTrainingJob.TunedHyperParameters['eta']", s) == "0.05"
    assert get("Steps.tune.BestTrainingJob.TrainingJobName", s) == "tune-001-abc"
    assert get("Steps.train.FinalMetricDataList['validation:auc'].Value", s) == 0.9


def test_a_missing_property_names_the_path_and_a_step_not_run_says_so() -> None:
    s = scope(preprocess=OUTPUTS)
    with pytest.raises(ex.ExpressionError, match=r"Steps.preprocess.ProcessingOutputConfig.Outputs.test: no such"):
        ex.get("Steps.preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri", s)
    with pytest.raises(ex.ExpressionError, match="step 'train' has not run"):
        ex.get("Steps.train.ModelArtifacts.S3ModelArtifacts", s)


def test_json_get_reads_a_property_file_with_its_json_path() -> None:
    report = {"binary_classification_metrics": {"auc": {"value": 0.87}}, "curve": [{"x": 1}, {"x": 2}]}
    s = scope()
    s.property_file = lambda step, name: report if (step, name) == ("evaluate", "EvaluationReport") else None
    get = {"Get": "Steps.evaluate.PropertyFiles.EvaluationReport"}
    assert ex.evaluate({"Std:JsonGet": {"PropertyFile": get, "Path": "binary_classification_metrics.auc.value"}},
                       s) == 0.87
    assert ex.evaluate({"Std:JsonGet": {"PropertyFile": get, "Path": "$.curve[1].x"}}, s) == 2
    with pytest.raises(ex.ExpressionError, match=r"path 'regression_metrics\.r2\.value' not found"):
        ex.evaluate({"Std:JsonGet": {"PropertyFile": get, "Path": "regression_metrics.r2.value"}}, s)


def test_conditions_compare_numbers_across_types_and_combine() -> None:
    s = scope()

    def cond(kind: str, left: Any, right: Any) -> dict[str, Any]:
        return {"Type": kind, "LeftValue": left, "RightValue": right}

    threshold = {"Get": "Parameters.Threshold"}
    assert ex.condition(cond("GreaterThanOrEqualTo", 0.75, threshold), s)
    assert not ex.condition(cond("GreaterThan", 0.75, threshold), s)
    assert ex.condition(cond("LessThan", "0.5", threshold), s)  # a number in text compares as a number
    assert ex.condition(cond("Equals", "a", "a"), s)
    assert ex.condition({"Type": "Not", "Expression": cond("LessThanOrEqualTo", 0.8, threshold)}, s)
    assert ex.condition({"Type": "Or", "Conditions": [cond("Equals", 1, 2), cond("Equals", 3, 3)]}, s)
    assert ex.condition({"Type": "In", "QueryValue": {"Get": "Parameters.Trials"}, "Values": [1, 3]}, s)
    with pytest.raises(ex.ExpressionError, match="cannot compare"):
        ex.condition(cond("GreaterThan", "auc", 0.5), s)


def test_references_list_every_step_an_argument_reads() -> None:
    args = {"A": {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"},
            "B": [{"Std:Join": {"On": "", "Values": [{"Get": "Steps.transform-model.ModelName"}]}}],
            "C": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.evaluate.PropertyFiles.R"}, "Path": "a"}},
            "D": {"Get": "Parameters.X"}}
    assert set(ex.references(args)) == {"train", "transform-model", "evaluate"}


def test_parameters_take_definition_defaults_and_typed_overrides() -> None:
    definition = {"Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 20},
                                 {"Name": "T", "Type": "Float", "DefaultValue": 0.75},
                                 {"Name": "S", "Type": "String", "DefaultValue": "x"}]}
    assert typed_parameters(definition, {"N": "3", "T": "0.9"}) == {"N": 3, "T": 0.9, "S": "x"}
    with pytest.raises(ValueError, match="parameter N: expected Integer"):
        typed_parameters(definition, {"N": "many"})
    with pytest.raises(ValueError, match="no pipeline parameter Bogus"):
        typed_parameters(definition, {"Bogus": "1"})


# -- the loop ---------------------------------------------------------------------------------------

def _gated_definition() -> dict[str, Any]:
    auc = {"Get": "Steps.train.FinalMetricDataList['validation:auc'].Value"}
    threshold = {"Get": "Parameters.MetricThreshold"}
    return {"Parameters": [{"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 0.75},
                           {"Name": "Eta", "Type": "String", "DefaultValue": "0.1"}],
            "Steps": [
                # listed before the step it reads: runs after it
                {"Name": "model", "Type": "Model", "Arguments": {"PrimaryContainer": {
                    "ModelDataUrl": {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}}}},
                {"Name": "train", "Type": "Training",
                 "Arguments": {"HyperParameters": {"eta": {"Get": "Parameters.Eta"}}}},
                {"Name": "check", "Type": "Condition", "Arguments": {
                    "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": threshold}],
                    "IfSteps": [{"Name": "after", "Type": "Model", "DependsOn": ["model"], "Arguments": {}}],
                    "ElseSteps": [{"Name": "check-failed", "Type": "Fail", "Arguments": {"ErrorMessage": {
                        "Std:Join": {"On": " ", "Values": ["auc", auc, "is below", threshold]}}}}]}}]}


def _fake_train(seen: list[dict[str, Any]]) -> Any:
    def train(request: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
        seen.append(request)
        return SimpleNamespace(job_name=request["TrainingJobName"], model_artifacts="s3://b/model.tar.gz",
                               metrics={"validation:auc": 0.9})
    return train


def test_steps_run_in_dependency_order_and_the_branch_the_condition_takes(tmp_path: Path) -> None:
    definition = _gated_definition()
    assert dependencies(flatten(definition["Steps"])[3]) == {"check", "model"}  # branch + DependsOn
    seen: list[dict[str, Any]] = []
    run = Executor(definition, LocalS3(tmp_path / "s3"), tmp_path, parameters={"Eta": "0.3"},
                   train=_fake_train(seen), say=lambda _: None).run()
    assert run.status == "Succeeded"
    assert [(s.name, s.status) for s in run.steps] == [
        ("model", "Succeeded"), ("train", "Succeeded"), ("check", "Succeeded"), ("after", "Succeeded"),
        ("check-failed", "NotExecuted")]
    assert seen[0]["HyperParameters"] == {"eta": "0.3"}
    assert run.gate == "check: left 0.9000 >= 0.7500 -> True"
    order = json.loads((tmp_path / "execution.json").read_text())["steps"]
    assert order[0]["name"] == "model"  # records keep definition order; the loop ran train first
    model = json.loads((tmp_path / "steps" / "model" / "request.json").read_text())
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://b/model.tar.gz"


def test_a_fail_step_stops_the_execution_with_its_message_rendered(tmp_path: Path) -> None:
    run = Executor(_gated_definition(), LocalS3(tmp_path / "s3"), tmp_path, parameters={"MetricThreshold": "0.95"},
                   train=_fake_train([]), say=lambda _: None).run()
    assert run.status == "Failed" and run.failed_by_fail_step
    assert run.failure == "step 'check-failed': auc 0.9 is below 0.95"
    assert {s.name: s.status for s in run.steps}["after"] == "NotExecuted"


def test_a_model_package_must_point_at_metrics_and_baselines_that_exist(tmp_path: Path) -> None:
    """Registered as SageMaker would, plus one check: its monitors and the deployer read these files later."""
    s3 = LocalS3(tmp_path / "s3")
    s3.put_bytes("s3://b/run/evaluate/evaluation/evaluation.json", b'{"binary_classification_metrics": {}}')

    def source(uri: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": uri}

    register = {"Name": "register", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "g",
        "ModelMetrics": {"ModelQuality": {"Statistics": source("s3://b/run/evaluate/evaluation/evaluation.json")}},
        "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": source("s3://b/run/baseline/statistics.json")}}}}
    run = Executor({"Steps": [register]}, s3, tmp_path / "a", parameters={}, say=lambda _: None).run()
    assert run.status == "Failed"
    assert run.failure.endswith("metrics or baselines are not there: s3://b/run/baseline/statistics.json")
    s3.put_bytes("s3://b/run/baseline/statistics.json", b"{}")
    run = Executor({"Steps": [register]}, s3, tmp_path / "b", parameters={}, say=lambda _: None).run()
    assert run.status == "Succeeded" and run.packages[0]["Metrics"] == {"binary_classification_metrics": {}}


def test_a_step_type_not_emulated_fails_by_name(tmp_path: Path) -> None:
    definition = {"Steps": [{"Name": "lambda", "Type": "Lambda", "Arguments": {}}]}
    run = Executor(definition, LocalS3(tmp_path), tmp_path, parameters={}, say=lambda _: None).run()
    assert run.status == "Failed" and "Lambda steps are not emulated" in run.failure


# -- the processing container contract ---------------------------------------------------------------

JOB = """
import os, sys, pathlib
inputs = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])
files = sorted(str(p.relative_to(inputs)) for p in inputs.rglob("*") if p.is_file())
(out / "listing.txt").write_text("\\n".join(files))
(out / "env.txt").write_text(os.environ["JOB_SETTING"] + " " + str(pathlib.Path(os.getcwd()).name))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def _bundle(s3: LocalS3, files: dict[str, str]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    uri = "s3://b/code/sha/sourcedir.tar.gz"
    s3.put_bytes(uri, buf.getvalue())
    return uri


# The shape of pipelines.sagemaker.steps.RUNNER: unpack the bundle into /opt/ml/code, pip-install a
# non-empty requirements.txt, run the script.
RUNNER = ("set -eu;mkdir -p /opt/ml/code;cd /opt/ml/code;for f in /opt/ml/processing/input/code/*;do tar -xzf \"$f\";"
          "done;[ ! -s requirements.txt ]||python3 -m pip install -q -r requirements.txt;exec python3 \"$0\" \"$@\"")


def _request(code: str, *, env: dict[str, str] | None = None, entrypoint: list[str] | None = None) -> dict[str, Any]:
    def s3_input(name: str, uri: str) -> dict[str, Any]:
        return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{name}",
                                               "S3DataType": "S3Prefix", "S3InputMode": "File",
                                               "S3DataDistributionType": "FullyReplicated"}}
    return {
        "ProcessingJobName": "job",
        "AppSpecification": {"ContainerEntrypoint": entrypoint or ["/bin/sh", "-c", RUNNER, "job.py"],
                             "ContainerArguments": ["/opt/ml/processing/input", "/opt/ml/processing/output/result"]},
        "Environment": {"JOB_SETTING": "from-the-request", **(env or {})},
        "ProcessingInputs": [s3_input("code", code), s3_input("raw_test", "s3://b/run/preprocess/raw_test")],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": "s3://b/run/job/result", "LocalPath": "/opt/ml/processing/output/result",
            "S3UploadMode": "EndOfJob"}}]},
    }


@pytest.fixture
def s3(tmp_path: Path) -> LocalS3:
    store = LocalS3(tmp_path / "s3")
    store.put_bytes("s3://b/run/preprocess/raw_test/data.parquet", b"rows")
    store.put_bytes("s3://b/run/preprocess/raw_test_labels/labels.parquet", b"labels")
    return store


def test_processing_runs_the_entrypoint_under_a_local_opt_ml_with_s3_prefix_semantics(
        s3: LocalS3, tmp_path: Path) -> None:
    code = _bundle(s3, {"job.py": JOB, "requirements.txt": ""})
    described = run_processing_job(_request(code), s3, tmp_path / "work", tools(tmp_path / "tools"))
    assert described["ProcessingJobStatus"] == "Completed"
    listing = s3.get_bytes("s3://b/run/job/result/listing.txt").decode().splitlines()
    # S3Prefix semantics: the prefix .../raw_test also matches .../raw_test_labels/ (issue item 10)
    assert listing == ["code/sourcedir.tar.gz", "raw_test/_labels/labels.parquet", "raw_test/data.parquet"]
    assert s3.get_bytes("s3://b/run/job/result/env.txt").decode() == "from-the-request code"
    assert (tmp_path / "work" / "opt_ml" / "config" / "processingjobconfig.json").is_file()


def test_a_failed_job_uploads_nothing_and_its_reason_carries_the_log(s3: LocalS3, tmp_path: Path) -> None:
    code = _bundle(s3, {"job.py": JOB + "\nprint('it went wrong')"})
    with pytest.raises(JobFailed, match=r"AlgorithmError: the container exited with code 4"):
        run_processing_job(_request(code, env={"EXIT": "4"}), s3, tmp_path / "work", tools(tmp_path / "tools"))
    assert s3.list("s3://b/run/job/") == []


def test_pip_runs_offline_against_this_environment(s3: LocalS3, tmp_path: Path) -> None:
    """requirements.txt is installed for real with PIP_NO_INDEX: what this venv has passes, anything
    else fails naming the package (nothing is downloaded or changed)."""
    satisfied = _bundle(s3, {"job.py": JOB, "requirements.txt": "pyarrow\n"})
    run_processing_job(_request(satisfied), s3, tmp_path / "ok", tools(tmp_path / "tools"))
    missing = _bundle(s3, {"job.py": JOB, "requirements.txt": "surely-not-a-package-here==9.9.9\n"})
    with pytest.raises(JobFailed, match="surely-not-a-package-here"):
        run_processing_job(_request(missing), s3, tmp_path / "missing", tools(tmp_path / "tools"))


def test_the_spark_launcher_stand_in_runs_the_script_with_its_py_files(s3: LocalS3, tmp_path: Path) -> None:
    code = _bundle(s3, {"job.py": "import helper\nhelper.main()\n",
                        "lib/helper.py": "import sys, pathlib\ndef main():\n"
                                         "    pathlib.Path(sys.argv[2], 'listing.txt').write_text('spark')\n"})
    launcher = ["/bin/sh", "-c", "mkdir -p /opt/ml/code;cd /opt/ml/code;tar -xzf /opt/ml/processing/input/code/*;"
                "exec smspark-submit --py-files /opt/ml/code/lib \"/opt/ml/code/$0\" \"$@\"", "job.py"]
    run_processing_job(_request(code, entrypoint=launcher), s3, tmp_path / "work", tools(tmp_path / "tools"))
    assert s3.get_bytes("s3://b/run/job/result/listing.txt") == b"spark"
    launcher[2] = launcher[2].replace("--py-files", "--jars x.jar --py-files")
    with pytest.raises(JobFailed, match="exited with code 2"):
        run_processing_job(_request(code, entrypoint=launcher), s3, tmp_path / "w2", tools(tmp_path / "tools"))
    assert "option --jars is not emulated" in (tmp_path / "w2" / "log.txt").read_text()


def test_a_manifest_input_gets_the_objects_it_lists_under_their_relative_keys(s3: LocalS3, tmp_path: Path) -> None:
    """S3DataType ManifestFile: each listed object `<prefix><key>` lands at `<LocalPath>/<key>`; an
    object under the prefix that the manifest does not list is not downloaded."""
    curated = "s3://curated/"
    for key in ("ingestion_date=2026-12-01/batch=a1/part-0.parquet",
                "ingestion_date=2026-12-02/batch=b2/part-0.parquet",
                "ingestion_date=2026-12-03/batch=c3/part-0.parquet", "_ledger/a1.json"):
        s3.put_bytes(curated + key, b"rows")
    s3.put_bytes("s3://b/snapshots/abc.manifest", json.dumps([
        {"prefix": curated}, "ingestion_date=2026-12-01/batch=a1/part-0.parquet",
        "ingestion_date=2026-12-02/batch=b2/part-0.parquet"]).encode())
    request = _request(_bundle(s3, {"job.py": JOB}))
    snapshot = request["ProcessingInputs"][1]["S3Input"]
    snapshot.update(S3Uri="s3://b/snapshots/abc.manifest", S3DataType="ManifestFile")
    run_processing_job(request, s3, tmp_path / "work", tools(tmp_path / "tools"))
    listing = s3.get_bytes("s3://b/run/job/result/listing.txt").decode().splitlines()
    assert listing == ["code/sourcedir.tar.gz", "raw_test/ingestion_date=2026-12-01/batch=a1/part-0.parquet",
                       "raw_test/ingestion_date=2026-12-02/batch=b2/part-0.parquet"]


@pytest.mark.parametrize(("manifest", "error"), [
    ([{"prefix": "s3://curated/"}, "gone/part-0.parquet"],
     "NoSuchKey: s3://curated/gone/part-0.parquet (listed in the manifest s3://b/snapshots/m.manifest)"),
    ([{"prefix": "s3://curated/"}], "the manifest s3://b/snapshots/m.manifest lists no object"),
    (["no prefix"], 'a manifest is a list starting with {"prefix": "s3://..."}'),
    ([{"prefix": "s3://curated/"}, "../escape.parquet"], "'../escape.parquet' is not a key relative to the prefix"),
    (None, "NoSuchKey: s3://b/snapshots/m.manifest"),
])
def test_an_empty_missing_or_malformed_snapshot_fails_the_job_naming_it(s3: LocalS3, tmp_path: Path,
                                                                       manifest: Any, error: str) -> None:
    if manifest is not None:
        s3.put_bytes("s3://b/snapshots/m.manifest", json.dumps(manifest).encode())
    request = _request(_bundle(s3, {"job.py": JOB}))
    request["ProcessingInputs"][1]["S3Input"].update(S3Uri="s3://b/snapshots/m.manifest", S3DataType="ManifestFile")
    with pytest.raises(JobFailed, match=re.escape(error)):
        run_processing_job(request, s3, tmp_path / "work", tools(tmp_path / "tools"))


def test_run_local_data_for_a_manifest_uri_becomes_a_snapshot(tmp_path: Path) -> None:
    """`mlops pipeline run-local` hands the tabular pipeline its data as the starter would: the files
    as curated objects, and a manifest listing them at the InputDataUrl."""
    data = tmp_path / "data"
    (data / "ingestion_date=2026-01-01").mkdir(parents=True)
    (data / "ingestion_date=2026-01-01" / "part-0.csv").write_text("a,b\n1,2\n")
    (data / "_SUCCESS").write_text("")
    s3 = LocalS3(tmp_path / "s3")
    written = upload_data(s3, data, "s3://art/snapshots/unset.manifest")
    assert written == ["s3://art/curated/ingestion_date=2026-01-01/part-0.csv"]
    assert json.loads(s3.get_bytes("s3://art/snapshots/unset.manifest")) == [
        {"prefix": "s3://art/curated/"}, "ingestion_date=2026-01-01/part-0.csv"]
    assert upload_data(s3, data / "ingestion_date=2026-01-01", "s3://art/raw/") == ["s3://art/raw/part-0.csv"]


def test_a_local_path_outside_opt_ml_processing_is_refused(s3: LocalS3, tmp_path: Path) -> None:
    request = _request(_bundle(s3, {"job.py": JOB}))
    request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"] = "/tmp/result"
    with pytest.raises(JobFailed, match="output 'result': LocalPath '/tmp/result' must be under"):
        run_processing_job(request, s3, tmp_path / "work", tools(tmp_path / "tools"))


# -- what the tuning service does -------------------------------------------------------------------

def _tuning_request(direction: str = "Maximize", budget: int = 4, seed: int = 7) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": "tune-abc",
        "HyperParameterTuningJobConfig": {
            "HyperParameterTuningJobObjective": {"MetricName": "validation:auc", "Type": direction},
            "ParameterRanges": {
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "3", "MaxValue": "10",
                                            "ScalingType": "Linear"}],
                "ContinuousParameterRanges": [
                    {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"},
                    {"Name": "subsample", "MinValue": "0.5", "MaxValue": "0.99", "ScalingType": "ReverseLogarithmic"}],
                "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}]},
            "RandomSeed": seed, "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": budget, "MaxParallelTrainingJobs": 2}},
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File", "MetricDefinitions": [
                {"Name": "validation:auc", "Regex": "validation:auc=([0-9.]+)"}]},
            "StaticHyperParameters": {"num_round": "10", "sagemaker_program": "train.py"},
            "RoleArn": "arn:aws:iam::1:role/r", "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"},
            "OutputDataConfig": {"S3OutputPath": "s3://b/tune"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
    }


def _scored_train(seen: list[dict[str, Any]]) -> Any:
    def train(request: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
        seen.append(request)
        eta = float(request["HyperParameters"]["eta"])
        return SimpleNamespace(model_artifacts=f"s3://b/{request['TrainingJobName']}.tar.gz",
                               metrics={"validation:auc": eta})  # the objective: eta itself
    return train


def test_trials_get_the_static_the_tuned_as_plain_strings_and_the_objective(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    described = run_tuning_job(_tuning_request(budget=5), LocalS3(tmp_path), tmp_path, train=_scored_train(seen),
                               max_trials=3, say=lambda _: None)
    assert len(seen) == 3  # min(MaxNumberOfTrainingJobs, the local cap)
    for request in seen:
        hp = request["HyperParameters"]
        assert hp["num_round"] == "10" and hp["sagemaker_program"] == "train.py"
        assert hp[TUNING_OBJECTIVE] == "validation:auc"
        assert 3 <= int(hp["max_depth"]) <= 10 and hp["max_depth"] == str(int(hp["max_depth"]))
        assert 0.01 <= float(hp["eta"]) <= 0.3 and not hp["eta"].startswith('"')
        assert 0.5 <= float(hp["subsample"]) <= 0.99
        assert hp["booster"] in ("gbtree", "dart")
        assert "StaticHyperParameters" not in request and request["TrainingJobName"].startswith("tune-abc-00")
    best = described["BestTrainingJob"]
    etas = [float(r["HyperParameters"]["eta"]) for r in seen]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(etas)
    assert set(best["TunedHyperParameters"]) == {"max_depth", "eta", "subsample", "booster"}
    assert described["TrainingJobSummaries"][0]["TrainingJobName"] == best["TrainingJobName"]


def test_minimize_picks_the_lowest_and_the_same_seed_tries_the_same_points(tmp_path: Path) -> None:
    runs = []
    for k in range(2):
        seen: list[dict[str, Any]] = []
        described = run_tuning_job(_tuning_request("Minimize"), LocalS3(tmp_path), tmp_path / str(k),
                                   train=_scored_train(seen), say=lambda _: None)
        value = described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        assert value == min(float(r["HyperParameters"]["eta"]) for r in seen)
        runs.append([r["HyperParameters"] for r in seen])
    assert runs[0] == runs[1]


def test_a_failed_trial_does_not_stop_the_search_but_all_failing_does(tmp_path: Path) -> None:
    calls = []

    def flaky(request: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
        calls.append(request)
        if len(calls) == 1:
            raise RuntimeError("training job failed: boom")
        return SimpleNamespace(model_artifacts="s3://b/m.tar.gz", metrics={"validation:auc": 0.8})

    described = run_tuning_job(_tuning_request(budget=2), LocalS3(tmp_path), tmp_path, train=flaky, say=lambda _: None)
    assert described["TrainingJobStatusCounters"] == {"Completed": 1, "NonRetryableError": 1}

    def broken(request: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
        raise RuntimeError("unrecognized arguments: --_tuning_objective_metric")

    with pytest.raises(RuntimeError, match=r"every training job of the tuning job failed.*unrecognized arguments"):
        run_tuning_job(_tuning_request(budget=2), LocalS3(tmp_path), tmp_path / "b", train=broken, say=lambda _: None)


# -- the command ------------------------------------------------------------------------------------

def test_run_local_checks_parameters_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    assert cli.main(["pipeline", "run-local", "--param", "TuningMaxTrials=many"]) == 2
    assert "--param TuningMaxTrials: expected integer, got 'many'" in capsys.readouterr().err
    assert cli.main(["pipeline", "run-local", "--param", "Bogus=1"]) == 2
    assert "not a pipeline parameter" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()
