"""`mlops models list|approve|reject --target azure` against a fake MLClient: the approval status as the
version's `approval_status` tag (pipelines/azure/registry.py), the same refusals as locally. No network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from tests.pipelines.azure.fake_client import MODEL, SETTINGS, FakeClient, install, model

WS = SETTINGS[:6]  # subscription, resource group, workspace: the registry needs no region


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeClient]:
    return install(monkeypatch, tmp_path)


def writes(client: FakeClient) -> list[Any]:
    """The versions written back: (name, version, tags)."""
    return [what for op, what in client.calls if op == "models.create_or_update"]


def test_list_shows_each_version_untagged_as_pending_and_the_champion(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model("1"), model("2", approval_status="Approved", approved_at="2026-12-01T00:00:00+00:00"),
                    model("3", approval_status="Rejected", approval_note="worse on March")]
    assert main(["models", "list", "--target", "azure", *WS]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert "PendingManualApproval" in rows["1"]  # what the register node leaves: no tag
    assert "Approved" in rows["2"] and "champion" in rows["2"]
    assert "Rejected" in rows["3"] and "worse on March" in rows["3"]
    assert fake.last.args == ("credential", SETTINGS[1], "rg-mlops", "mlops-ws")
    assert writes(fake.last) == []


def test_approve_tags_the_version_approved_with_when_and_why(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model("1"), model("2")]
    assert main(["models", "approve", "2", "--note", "beats v1", "--target", "azure", *WS]) == 0
    [(name, version, tags)] = writes(fake.last)
    assert (name, version) == (MODEL, "2")
    assert tags["approval_status"] == "Approved" and tags["approval_note"] == "beats v1" and tags["approved_at"]
    assert "`mlops azure deploy` rolls it out" in capsys.readouterr().out


def test_reject_tags_the_version_rejected_and_names_the_next_champion(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model("1", approval_status="Approved", approved_at="2026-12-01T00:00:00+00:00"),
                    model("2", approval_status="Approved", approved_at="2026-12-02T00:00:00+00:00")]
    assert main(["models", "reject", "2", "--target", "azure", *WS]) == 0
    [(_, version, tags)] = writes(fake.last)
    assert (version, tags["approval_status"]) == ("2", "Rejected")
    assert "version 1 (approved before it) is the champion now" in capsys.readouterr().out


@pytest.mark.parametrize(("versions", "message"), [
    ([], "churn-models has no version 4 (it has no versions"),
    (["1", "2"], "churn-models has no version 4 (its versions: 1, 2"),
])
def test_approving_a_missing_version_fails_naming_the_versions(
        versions: list[str], message: str, fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model(v) for v in versions]
    assert main(["models", "approve", "4", "--target", "azure", *WS]) == 2
    assert message in capsys.readouterr().err
    assert writes(fake.last) == []


def test_approving_a_rejected_version_fails(fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model("1", approval_status="Rejected")]
    assert main(["models", "approve", "1", "--target", "azure", *WS]) == 2
    assert "version 1 was rejected: a rejected version cannot be approved" in capsys.readouterr().err
    assert writes(fake.last) == []


def test_missing_workspace_settings_are_named_before_any_client(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--target", "azure", *WS[:2]]) == 2
    err = capsys.readouterr().err
    assert "--resource-group (env AZURE_RESOURCE_GROUP)" in err and "--workspace (env AZUREML_WORKSPACE_NAME)" in err
    assert "--subscription-id" not in err
    assert fake.last is None  # no MLClient was made


def test_the_workspace_comes_from_the_same_variables_as_azure_up(
        fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in (("AZURE_SUBSCRIPTION_ID", SETTINGS[1]), ("AZURE_RESOURCE_GROUP", "rg-env"),
                            ("AZUREML_WORKSPACE_NAME", "ws-env")):
        monkeypatch.setenv(variable, value)
    assert main(["models", "list", "--target", "azure"]) == 0
    assert fake.last.args == ("credential", SETTINGS[1], "rg-env", "ws-env")
