"""Settings: values a target fixes when it builds the pipeline, named once here.

A step's argument that reads a Setting gets the target's value for it; where a target has none
(None), the argument is left out and the script's own default applies.

    name            local run (`mlops run`)               SageMaker / Azure ML
    spec            --spec, or the default spec file      the spec file in the code bundle
    target          --target (bring-your-own data)        (the spec names it)
    problem_type    --problem-type, or inferred           the target's problem type
    seed            --seed                                DEFAULT_SEED
    gate_metric     the workload's gated metric as a JSON path into evaluation.json
    gate_op         gte or lte
    trial_threads   1: trials share the cores             (all of the instance's cores)
    loader_workers  0: trials share the cores             (the script's default)
"""

from __future__ import annotations

SETTINGS: dict[str, str] = {
    "spec": "dataset spec file (schema, target, problem type)",
    "target": "label column, where no spec names it",
    "problem_type": "binary, multiclass or regression; inferred from the data where unset",
    "seed": "the seed of every random choice (split, sampler)",
    "gate_metric": "JSON path of the gated metric in evaluation.json",
    "gate_op": "gte or lte: which way the metric is better (gte: higher is better)",
    "trial_threads": "compute threads per tuning trial",
    "loader_workers": "data loader processes per training process",
}

DEFAULT_SEED = 42
DEFAULT_SPEC = "specs/churn.json"  # relative to training_code/, where every target finds it
# The curated partition `mlops run`'s ETL writes locally: a fixed day, so a rerun writes identical
# files. No pipeline step takes it (the ETL runs before the pipeline: Glue in the cloud).
LOCAL_INGESTION_DATE = "2026-01-01"

Values = dict[str, str | None]
