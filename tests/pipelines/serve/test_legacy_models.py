"""Models registered before the code moved into packages still load and answer as they did.

tests/fixtures/legacy_models/ holds a small tabular and a small image model written by the code of
commit b9cbf77 (flat training_code/), inputs, and what that code's batch transform answered. The
current code loads them the way `mlops serve` does (the module their model_meta.json names) and the
way `mlops predict` does (the inference script's batch command), and must answer the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.paths import TRAINING_CODE
from pipelines.serve.server import ModelServer

LEGACY = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_models"


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _same(got: list[dict[str, object]], expected: list[dict[str, object]]) -> None:
    """Same labels; probabilities equal to the printed 6 places, give or take a kernel's rounding."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        assert g.get("file") == e.get("file")
        assert g["probability"] == pytest.approx(e["probability"], abs=1e-4)
        probabilities = g["probabilities"]
        assert isinstance(probabilities, dict)
        assert probabilities == pytest.approx(e["probabilities"], abs=1e-4)
        assert g["label"] == max(probabilities, key=probabilities.get)


def _batch(script: str, model: Path, source: Path, out: Path) -> None:
    run = subprocess.run([sys.executable, script, "--model-dir", str(model), "--input", str(source), "--output",
                          str(out)], cwd=TRAINING_CODE, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_legacy_tabular_model_serves_and_scores_as_before(tmp_path: Path) -> None:
    root = LEGACY / "tabular"
    assert json.loads((root / "model" / "model_meta.json").read_text())["inference_module"] == "inference"
    expected = _records(root / "expected" / "rows.csv.out")
    _batch("inference.py", root / "model", root / "input", tmp_path)
    _same(_records(tmp_path / "rows.csv.out"), expected)
    server = ModelServer(root / "model", capture_dir=None)
    response = server.invoke((root / "input" / "rows.csv").read_bytes(), "text/csv", "application/json")
    assert response.status == 200
    assert [p["label"] for p in json.loads(response.body)["predictions"]] == [e["label"] for e in expected]


def test_a_legacy_image_model_serves_and_scores_as_before(tmp_path: Path) -> None:
    from image.hardware import cpu_flags
    from image.inference import serving_file

    root = LEGACY / "image"
    meta = json.loads((root / "model" / "model_meta.json").read_text())
    assert meta["inference_module"] == "image_inference"
    # The int8 model is served where the CPU has int8 dot products: compare with what it answered.
    expected = _records(root / "expected" / serving_file(meta, cpu_flags()) / "predictions.jsonl")
    _batch("image_inference.py", root / "model", root / "input", tmp_path)
    got = sorted(_records(tmp_path / "predictions.jsonl"), key=lambda r: str(r["file"]))
    _same(got, sorted(expected, key=lambda r: str(r["file"])))
    server = ModelServer(root / "model", capture_dir=None)
    first = sorted((root / "input").rglob("*.png"))[0]
    response = server.invoke(first.read_bytes(), "image/png", "application/json")
    assert response.status == 200, response.body
    (prediction,) = json.loads(response.body)["predictions"]
    assert prediction["probabilities"] == pytest.approx(expected[0]["probabilities"], abs=1e-4)
