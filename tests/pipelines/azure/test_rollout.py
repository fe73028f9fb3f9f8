"""`mlops azure deploy` against a fake MLClient: the approved version (the one approved last) rolled out to
the idle colour of the endpoint `mlops azure up` created, the deployment created before the traffic
moves, the colours alternating, and the refusals. No network."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.azure.workspace import WorkspaceSettings
from pipelines.cli import main
from tests.pipelines.azure.fake_client import MODEL, SETTINGS, FakeClient, install, model

ENDPOINT = WorkspaceSettings(subscription_id=SETTINGS[1], resource_group="rg-mlops", workspace="mlops-ws",
                             region="westeurope").endpoint_names()[0]  # the name `up` gave it


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeClient]:
    client = install(monkeypatch, tmp_path)
    client.models_ = [model("1", approval_status="Approved", approved_at="2026-12-01T00:00:00+00:00"),
                      model("2", approval_status="Approved", approved_at="2026-12-03T00:00:00+00:00"),
                      model("3", approval_status="Approved", approved_at="2026-12-02T00:00:00+00:00"),
                      model("4"), model("5", approval_status="Rejected")]
    serving("blue", "1")
    return client


def serving(colour: str | None, version: str = "1") -> None:
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    FakeClient.endpoint = ManagedOnlineEndpoint(name=ENDPOINT, traffic={colour: 100} if colour else {})
    if colour:
        FakeClient.deployed = {colour: f"azureml:{MODEL}:{version}"}


def changes(client: FakeClient) -> list[tuple[str, object]]:
    return [(op, what) for op, what in client.calls if op.endswith("create_or_update")]


def test_deploy_creates_the_idle_colour_with_the_champion_then_moves_the_traffic(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "deploy", *SETTINGS]) == 0
    # Version 2 was approved last; 3 is newer but approved before it; 4 pending, 5 rejected.
    assert changes(fake.last) == [
        ("online_deployments.begin_create_or_update", ("green", f"azureml:{MODEL}:2")),
        ("online_endpoints.begin_create_or_update", (ENDPOINT, {"green": 100, "blue": 0})),
    ]
    assert f"{ENDPOINT} serves azureml:{MODEL}:2 from deployment green" in capsys.readouterr().out


def test_the_colours_alternate(fake: type[FakeClient]) -> None:
    serving("green", "1")
    assert main(["azure", "deploy", *SETTINGS]) == 0
    assert changes(fake.last) == [
        ("online_deployments.begin_create_or_update", ("blue", f"azureml:{MODEL}:2")),
        ("online_endpoints.begin_create_or_update", (ENDPOINT, {"blue": 100, "green": 0})),
    ]


def test_a_new_endpoint_gets_blue_first(fake: type[FakeClient]) -> None:
    serving(None)  # `up` ran before any model was registered: the endpoint has no deployment
    assert main(["azure", "deploy", *SETTINGS]) == 0
    assert changes(fake.last) == [
        ("online_deployments.begin_create_or_update", ("blue", f"azureml:{MODEL}:2")),
        ("online_endpoints.begin_create_or_update", (ENDPOINT, {"blue": 100})),
    ]


def test_traffic_stays_when_the_new_deployment_fails(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.fail_deployment = True
    assert main(["azure", "deploy", *SETTINGS]) == 1
    assert [op for op, _ in changes(fake.last)] == ["online_deployments.begin_create_or_update"]
    assert "blue still takes it" in capsys.readouterr().err


def test_the_serving_version_is_not_rolled_out_again(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    serving("blue", "2")
    assert main(["azure", "deploy", *SETTINGS]) == 0
    assert changes(fake.last) == []
    assert "already serves" in capsys.readouterr().out


@pytest.mark.parametrize("statuses", [[], ["PendingManualApproval", "Rejected"]])
def test_refuses_when_no_version_is_approved(
        statuses: list[str], fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.models_ = [model(str(n), approval_status=s) for n, s in enumerate(statuses, 1)]
    assert main(["azure", "deploy", *SETTINGS]) == 2
    assert f"no version of {MODEL} is approved in workspace mlops-ws: nothing to roll out" in capsys.readouterr().err
    assert changes(fake.last) == []


def test_refuses_when_the_endpoint_does_not_exist(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.endpoint = None
    assert main(["azure", "deploy", *SETTINGS]) == 2
    assert f"has no online endpoint {ENDPOINT}: `mlops azure up` creates it" in capsys.readouterr().err
    assert changes(fake.last) == []


def test_missing_settings_are_named_before_any_client(
        fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "deploy", *SETTINGS[:6]]) == 2
    assert "--region (env AZURE_LOCATION)" in capsys.readouterr().err
    assert fake.last is None


def test_dry_run_writes_the_deployment_and_changes_nothing(
        fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from azure.ai.ml import load_online_deployment

    out = tmp_path / "deploy"
    assert main(["azure", "deploy", "--dry-run", "--out", str(out), *SETTINGS]) == 0
    assert changes(fake.last) == []
    written = out / "online-deployment-green.yml"
    data = yaml.safe_load(written.read_text())
    assert (data["name"], data["endpoint_name"], data["model"]) == ("green", ENDPOINT, f"azureml:{MODEL}:2")
    loaded = load_online_deployment(written)  # azure-ai-ml's own loader reads it back (without "azureml:")
    assert loaded.model == f"{MODEL}:2" and (out / data["code_configuration"]["code"]).is_dir()
    assert "would create or update deployment green" in capsys.readouterr().out
