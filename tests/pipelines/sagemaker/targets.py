"""The SageMaker targets the pipeline tests build, and one build of each per session.

Not a test module: imported as `tests.pipelines.sagemaker.targets` by the SageMaker definition test
and the wiring test, so each ~5 s SDK build happens once per session, with every socket connect
refused.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from pipelines.sagemaker import SageMakerTarget, definition_dict

# Shaped like the placeholders the infra stack passes (it swaps CDK tokens in afterwards).
TARGET = SageMakerTarget(
    role_arn="arn:aws:iam::123456789012:role/PLACEHOLDER-PipelineRole",
    bucket="placeholder-artefacts-bucket",
    code_uri="s3://placeholder-artefacts-bucket/code/PLACEHOLDER-SHA256/sourcedir.tar.gz",
    region="eu-west-1",
    kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/PLACEHOLDER-KEY",
    subnet_ids=("subnet-PLACEHOLDER-A", "subnet-PLACEHOLDER-B"),
    security_group_ids=("sg-PLACEHOLDER",),
)


@dataclass
class Built:
    cold: dict[str, Any]  # built by the SDK, every socket connect refused
    connects: list[Any]  # the connects it tried (none, we hope)
    home: Path  # MLOPS_HOME of the build: its cache is under home/cache


_BUILT: dict[tuple[Path, SageMakerTarget], Built] = {}


def target(workload: str = "tabular", problem_type: str = "binary") -> SageMakerTarget:
    if workload == "tabular" and problem_type == "binary":
        return TARGET
    return replace(TARGET, workload=workload, problem_type=problem_type, pipeline_name="", model_package_group="")


def build_once(factory: pytest.TempPathFactory, t: SageMakerTarget = TARGET) -> Built:
    home = factory.getbasetemp() / "sagemaker-definition-home"
    if (home, t) not in _BUILT:
        connects: list[Any] = []

        def refuse(sock: socket.socket, address: Any) -> None:
            connects.append(address)
            raise OSError(f"test: network call to {address}")

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLOPS_HOME", str(home))
            mp.setattr(socket.socket, "connect", refuse)
            cold = definition_dict(t)
        _BUILT[(home, t)] = Built(cold, connects, home)
    return _BUILT[(home, t)]
