"""Monthly cost change of the instances a change touches, from the price table shipped in the project.

What is priced: endpoint variants and notebooks (around the clock), pipeline steps (processing,
training, tuning, transform) of an `AWS::SageMaker::Pipeline` defined in the template, Model Monitor
jobs, and Glue jobs (workers x DPU). How many hours a month each runs is an assumption written in
`prices.json` next to the prices, and the review prints it: the estimate is a ratio to reason with,
not a bill.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from review.assembly import Template
from review.values import as_list, names, render

PRICES = Path(__file__).with_name("prices.json")
_MONITOR_JOBS = ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition",
                 "AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition")


@dataclass(frozen=True)
class Usage:
    stack: str
    resource: str  # construct path in the stack, else the logical id
    label: str  # what inside the resource: a variant, a pipeline step, the job
    kind: str  # hosting | notebook | training | processing | transform | glue | glue-flex
    instance: str  # ml.m5.xlarge, or a Glue worker type
    count: float
    hours: float  # per month

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.stack, self.resource, self.label, self.kind


@dataclass(frozen=True)
class CostLine:
    before: Usage | None
    after: Usage | None
    before_cost: float | None  # None: no price in the table
    after_cost: float | None

    @property
    def delta(self) -> float | None:
        if self.before_cost is None and self.before is not None:
            return None
        if self.after_cost is None and self.after is not None:
            return None
        return (self.after_cost or 0.0) - (self.before_cost or 0.0)


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def usages(stack: str, template: Template, prices: dict[str, Any]) -> Iterator[Usage]:
    plan = prices["usage"]
    ids = names(template, stack)
    for logical_id, res in (template.get("Resources") or {}).items():
        rtype, props = res.get("Type", ""), res.get("Properties") or {}
        lid = ids.get(logical_id, logical_id)
        if rtype == "AWS::SageMaker::EndpointConfig":
            variants = as_list(props.get("ProductionVariants")) + as_list(props.get("ShadowProductionVariants"))
            for v in variants:
                if "InstanceType" in v:  # serverless variants have no instance to price
                    yield Usage(stack, lid, f"variant {render(v.get('VariantName', '?'))}", "hosting",
                                render(v["InstanceType"]), _number(v.get("InitialInstanceCount", 1)),
                                plan["hosting"]["hours_per_month"])
        elif rtype == "AWS::SageMaker::NotebookInstance":
            yield Usage(stack, lid, "notebook", "notebook", render(props.get("InstanceType", "?")), 1.0,
                        plan["notebook"]["hours_per_month"])
        elif rtype == "AWS::Glue::Job":
            yield from _glue(stack, lid, props, plan["glue_job"])
        elif rtype in _MONITOR_JOBS:
            cluster = (props.get("JobResources") or {}).get("ClusterConfig") or {}
            yield _job(stack, lid, "monitoring job", "processing", cluster, plan["monitoring"])
        elif rtype == "AWS::SageMaker::Pipeline":
            yield from _pipeline(stack, lid, props, plan["pipeline_step"])


def _number(value: Any, default: float = 1.0) -> float:
    """A count from a template; a token (a parameter, a reference) counts as `default`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default


def _hours(plan: dict[str, Any]) -> float:
    return float(plan["runs_per_month"]) * float(plan["hours_per_run"])


def _job(stack: str, lid: str, label: str, kind: str, cluster: dict[str, Any], plan: dict[str, Any]) -> Usage:
    return Usage(stack, lid, label, kind, render(cluster.get("InstanceType", "?")),
                 _number(cluster.get("InstanceCount", 1)), _hours(plan))


def _glue(stack: str, lid: str, props: dict[str, Any], plan: dict[str, Any]) -> Iterator[Usage]:
    kind = "glue-flex" if str(props.get("ExecutionClass", "")).upper() == "FLEX" else "glue"
    if "WorkerType" in props:
        yield Usage(stack, lid, "job", kind, render(props["WorkerType"]),
                    _number(props.get("NumberOfWorkers", 1)), _hours(plan))
    elif "MaxCapacity" in props or "AllocatedCapacity" in props:
        dpus = props.get("MaxCapacity", props.get("AllocatedCapacity"))
        yield Usage(stack, lid, "job", kind, "DPU", _number(dpus), _hours(plan))


def _pipeline(stack: str, lid: str, props: dict[str, Any], plan: dict[str, Any]) -> Iterator[Usage]:
    body = (props.get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
    try:  # tokens (role ARNs, buckets) render inside JSON strings, so the body still parses
        definition = json.loads(render(body)) if body is not None else {}
    except ValueError:
        return
    defaults = {f"Parameters.{p.get('Name')}": p.get("DefaultValue") for p in definition.get("Parameters", [])}

    def value(v: Any) -> Any:
        return defaults.get(v["Get"], "?") if isinstance(v, dict) and "Get" in v else v

    for step in _steps(definition.get("Steps", [])):
        args, name = step.get("Arguments") or {}, f"step {step.get('Name', '?')}"
        stype = step.get("Type")
        if stype == "Processing":
            cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {}
            kind, jobs = "processing", 1
        elif stype == "Training":
            cluster, kind, jobs = args.get("ResourceConfig") or {}, "training", 1
        elif stype == "Tuning":
            cluster = (args.get("TrainingJobDefinition") or {}).get("ResourceConfig") or {}
            limits = (args.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {}
            kind, jobs = "training", value(limits.get("MaxNumberOfTrainingJobs", 1))
        elif stype == "Transform":
            cluster, kind, jobs = args.get("TransformResources") or {}, "transform", 1
        else:
            continue
        resolved = {k: value(v) for k, v in cluster.items()}
        usage = _job(stack, lid, name, kind, resolved, plan)
        yield Usage(usage.stack, lid, name, kind, usage.instance, usage.count * _number(jobs), usage.hours)


def _steps(steps: list[Any]) -> Iterator[dict[str, Any]]:
    for step in steps:  # condition steps hold their branches' steps inside their arguments
        yield step
        args = step.get("Arguments") or {}
        yield from _steps(list(args.get("IfSteps", [])) + list(args.get("ElseSteps", [])))


def monthly(u: Usage, prices: dict[str, Any]) -> float | None:
    if u.kind in ("glue", "glue-flex"):
        glue = prices["glue"]
        rate = glue["per_dpu_hour_flex" if u.kind == "glue-flex" else "per_dpu_hour"]
        dpus = 1.0 if u.instance == "DPU" else glue["dpu_per_worker"].get(u.instance)
        return None if dpus is None else rate * dpus * u.count * u.hours
    price = prices["sagemaker_per_instance_hour"].get(u.kind, {}).get(u.instance)
    return None if price is None else float(price) * u.count * u.hours


def diff(stack: str, base: Template, head: Template, prices: dict[str, Any]) -> list[CostLine]:
    """The priced usages that differ between base and head: changed, added and removed."""
    old = {u.key: u for u in usages(stack, base, prices)}
    new = {u.key: u for u in usages(stack, head, prices)}
    lines = []
    for key in sorted(old.keys() | new.keys()):
        b, a = old.get(key), new.get(key)
        if b == a:
            continue
        lines.append(CostLine(b, a, monthly(b, prices) if b else None, monthly(a, prices) if a else None))
    return lines
