"""The local step cache keys on what decides a step's result: its code (its script and what that
imports), its arguments with run folders written symbolically, the files its settings name and the
inputs it reads; nothing else (the run folder, another workload's code)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.definition import IMAGE, TABULAR
from pipelines.local.cache import code_fingerprint
from pipelines.local.plan import render
from pipelines.local.runner import LocalRun, RunConfig


def _run(run_id: str, spec: Path | None = None) -> LocalRun:
    run = LocalRun(RunConfig(run_id=run_id, problem_type="binary", spec=spec), say=lambda _: None)
    run.loc.parameters = run.parameters(Path("/data/raw"))
    return run


def test_the_key_is_the_same_in_any_run_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    a, b = _run("a"), _run("b")
    for name in ("preprocess", "evaluate", "check", "baseline", "transform"):
        ra, rb = render(TABULAR.step(name), a.loc, a.settings()), render(TABULAR.step(name), b.loc, b.settings())
        assert ra.argv != rb.argv, name  # the real paths differ ...
        assert a._key_params(ra) == b._key_params(rb), name  # ... what is keyed does not


def test_a_spec_edit_reaches_the_steps_that_read_the_spec_only(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    spec = tmp_path / "spec.json"
    shutil.copy(paths.TRAINING_CODE / "specs" / "churn.json", spec)
    run = _run("a", spec)
    steps = ("preprocess", "evaluate")
    before = {s: run._key_params(render(TABULAR.step(s), run.loc, run.settings())) for s in steps}
    spec.write_text(spec.read_text().replace('"churn"', '"churn-v2"', 1))
    after = {s: run._key_params(render(TABULAR.step(s), run.loc, run.settings())) for s in steps}
    assert after["preprocess"] != before["preprocess"]
    assert after["evaluate"] == before["evaluate"]


def test_an_image_edit_leaves_the_tabular_steps_code_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The image workload had its own copy of the script names (`_script_of`): a slip there reused the
    wrong cache entry. Now the key is the step's own script and what it imports."""
    code = tmp_path / "training_code"
    shutil.copytree(paths.TRAINING_CODE, code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(paths, "TRAINING_CODE", code)
    tabular = {s.name: code_fingerprint(TABULAR, s.script or "") for s in TABULAR.steps}
    image = {s.name: code_fingerprint(IMAGE, s.script or "") for s in IMAGE.steps}
    assert tabular["train"] != image["train"] and tabular["preprocess"] != image["preprocess"]
    with (code / "image" / "train.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert {s.name: code_fingerprint(TABULAR, s.script or "") for s in TABULAR.steps} == tabular
    assert code_fingerprint(IMAGE, "image_train.py") != image["train"]
    with (code / "tabular" / "transform.py").open("a") as fh:
        fh.write("\n# changed\n")
    changed = {s.name for s in TABULAR.steps if code_fingerprint(TABULAR, s.script or "") != tabular[s.name]}
    assert changed == {"preprocess", "tune", "train", "evaluate", "transform"}  # those that import it


def test_evaluate_and_check_are_keyed_by_the_champion_and_the_registered_digests(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new champion, or an edit inside its folder, re-runs evaluate; a new registered version
    re-judges check (its candidate may be a duplicate now); the training steps do not move."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    run = _run("a")
    champion = tmp_path / "v1" / "model"
    champion.mkdir(parents=True)
    (champion / "model.ubj").write_bytes(b"one")

    def keys() -> dict[str, object]:
        return {s: run._key_params(render(TABULAR.step(s), run.loc, run.settings()))
                for s in ("preprocess", "evaluate", "check")}

    none = keys()
    run.loc.parameters = {**run.loc.parameters, "ChampionModelUrl": str(champion)}
    with_champion = keys()
    assert with_champion["evaluate"] != none["evaluate"] and with_champion["preprocess"] == none["preprocess"]
    (champion / "model.ubj").write_bytes(b"two")  # same path, other model
    assert keys()["evaluate"] != with_champion["evaluate"]
    run.loc.parameters = {**run.loc.parameters, "RegisteredModelDigests": "ab" * 32}
    assert keys()["check"] != with_champion["check"]
