"""The steps of each workload, in the order they run, declared once.

The file contract between them (folders; `<step>/<output>`), tabular:

    preprocess  param InputDataUrl (a curated-data snapshot) -> train, validation, test (transformed),
                raw_train, raw_test, raw_test_labels (raw rows), transformer, report, quarantine
    tune        preprocess/train, validation, transformer -> a model per trial; best_hyperparameters
    train       the same + tune/best_hyperparameters      -> model (model.tar.gz in the cloud)
    evaluate    train/model, preprocess/test, train, raw_test, raw_test_labels + param ChampionModelUrl
                -> evaluation (evaluation.json with the candidate's, the naive baseline's and the
                champion's scores and the model's digest; model_quality_constraints.json; plots)
    check       evaluate/evaluation + params GateMargin, MetricThreshold, RegisteredModelDigests
                -> check (check.json: passed, register, the comparisons), or the run stops
    baseline    preprocess/raw_train, preprocess/report   -> baseline (statistics.json, constraints.json)
    register    train/model, evaluate/evaluation, baseline/baseline + param InputDataUrl
                -> model_version, pending approval
    transform   train/model, preprocess/raw_test          -> predictions

baseline, register and transform also take check/check: they run only once the gate has passed and
the candidate is not a version registered already (check.json "register"). The ETL is no pipeline
step: it runs before the pipeline (Glue in the cloud, `mlops run` locally), and the pipeline trains
on a snapshot of what it wrote. The image workload has no baseline step; its preprocess reads the
raw images, and its evaluate and register take no raw rows and no baseline.
"""

from __future__ import annotations

from pipelines.definition.contract import (
    Arg,
    Input,
    InputDir,
    InputFile,
    OutputDir,
    OutputsRoot,
    Param,
    Setting,
    Step,
)

_CHECKED = Input("check", "check/check")


def _channels(*names: str) -> tuple[Input, ...]:
    return tuple(Input(n, f"preprocess/{n}") for n in names)


def _channel_args(*names: str) -> tuple[Arg, ...]:
    return tuple(Arg(f"--{n}", InputDir(n)) for n in names)


def _training_args(*extra: Arg) -> tuple[Arg, ...]:
    """Where a training script writes (SageMaker's SM_MODEL_DIR and SM_OUTPUT_DATA_DIR)."""
    return (Arg("--model-dir", OutputDir("model")), Arg("--output-data-dir", OutputDir("output")), *extra)


def _check(script: str = "check.py") -> Step:
    return Step(
        "check", "condition", "data", script,
        inputs=(Input("evaluation", "evaluate/evaluation"),),
        outputs=("check",),
        args=(Arg("--evaluation", InputDir("evaluation")), Arg("--metric", Setting("gate_metric")),
              Arg("--op", Setting("gate_op")), Arg("--margin", Param("GateMargin")),
              Arg("--threshold", Param("MetricThreshold")),
              Arg("--registered-digests", Param("RegisteredModelDigests")), Arg("--output", OutputDir("check"))),
        description="Stop unless the candidate beats the naive baseline by the margin and is no worse than "
                    "the champion; register it only if no registered version has its digest")


def _register(*, baseline: bool) -> Step:
    inputs: tuple[Input, ...] = (Input("model", "train/model"), Input("evaluation", "evaluate/evaluation"))
    args: tuple[Arg, ...] = (Arg("--model", InputDir("model")), Arg("--evaluation", InputDir("evaluation")))
    if baseline:  # the version carries the monitoring baseline of the data it was trained on
        inputs += (Input("baseline", "baseline/baseline"),)
        args += (Arg("--baseline", InputDir("baseline")),)
    return Step(
        "register", "register", "none", "register.py",
        inputs=(*inputs, _CHECKED),
        outputs=("model_version",),
        args=(*args, Arg("--approval-status", Param("ModelApprovalStatus")), Arg("--data", Param("InputDataUrl")),
              Arg("--output", OutputDir("model_version"))),
        description="Register the model version with its metrics and baseline, pending approval")


def _transform(script: str, data: str) -> Step:
    return Step(
        "transform", "transform", "model", script,
        inputs=(Input("model", "train/model"), Input(data, f"preprocess/{data}"), _CHECKED),
        outputs=("predictions",),
        args=(Arg("--model-dir", InputDir("model")), Arg("--input", InputDir(data)),
              Arg("--output", OutputDir("predictions"))),
        description="Batch transform of the test split")


_TABULAR_CHANNELS = ("train", "validation", "transformer")

TABULAR: tuple[Step, ...] = (
    Step(
        "preprocess", "processing", "data", "preprocess.py",
        inputs=(Input("curated", "param:InputDataUrl", manifest=True),),
        outputs=("train", "validation", "test", "raw_train", "raw_test", "raw_test_labels", "transformer",
                 "report", "quarantine"),
        args=(Arg("--input", InputDir("curated")), Arg("--spec", Setting("spec")), Arg("--target", Setting("target")),
              Arg("--problem-type", Setting("problem_type")), Arg("--seed", Setting("seed")),
              Arg("--output-dir", OutputsRoot())),
        description="Clean, impute, clip, encode, standardize, split the curated-data snapshot"),
    Step(
        "tune", "tuning", "model", "train.py",
        inputs=_channels(*_TABULAR_CHANNELS),
        outputs=("model", "output", "best_hyperparameters"),
        args=(*_channel_args(*_TABULAR_CHANNELS), *_training_args(Arg("--nthread", Setting("trial_threads")))),
        hyperparameters="search",
        description="Hyperparameter search over the shared space"),
    Step(
        "train", "training", "model", "train.py",
        inputs=(*_channels(*_TABULAR_CHANNELS), Input("best_hyperparameters", "tune/best_hyperparameters")),
        outputs=("model", "output", "checkpoints"),
        args=(*_channel_args(*_TABULAR_CHANNELS),
              *_training_args(Arg("--checkpoint-dir", OutputDir("checkpoints")))),
        hyperparameters="best",
        description="Train the best candidate, checkpointed"),
    Step(
        "evaluate", "processing", "model", "evaluate.py",
        inputs=(Input("model", "train/model"), Input("test", "preprocess/test"), Input("train", "preprocess/train"),
                Input("raw_test", "preprocess/raw_test"), Input("raw_test_labels", "preprocess/raw_test_labels")),
        outputs=("evaluation",),
        args=(Arg("--model-dir", InputDir("model")), Arg("--test", InputDir("test")), Arg("--train", InputDir("train")),
              Arg("--raw-test", InputDir("raw_test")), Arg("--raw-test-labels", InputDir("raw_test_labels")),
              Arg("--champion", Param("ChampionModelUrl")), Arg("--output-dir", OutputDir("evaluation"))),
        description="Score the test split, the naive baseline and the champion: evaluation.json and plots"),
    _check(),
    Step(
        "baseline", "processing", "data", "monitor.py",
        inputs=(Input("raw_train", "preprocess/raw_train"), Input("report", "preprocess/report"), _CHECKED),
        outputs=("baseline",),
        # The spec preprocessing resolved (problem type and classes filled in), not the given one.
        args=(Arg("baseline"), Arg("--input", InputDir("raw_train")), Arg("--spec", InputFile("report", "spec.json")),
              Arg("--output", OutputDir("baseline"))),
        description="Monitoring baseline of the version: statistics.json and constraints.json"),
    _register(baseline=True),
    _transform("inference.py", "raw_test"),
)

_IMAGE_CHANNELS = ("train", "validation")

IMAGE: tuple[Step, ...] = (
    Step(
        "preprocess", "processing", "data", "image_preprocess.py",
        inputs=(Input("raw", "param:InputDataUrl"),),
        outputs=("train", "validation", "test", "quarantine", "report"),
        args=(Arg("--input", InputDir("raw")), Arg("--seed", Setting("seed")), Arg("--output-dir", OutputsRoot())),
        description="Decode every image, quarantine bad ones, drop duplicates, stratified split"),
    Step(
        "tune", "tuning", "model", "image_train.py",
        inputs=_channels(*_IMAGE_CHANNELS),
        outputs=("model", "output", "best_hyperparameters"),
        args=(*_channel_args(*_IMAGE_CHANNELS), *_training_args(Arg("--workers", Setting("loader_workers")))),
        hyperparameters="search",
        description="Hyperparameter search over the shared space"),
    Step(
        "train", "training", "model", "image_train.py",
        inputs=(*_channels(*_IMAGE_CHANNELS), Input("best_hyperparameters", "tune/best_hyperparameters")),
        outputs=("model", "output", "checkpoints"),
        args=(*_channel_args(*_IMAGE_CHANNELS),
              *_training_args(Arg("--checkpoint-dir", OutputDir("checkpoints")),
                              Arg("--workers", Setting("loader_workers")))),
        hyperparameters="best",
        description="Train the best candidate (mixed precision where native, DDP across instances), export ONNX"),
    Step(
        "evaluate", "processing", "model", "image_evaluate.py",
        inputs=(Input("model", "train/model"), Input("test", "preprocess/test"), Input("train", "preprocess/train")),
        outputs=("evaluation",),
        args=(Arg("--model-dir", InputDir("model")), Arg("--test", InputDir("test")), Arg("--train", InputDir("train")),
              Arg("--champion", Param("ChampionModelUrl")), Arg("--output-dir", OutputDir("evaluation"))),
        description="Score the test images, the naive baseline and the champion: evaluation.json, confusion "
                    "matrix, int8 accuracy"),
    _check(),
    _register(baseline=False),
    _transform("image_inference.py", "test"),
)
