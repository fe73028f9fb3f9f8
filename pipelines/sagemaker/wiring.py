"""Reading a built SageMaker pipeline definition (the JSON) back: its steps, its search space, and
its wiring in the form of pipelines.definition.wiring, to compare with the declaration.

Where SageMaker delivers a folder or a value through its own construct instead of a command-line
argument, the reader maps that construct back to the flag the script would have received:

    training, tuning   channel <name>                    --<name> in:<producer>
                       SM_MODEL_DIR, SM_OUTPUT_DATA_DIR  --model-dir out:model, --output-data-dir out:output
                       CheckpointConfig                  --checkpoint-dir out:checkpoints
                       static / tuned hyperparameters    --<name> =<value> / search / best:<tuning step>
    check              a processing job (check.py)       as any processing step; the steps inside the
                                                         conditions' "if" branches ("gate", then
                                                         "new-model") take check/check
    register           ModelDataUrl, model statistics    --model, --evaluation in:<producer>
                       DriftCheckBaselines' data quality --baseline in:<producer> (statistics.json's folder)
                       ModelApprovalStatus               --approval-status
                       CustomerMetadataProperties.data   --data param:<Parameter>
    transform          the Model's ModelDataUrl, TransformInput, TransformOutput
                                                         --model-dir, --input in:<producer>, --output out:<output>

Register has no script on SageMaker (the service does its work): its script reads back as None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipelines.definition.wiring import StepWiring, Wiring

# Steps the pipeline has beyond the declaration's, and the declared step each one belongs to: a
# transform job needs a SageMaker Model; the check's decision is read by two ConditionSteps ("gate":
# passed, "new-model": not registered already) and the "else" of the first is a FailStep.
HELPER_STEPS: dict[str, str] = {"transform-model": "transform", "gate": "check", "new-model": "check",
                                "check-failed": "check"}
NATIVE_KINDS = frozenset({"register"})  # declared steps SageMaker runs no script for

IN = "/opt/ml/processing/input/"
OUT = "/opt/ml/processing/output"
_PROCESSING_OUTPUT = re.compile(r"^Steps\.([\w-]+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri$")
_MODEL = re.compile(r"^Steps\.([\w-]+)\.ModelArtifacts\.S3ModelArtifacts$")
_BEST = re.compile(r"^Steps\.([\w-]+)\.BestTrainingJob\.TunedHyperParameters\['(\w+)'\]$")
_PARAMETER = re.compile(r"^Parameters\.(\w+)$")


def flatten(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            yield from flatten(step["Arguments"].get("IfSteps", []))
            yield from flatten(step["Arguments"].get("ElseSteps", []))


def step_names(definition: dict[str, Any]) -> tuple[str, ...]:
    """Declared step names in pipeline order, read from the built JSON (helpers folded in)."""
    names: list[str] = []
    for step in flatten(definition["Steps"]):
        name = HELPER_STEPS.get(step["Name"], step["Name"])
        if name not in names:
            names.append(name)
    return tuple(names)


def search_ranges(definition: dict[str, Any]) -> dict[str, Any]:
    """The tuning step's objective and ranges, read from the built JSON."""
    tune = next(s for s in flatten(definition["Steps"]) if s["Type"] == "Tuning")
    config = tune["Arguments"]["HyperParameterTuningJobConfig"]
    spec = tune["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]
    return {
        "objective": config["HyperParameterTuningJobObjective"],
        "ranges": config["ParameterRanges"],
        "metric_definitions": spec.get("MetricDefinitions", []),
        "static": tune["Arguments"]["TrainingJobDefinition"].get("StaticHyperParameters", {}),
    }


def source(value: Any) -> str | None:
    """`<step>/<output>` or `param:<name>` for a property reference, for an output folder read
    through one (`<output URI>/`: a Join of the reference and a slash), or for a number parameter
    given as text (a Join of itself alone); None for anything else."""
    join = value.get("Std:Join") if isinstance(value, dict) else None
    parts = join.get("Values", []) if isinstance(join, dict) and join.get("On") == "" else []
    if parts and parts[1:] in ([], ["/"]):
        value = parts[0]
    ref = value.get("Get") if isinstance(value, dict) else None
    if not isinstance(ref, str):
        return None
    for pattern, fmt in ((_PROCESSING_OUTPUT, "{0}/{1}"), (_MODEL, "{0}/model"), (_PARAMETER, "param:{0}")):
        m = pattern.match(ref)
        if m:
            return fmt.format(*m.groups())
    return None


def _join_source(value: Any) -> tuple[str | None, list[Any]]:
    """(source of the first part, the other parts) of a Std:Join."""
    parts = value.get("Std:Join", {}).get("Values", []) if isinstance(value, dict) else []
    return (source(parts[0]), parts[1:]) if parts else (None, [])


def _processing(step: dict[str, Any], gated: bool) -> StepWiring:
    a = step["Arguments"]
    inputs = {i["InputName"]: source(i["S3Input"]["S3Uri"]) or str(i["S3Input"]["S3Uri"])
              for i in a["ProcessingInputs"] if i["InputName"] != "code"}
    args: dict[str, str] = {}
    words = list(a["AppSpecification"].get("ContainerArguments", []))
    i = 0
    while i < len(words):
        flag = words[i]
        if i + 1 < len(words) and isinstance(flag, str) and flag.startswith("--"):
            args[flag] = _processing_value(words[i + 1], inputs)
            i += 2
        else:
            args[str(flag)] = ""
            i += 1
    if gated:
        inputs["check"] = "check/check"
    return StepWiring(script=a["AppSpecification"]["ContainerEntrypoint"][-1], inputs=inputs,
                      outputs=sorted(o["OutputName"] for o in a["ProcessingOutputConfig"]["Outputs"]), args=args)


def _processing_value(word: Any, inputs: dict[str, str]) -> str:
    ref = source(word)
    if ref is not None:
        return ref if ref.startswith("param:") else f"in:{ref}"
    text = str(word).removeprefix("file://")
    if text.startswith(IN):
        name, _, file = text[len(IN):].partition("/")
        return f"in:{inputs.get(name, '?' + name)}" + (f"/{file}" if file else "")
    if text == OUT:
        return "out:"
    if text.startswith(OUT + "/"):
        return f"out:{text[len(OUT) + 1:]}"
    return f"={text}"


def _training(step: dict[str, Any], tuning: bool) -> StepWiring:
    a = step["Arguments"]
    job = a["TrainingJobDefinition"] if tuning else a
    static = dict(job.get("StaticHyperParameters") if tuning else job.get("HyperParameters", {}))
    script = static.pop("sagemaker_program", None)
    inputs: dict[str, str] = {}
    args: dict[str, str] = {}
    for channel in job["InputDataConfig"]:
        producer = source(channel["DataSource"]["S3DataSource"]["S3Uri"]) or "?"
        inputs[channel["ChannelName"]] = producer
        args[f"--{channel['ChannelName']}"] = f"in:{producer}"
    args["--model-dir"], args["--output-data-dir"] = "out:model", "out:output"
    outputs = ["model", "output"]
    if "CheckpointConfig" in job:
        args["--checkpoint-dir"] = "out:checkpoints"
        outputs.append("checkpoints")
    for name, value in static.items():
        if name.startswith("sagemaker_"):
            continue
        best = _BEST.match(value.get("Get", "")) if isinstance(value, dict) else None
        if best:
            inputs["best_hyperparameters"] = f"{best.group(1)}/best_hyperparameters"
            args[f"--{name}"] = f"best:{best.group(1)}/best_hyperparameters"
        else:
            args[f"--{name}"] = f"={value}"
    if tuning:
        outputs.append("best_hyperparameters")
        for ranges in a["HyperParameterTuningJobConfig"]["ParameterRanges"].values():
            args.update({f"--{r['Name']}": "search" for r in ranges})
    return StepWiring(script=script, inputs=inputs, outputs=sorted(outputs), args=args)


def _register(step: dict[str, Any]) -> StepWiring:
    a = step["Arguments"]
    model = source(a["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]) or "?"
    evaluation, rest = _join_source(a["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    approval = source(a["ModelApprovalStatus"]) or f"={a['ModelApprovalStatus']}"
    data = a.get("CustomerMetadataProperties", {}).get("data")
    inputs = {"model": model, "evaluation": evaluation or "?"}
    args = {"--model": f"in:{model}", "--evaluation": f"in:{evaluation}" if rest == ["evaluation.json"] else "?"}
    statistics = a.get("DriftCheckBaselines", {}).get("ModelDataQuality", {}).get("Statistics")
    if statistics:
        baseline, rest = _join_source(statistics["S3Uri"])
        inputs["baseline"] = baseline or "?"
        args["--baseline"] = f"in:{baseline}" if rest == ["statistics.json"] else "?"
    args.update({"--approval-status": approval, "--data": (source(data) or f"={data}") if data else "?",
                 "--output": "out:model_version"})
    return StepWiring(script=None, inputs={**inputs, "check": "check/check"}, outputs=["model_version"], args=args)


def _transform(model_step: dict[str, Any], step: dict[str, Any]) -> StepWiring:
    container = model_step["Arguments"]["PrimaryContainer"]
    model = source(container["ModelDataUrl"]) or "?"
    a = step["Arguments"]
    data = source(a["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]) or "?"
    output = a["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"][-1]
    data_input = data.split("/")[-1]  # inputs are named after the output they read
    return StepWiring(script=container["Environment"]["SAGEMAKER_PROGRAM"],
                      inputs={"model": model, data_input: data, "check": "check/check"}, outputs=[output],
                      args={"--model-dir": f"in:{model}", "--input": f"in:{data}", "--output": f"out:{output}"})


def wiring(definition: dict[str, Any]) -> Wiring:
    gated = {s["Name"] for c in definition["Steps"] if c["Type"] == "Condition"
             for s in flatten(c["Arguments"].get("IfSteps", []))}
    steps = {s["Name"]: s for s in flatten(definition["Steps"])}
    out: Wiring = {}
    for name in step_names(definition):
        step = steps[name]
        kind = step["Type"]
        if kind == "Processing":
            out[name] = _processing(step, name in gated)
        elif kind in ("Training", "Tuning"):
            out[name] = _training(step, kind == "Tuning")
        elif kind == "RegisterModel":
            out[name] = _register(step)
        elif kind == "Transform":
            out[name] = _transform(steps["transform-model"], step)
        else:
            raise ValueError(f"step {name}: no reader for SageMaker steps of type {kind}")
    return out
