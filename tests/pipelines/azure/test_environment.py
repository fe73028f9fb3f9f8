"""The Azure ML environments: every pip dependency pinned exactly, the base image by its dated tag, the
whole list resolving together for the environment's Python on the base image's platform (the one
test here that asks the package index; it skips, saying why, when the index does not answer), and
.venv-azure, where the inference-server tests run, locked to the same pins.

Before issue 15 `mlflow` and `azureml-mlflow` were unpinned: pip took mlflow 3.18 and, since
azureml-mlflow 1.62 caps mlflow-skinny at 3.15.0, fell back to azureml-mlflow 1.60, a pair that fails
creating the artifact store. Exact pins that resolve together are what stops that.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipelines.azure.environment import (
    BASE_IMAGE,
    GPU_BASE_IMAGE,
    PYTHON,
    TORCH_INDEX,
    TORCH_PINS,
    environment,
    pip_list,
)
from pipelines.azure.target import AzureTarget
from pipelines.sagemaker.images import Image
from tests.pipelines.package_index import PIP_FOR_TARGET_PYTHON, pip_config, pip_errors, probe

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements-azure.lock"
WORKLOADS = ("tabular", "image")
# The base image's Python (conda's, PYTHON) and platform: Ubuntu 22.04's glibc 2.35. Described as the
# SageMaker images are, to reuse their wheel-tag list.
BASE = Image(framework="azureml", version=BASE_IMAGE.rsplit(":", 1)[1], scopes=(),
             repository=BASE_IMAGE.rsplit(":", 1)[0], tags=(BASE_IMAGE.rsplit(":", 1)[1],), python=PYTHON,
             platform="manylinux_2_35_x86_64", preinstalled={}, source="Ubuntu 22.04 (glibc 2.35), conda Python")


def requirements(workload: str) -> list[Requirement]:
    return [Requirement(line) for line in pip_list(AzureTarget(workload=workload)) if not line.startswith("-")]


def applies(req: Requirement) -> bool:
    """Whether a requirement's marker holds on the environment's Python."""
    env = {k: str(v) for k, v in default_environment().items()}
    env.update(python_version=PYTHON, python_full_version=f"{PYTHON}.0")
    return req.marker is None or req.marker.evaluate(env)


def pinned(req: Requirement) -> str | None:
    """The version of an exact `==` pin, else None."""
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_dependency_is_pinned_exactly_and_the_environment_renders_it(workload: str) -> None:
    loose = [str(r) for r in requirements(workload) if pinned(r) is None]
    assert not loose, f"pin exactly (pip takes whatever resolves today otherwise): {loose}"
    names = [canonicalize_name(r.name) for r in requirements(workload) if applies(r)]
    assert len(names) == len(set(names)), "one pin per package"
    assert {"mlflow-skinny", "azureml-mlflow", "azureml-inference-server-http", "azureml-ai-monitoring", "numpy",
            "pandas", "scikit-learn"} <= set(names)
    env = environment(AzureTarget(workload=workload))
    assert env.image == BASE_IMAGE
    assert env.conda_file["dependencies"][-1] == {"pip": pip_list(AzureTarget(workload=workload))}


@pytest.mark.parametrize("image", [BASE_IMAGE, GPU_BASE_IMAGE])
def test_the_base_image_is_pinned_by_its_dated_tag(image: str) -> None:
    assert re.fullmatch(r"mcr\.microsoft\.com/azureml/[\w.-]+:\d{8}\.v\d+", image), image


def test_the_gpu_environment_is_the_cuda_build_of_the_same_pins() -> None:
    """The image workload's GPU nodes: Azure ML's Open MPI + CUDA base image, and torch from PyPI,
    whose Linux wheel is the CUDA build (the CPU index would give the CPU build on a GPU node); the
    same versions as the CPU environment otherwise, every one pinned exactly."""
    image = AzureTarget(workload="image")
    env = environment(image, gpu=True)
    assert env.image == GPU_BASE_IMAGE and "cuda" in GPU_BASE_IMAGE
    assert env.conda_file["name"] == "mlops-image-gpu"
    gpu = env.conda_file["dependencies"][-1]["pip"]
    assert TORCH_INDEX not in gpu and set(TORCH_PINS) <= set(gpu)
    assert [r for r in gpu if not r.startswith("-")] == [r for r in pip_list(image) if not r.startswith("-")]
    assert all(pinned(Requirement(r)) for r in gpu), gpu
    with pytest.raises(ValueError, match="no GPU environment for the tabular workload"):
        environment(AzureTarget(), gpu=True)


def test_the_azure_venv_lock_has_the_tabular_environments_pins() -> None:
    """.venv-azure (make setup) is the environment the endpoint serves from: same versions."""
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    locked = {canonicalize_name(r.name): pinned(r) for r in map(Requirement, lines)}
    wanted = {canonicalize_name(r.name): pinned(r) for r in requirements("tabular") if applies(r)}
    differ = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert not differ, (f"requirements-azure.lock differs from the environment (pinned, locked): {differ}; "
                        "regenerate it as its header says")


def pip_resolve(lines: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    """pip's resolver on the environment's pip list for its Python and platform, wheels only: a dry
    run that fetches metadata, installs nothing, and writes what it picked to work/report.json."""
    work.mkdir(parents=True, exist_ok=True)
    listed = work / "requirements.txt"
    listed.write_text("".join(f"{line}\n" for line in lines))
    command = [
        sys.executable, "-c", PIP_FOR_TARGET_PYTHON, BASE.python,
        "install", "--dry-run", "--ignore-installed", "--report", str(work / "report.json"), "--quiet",
        "--only-binary=:all:", "--python-version", BASE.python, "--implementation", "cp",
        *(arg for platform in BASE.platforms() for arg in ("--platform", platform)),
        "--timeout", "30", "--retries", "2", "--no-input", "--progress-bar", "off", "--disable-pip-version-check",
        "-r", str(listed),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("workload", WORKLOADS)
def test_the_environment_resolves_together(workload: str, registry: str, tmp_path: Path) -> None:
    lines = pip_list(AzureTarget(workload=workload))
    if TORCH_INDEX in lines:
        torch_index = TORCH_INDEX.split()[-1]
        why = probe(torch_index, pip_config().get("cert") or None, project="torch")
        if why is not None:
            pytest.skip(f"PyTorch's CPU index not reachable ({torch_index}: {why}); the {workload} environment "
                        "takes torch from there, so its resolve check skips offline")
    result = pip_resolve(lines, tmp_path)
    assert result.returncode == 0, f"the {workload} environment does not resolve:\n{pip_errors(result)}"
    report = json.loads((tmp_path / "report.json").read_text())
    picked = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
    for req in requirements(workload):
        if applies(req):
            assert picked.get(canonicalize_name(req.name)) == pinned(req), req
    print(f"\n{workload} environment against {registry}: {len(picked)} packages resolve; "
          + ", ".join(f"{n} {picked[n]}" for n in ("mlflow-skinny", "azureml-mlflow", "azureml-inference-server-http")))
