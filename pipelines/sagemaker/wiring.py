"""Reading a built SageMaker pipeline definition (the JSON) back: its steps, its search space, and
its wiring in the form of pipelines.definition.wiring, to compare with the declaration.

Where SageMaker delivers a folder or a value through its own construct instead of a command-line
argument, the reader maps that construct back to the flag the script would have received:

    training, tuning   channel <name>                    --<name> in:<producer>
                       SM_MODEL_DIR, SM_OUTPUT_DATA_DIR  --model-dir out:model, --output-data-dir out:output
                       CheckpointConfig                  --checkpoint-dir out:checkpoints
                       static / tuned hyperparameters    --<name> =<value> / search / best:<tuning step>
    condition          JsonGet on a step's property file --evaluation in:<producer>, --metric =<path>
                       the comparison and its right side --op =gte|lte, --threshold param:<Parameter>
                       the "if" branch                   --output out:check (the steps in it take check/check)
    register           ModelDataUrl, model statistics    --model, --evaluation in:<producer>
                       ModelApprovalStatus               --approval-status
    transform          the Model's ModelDataUrl, TransformInput, TransformOutput
                                                         --model-dir, --input in:<producer>, --output out:<output>

Condition and register have no script on SageMaker (the service does their work): their script
reads back as None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipelines.definition.wiring import StepWiring, Wiring

# Steps the pipeline has beyond the declaration's, and the declared step each one belongs to: a
# transform job needs a SageMaker Model, and the check's "else" branch is a FailStep.
HELPER_STEPS: dict[str, str] = {"transform-model": "transform", "check-failed": "check"}
NATIVE_KINDS = frozenset({"condition", "register"})  # declared steps SageMaker runs no script for

IN = "/opt/ml/processing/input/"
OUT = "/opt/ml/processing/output"
_PROCESSING_OUTPUT = re.compile(r"^Steps\.([\w-]+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri$")
_MODEL = re.compile(r"^Steps\.([\w-]+)\.ModelArtifacts\.S3ModelArtifacts$")
_BEST = re.compile(r"^Steps\.([\w-]+)\.BestTrainingJob\.TunedHyperParameters\['(\w+)'\]$")
_PARAMETER = re.compile(r"^Parameters\.(\w+)$")
_CONDITIONS = {"GreaterThanOrEqualTo": "gte", "LessThanOrEqualTo": "lte"}


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
    """`<step>/<output>` or `param:<name>` for a property reference, or for an output folder read
    through one (`<output URI>/`: a Join of the reference and a slash); None for anything else."""
    join = value.get("Std:Join") if isinstance(value, dict) else None
    if isinstance(join, dict) and join.get("On") == "" and len(join.get("Values", [])) == 2 \
            and join["Values"][1] == "/":
        value = join["Values"][0]
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


def _condition(step: dict[str, Any], steps: dict[str, dict[str, Any]]) -> StepWiring:
    (condition,) = step["Arguments"]["Conditions"]
    left = condition["LeftValue"]["Std:JsonGet"]
    _, producer, _, file_name = left["PropertyFile"]["Get"].split(".")
    threshold = source(condition["RightValue"])
    files = steps[producer].get("PropertyFiles", [])
    (output,) = [f["OutputName"] for f in files if f["PropertyFileName"] == file_name]
    evaluation = f"{producer}/{output}"
    return StepWiring(script=None, inputs={"evaluation": evaluation}, outputs=["check"], args={
        "--evaluation": f"in:{evaluation}", "--metric": f"={left['Path']}",
        "--op": f"={_CONDITIONS[condition['Type']]}",
        "--threshold": threshold or f"={condition['RightValue']}", "--output": "out:check"})


def _register(step: dict[str, Any]) -> StepWiring:
    a = step["Arguments"]
    model = source(a["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]) or "?"
    evaluation, rest = _join_source(a["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    approval = source(a["ModelApprovalStatus"]) or f"={a['ModelApprovalStatus']}"
    return StepWiring(
        script=None, inputs={"model": model, "evaluation": evaluation or "?", "check": "check/check"},
        outputs=["model_version"],
        args={"--model": f"in:{model}", "--evaluation": f"in:{evaluation}" if rest == ["evaluation.json"] else "?",
              "--approval-status": approval, "--output": "out:model_version"})


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
        elif kind == "Condition":
            out[name] = _condition(step, steps)
        elif kind == "RegisterModel":
            out[name] = _register(step)
        elif kind == "Transform":
            out[name] = _transform(steps["transform-model"], step)
        else:
            raise ValueError(f"step {name}: no reader for SageMaker steps of type {kind}")
    return out
