"""Train a tabular model: XGBoost (hist, early stopping) or a scikit-learn alternative.

SageMaker script mode: channels from SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION /
SM_CHANNEL_TRANSFORMER, the model to SM_MODEL_DIR, hyperparameters as `--name value`. Every
one can equally be given as an argument (Azure ML, local). A misspelt hyperparameter fails.

Metrics are printed one per line as `<channel>:<metric>=<value>` (e.g. `validation:auc=0.91234`)
for SageMaker metric definitions and tuning objectives, and logged to MLflow when
MLFLOW_TRACKING_URI is set: the validation metric every 10 rounds as training goes (what an Azure
sweep's early termination acts on), then the final values, last. XGBoost checkpoints to
--checkpoint-dir every 25 rounds and resumes from the latest checkpoint (managed spot training);
resumed from one of those periodic checkpoints, the model equals an uninterrupted run's.

On several instances (SageMaker's SM_HOSTS), XGBoost trains ONE model across them: each host reads its
shard of the train channel (ShardedByS3Key), the trees are grown from histograms summed over all
hosts (XGBoost's collective; tabular/distributed.py), and the first host writes the model. The
scikit-learn algorithms train on one machine and refuse more than one instance.

    python train.py --train out/train --validation out/validation --transformer out/transformer \
        --model-dir out/model --max_depth 6 --eta 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from common.model_code import ship_serving_code
from common.tracking import upload_artifacts
from tabular import distributed
from tabular.distributed import SINGLE, Cluster
from tabular.metrics import compute_metrics, format_metric_lines
from tabular.model_io import predict_scores, xgb_scores
from tabular.transform import TRANSFORMER_FILE, TabularTransformer

ALGORITHMS = ("xgboost", "random_forest", "linear")
# With row/column sampling the booster is rebuilt at every checkpoint (see train_xgboost), which
# re-predicts every tree so far: that cost grows with rounds^2 / CHECKPOINT_EVERY. 25 rounds: 1M rows
# x 20, 100 rounds, sampling 0.8 cost 1.42x bare xgboost.train in CPU at 10, 1.26-1.33x at 25; a spot
# interruption loses at most 25 rounds (seconds on a million rows).
CHECKPOINT_EVERY = 25
MODEL_META = "model_meta.json"


@dataclass(frozen=True)
class TrainConfig:
    train: Path
    validation: Path
    transformer: Path
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path | None
    algorithm: str = "xgboost"
    num_round: int = 400
    eta: float = 0.1
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 20
    n_estimators: int = 200
    c: float = 1.0
    seed: int = 42
    nthread: int = 0

    def hyperparameters(self) -> dict[str, Any]:
        skip = {"train", "validation", "transformer", "model_dir", "output_data_dir", "checkpoint_dir"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def _flag(p: argparse.ArgumentParser, name: str, **kw: Any) -> None:
    """`--a_b` and `--a-b` both work: SageMaker passes hyperparameter names as they are written."""
    names = {f"--{name}", f"--{name.replace('_', '-')}"}
    p.add_argument(*sorted(names), dest=name, **kw)


def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    env = os.environ.get
    d = TrainConfig
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    _flag(p, "train", type=Path, default=env("SM_CHANNEL_TRAIN", "data/train"))
    _flag(p, "validation", type=Path, default=env("SM_CHANNEL_VALIDATION", "data/validation"))
    _flag(p, "transformer", type=Path, default=env("SM_CHANNEL_TRANSFORMER", "data/transformer"))
    _flag(p, "model_dir", type=Path, default=env("SM_MODEL_DIR", "out/model"))
    _flag(p, "output_data_dir", type=Path, default=env("SM_OUTPUT_DATA_DIR", "out/output"))
    default_ckpt = "/opt/ml/checkpoints" if Path("/opt/ml/checkpoints").is_dir() else None
    _flag(p, "checkpoint_dir", type=Path, default=default_ckpt)
    _flag(p, "algorithm", choices=ALGORITHMS, default=d.algorithm)
    for name in ("num_round", "max_depth", "early_stopping_rounds", "n_estimators", "seed", "nthread"):
        _flag(p, name, type=int, default=getattr(d, name))
    for name in ("eta", "min_child_weight", "subsample", "colsample_bytree", "reg_lambda"):
        _flag(p, name, type=float, default=getattr(d, name))
    # sagemaker-training renders a one-letter hyperparameter as `-c`, people write --c or --C
    p.add_argument("-c", "--c", "--C", dest="c", type=float, default=d.c, help="inverse regularization (linear)")
    # SageMaker's tuning service adds this hyperparameter to every trial it starts (AWS's toolkits
    # read it to tell a tuning run); the metric this script prints is the one the tuner reads.
    p.add_argument("--_tuning_objective_metric", dest="tuning_objective_metric", default=None,
                   help=argparse.SUPPRESS)
    args = vars(p.parse_args(argv))
    args.pop("tuning_objective_metric")
    cfg = TrainConfig(**args)
    _validate(p, cfg)
    return cfg


def _validate(p: argparse.ArgumentParser, cfg: TrainConfig) -> None:
    if cfg.num_round < 1 or cfg.n_estimators < 1:
        p.error("--num_round and --n_estimators must be at least 1")
    if not 0 < cfg.eta <= 1:
        p.error(f"--eta must be in (0, 1], got {cfg.eta}")
    if not (0 < cfg.subsample <= 1 and 0 < cfg.colsample_bytree <= 1):
        p.error("--subsample and --colsample_bytree must be in (0, 1]")
    if cfg.max_depth < 1:
        p.error("--max_depth must be at least 1")


# -- data ---------------------------------------------------------------------------------------
def load_split(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (float32, C-contiguous) and labels of a split: one copy out of Arrow, no more."""
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{path}: no Parquet file")
    table = pq.read_table(files[0]) if len(files) == 1 else pq.ParquetDataset(files).read()
    if target not in table.column_names:
        raise ValueError(f"{path}: no target column {target!r}")
    names = [c for c in table.column_names if c != target]
    x = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        x[:, j] = table.column(name).to_numpy()
    y = table.column(target).to_numpy().astype(np.float32)
    return x, y, names


# -- XGBoost with resumable early stopping -----------------------------------------------------
def xgb_params(cfg: TrainConfig, problem_type: str, n_classes: int) -> dict[str, Any]:
    objective, metric = {
        "binary": ("binary:logistic", ["logloss", "auc"]),
        "multiclass": ("multi:softprob", ["merror", "mlogloss"]),
        "regression": ("reg:squarederror", ["rmse"]),
    }[problem_type]
    params: dict[str, Any] = {
        "objective": objective, "eval_metric": metric, "tree_method": "hist",
        "eta": cfg.eta, "max_depth": cfg.max_depth, "min_child_weight": cfg.min_child_weight,
        "subsample": cfg.subsample, "colsample_bytree": cfg.colsample_bytree, "lambda": cfg.reg_lambda,
        "seed": cfg.seed, "nthread": cfg.nthread or (os.cpu_count() or 1),
    }
    if problem_type == "multiclass":
        params["num_class"] = n_classes
    return params


def train_xgboost(cfg: TrainConfig, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
                  problem_type: str, n_classes: int, c: Cluster = SINGLE,
                  report: Callable[[str, int, float], None] | None = None
                  ) -> tuple[Any, int, dict[str, np.ndarray] | None]:
    """Returns the booster cut at its best iteration, that iteration, and the train and validation
    scores when nothing was cut off (else None).

    The boosting loop is written out (rather than `xgb.train`) so that a resumed run grows
    exactly the trees an uninterrupted one would. XGBoost's sampling RNG cannot be saved, so at
    every checkpoint boundary the booster is rebuilt from its own bytes with a seed derived from
    the round: the RNG state at round i then depends on (seed, i) only, whether or not the
    process was restarted in between. Without row or column sampling nothing is random, and the
    rebuild (which drops XGBoost's prediction cache: the next round re-predicts every tree) is
    skipped. Only the validation set is evaluated each round: early stopping and the progress
    lines read it, and the train metrics are computed once, at the end.

    On several hosts (inside `distributed.collective`) `x, y` is this host's shard. Every host holds
    the whole validation set, whose metric XGBoost aggregates across hosts, so all of them see the
    same values and stop at the same round. The first host alone reads and writes checkpoints;
    what it resumes from is broadcast, so every host resumes from the same round.

    `report` receives the validation metric at each progress line (tabular/xgb_checkpoint.RoundProgress).
    """
    import xgboost as xgb

    from tabular.xgb_checkpoint import CheckpointedEarlyStopping, RoundProgress, latest_checkpoint, parse_eval

    params = xgb_params(cfg, problem_type, n_classes)
    dtrain = xgb.QuantileDMatrix(x, label=y, nthread=params["nthread"])
    dval = xgb.QuantileDMatrix(xv, label=yv, ref=dtrain, nthread=params["nthread"])
    metric = params["eval_metric"][-1]
    stopper = CheckpointedEarlyStopping(cfg.early_stopping_rounds, metric, metric == "auc",
                                        cfg.checkpoint_dir if c.writes else None, CHECKPOINT_EVERY)
    progress = RoundProgress(metric, report=report) if c.writes else None
    start, saved = latest_checkpoint(cfg.checkpoint_dir, stopper) if cfg.checkpoint_dir and c.writes else (0, None)
    if c.distributed:
        start, raw, state = distributed.share(
            (start, bytearray(saved.save_raw()) if saved is not None else None, stopper.state()), c)
        stopper.restore(state)
        saved = raw
    if start and c.writes:
        print(f"resuming from checkpoint at round {start}", flush=True)
    booster = xgb.Booster(params, [dtrain, dval], model_file=saved)
    evals = [(dval, "validation")]
    sampling = cfg.subsample < 1 or cfg.colsample_bytree < 1
    history: dict[str, dict[str, list[float]]] = {}
    for i in range(start, cfg.num_round):
        if stopper.stopped:
            break
        if sampling and i % CHECKPOINT_EVERY == 0:
            booster = _reseeded(xgb, booster, params, i, [dtrain, dval])
        booster.update(dtrain, iteration=i)
        for channel, values in parse_eval(booster.eval_set(evals, i)).items():
            for name, value in values.items():
                history.setdefault(channel, {}).setdefault(name, []).append(value)
        if progress is not None:
            progress.after_iteration(booster, i, history)
        stopper.after_iteration(booster, i, history)
    stopper.after_training(booster)
    best = stopper.best_iteration
    cached = None
    if best + 1 == booster.num_boosted_rounds():
        # XGBoost's prediction cache holds every row's score already: the same numbers as predicting
        # afresh (bit for bit), for free, where predicting 1M rows again costs seconds.
        cached = {"train": xgb_scores(booster.predict(dtrain), problem_type),
                  "validation": xgb_scores(booster.predict(dval), problem_type)}
    return booster[: best + 1], best, cached


def _reseeded(xgb: Any, booster: Any, params: dict[str, Any], round_: int, cache: list[Any]) -> Any:
    seeded = {**params, "seed": params["seed"] * 1_000_003 + round_ // CHECKPOINT_EVERY}
    return xgb.Booster(seeded, cache, model_file=bytearray(booster.save_raw()))


def train_sklearn(cfg: TrainConfig, x: np.ndarray, y: np.ndarray, problem_type: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    jobs = cfg.nthread or -1
    if cfg.algorithm == "random_forest":
        cls = RandomForestRegressor if problem_type == "regression" else RandomForestClassifier
        model = cls(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, min_samples_leaf=2,
                    n_jobs=jobs, random_state=cfg.seed)
    elif problem_type == "regression":
        model = Ridge(alpha=1.0 / cfg.c, random_state=cfg.seed)
    else:
        model = LogisticRegression(C=cfg.c, max_iter=1000, random_state=cfg.seed)
    return model.fit(x, y.astype(np.int64) if problem_type != "regression" else y)


# -- the script ---------------------------------------------------------------------------------
def refuse_cluster(cfg: TrainConfig, c: Cluster) -> None:
    """More instances must mean one model trained across them, never N identical copies."""
    if not c.distributed:
        return
    if cfg.algorithm != "xgboost":
        raise ValueError(f"--algorithm {cfg.algorithm} trains on one machine, and this job has {c.size} "
                         "instances: it would train identical copies. Set TrainingInstanceCount to 1, "
                         "or use --algorithm xgboost, which trains one model across instances")
    if c.size > distributed.MAX_HOSTS:
        raise ValueError(f"this job has {c.size} instances; TrainingInstanceCount is at most "
                         f"{distributed.MAX_HOSTS} (the train split comes in {distributed.TRAIN_PARTS} "
                         "parts, shared out between the instances)")


def run(cfg: TrainConfig, c: Cluster = SINGLE,
        report: Callable[[str, int, float], None] | None = None) -> dict[str, float]:
    """Train and score; the first host (the only one on one machine) writes the model folder.
    `report(name, round, value)` receives XGBoost's validation metric as training goes."""
    refuse_cluster(cfg, c)
    transformer = TabularTransformer.load(cfg.transformer)
    problem, classes = transformer.problem_type, transformer.classes or []
    x, y, names = load_split(cfg.train, transformer.target)
    xv, yv, _ = load_split(cfg.validation, transformer.target)
    if names != transformer.feature_names:
        raise ValueError(f"{cfg.train}: feature columns do not match {cfg.transformer}")
    if c.distributed:
        if not len(x):
            raise ValueError(f"{cfg.train}: host {c.current} received no train rows (its shard of the "
                             "channel is empty)")
        print(f"train: host {c.rank + 1} of {c.size} ({c.current}), {len(x)} train rows in its shard", flush=True)
    n_classes = len(classes)

    best_iteration, cached = None, None
    with distributed.collective(c):
        if cfg.algorithm == "xgboost":
            model, best_iteration, cached = train_xgboost(cfg, x, y, xv, yv, problem, n_classes, c, report)
        else:
            model = train_sklearn(cfg, x, y, problem)
        metrics: dict[str, float] = {}
        for channel, (xs, ys) in {"train": (x, y), "validation": (xv, yv)}.items():
            scores = cached[channel] if cached else predict_scores(model, xs, cfg.algorithm, problem)
            if channel == "train":  # this host's shard: the metrics are over the whole split
                scores, ys = distributed.gather_rows(scores, c), distributed.gather_rows(ys, c)
            for k, v in compute_metrics(problem, ys, scores).items():
                metrics[f"{channel}:{k}"] = v
    if not c.writes:
        return metrics

    cfg.model_dir.mkdir(parents=True, exist_ok=True)
    if cfg.algorithm == "xgboost":
        model.save_model(cfg.model_dir / "model.ubj")
    else:
        import joblib

        joblib.dump(model, cfg.model_dir / "model.joblib")
    shutil.copyfile(cfg.transformer / TRANSFORMER_FILE if cfg.transformer.is_dir() else cfg.transformer,
                    cfg.model_dir / TRANSFORMER_FILE)
    meta = {
        "workload": "tabular",
        "inference_module": "inference",
        "algorithm": cfg.algorithm,
        "problem_type": problem,
        "target": transformer.target,
        "classes": classes,
        "feature_names": names,
        "raw_columns": transformer.raw_columns,
        "hyperparameters": cfg.hyperparameters(),
        "best_iteration": best_iteration,
        "hosts": c.size,
        "metrics": metrics,
    }
    (cfg.model_dir / MODEL_META).write_text(json.dumps(meta, indent=2))
    # In a SageMaker training job, the code that serves this model travels inside model.tar.gz:
    # a model package registered from it deploys whatever code bundle is current later.
    ship_serving_code(cfg.model_dir, f"{meta['inference_module']}.py")
    cfg.output_data_dir.mkdir(parents=True, exist_ok=True)
    (cfg.output_data_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


class MLflowRounds:
    """Logs each reported round's validation metric to MLflow under the name its final value gets
    (`validation:auc` -> `validation_auc`, an Azure sweep's primary metric), at the round as its step:
    an early-termination policy acts on these values while the trial runs. A failed call is a warning
    and ends the per-round logging (the next would likely fail too, and each may wait on a network
    timeout); the trial goes on and still logs its final values."""

    def __init__(self) -> None:
        self.on = True
        self.step: int | None = None  # the last step logged

    def __call__(self, name: str, step: int, value: float) -> None:
        if not self.on:
            return
        try:
            import mlflow

            if mlflow.active_run() is None:  # on Azure ML, the job's own run (MLFLOW_RUN_ID)
                mlflow.start_run(run_id=os.environ.get("MLFLOW_RUN_ID"))
            mlflow.log_metric(name.replace(":", "_"), value, step=step)
            self.step = step
        except Exception as e:  # whatever the tracking store raises: training does not depend on it
            self.on = False
            print(f"warning: MLflow could not log {name} at round {step}: {type(e).__name__}: {e}; "
                  "no more per-round metrics", file=sys.stderr, flush=True)


def log_to_mlflow(cfg: TrainConfig, metrics: dict[str, float], step: int | None = None) -> None:
    """Parameters, metrics and the model folder, when a tracking server is configured. The metrics go
    at `step`, the last per-round step logged (MLflowRounds): the last value of the validation metric
    is then the final model's, not the last round's, and so is its best (the rounds after the best
    one only got worse), whichever of the two a sweep ranks trials by."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return
    import mlflow

    active = mlflow.active_run() or mlflow.start_run(run_id=os.environ.get("MLFLOW_RUN_ID"))
    with active:
        mlflow.log_params(cfg.hyperparameters())
        values = {k.replace(":", "_"): v for k, v in metrics.items()}
        if step is None:
            mlflow.log_metrics(values)
        else:
            mlflow.log_metrics(values, step=step)
        upload_artifacts(lambda: mlflow.log_artifacts(str(cfg.model_dir), artifact_path="model"),
                         f"the model folder {cfg.model_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(argv)
    rounds = MLflowRounds() if os.environ.get("MLFLOW_TRACKING_URI") else None
    try:
        c = distributed.cluster()
        metrics = run(cfg, c, rounds)
    except (FileNotFoundError, ValueError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    if c.writes:  # once per job: SageMaker's metric regexes and the tuner read these lines
        print(format_metric_lines(metrics), flush=True)
        log_to_mlflow(cfg, metrics, rounds.step if rounds else None)
    return 0
