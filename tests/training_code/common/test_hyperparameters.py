"""hyperparameters.py: a tuning trial's hyperparameters through a file, back into flags."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from common import hyperparameters


def test_a_record_turns_back_into_the_same_flags(tmp_path: Path) -> None:
    pairs = ["--eta", "0.05", "--max_depth", "7", "--objective", "it's quoted"]
    assert hyperparameters.main(["record", str(tmp_path), *pairs]) == 0
    assert json.loads((tmp_path / "best_hyperparameters.json").read_text()) == {
        "hyperparameters": {"eta": "0.05", "max_depth": "7", "objective": "it's quoted"}}
    assert shlex.split(hyperparameters.flags(tmp_path)) == pairs


def test_the_local_tuners_file_reads_too(tmp_path: Path) -> None:
    (tmp_path / "best_hyperparameters.json").write_text(json.dumps(
        {"hyperparameters": {"eta": 0.1, "num_round": "400"}, "objective": "validation:auc", "value": 0.9}))
    assert hyperparameters.flags(tmp_path) == "--eta 0.1 --num_round 400"


def test_pairs_that_are_not_pairs_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="--name value pairs"):
        hyperparameters.record(tmp_path, ["--eta"])
    for argv in (["record", str(tmp_path), "--eta"], ["copy", str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_:
            hyperparameters.main(argv)
        assert exit_.value.code == 2
    assert "--name value pairs" in capsys.readouterr().err
