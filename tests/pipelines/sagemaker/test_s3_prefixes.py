"""No step reads another step's files: every S3 location the exported definition reads, resolved
to its string (parameters to their defaults, property references to the URI of the output they
name), against every location it writes.

SageMaker reads an `S3Prefix` input, a channel, a batch transform input and a checkpoint location
as a key prefix, not a folder: `.../preprocess/raw_test` also matches
`.../preprocess/raw_test_labels/...`, and a checkpoint location `.../job-1` also syncs back
`.../job-12/...`. Objects of an output land under `<output URI>/`; an input may read its own
producer's output only, and a folder is read as `<folder>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from pipelines.sagemaker.wiring import flatten
from tests.pipelines.sagemaker.targets import build_once, target

_OUTPUT_REF = re.compile(r"^Steps\.([\w-]+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri$")
_MODEL_REF = re.compile(r"^Steps\.([\w-]+)\.ModelArtifacts\.S3ModelArtifacts$")


@dataclass(frozen=True)
class Location:
    step: str
    what: str  # where in the request
    uri: str
    producer: tuple[str, str] | None = None  # (step, output) an input reads; an output's own key


class Resolver:
    """Values of the definition as strings: constants as they are, parameters as their defaults,
    execution variables and job names as `{placeholders}`, property references as the URI of the
    output they name."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        self.steps = {s["Name"]: s for s in flatten(definition["Steps"])}

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Std:Join" in value:
            join = value["Std:Join"]
            return str(join["On"]).join(self(v) for v in join["Values"])
        if isinstance(value, dict) and "Get" in value:
            return self.get(value["Get"])
        return str(value)

    def get(self, ref: str) -> str:
        if ref.startswith("Parameters."):
            return str(self.params[ref.removeprefix("Parameters.")])
        m = _OUTPUT_REF.match(ref)
        if m:
            outputs = self.steps[m[1]]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
            (out,) = [o for o in outputs if o["OutputName"] == m[2]]
            return self(out["S3Output"]["S3Uri"])
        m = _MODEL_REF.match(ref)
        if m:  # <output path>/<job name>/output/model.tar.gz
            path = self(self.steps[m[1]]["Arguments"]["OutputDataConfig"]["S3OutputPath"])
            return f"{path.rstrip('/')}/{{{m[1]}.TrainingJobName}}/output/model.tar.gz"
        return "{" + ref + "}"

    def producer(self, value: Any) -> tuple[str, str] | None:
        """The (step, output) a value reads, through a Join it starts."""
        if isinstance(value, dict) and "Std:Join" in value:
            return self.producer(value["Std:Join"]["Values"][0])
        ref = value.get("Get", "") if isinstance(value, dict) else ""
        m = _OUTPUT_REF.match(ref) or _MODEL_REF.match(ref)
        if m is None:
            return None
        return (m[1], m[2]) if m.re is _OUTPUT_REF else (m[1], "model")


def locations(definition: dict[str, Any]) -> tuple[list[Location], list[Location]]:
    """(what the steps read, what they write)."""
    r = Resolver(definition)
    reads: list[Location] = []
    writes: list[Location] = []

    def read(step: str, what: str, value: Any) -> None:
        reads.append(Location(step, what, r(value), r.producer(value)))

    def write(step: str, name: str, value: Any) -> None:
        writes.append(Location(step, name, r(value), (step, name)))

    for s in flatten(definition["Steps"]):
        name, a = s["Name"], s.get("Arguments", {})
        if s["Type"] == "Processing":
            for i in a["ProcessingInputs"]:
                read(name, f"input {i['InputName']}", i["S3Input"]["S3Uri"])
            for o in a["ProcessingOutputConfig"]["Outputs"]:
                write(name, o["OutputName"], o["S3Output"]["S3Uri"])
        elif s["Type"] in ("Training", "Tuning"):
            job = a["TrainingJobDefinition"] if s["Type"] == "Tuning" else a
            for c in job["InputDataConfig"]:
                read(name, f"channel {c['ChannelName']}", c["DataSource"]["S3DataSource"]["S3Uri"])
            write(name, "model", job["OutputDataConfig"]["S3OutputPath"])
            if "CheckpointConfig" in job:  # downloaded at start, uploaded as it goes: its own
                checkpoints = Location(name, "checkpoints", r(job["CheckpointConfig"]["S3Uri"]), (name, "checkpoints"))
                reads.append(checkpoints)
                writes.append(checkpoints)
        elif s["Type"] == "Transform":
            read(name, "input", a["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
            write(name, "output", a["TransformOutput"]["S3OutputPath"])
        elif s["Type"] == "Model":
            read(name, "model data", a["PrimaryContainer"]["ModelDataUrl"])
        elif s["Type"] == "RegisterModel":
            read(name, "model data", a["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
            read(name, "model statistics", a["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    return reads, writes


def clashes(definition: dict[str, Any]) -> list[str]:
    """Every (read, output) pair where the read's key prefix matches objects of an output that is not
    the one it reads."""
    reads, writes = locations(definition)
    found = []
    for rd in reads:
        for wr in writes:
            if rd.producer == wr.producer:
                continue
            folder = wr.uri.rstrip("/") + "/"  # the output's objects are <uri>/<name>
            if folder.startswith(rd.uri) or rd.uri.startswith(folder):
                found.append(f"{rd.step} {rd.what} reads {rd.uri!r}, which matches the objects of "
                             f"{wr.step}/{wr.what} at {wr.uri!r}")
    return found


@pytest.mark.parametrize("workload", ["tabular", "image"])
def test_no_step_reads_another_outputs_files(workload: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    definition = build_once(tmp_path_factory, target(workload)).cold
    reads, writes = locations(definition)
    assert len(reads) > 10 and len(writes) > 8  # the walk found the steps' locations
    assert clashes(definition) == []


@pytest.mark.parametrize("workload", ["tabular", "image"])
def test_every_folder_is_read_with_a_trailing_slash(workload: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Also what this definition cannot see: the outputs of other executions and other jobs. A read
    either names an object (`.../model.tar.gz`) or ends with a slash."""
    reads, _ = locations(build_once(tmp_path_factory, target(workload)).cold)
    folders = [r for r in reads if "." not in re.sub(r"\{[^}]*\}", "", r.uri.rsplit("/", 1)[-1])]
    assert len(folders) > 5
    assert [f"{r.step} {r.what}: {r.uri}" for r in folders if not r.uri.endswith("/")] == []


def test_the_check_finds_a_prefix_that_reads_a_sibling_output() -> None:
    """The defect of issue 13: the transform input `raw_test` also matched `raw_test_labels`."""
    out = "s3://b/run/{Execution.PipelineExecutionId}/preprocess/"

    def processing(name: str, inputs: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
        return {"Name": name, "Type": "Processing", "Arguments": {
            "ProcessingInputs": [{"InputName": k, "S3Input": {"S3Uri": v}} for k, v in inputs.items()],
            "ProcessingOutputConfig": {"Outputs": [
                {"OutputName": o, "S3Output": {"S3Uri": {"Std:Join": {"On": "", "Values": [out, o]}}}}
                for o in outputs]}}}

    ref = {"Get": "Steps.preprocess.ProcessingOutputConfig.Outputs['raw_test'].S3Output.S3Uri"}
    definition = {"Parameters": [], "Steps": [
        processing("preprocess", {}, ["raw_test", "raw_test_labels"]),
        processing("score", {"data": ref}, ["scores"])]}
    (found,) = clashes(definition)
    assert "score input data" in found and "preprocess/raw_test_labels" in found
    slashed = {"Std:Join": {"On": "", "Values": [ref, "/"]}}
    definition["Steps"][1] = processing("score", {"data": slashed}, ["scores"])
    assert clashes(definition) == []
