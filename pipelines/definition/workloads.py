"""The workloads: what each supplies to the one pipeline runner and to the cloud builders.

A workload is its steps (steps.py), its search space per problem type, its quality gate (the metric,
the naive baseline it must beat and the margin, per problem type), the model
name it registers under, and the code bundle its jobs run: its entry scripts, what they import, its
data files and its own requirements file (shipped as requirements.txt, which the framework
containers pip-install at start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.definition.contract import Gate, ProblemType, SearchSpace, Step
from pipelines.definition.search_spaces import IMAGE as IMAGE_SPACES
from pipelines.definition.search_spaces import TABULAR as TABULAR_SPACES
from pipelines.definition.steps import IMAGE as IMAGE_STEPS
from pipelines.definition.steps import TABULAR as TABULAR_STEPS

HYPERPARAMETER_TOOL = "hyperparameters.py"  # record a trial's hyperparameters; print a record as flags


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    pipeline_name: str  # SageMaker pipeline / Azure experiment
    model_name: str  # model package group / registered model
    steps: tuple[Step, ...]
    search: Mapping[ProblemType, SearchSpace]
    gate: Gate
    serving_script: str  # model_fn/input_fn/predict_fn/output_fn and Azure's init/run
    batch_scoring_script: str  # Azure ML batch endpoints' driver: init() and run(mini_batch of file paths)
    requirements: str  # under training_code/
    data_files: tuple[str, ...]  # folders or files under training_code/ the jobs read
    problem_type_at: str  # JSON path of the problem type in preprocess's report/data_report.json
    default_problem: ProblemType  # what a cloud target builds for unless told (locally the data says)
    request_hint: str  # what `mlops serve` takes

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"workload {self.name!r} has no step {name!r}; steps: {', '.join(self.step_names)}")

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def search_space(self, problem: ProblemType) -> SearchSpace:
        if problem not in self.search:
            raise ValueError(f"the {self.name} workload has no {problem} models; one of {', '.join(self.search)}")
        return self.search[problem]

    def metrics(self, step: Step, problem: ProblemType) -> tuple[str, ...]:
        """The metric lines a step's script prints that a target reads (SageMaker from the log, Azure
        from MLflow): the objective, for the steps that tune or train."""
        return (self.search_space(problem).objective.metric,) if step.hyperparameters else ()

    @property
    def problem_types(self) -> tuple[ProblemType, ...]:
        return tuple(self.search)

    @property
    def entry_scripts(self) -> tuple[str, ...]:
        """Every script its jobs start, in step order: the steps', the serving ones (online, then batch),
        and the tool that hands tuned hyperparameters on through a file where a target needs one (Azure ML)."""
        found = [s.script for s in self.steps if s.script]
        tools = [HYPERPARAMETER_TOOL] if any(s.hyperparameters == "best" for s in self.steps) else []
        return tuple(dict.fromkeys([*found, self.serving_script, self.batch_scoring_script, *tools]))


TABULAR = Workload(
    name="tabular",
    description="XGBoost on a table (churn by default): binary, multiclass or regression",
    pipeline_name="churn-training",
    model_name="churn-models",
    steps=TABULAR_STEPS,
    search=TABULAR_SPACES,
    # AUC needs scores: a constant score (the class prior) is its naive baseline, at 0.5.
    gate=Gate(metrics={"binary": "auc", "multiclass": "accuracy", "regression": "r2"},
              margins={"binary": 0.05, "multiclass": 0.02, "regression": 0.05},
              baselines={"binary": "class prior", "multiclass": "majority class", "regression": "mean"}),
    serving_script="inference.py",
    batch_scoring_script="batch_inference.py",
    requirements="requirements/tabular.txt",
    data_files=("specs",),
    problem_type_at="spec.problem_type",
    default_problem="binary",  # churn
    request_hint="send raw rows as text/csv or application/json",
)

IMAGE = Workload(
    name="image",
    description="A PyTorch CNN on images, one folder per label (product-surface defects by default)",
    pipeline_name="surface-defect-training",
    model_name="surface-defect-models",
    steps=IMAGE_STEPS,
    search=IMAGE_SPACES,
    gate=Gate(metrics={"binary": "accuracy", "multiclass": "accuracy"},
              margins={"binary": 0.05, "multiclass": 0.05},
              baselines={"binary": "majority class", "multiclass": "majority class"}),
    serving_script="image_inference.py",
    batch_scoring_script="image_batch_inference.py",
    requirements="requirements/image.txt",
    data_files=(),
    problem_type_at="problem_type",
    default_problem="multiclass",  # the default surface-defect data has four labels
    request_hint="send image/png or image/jpeg",
)

WORKLOADS: dict[str, Workload] = {w.name: w for w in (TABULAR, IMAGE)}


def workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise KeyError(f"no workload {name!r}; one of {', '.join(WORKLOADS)}")
    return WORKLOADS[name]
