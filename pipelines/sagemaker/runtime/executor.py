"""Run an exported SageMaker pipeline definition JSON here, step by step (`mlops pipeline run-local`).

The input is the JSON the service gets (`pipelines.sagemaker.build.definition_dict`), not the Python
declaration: what runs is what would be deployed. Steps run one at a time, in dependency order
(DependsOn and every `Steps.<name>` a step's arguments read; a tie goes to definition order), each
one's Arguments evaluated first (expressions.py) against the parameters, the execution variables
and the properties earlier steps produced (their Describe* responses). Per type of step:

    Processing     processing.py: the container contract, the entrypoint run as a local process
    Training       runtime/training.py: the training platform + AWS's sagemaker-training toolkit
    Tuning         tuning.py: trials as the tuning service starts them, searched with Optuna
    Model          recorded (CreateModel); a Transform step serves it
    RegisterModel  recorded in the run's model-registry.json (CreateModelPackage), with its metrics;
                   every metrics and baseline file it points to must exist
    Transform      runtime/transform.py: batch transform with AWS's inference toolkit
    Condition      its conditions evaluated; then IfSteps or ElseSteps become runnable (a condition
                   in a branch runs when its branch is taken: nested conditions)
    Fail           stops the execution with its ErrorMessage rendered

S3 is a LocalS3 folder under the run folder (S3's own prefix semantics; ManifestFile inputs read
their manifest). Not emulated: caching
(CacheConfig: every step runs), retries, parallel steps, KMS, VPC and network isolation, IAM,
instance types and counts (one local instance), and step types other than those above.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.sagemaker.runtime import expressions as ex
from pipelines.sagemaker.runtime.processing import run_processing_job, tools
from pipelines.sagemaker.runtime.s3 import LocalS3, split, write_manifest
from pipelines.sagemaker.runtime.tuning import run_tuning_job

Say = Callable[[str], None]
Train = Callable[[dict[str, Any], LocalS3, Path], Any]
Transform = Callable[[dict[str, Any], dict[str, Any], LocalS3, Path], Any]
EXIT_FAIL_STEP = 3  # as `mlops run` exits when the quality gate stops the run
_PARAMETER_TYPES: dict[str, Callable[[str], Any]] = {
    "String": str, "Integer": int, "Float": float, "Boolean": lambda v: v.strip().lower() == "true"}


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "NotStarted"  # Succeeded | Failed | NotExecuted (a branch not taken)
    seconds: float = 0.0
    summary: str = ""


@dataclass
class Execution:
    execution_id: str
    folder: Path
    parameters: dict[str, Any]
    steps: list[StepRecord]
    status: str = "Executing"  # Succeeded | Failed
    failure: str = ""
    failed_by_fail_step: bool = False
    gate: str = ""
    packages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Node:
    step: dict[str, Any]
    branch: tuple[str, bool] | None  # (condition step, the outcome it runs on)

    @property
    def name(self) -> str:
        return str(self.step["Name"])


def flatten(steps: list[dict[str, Any]], branch: tuple[str, bool] | None = None) -> list[Node]:
    nodes = []
    for step in steps:
        nodes.append(Node(step, branch))
        if step["Type"] == "Condition":
            args = step["Arguments"]
            nodes += flatten(args.get("IfSteps", []), (step["Name"], True))
            nodes += flatten(args.get("ElseSteps", []), (step["Name"], False))
    return nodes


def dependencies(node: Node) -> set[str]:
    step = node.step
    found = set(step.get("DependsOn") or [])
    args = step.get("Arguments", {})
    if step["Type"] == "Condition":  # its branches' steps are its children, not its inputs
        args = {"Conditions": args.get("Conditions", [])}
    found.update(ex.references(args))
    if node.branch:
        found.add(node.branch[0])
    return found - {node.name}


def typed_parameters(definition: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = set(given) - set(declared)
    if unknown:
        raise ValueError(f"no pipeline parameter {', '.join(sorted(unknown))}; one of {', '.join(declared)}")
    values: dict[str, Any] = {}
    for name, p in declared.items():
        kind = p.get("Type", "String")
        if name in given:
            try:
                values[name] = _PARAMETER_TYPES[kind](given[name])
            except ValueError:
                raise ValueError(f"parameter {name}: expected {kind}, got {given[name]!r}") from None
        elif "DefaultValue" in p:
            values[name] = p["DefaultValue"]
        else:
            raise ValueError(f"parameter {name} has no default: give it")
    return values


def _default_train(request: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
    from pipelines.sagemaker.runtime.training import run_training_job

    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / f"{request['TrainingJobName']}.log").open("w") as log:
        return run_training_job(request, s3, workdir, echo=lambda line: print(line, file=log, flush=True))


def _default_transform(request: dict[str, Any], model: dict[str, Any], s3: LocalS3, workdir: Path) -> Any:
    from pipelines.sagemaker.runtime.transform import run_transform_job

    return run_transform_job(request, model, s3, workdir)


class Executor:
    def __init__(self, definition: dict[str, Any], s3: LocalS3, folder: Path, *, parameters: dict[str, str],
                 pipeline_name: str = "local-pipeline", region: str = "us-east-1", max_trials: int | None = None,
                 say: Say = print,
                 train: Train = _default_train, transform: Transform = _default_transform) -> None:
        self.definition, self.s3, self.folder, self.say = definition, s3, folder, say
        self.train, self.transform, self.max_trials = train, transform, max_trials
        self.nodes = flatten(definition.get("Steps", []))
        names = [n.name for n in self.nodes]
        for node in self.nodes:
            unknown = dependencies(node) - set(names)
            if unknown:
                raise ValueError(f"step {node.name!r} depends on unknown step(s) {', '.join(sorted(unknown))}")
        execution_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        self.pipeline = pipeline_name
        self.arn = f"arn:aws:sagemaker:{region}:000000000000"
        pipeline_arn = f"{self.arn}:pipeline/{self.pipeline}"
        now = datetime.now(UTC).isoformat()
        self.scope = ex.Scope(
            parameters=typed_parameters(definition, parameters),
            execution={"PipelineExecutionId": execution_id, "PipelineName": self.pipeline,
                       "PipelineArn": pipeline_arn, "PipelineExecutionArn": f"{pipeline_arn}/execution/{execution_id}",
                       "StartDateTime": now, "CurrentDateTime": now},
            property_file=self._property_file, s3_json=lambda uri: json.loads(self.s3.get_bytes(uri)))
        self.records = {n.name: StepRecord(n.name, n.step["Type"]) for n in self.nodes}
        self.result = Execution(execution_id, folder, self.scope.parameters, list(self.records.values()))
        self.models: dict[str, dict[str, Any]] = {}  # ModelName -> its CreateModel request
        self.tool_dir = tools(folder / "tools")

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> Execution:
        self.say(f"execution {self.result.execution_id}: {len(self.nodes)} steps; run folder {self.folder}")
        while (node := self._next()) is not None:
            record = self.records[node.name]
            self.say(f"- {node.name} ({node.step['Type']}): running ...")
            start = time.perf_counter()
            try:
                self.scope.execution["CurrentDateTime"] = datetime.now(UTC).isoformat()
                record.summary = self._run_step(node)
                record.status = "Succeeded"
            except Exception as e:
                record.status, record.summary = "Failed", str(e).splitlines()[0][:200]
                self.result.status, self.result.failure = "Failed", f"step {node.name!r}: {e}"
            finally:
                record.seconds = time.perf_counter() - start
            self.say(f"- {node.name}: {record.status} in {record.seconds:.1f}s ({record.summary})")
            if record.status == "Failed":
                break
        if self.result.status == "Executing":
            stuck = [r.name for r in self.result.steps if r.status == "NotStarted"]
            if stuck:
                self.result.status, self.result.failure = "Failed", f"steps never runnable: {', '.join(stuck)}"
            else:
                self.result.status = "Succeeded"
        (self.folder / "execution.json").write_text(json.dumps(asdict(self.result), indent=2, default=str))
        return self.result

    def _next(self) -> Node | None:
        """The first step, in definition order, whose dependencies have all succeeded."""
        changed = True
        while changed:  # steps after a branch not taken (or on one) are not executed either
            changed = False
            for node in self.nodes:
                record = self.records[node.name]
                if record.status != "NotStarted":
                    continue
                off_branch = node.branch and self.records[node.branch[0]].status == "Succeeded" \
                    and self.scope.steps[node.branch[0]]["Outcome"] != node.branch[1]
                if off_branch or any(self.records[d].status == "NotExecuted" for d in dependencies(node)):
                    record.status, changed = "NotExecuted", True
        for node in self.nodes:
            if self.records[node.name].status == "NotStarted" and all(
                    self.records[d].status == "Succeeded" for d in dependencies(node)):
                return node
        return None

    def _run_step(self, node: Node) -> str:
        kind = node.step["Type"]
        handler = {"Processing": self._processing, "Training": self._training, "Tuning": self._tuning,
                   "Model": self._model, "RegisterModel": self._register, "Transform": self._transform,
                   "Condition": self._condition, "Fail": self._fail}.get(kind)
        if handler is None:
            raise NotImplementedError(f"{kind} steps are not emulated here")
        workdir = self.folder / "steps" / node.name
        workdir.mkdir(parents=True, exist_ok=True)
        return handler(node, workdir)

    def _request(self, node: Node, workdir: Path, **names: str) -> dict[str, Any]:
        """The step's API request: its Arguments evaluated, plus the job's name (which the service
        gives). Kept as request.json in the step's folder."""
        for variable in ("TrainingJobName", "ProcessingJobName"):  # the running job's own name
            self.scope.execution.pop(variable, None)
            if variable in names:
                self.scope.execution[variable] = names[variable]
        request = {**ex.evaluate(node.step["Arguments"], self.scope), **names}
        (workdir / "request.json").write_text(json.dumps(request, indent=2))
        return request

    def _job_name(self, node: Node, limit: int = 63) -> str:
        return f"pipelines-{self.result.execution_id}-{node.name}"[:limit]

    # -- one handler per type of step ----------------------------------------------------------
    def _processing(self, node: Node, workdir: Path) -> str:
        from pipelines.local.process import Heartbeat

        request = self._request(node, workdir, ProcessingJobName=self._job_name(node))
        with Heartbeat(node.name, 15.0, self.say):
            described = run_processing_job(request, self.s3, workdir, self.tool_dir)
        self.scope.steps[node.name] = {**described, "ProcessingJobArn": f"{self.arn}:processing-job/"
                                       f"{request['ProcessingJobName']}"}
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        return f"{len(outputs)} output(s); log {workdir / 'log.txt'}"

    def _training(self, node: Node, workdir: Path) -> str:
        request = self._request(node, workdir, TrainingJobName=self._job_name(node))
        result = self.train(request, self.s3, workdir)
        self.scope.steps[node.name] = {
            **request, "TrainingJobStatus": "Completed", "TrainingJobArn": f"{self.arn}:training-job/{result.job_name}",
            "ModelArtifacts": {"S3ModelArtifacts": result.model_artifacts},
            "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in result.metrics.items()]}
        return ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()) or result.model_artifacts

    def _tuning(self, node: Node, workdir: Path) -> str:
        name = f"{node.name[:19]}-{self.result.execution_id}"  # a tuning job's name has at most 32 characters
        request = self._request(node, workdir, HyperParameterTuningJobName=name)
        described = run_tuning_job(request, self.s3, workdir, train=self.train, max_trials=self.max_trials,
                                   say=self.say, arn_prefix=self.arn)
        self.scope.steps[node.name] = described
        best = described["BestTrainingJob"]
        objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
        return (f"{described['TrainingJobStatusCounters']['Completed']} trial(s); best {objective['MetricName']}="
                f"{objective['Value']:.4f} ({best['TrainingJobName']})")

    def _model(self, node: Node, workdir: Path) -> str:
        name = self._job_name(node)
        request = self._request(node, workdir, ModelName=name)
        self.models[name] = request
        self.scope.steps[node.name] = {**request, "ModelArn": f"{self.arn}:model/{name}"}
        return name

    def _register(self, node: Node, workdir: Path) -> str:
        request = self._request(node, workdir)
        group = request.get("ModelPackageGroupName", "")
        registry_file = self.folder / "model-registry.json"
        registry = json.loads(registry_file.read_text()) if registry_file.exists() else []
        version = 1 + sum(p["ModelPackageGroupName"] == group for p in registry)
        # The service does not read these files when it registers; the version's monitors and the
        # deployer do, later: a package pointing at a file its pipeline never wrote fails here.
        missing = [uri for uri in _s3_uris({k: request.get(k) for k in ("ModelMetrics", "DriftCheckBaselines")})
                   if not self.s3.exists(uri)]
        if missing:
            raise ValueError(f"the model package's metrics or baselines are not there: {', '.join(missing)}")
        statistics = (request.get("ModelMetrics") or {}).get("ModelQuality", {}).get("Statistics", {})
        metrics = json.loads(self.s3.get_bytes(statistics["S3Uri"])) if statistics.get("S3Uri") else None
        package = {**request, "ModelPackageVersion": version, "ModelPackageStatus": "Completed",
                   "ModelPackageArn": f"{self.arn}:model-package/{group}/{version}",
                   "ModelApprovalStatus": request.get("ModelApprovalStatus", "PendingManualApproval"),
                   "CreationTime": datetime.now(UTC).isoformat(), "Metrics": metrics}
        registry_file.write_text(json.dumps([*registry, package], indent=2))
        self.result.packages.append(package)
        self.scope.steps[node.name] = package
        return f"{group} version {version}, {package['ModelApprovalStatus']}"

    def _transform(self, node: Node, workdir: Path) -> str:
        request = self._request(node, workdir, TransformJobName=self._job_name(node))
        model = self.models.get(request["ModelName"])
        if model is None:
            raise ValueError(f"ModelName {request['ModelName']!r}: no Model step of this execution created it")
        self.transform(request, model, self.s3, workdir)
        self.scope.steps[node.name] = {**request, "TransformJobStatus": "Completed",
                                       "TransformJobArn": f"{self.arn}:transform-job/{request['TransformJobName']}"}
        out = request["TransformOutput"]["S3OutputPath"]
        return f"{len(self.s3.list(out.rstrip('/') + '/'))} output file(s) under {out}"

    def _condition(self, node: Node, workdir: Path) -> str:
        conditions = node.step["Arguments"].get("Conditions", [])
        outcome = all(ex.condition(c, self.scope) for c in conditions)
        self.scope.steps[node.name] = {"Outcome": outcome}
        shown = f"{'; '.join(_show(c, self.scope) for c in conditions)} -> {outcome}"
        # Each condition that ran, in order (a nested one runs only on its branch).
        self.result.gate = f"{self.result.gate}, {node.name}: {shown}" if self.result.gate else f"{node.name}: {shown}"
        return shown

    def _fail(self, node: Node, workdir: Path) -> str:
        message = ex.to_text(ex.evaluate(node.step.get("Arguments", {}).get("ErrorMessage", ""), self.scope))
        self.result.failed_by_fail_step = True
        raise RuntimeError(message or "Fail step")

    def _property_file(self, step: str, name: str) -> Any:
        files = {f["PropertyFileName"]: f
                 for n in self.nodes if n.name == step for f in n.step.get("PropertyFiles", [])}
        if name not in files:
            raise ex.ExpressionError(f"step {step!r} declares no property file {name!r}")
        uri = ex.get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{files[name]['OutputName']}'].S3Output.S3Uri",
                     self.scope)
        return json.loads(self.s3.get_bytes(f"{str(uri).rstrip('/')}/{files[name]['FilePath']}"))


def _s3_uris(value: Any) -> list[str]:
    """Every S3Uri member's value in a request part."""
    if isinstance(value, dict):
        return [u for k, v in value.items() for u in ([v] if k == "S3Uri" and isinstance(v, str) else _s3_uris(v))]
    if isinstance(value, list):
        return [u for v in value for u in _s3_uris(v)]
    return []


def _show(spec: dict[str, Any], scope: ex.Scope) -> str:
    """A comparison with both sides evaluated, e.g. `binary_classification_metrics.auc.value 0.87 >= 0.75`."""
    if "LeftValue" not in spec:
        return spec.get("Type", "?")
    left = spec["LeftValue"]
    label = left["Std:JsonGet"]["Path"] if isinstance(left, dict) and "Std:JsonGet" in left else "left"
    ops = {"GreaterThanOrEqualTo": ">=", "GreaterThan": ">", "LessThanOrEqualTo": "<=", "LessThan": "<",
           "Equals": "=="}
    values = [ex.evaluate(v, scope) for v in (left, spec["RightValue"])]
    shown = [f"{v:.4f}" if isinstance(v, float) else ex.to_text(v) for v in values]
    return f"{label} {shown[0]} {ops.get(spec['Type'], spec['Type'])} {shown[1]}"


# -- a run of a workload's definition ----------------------------------------------------------------
def upload_data(s3: LocalS3, source: Path, prefix: str) -> list[str]:
    """A local file or folder to an S3 prefix, as `aws s3 cp --recursive` would (markers such as
    _SUCCESS and hidden files left out). A prefix ending in `.manifest` names a snapshot manifest
    (the tabular InputDataUrl): the files go under the bucket's curated/ prefix, and the manifest,
    written at that URI, lists them, as the pipeline's starter writes one for the curated bucket."""
    bucket, key = split(prefix)
    if key.endswith(".manifest"):
        curated = f"s3://{bucket}/curated/"
        written = upload_data(s3, source, curated)
        s3.put_bytes(prefix, write_manifest(curated, [split(uri)[1].removeprefix("curated/") for uri in written]))
        return written
    if source.is_file():
        uri = f"{prefix.rstrip('/')}/{source.name}"
        s3.put_file(uri, source)
        return [uri]
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source)
        if any(part.startswith(("_", ".")) for part in relative.parts):
            continue
        uri = f"{prefix.rstrip('/')}/{relative.as_posix()}"
        s3.put_file(uri, path)
        written.append(uri)
    return written


def print_summary(result: Execution, say: Say = print) -> None:
    say(f"\nexecution {result.execution_id}: {result.status}")
    width = max((len(s.name) for s in result.steps), default=4)
    for s in result.steps:
        took = f"{s.seconds:6.1f}s" if s.seconds else "       "
        say(f"  {s.name:<{width}}  {s.status:<11} {took}  {s.summary}")
    say(f"  {'total':<{width}}  {'':<11} {sum(s.seconds for s in result.steps):6.1f}s")
    if result.gate:
        say(f"gate:        {result.gate}")
    for p in result.packages:
        say(f"registered:  {p['ModelPackageGroupName']} version {p['ModelPackageVersion']} "
            f"({p['ModelApprovalStatus']}); record in {result.folder / 'model-registry.json'}")
    say(f"run folder:  {result.folder} (S3 under s3/, each step's files and log under steps/)")
    if result.failure:
        say(f"failure:     {result.failure}")
