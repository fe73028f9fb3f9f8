"""A fake MLClient for the Azure registry and rollout: azure-ai-ml's own entities in, every call recorded
in order, no network. Not a test module: imported as `tests.pipelines.azure.fake_client`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

SETTINGS = ["--subscription-id", "00000000-0000-0000-0000-000000000000", "--resource-group", "rg-mlops",
            "--workspace", "mlops-ws", "--region", "westeurope"]
ENV = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "AZURE_LOCATION",
       "AZUREML_ENDPOINT_NAME", "AZUREML_INSTANCE_TYPE")
MODEL = "churn-models"  # the tabular workload's, as the Azure pipeline registers it


def model(version: str, **tags: str) -> Any:
    from azure.ai.ml.entities import Model

    return Model(name=MODEL, version=version, path=f"azureml://models/{MODEL}/versions/{version}",
                 tags=dict(tags) or None)


class Poller:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    def result(self) -> None:
        if self.failure:
            raise self.failure


class FakeClient:
    """The operation groups the registry and the rollout use. `calls`: (operation, what), in order."""

    last: FakeClient
    models_: list[Any] = []
    endpoint: Any = None  # what online_endpoints.get returns (None: no endpoint)
    deployed: dict[str, str] = {}  # colour -> model reference, what online_deployments.get returns
    fail_deployment = False

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.calls: list[tuple[str, Any]] = []
        FakeClient.last = self
        self.models = _Models(self)
        self.online_endpoints = _Endpoints(self)
        self.online_deployments = _Deployments(self)


class _Models:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def list(self, name: str) -> list[Any]:
        self.client.calls.append(("models.list", name))
        return [m for m in FakeClient.models_ if m.name == name]

    def create_or_update(self, entity: Any) -> Any:
        self.client.calls.append(("models.create_or_update", (entity.name, entity.version, dict(entity.tags))))
        return entity


class _Endpoints:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def get(self, name: str) -> Any:
        self.client.calls.append(("online_endpoints.get", name))
        if FakeClient.endpoint is None or FakeClient.endpoint.name != name:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return FakeClient.endpoint

    def begin_create_or_update(self, entity: Any) -> Poller:
        self.client.calls.append(("online_endpoints.begin_create_or_update", (entity.name, dict(entity.traffic))))
        return Poller()


class _Deployments:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def get(self, name: str, endpoint_name: str) -> Any:
        self.client.calls.append(("online_deployments.get", name))
        return type("Deployment", (), {"name": name, "model": FakeClient.deployed.get(name)})()

    def begin_create_or_update(self, entity: Any) -> Poller:
        self.client.calls.append(("online_deployments.begin_create_or_update", (entity.name, entity.model)))
        failure = HttpResponseError("the deployment failed to start") if FakeClient.fail_deployment else None
        return Poller(failure)


def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeClient]:
    """FakeClient in place of MLClient (and no credential), a fresh MLOPS_HOME, no AZURE_* variables."""
    import azure.ai.ml
    import azure.identity

    for variable in ENV:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    FakeClient.models_, FakeClient.endpoint, FakeClient.deployed = [], None, {}
    FakeClient.fail_deployment = False
    FakeClient.last = None  # type: ignore[assignment]
    monkeypatch.setattr(azure.ai.ml, "MLClient", FakeClient)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: "credential")
    return FakeClient
