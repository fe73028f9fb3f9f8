"""The champion as evaluate finds it: a folder, a model.tar.gz, or an S3 object; never a crash."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.champion import score_champion


def _model_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model_meta.json").write_text(json.dumps({"problem_type": "binary"}))
    (root / "model.ubj").write_bytes(b"weights")
    return root


def _archive(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f.name)
    return target


def _read_meta(folder: Path) -> dict[str, Any]:
    return {"binary_classification_metrics": json.loads((folder / "model_meta.json").read_text())}


def test_no_champion_is_none() -> None:
    assert score_champion("", _read_meta) is None
    assert score_champion("  ", _read_meta) is None


@pytest.mark.parametrize("form", ["folder", "archive", "folder holding the archive"])
def test_a_local_champion_is_scored_from_its_folder(form: str, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    if form == "folder":
        url = str(folder)
    else:
        (tmp_path / "artefact").mkdir()
        url = str(_archive(folder, tmp_path / "artefact" / "model.tar.gz"))
        if form != "archive":
            url = str(tmp_path / "artefact")
    assert score_champion(url, _read_meta) == {"source": url,
                                               "binary_classification_metrics": {"problem_type": "binary"}}


def test_an_s3_champion_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(var, value)
    archive = _archive(_model_folder(tmp_path / "model"), tmp_path / "model.tar.gz")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="artefacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.upload_file(str(archive), "artefacts", "pipelines/train/abc/output/model.tar.gz")
        url = "s3://artefacts/pipelines/train/abc/output/model.tar.gz"
        assert score_champion(url, _read_meta) == {"source": url,
                                                   "binary_classification_metrics": {"problem_type": "binary"}}
        missing = score_champion("s3://artefacts/gone/model.tar.gz", _read_meta)
    assert missing is not None and missing["source"] == "s3://artefacts/gone/model.tar.gz"
    assert "404" in missing["error"] or "Not Found" in missing["error"]


def test_whatever_goes_wrong_is_recorded_not_raised(tmp_path: Path) -> None:
    assert score_champion(str(tmp_path / "absent"), _read_meta) == {
        "source": str(tmp_path / "absent"),
        "error": f"FileNotFoundError: {tmp_path / 'absent'}: no such model folder or file"}
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("no model here")
    not_a_model = score_champion(str(_archive(tmp_path / "junk", tmp_path / "junk.tar.gz")), _read_meta)
    assert not_a_model is not None and "holds no model_meta.json" in not_a_model["error"]
    assert "not an s3://bucket/key URI" in (score_champion("s3://bucket-only", _read_meta) or {})["error"]

    def broken(folder: Path) -> dict[str, Any]:
        raise KeyError("algorithm")

    folder = _model_folder(tmp_path / "model")
    assert score_champion(str(folder), broken) == {"source": str(folder), "error": "KeyError: 'algorithm'"}
