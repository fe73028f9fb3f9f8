"""The dataset spec: a mistake fails before any work starts, with a message naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.dataset_spec import DEFAULT_SPEC_PATH, DatasetSpec, SpecError, load_spec


def spec(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "target": "churned",
        "problem_type": "binary",
        "key": ["customer_id"],
        "columns": [
            {"name": "customer_id", "type": "string", "feature": False},
            {"name": "age", "type": "integer", "min": 0, "max": 120},
            {"name": "plan", "type": "categorical", "allowed": ["basic", "pro"]},
            {"name": "churned", "type": "integer"},
        ],
    }
    raw.update(changes)
    return raw


def column(name: str, **changes: Any) -> dict[str, Any]:
    raw = spec()
    col = next(c for c in raw["columns"] if c["name"] == name)
    col.update(changes)
    return raw


@pytest.mark.parametrize(("raw", "named"), [
    pytest.param(spec(tragets="x"), "tragets", id="unknown-top-level-field"),
    pytest.param(column("age", maximum=3), "maximum", id="unknown-column-field"),
    pytest.param(column("age", type="float"), "columns[age].type", id="bad-column-type"),
    pytest.param(spec(problem_type="classification"), "problem_type", id="bad-problem-type"),
    pytest.param(column("age", min=10, max=5), "columns[age]", id="min-greater-than-max"),
    pytest.param(column("age", min="ten"), "columns[age].min", id="min-not-a-number"),
    pytest.param(column("age", allowed=["1"]), "columns[age].allowed", id="allowed-on-a-number"),
    pytest.param({k: v for k, v in spec().items() if k != "target"}, "target", id="missing-target"),
    pytest.param(spec(target=""), "target", id="empty-target"),
    pytest.param(spec(key=["client_id"]), "client_id", id="key-not-declared"),
    pytest.param(spec(problem_type="regression", classes=["0", "1"]), "classes", id="classes-on-regression"),
])
def test_an_invalid_spec_fails_naming_the_field(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(SpecError) as exc:
        DatasetSpec.from_dict(raw)
    assert named in str(exc.value)


def test_a_spec_file_error_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(column("plan", type="category")))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert str(path) in str(exc.value) and "columns[plan].type" in str(exc.value)

    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(path)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.json")


def test_the_churn_spec_loads_and_survives_a_round_trip() -> None:
    churn = load_spec(DEFAULT_SPEC_PATH)
    assert churn.target == "churned" and churn.problem_type == "binary"
    assert "customer_id" not in {c.name for c in churn.feature_columns}
    assert "churned" not in {c.name for c in churn.feature_columns}
    assert DatasetSpec.from_dict(churn.to_dict()) == churn
