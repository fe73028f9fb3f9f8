"""Every container's dependencies install: for each image the exported SageMaker definition names,
the workload bundle's requirements.txt resolves on that image's Python and platform, together with
what the image already has (pipelines/sagemaker/images.py).

The jobs pip-install requirements.txt at start-up, so a pin without a wheel for the image's Python
(matplotlib 3.11 on the Python 3.10 images) fails every job there, and only a package index can say
which wheels exist. The resolve test is therefore the one test that asks the registry: pip's own
resolver (`pip download`: it resolves and fetches, installs nothing), wheels only, for exactly the
image's interpreter and manylinux tags, with the image's pins as constraints. It skips with a message
when the index pip is configured to use does not answer. Which images are named, and that each is
recorded, is checked offline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

from pipelines import bundles
from pipelines.definition import workload
from pipelines.sagemaker import images
from pipelines.sagemaker.images import Image
from tests.pipelines.package_index import PIP_FOR_TARGET_PYTHON, pip_config, pip_errors, probe
from tests.pipelines.sagemaker.targets import build_once, target

WORKLOADS = ("tabular", "image")
IMAGE_FIELDS = ("ImageUri", "TrainingImage", "Image")  # processing, training/tuning, model

# -- what the definition names -------------------------------------------------------------------

def image_uris(node: Any) -> Iterator[str]:
    """Every image URI in a definition: the processing, training/tuning and model image fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in IMAGE_FIELDS and isinstance(value, str):
                yield value
            else:
                yield from image_uris(value)
    elif isinstance(node, list):
        for value in node:
            yield from image_uris(value)


@pytest.fixture(scope="session")
def named_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """workload -> the image URIs its exported definition names (sorted)."""
    return {w: sorted(set(image_uris(build_once(tmp_path_factory, target(w)).cold))) for w in WORKLOADS}


def test_every_image_the_definitions_name_is_recorded(named_images: dict[str, list[str]]) -> None:
    assert named_images["tabular"] and named_images["image"]
    missing = []
    for uris in named_images.values():
        for uri in uris:
            try:
                images.for_uri(uri)
            except KeyError as e:
                missing.append(str(e.args[0]))
    assert not missing, "\n".join(missing)


def test_an_unrecorded_image_is_refused() -> None:
    with pytest.raises(KeyError, match=r"sagemaker-xgboost:9\.9-9 is not recorded"):
        images.for_uri("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:9.9-9")


# -- the registry --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def wheel_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One download folder for the session: `pip download` skips a wheel already in it, so the images
    share their downloads (pip's own HTTP cache keeps nothing from an index that sends no caching
    headers). Hundreds of MB (xgboost's NCCL wheel alone is 350): removed at the end."""
    pool = tmp_path_factory.mktemp("wheel-pool")
    yield pool
    shutil.rmtree(pool, ignore_errors=True)


# -- resolving -----------------------------------------------------------------------------------

def bundle_requirements(name: str, out: Path) -> Path:
    """requirements.txt as the workload's code bundle ships it (read back from the archive)."""
    with tarfile.open(bundles.tarball(workload(name), out)) as tar:
        member = tar.extractfile(bundles.REQUIREMENTS)
        assert member is not None
        path = out / bundles.REQUIREMENTS
        path.write_bytes(member.read())
    return path


def named(requirements: Path, python: str) -> set[str]:
    """The distributions requirements.txt names for this Python (its markers evaluated there)."""
    env = {key: str(value) for key, value in default_environment().items()}
    env.update(python_version=python, python_full_version=f"{python}.0")
    names: set[str] = set()
    for line in requirements.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise AssertionError(f"{requirements}: {text!r} is not a plain requirement: {e}") from e
        if req.marker is None or req.marker.evaluate(env):
            names.add(canonicalize_name(req.name))
    return names


def constraints_for(image: Image, requirements: Path) -> list[str]:
    """The image's pins, except those requirements.txt names: a named package is a deliberate
    upgrade (pip replaces the image's version), any other one the image's version must do. A held
    package keeps its pin all the same: naming it for this image is an error pip will report."""
    ours = named(requirements, image.python)
    return [f"{name}{spec}" for name, spec in image.preinstalled.items()
            if canonicalize_name(name) not in ours or name in image.held]


def pip_download(image: Image, requirements: Path, work: Path, pool: Path) -> subprocess.CompletedProcess[str]:
    """pip's resolver on requirements.txt with the image's pins as constraints, wheels only, for the
    image's Python and platforms; the wheels it picks land in `pool`. Nothing is installed."""
    work.mkdir(parents=True, exist_ok=True)
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{c}\n" for c in constraints_for(image, requirements)))
    command = [
        sys.executable, "-c", PIP_FOR_TARGET_PYTHON, image.python,
        "download", "--only-binary=:all:", "--python-version", image.python, "--implementation", "cp",
        *(arg for platform in image.platforms() for arg in ("--platform", platform)),
        "--dest", str(pool), "--timeout", "30", "--retries", "2",
        "--no-input", "--progress-bar", "off", "--disable-pip-version-check",
        "-r", str(requirements), "-c", str(constraints),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)


def picked(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Distribution -> version of every wheel pip picked (its 'Saved' / 'already downloaded' lines)."""
    found = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)$", result.stdout, flags=re.MULTILINE)
    wheels = (parse_wheel_filename(Path(path).name) for path in found)
    return {name: str(version) for name, version, _, _ in wheels}


def changes(image: Image, versions: dict[str, str]) -> list[str]:
    """Preinstalled packages the install replaces: 'name spec -> version'."""
    out = []
    for name, spec in image.preinstalled.items():
        version = versions.get(canonicalize_name(name))
        if version is not None and version not in SpecifierSet(spec, prereleases=True):
            out.append(f"{name}{spec} -> {version}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", WORKLOADS)
def test_the_bundle_requirements_resolve_in_every_image_it_runs_in(
        name: str, named_images: dict[str, list[str]], registry: str, wheel_pool: Path, tmp_path: Path) -> None:
    requirements = bundle_requirements(name, tmp_path)
    failures, summary = [], []
    for i, uri in enumerate(named_images[name]):
        image = images.for_uri(uri)
        started = time.monotonic()
        result = pip_download(image, requirements, tmp_path / f"image-{i}", wheel_pool)
        took = time.monotonic() - started
        where = f"{uri} (python {image.python}, {image.platform})"
        if result.returncode != 0:
            failures.append(f"{where}:\n{pip_errors(result)}")
            continue
        versions = picked(result)
        replaced = ", ".join(changes(image, versions)) or "nothing it pins"
        summary.append(f"{where}: {len(versions)} wheels resolve in {took:.1f} s; replaces {replaced}")
    print(f"\n{name} bundle against {registry}:\n  " + "\n  ".join(summary))
    if failures:
        pytest.fail(f"{name} bundle's requirements.txt does not install in:\n\n" + "\n\n".join(failures), pytrace=False)


def test_markers_are_read_for_the_image_python(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text('a==1; python_version >= "3.11"\nb==2; python_version < "3.11"  # why\n\nc==3\n')
    assert named(requirements, "3.10") == {"b", "c"}
    assert named(requirements, "3.12") == {"a", "c"}
    image = images.XGBOOST_3_0_5
    requirements.write_text('scipy==1.17.1; python_version >= "3.11"\nmatplotlib==3.10.9; python_version < "3.11"\n')
    pins = constraints_for(image, requirements)
    assert "scipy==1.15.0" in pins and not any(p.startswith("matplotlib") for p in pins)


def test_a_held_package_keeps_the_image_pin_even_where_named(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("xgboost==3.2.0\npyarrow==25.0.1\nmatplotlib==3.10.9\n")
    pins = constraints_for(images.XGBOOST_3_0_5, requirements)
    assert {"xgboost==3.0.5", "pyarrow==22.0.0"} <= set(pins) and not any(p.startswith("matplotlib") for p in pins)


def test_held_packages_are_preinstalled_ones() -> None:
    for image in images.IMAGES:
        assert image.held <= set(image.preinstalled), f"{image.repository}: held but not preinstalled"


def test_platforms_cover_every_manylinux_the_glibc_loads() -> None:
    tags = images.XGBOOST_3_0_5.platforms()
    assert tags[0] == "manylinux_2_31_x86_64" and "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert "manylinux_2_34_x86_64" not in tags


def test_the_probe_reads_pip_settings_and_names_an_unreachable_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9 (discard)
    assert pip_config()["index-url"] == "http://127.0.0.1:9/simple"
    assert probe("http://127.0.0.1:9/simple", None)  # a reason, e.g. "[Errno 111] Connection refused"
