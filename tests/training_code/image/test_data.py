"""The image data set generator and the preprocessing step (split, quarantine, report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image import data as image_data
from image import preprocess as image_preprocess
from image.preprocess import CorruptImageError, load_pixels


def _png_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_generator_writes_label_folders_and_is_reproducible(tmp_path: Path) -> None:
    assert image_data.main(["--out", str(tmp_path / "a"), "--per-class", "3", "--size", "16", "--seed", "5"]) == 0
    image_data.main(["--out", str(tmp_path / "b"), "--per-class", "3", "--size", "16", "--seed", "5"])
    image_data.main(["--out", str(tmp_path / "c"), "--per-class", "3", "--size", "16", "--seed", "6"])
    a = _png_bytes(tmp_path / "a")
    assert sorted({k.split("/")[0] for k in a}) == ["crack", "ok", "scratch", "spot"]
    assert len(a) == 12
    assert a == _png_bytes(tmp_path / "b")
    assert a != _png_bytes(tmp_path / "c")
    with Image.open(tmp_path / "a" / "spot" / "spot_00000.png") as img:
        assert img.size == (16, 16) and img.mode == "L"


def test_each_defect_is_a_visible_local_mark_on_the_same_surface() -> None:
    # The background is drawn first from the generator, so one seed gives the same surface with
    # and without a defect: the difference is the defect alone.
    plain = image_data.render_surface("ok", 32, np.random.default_rng(1)).astype(int)
    for kind in image_data.DEFECTS:
        marked = image_data.render_surface(kind, 32, np.random.default_rng(1)).astype(int)
        changed = np.abs(marked - plain) > 8
        assert changed.any(), f"{kind} left no visible mark"
        assert changed.mean() < 0.3, f"{kind} covers {changed.mean():.0%} of the surface"


def test_binary_task_and_digits_source(tmp_path: Path) -> None:
    image_data.main(["--out", str(tmp_path / "bin"), "--task", "binary", "--per-class", "2", "--size", "16"])
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == ["defect", "ok"]
    image_data.main(["--out", str(tmp_path / "dig"), "--source", "digits", "--per-class", "2", "--size", "16"])
    assert sorted(p.name for p in (tmp_path / "dig").iterdir()) == [str(d) for d in range(10)]


def test_load_pixels_converts_and_resizes_and_names_corruption(tmp_path: Path) -> None:
    rgb = tmp_path / "big.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(rgb)
    assert load_pixels(rgb, 16, 1).shape == (1, 16, 16)
    assert load_pixels(rgb, 16, 3)[:, 0, 0].tolist() == [200, 10, 10]
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(rgb.read_bytes()[:60])
    with pytest.raises(CorruptImageError, match=r"cut\.png: corrupt or truncated"):
        load_pixels(truncated, 16, 1)
    with pytest.raises(CorruptImageError, match="not an image"):
        load_pixels(b"%PDF-1.4 not a picture", 16, 1)
    with pytest.raises(CorruptImageError, match="empty"):
        load_pixels(b"", 16, 1)


def test_preprocess_splits_per_label_quarantines_and_reports(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    image_data.main(["--out", str(raw), "--per-class", "20", "--size", "16"])
    (raw / "spot" / "broken.png").write_bytes((raw / "spot" / "spot_00000.png").read_bytes()[:50])
    (raw / "ok" / "readme.txt").write_text("not an image")
    (raw / "ok" / "copy.png").write_bytes((raw / "ok" / "ok_00001.png").read_bytes())
    (raw / "crack" / "mislabelled.png").write_bytes((raw / "ok" / "ok_00002.png").read_bytes())
    out = tmp_path / "out"

    assert image_preprocess.main(["--input", str(raw), "--output-dir", str(out), "--seed", "3"]) == 0

    report = json.loads((out / "report" / "data_report.json").read_text())
    assert report["classes"] == ["crack", "ok", "scratch", "spot"]
    assert report["problem_type"] == "multiclass"
    reasons = {q["file"]: q["reason"] for q in report["quarantined"]}
    assert "truncated" in reasons["spot/broken.png"]
    assert "not an image" in reasons["ok/readme.txt"]
    assert "labelled ['crack', 'ok']" in reasons["crack/mislabelled.png"]
    assert "labelled ['crack', 'ok']" in reasons["ok/ok_00002.png"]
    assert (out / "quarantine" / "spot" / "broken.png").is_file()
    assert report["duplicates_removed"] == 1
    for split in image_preprocess.SPLITS:
        for label in report["classes"]:
            on_disk = len(list((out / split / label).iterdir()))
            assert on_disk == report["splits"][split][label] >= 1
    assert report["splits"]["test"] == {"crack": 3, "ok": 3, "scratch": 3, "spot": 3}
    assert sum(report["totals"].values()) == 80 - 1  # ok_00002 went to quarantine with its twin
    names = [{p.name for p in (out / s).rglob("*.png")} for s in image_preprocess.SPLITS]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2]), "a file in two splits"


def test_preprocess_is_reproducible_and_refuses_too_few_images(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    image_data.main(["--out", str(raw), "--task", "binary", "--per-class", "10", "--size", "16"])
    for name in ("a", "b"):
        image_preprocess.main(["--input", str(raw), "--output-dir", str(tmp_path / name), "--seed", "1"])
    assert _png_bytes(tmp_path / "a" / "test") == _png_bytes(tmp_path / "b" / "test")
    for f in sorted((raw / "defect").iterdir())[2:]:
        f.unlink()
    with pytest.raises(ValueError, match="'defect' has 2 usable image"):
        image_preprocess.main(["--input", str(raw), "--output-dir", str(tmp_path / "c")])
