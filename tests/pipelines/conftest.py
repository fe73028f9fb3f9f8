"""Fixtures shared by the targets' tests."""

from __future__ import annotations

import pytest

from tests.pipelines.package_index import DEFAULT_INDEX, pip_config, probe


@pytest.fixture(scope="session")
def registry() -> str:
    """The index pip will ask (skips the session's registry tests when it does not answer)."""
    config = pip_config()
    index_url = config.get("index-url") or DEFAULT_INDEX
    why = probe(index_url, config.get("cert") or None)
    if why is not None:
        pytest.skip(f"package index not reachable ({index_url}: {why}); the dependency checks ask the "
                    "registry which wheels exist for each target's Python, and skip offline")
    return index_url
