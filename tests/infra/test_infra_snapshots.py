"""A snapshot of every synthesized template, so a pull request shows what changes in the infrastructure.

Asset hashes (which change with any byte of training_code/) are normalized away; everything else,
including the embedded pipeline definition, is compared as is. After an intended change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/infra/test_infra_snapshots.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalized(template: dict[str, Any]) -> str:
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    return json.dumps(_resources_sorted(json.loads(text)), indent=1, sort_keys=True) + "\n"


def _resources_sorted(value: Any) -> Any:
    """IAM statements list their resources sorted as text, so an asset hash moves them: sort them
    again once the hashes are gone (their order means nothing)."""
    if isinstance(value, dict):
        out = {k: _resources_sorted(v) for k, v in value.items()}
        if isinstance(out.get("Resource"), list) and "Effect" in out:
            out["Resource"] = sorted(out["Resource"], key=lambda r: json.dumps(r, sort_keys=True))
        return out
    if isinstance(value, list):
        return [_resources_sorted(v) for v in value]
    return value


def test_normalization_removes_asset_hashes_and_the_order_they_imposed_only() -> None:
    h1, h2 = "ab" * 32, "ff" * 32
    text = normalized({"S3Key": f"{h1}.zip", "Name": "mlops-dev-endpoint", "Other": "ab" * 31, "Steps": ["b", "a"]})
    assert "<asset-hash>.zip" in text and "mlops-dev-endpoint" in text and "ab" * 31 in text
    assert json.loads(text)["Steps"] == ["b", "a"]
    one = {"Effect": "Allow", "Resource": [f"arn:aws:s3:::b/{h1}.py", f"arn:aws:s3:::b/{h2}.json"]}
    two = {"Effect": "Allow", "Resource": [f"arn:aws:s3:::b/{h2}.py", f"arn:aws:s3:::b/{h1}.json"]}
    assert normalized(one) == normalized({**two, "Resource": list(reversed(two["Resource"]))})


@pytest.mark.parametrize("stack", [f"mlops-{s}-{c}" for s in ("dev", "prod")
                                   for c in ("network", "data-lake", "ml-pipeline", "serving", "ci-access")])
def test_template_matches_its_snapshot(synth: Any, stack: str) -> None:
    path = SNAPSHOTS / f"{stack}.template.json"
    current = normalized(synth.templates[stack])
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(current)
        return
    assert path.is_file(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 and review the diff"
    expected = path.read_text()
    if current != expected:
        diff = [f"- {a}\n+ {b}" for a, b in zip(expected.splitlines(), current.splitlines(), strict=False)
                if a != b][:10]
        pytest.fail(f"{stack} changed (UPDATE_SNAPSHOTS=1 to accept after review):\n" + "\n".join(diff))
