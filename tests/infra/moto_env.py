"""moto's AWS for a test: fake credentials in `region`, and no profile or session token of the
machine's own that could reach a real account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def mocked_aws(monkeypatch: pytest.MonkeyPatch, region: str) -> Iterator[None]:
    for k, v in {"AWS_DEFAULT_REGION": region, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    from moto import mock_aws

    with mock_aws():
        yield
