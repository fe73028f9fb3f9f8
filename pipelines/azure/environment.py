"""The Azure ML environment a workload's nodes and endpoint run in: Azure ML's base image, conda's
Python, and a pip list of exact pins.

Every pin is exact because pip, given a loose one, picks whatever resolves today: with `mlflow`
unpinned it chose mlflow 3.18, which azureml-mlflow 1.62 refuses (it caps mlflow-skinny at 3.15.0), so
pip fell back to azureml-mlflow 1.60, whose artifact repository mlflow 3.18 cannot create (TypeError
on `tracking_uri`): every trial failed logging its model. requirements-azure.lock is this list for the
tabular workload, resolved, and `make setup` installs it in .venv-azure, where the tests run Azure's
inference server on our scoring script; tests/pipelines/azure/test_environment.py resolves each
workload's list against the package index.

The image workload's training and tuning trials run on the GPU cluster, in their own environment:
Azure ML's Open MPI + CUDA base image and PyPI's torch wheel, which is the CUDA build on Linux (the
CPU environment takes torch from PyTorch's CPU index instead). Every other node stays on the CPU one.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines import paths
from pipelines.azure.target import AzureTarget

# Azure ML's CPU base image, by its dated tag: `:latest` moves under a registered environment.
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20260715.v1"
PYTHON = "3.11"
# Beyond the workload's requirements. MLflow is how a sweep reads its trials' metric: the scripts
# use its tracking API only, which mlflow-skinny is (mlflow itself adds a server and caps pandas<3).
# numpy, pandas and scikit-learn used to arrive unpinned through mlflow: the versions the tests run
# with (pyproject.toml).
AZURE_EXTRAS = (
    "mlflow-skinny==3.15.0",
    "azureml-mlflow==1.62.0.post6",
    "azureml-inference-server-http==1.5.1",
    # The deployment's model_inputs and model_outputs collections receive only what the scoring
    # script hands this package's Collector (common/azure_scoring.py): without it they stay empty.
    "azureml-ai-monitoring==1.0.0",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
)
# The CPU build of torch (PyPI's default build pulls several GB of CUDA libraries).
TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
TORCH_PINS = ("torch==2.13.0", "pillow==13.0.0")
TORCH = (TORCH_INDEX, *TORCH_PINS)
# The workloads whose training runs on the GPU cluster (the tabular one trains XGBoost on CPUs).
GPU_WORKLOADS = ("image",)
# Azure ML's Open MPI + CUDA base image, by its dated tag (the CPU base image's date). Its CUDA 12.4
# toolkit is not what torch runs on: PyPI's torch 2.13.0 Linux wheel pins its own CUDA 13.0.3 runtime,
# cuDNN 9.20.0.48 and NCCL 2.29.7 (cuda-toolkit, nvidia-*-cu13) exactly in its metadata, so the GPU
# nodes need a driver that runs CUDA 13 (R580 or later).
GPU_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-cuda12.4-ubuntu22.04:20260715.v1"


def requirements(target: AzureTarget) -> list[str]:
    """The workload's pinned requirements file, as requirement strings (comments and options dropped)."""
    req = paths.TRAINING_CODE / target.work.requirements
    found = [line.split("#", 1)[0].strip() for line in req.read_text().splitlines()]
    return [r for r in found if r and not r.startswith("-")]


def pip_list(target: AzureTarget, gpu: bool = False) -> list[str]:
    """The environment's pip dependencies: the workload's requirements, then the extras it does not
    name already (one pin per package), with torch first for the image workload: from the CPU index,
    or for the GPU environment PyPI's CUDA build."""
    own = requirements(target)
    named = {package(r) for r in own}
    extras = [r for r in AZURE_EXTRAS if package(r) not in named]
    pip = [*own, *extras]
    if gpu:
        return [*TORCH_PINS, *pip]
    return [*TORCH, *pip] if target.workload == "image" else pip


def package(requirement: str) -> str:
    """The normalized distribution name a requirement line names ("scikit_learn==1" -> "scikit-learn")."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[=<>!~;@]", requirement, maxsplit=1)[0]).lower()


def environment(target: AzureTarget, spark: bool = False, gpu: bool = False) -> Any:
    """The environment a node runs in: the CPU one, with local Spark (`spark`), or the GPU one (`gpu`,
    for the training of a workload in GPU_WORKLOADS)."""
    from azure.ai.ml.entities import Environment

    if gpu and (spark or target.workload not in GPU_WORKLOADS):
        raise ValueError(f"no GPU environment for the {target.workload} workload"
                         f"{' with Spark' if spark else ''}: GPU training is {', '.join(GPU_WORKLOADS)}'s")
    dependencies: list[Any] = [f"python={PYTHON}", "pip"]
    if spark:  # etl.py runs local Spark in the node, as it does on a laptop
        dependencies += ["openjdk=17", "pyspark=3.5"]
    name = f"mlops-{target.workload}" + ("-spark" if spark else "") + ("-gpu" if gpu else "")
    conda = {"name": name, "channels": ["conda-forge"],
             "dependencies": [*dependencies, {"pip": pip_list(target, gpu=gpu)}]}
    return Environment(image=GPU_BASE_IMAGE if gpu else BASE_IMAGE, conda_file=conda,
                       description=f"training_code/{target.work.requirements} on Azure ML's "
                                   f"{'CUDA ' if gpu else ''}base image")


if __name__ == "__main__":  # the pip list, one a line: what requirements-azure.lock is compiled from
    import sys

    print(*pip_list(AzureTarget(workload=sys.argv[1] if len(sys.argv) > 1 else "tabular")), sep="\n")
