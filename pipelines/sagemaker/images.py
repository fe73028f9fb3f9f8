"""The framework images the SageMaker definition names, and what each one already has installed.

A code bundle's requirements.txt is pip-installed at start-up inside these images (by the processing
`RUNNER` in `pipelines.sagemaker.steps`, and by the framework toolkits for training, tuning, transform
and endpoints), on top of what the image ships. The Spark image's runner installs nothing today; its
entry is checked all the same, so the bundle stays installable there. Whether an install succeeds
depends on the image's Python, the wheels its C library can load, and the packages already there.
This module records those facts per image, read from AWS's public container sources (repository,
branch or commit, file in the comment beside each), so
`tests/pipelines/sagemaker/test_image_dependencies.py` can resolve each bundle for exactly the images
the definition names.

`preinstalled` holds the pins that matter to our requirements: the scientific stack, and whatever our
requirements' dependencies would meet (matplotlib's pillow and python-dateutil, joblib's
cloudpickle ...). A pin is a PEP 440 specifier as the image's build states it: `==` where the build
pins a version, a range where it only bounds one. Packages a build installs unpinned (conda-forge's
newest at build time) are left out: no source says which version an image has.

`held` names the preinstalled packages the image's own stack is built against (its serving toolkit,
mlio ...): a bundle must not replace them, so the check keeps their pins even where requirements.txt
names the package (it may, behind an environment marker for other images' Pythons).

A new image in `pipelines.sagemaker.steps.IMAGES` needs an entry here; the check fails until it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Image:
    framework: str  # as the SDK's image_uris.retrieve names it
    version: str
    scopes: tuple[str, ...]  # the retrieve scopes that give this image
    repository: str  # the ECR repository (the same name in every region)
    tags: tuple[str, ...]  # the tags retrieve gives (one per processor where they differ)
    python: str  # "3.10": what `python3` and its pip are in the image
    platform: str  # the newest manylinux tag the image's glibc loads
    preinstalled: Mapping[str, str]  # distribution -> PEP 440 specifier
    source: str  # where the facts come from (details beside each entry)
    held: frozenset[str] = frozenset()  # preinstalled packages a bundle must leave as they are

    def platforms(self) -> tuple[str, ...]:
        """Every wheel platform tag the image loads: manylinux_2_5 up to its glibc, and the legacy
        aliases (pip expands manylinux2014 to 2010 and 1 itself, but not manylinux_2_N to older N)."""
        prefix, major, minor, arch = _parse_platform(self.platform)
        newer = tuple(f"{prefix}_{major}_{m}_{arch}" for m in range(minor, 4, -1))
        return (*newer, f"manylinux2014_{arch}")

    def matches(self, uri: str) -> bool:
        repository, tag = split_uri(uri)
        return repository == self.repository and tag in self.tags


def _parse_platform(platform: str) -> tuple[str, int, int, str]:
    prefix, major, minor, arch = platform.split("_", 3)  # manylinux_2_31_x86_64
    if prefix != "manylinux" or int(minor) < 17:
        raise ValueError(f"{platform}: expected manylinux_2_<N>_<arch> with N >= 17")
    return prefix, int(major), int(minor), arch


def split_uri(uri: str) -> tuple[str, str]:
    """'<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>' -> (repository, tag)."""
    path = uri.split("/", 1)[-1]
    repository, _, tag = path.rpartition(":")
    if not repository or not tag:
        raise ValueError(f"{uri}: not an image URI with a tag")
    return repository, tag


SKLEARN_1_4_2 = Image(
    framework="sklearn", version="1.4-2", scopes=("training",),  # the SDK (3.27) has no 1.4-2 inference image
    repository="sagemaker-scikit-learn", tags=("1.4-2-cpu-py3",),
    # aws/sagemaker-scikit-learn-container, branch v1.4-2 @ 6c5704d20eabcd1561e9cb938671c92e79c32310:
    # docker/1.4-2/base/Dockerfile.cpu: final stage FROM ubuntu:24.04 (glibc 2.39), python3.10 from the
    # deadsnakes PPA as python3; `uv pip install --system numpy==2.1.0 scikit-learn==1.4.2 pyarrow==17.0.0`.
    # docker/1.4-2/final/Dockerfile.cpu installs requirements.txt, whose pins are below.
    python="3.10",
    platform="manylinux_2_39_x86_64",
    preinstalled={
        "numpy": "==2.1.0",  # base/Dockerfile.cpu and requirements.txt
        "scikit-learn": "==1.4.2",  # base/Dockerfile.cpu and requirements.txt
        "pyarrow": "==17.0.0",  # base/Dockerfile.cpu and requirements.txt (mlio is built against it)
        "pandas": "==2.3.2",  # requirements.txt
        "scipy": ">=1.9.0",  # requirements.txt (the version is whatever was newest at build)
        "six": "==1.15.0",  # requirements.txt
        "protobuf": "==3.20.2",  # requirements.txt
        "setuptools": "==80.9.0",  # requirements.txt
    },
    source="aws/sagemaker-scikit-learn-container@6c5704d20eab (branch v1.4-2)",
    held=frozenset({"pyarrow"}),  # mlio (the image's data reader) is built against pyarrow 17
)

XGBOOST_3_0_5 = Image(
    framework="xgboost", version="3.0-5", scopes=("training", "inference"),
    repository="sagemaker-xgboost", tags=("3.0-5",),
    # aws/sagemaker-xgboost-container, branch release-3.0.5 @ fe01f24a58fbdcfbcfd52944a0e896672ff5c36e
    # (master has since moved its requirements to Python 3.12 for a later release):
    # docker/3.0-5/base/Dockerfile.cpu: FROM nvidia/cuda:12.6.3-base-ubuntu20.04 (glibc 2.31), Miniforge
    # `conda install python=3.10 pyarrow=22.0.0`, then
    # `pip install -I xgboost==3.0.5 numpy==2.1.0 pyarrow==22.0.0 pandas==2.2.3`.
    # docker/3.0-5/final/Dockerfile.cpu installs requirements.txt (pins below), then patches
    # `protobuf>=3.20.0,<=3.20.3` and `fonttools>=4.60.2`.
    python="3.10",
    platform="manylinux_2_31_x86_64",
    preinstalled={
        "xgboost": "==3.0.5",  # base/Dockerfile.cpu
        "numpy": "==2.1.0",  # base/Dockerfile.cpu and requirements.txt
        "pandas": "==2.2.3",  # base/Dockerfile.cpu and requirements.txt
        "pyarrow": "==22.0.0",  # base/Dockerfile.cpu (conda and pip)
        "scipy": "==1.15.0",  # requirements.txt
        "scikit-learn": "==1.5.2",  # requirements.txt
        "matplotlib": "==3.9.2",  # requirements.txt
        "pillow": "==9.1.1",  # requirements.txt
        "python-dateutil": "==2.8.2",  # requirements.txt
        "numba": "==0.61.0",  # requirements.txt; numba 0.61 needs numpy<2.2, a reason to keep numpy here
        "setuptools": "<81",  # requirements.txt
        "protobuf": ">=3.20.0,<=3.20.3",  # final/Dockerfile.cpu
        "fonttools": ">=4.60.2",  # final/Dockerfile.cpu
    },
    source="aws/sagemaker-xgboost-container@fe01f24a58fb (branch release-3.0.5)",
    # Its serving and training toolkit (sagemaker-containers, mlio.integ.arrow) runs against pyarrow 22
    # and xgboost 3.0.5; a newer xgboost would also bring NVIDIA's NCCL (350 MB) at every start-up.
    held=frozenset({"pyarrow", "xgboost"}),
)

SPARK_3_5 = Image(
    framework="spark", version="3.5", scopes=("processing",),
    repository="sagemaker-spark-processing", tags=("3.5-cpu-py312",),
    # aws/sagemaker-spark-container, master @ 7d90eeb1461f614340475dc4644313a629c3750b:
    # spark/processing/3.5/py3/docker/py312/Dockerfile.cpu: FROM amazonlinux:2023 (glibc 2.34),
    # `dnf install python3.12`, symlinked as python3 (and PYSPARK_PYTHON); `pipenv install --system`
    # from smsparkbuild/py312/Pipfile.runtime(.lock), whose pins are below. PySpark itself is EMR's
    # spark-python RPM, not a pip package.
    python="3.12",
    platform="manylinux_2_34_x86_64",
    preinstalled={
        "numpy": "==1.26.4",  # Pipfile.runtime and its lock
        "pandas": "==3.0.2",  # Pipfile.runtime.lock (Pipfile.runtime: >=2.0.0)
        "python-dateutil": "==2.9.0.post0",  # Pipfile.runtime.lock
        "six": "==1.17.0",  # Pipfile.runtime.lock
        "packaging": "==26.1",  # Pipfile.runtime.lock
        "joblib": "==1.5.3",  # Pipfile.runtime.lock
        "typing-extensions": "==4.14.0",  # Pipfile.runtime and its lock
    },
    source="aws/sagemaker-spark-container@7d90eeb1461f (master)",
)

PYTORCH_2_5_1_TRAINING = Image(
    framework="pytorch", version="2.5.1", scopes=("training",),
    repository="pytorch-training", tags=("2.5.1-cpu-py311", "2.5.1-gpu-py311"),
    # aws/deep-learning-containers: pytorch/training/docker/2.5/py3/Dockerfile.cpu as last changed in
    # 1ca6a81abfca60a5031737a04952bdc3390bcc1c and py3/cu124/Dockerfile.gpu in
    # 76fce959a63a3a4736cad60608859459b5821ac0 (the 2.5 folder's last change: 50236abf533d, allowlists):
    # FROM ubuntu:22.04 / nvidia/cuda:12.4.1-base-ubuntu22.04 (glibc 2.35), Miniforge python 3.11.9
    # (cpu) / 3.11.10 (gpu); torch 2.5.1+cpu / +cu124 and torchvision 0.20.1 from AWS's own wheels;
    # `"numpy<2"` (for fastai) and `"cloudpickle==2.2.1"` (for sagemaker 2.233) in the sagemaker stage;
    # pandas, scikit-learn, scipy and pillow from conda-forge, unpinned.
    python="3.11",
    platform="manylinux_2_35_x86_64",
    preinstalled={
        "torch": "==2.5.1",  # AWS's +cpu / +cu124 build (== ignores the local label)
        "torchvision": "==0.20.1",
        "numpy": "<2",
        "cloudpickle": "==2.2.1",
        "opencv-python": "==4.11.0.86",
        "sagemaker": ">=2,<3",
    },
    source="aws/deep-learning-containers@50236abf533d pytorch/training/docker/2.5/py3",
)

PYTORCH_2_5_1_INFERENCE = Image(
    framework="pytorch", version="2.5.1", scopes=("inference",),
    repository="pytorch-inference", tags=("2.5.1-cpu-py311", "2.5.1-gpu-py311"),
    # aws/deep-learning-containers: pytorch/inference/docker/2.5/py3/Dockerfile.cpu as last changed in
    # f69f96388729b94c13223a5d357077817a3b109d, py3/cu124/Dockerfile.gpu likewise; buildspec-2-5-sm.yml
    # for the toolkit versions: FROM ubuntu:22.04 / nvidia/cuda:12.4.1-base-ubuntu22.04 (glibc 2.35),
    # Miniforge python 3.11.9; torch 2.5.1 and torchvision 0.20.1 from AWS's wheels; torchserve 0.12.0;
    # sagemaker-pytorch-inference 2.0.25; numpy, scipy, pandas and scikit-learn from conda-forge, unpinned.
    python="3.11",
    platform="manylinux_2_35_x86_64",
    preinstalled={
        "torch": "==2.5.1",
        "torchvision": "==0.20.1",
        "torchserve": "==0.12.0",
        "sagemaker-pytorch-inference": "==2.0.25",
    },
    source="aws/deep-learning-containers@50236abf533d pytorch/inference/docker/2.5/py3",
)

IMAGES: tuple[Image, ...] = (SKLEARN_1_4_2, XGBOOST_3_0_5, SPARK_3_5, PYTORCH_2_5_1_TRAINING, PYTORCH_2_5_1_INFERENCE)


def for_uri(uri: str) -> Image:
    """The recorded image an image URI names; KeyError when it is not recorded."""
    found = [image for image in IMAGES if image.matches(uri)]
    if not found:
        repository, tag = split_uri(uri)
        raise KeyError(f"{uri}: image {repository}:{tag} is not recorded in pipelines/sagemaker/images.py "
                       "(add its Python, platform and preinstalled pins from AWS's container sources)")
    return found[0]

