"""The workspace as code (pipelines/azure/workspace.py, assets.py, `mlops azure up`), offline: the dry
run's YAML read back by azure-ai-ml's own loaders, the properties each asset must have (clusters that
scale to zero, a network-isolated workspace, pinned environments), Azure's rule for endpoint names, and
`up` against a fake MLClient that records what it is asked to create, in order. No network."""

from __future__ import annotations

import contextlib
import io
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.azure.endpoint import name_problem
from pipelines.azure.workspace import WorkspaceSettings
from pipelines.cli import main

SETTINGS = ["--subscription-id", "00000000-0000-0000-0000-000000000000", "--resource-group", "rg-mlops",
            "--workspace", "mlops-ws", "--region", "westeurope"]
REQUIRED_ENV = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "AZURE_LOCATION")
LOADERS = {"workspace": "load_workspace", "compute": "load_compute", "environment": "load_environment",
           "data": "load_data", "online-endpoint": "load_online_endpoint",
           "online-deployment": "load_online_deployment", "batch-endpoint": "load_batch_endpoint",
           "model-batch-deployment": "load_model_batch_deployment", "schedule": "load_schedule",
           "pipeline": "load_job"}


def settings(**overrides: Any) -> WorkspaceSettings:
    base: dict[str, Any] = {"subscription_id": SETTINGS[1], "resource_group": "rg", "workspace": "mlops-ws",
                            "region": "westeurope"}
    return WorkspaceSettings(**{**base, **overrides})


def load(path: Path) -> Any:
    import azure.ai.ml as aml
    from azure.ai.ml.entities import _load_functions

    kind = next(k for k in sorted(LOADERS, key=len, reverse=True) if path.name.startswith(k + "-"))
    return (getattr(aml, LOADERS[kind], None) or getattr(_load_functions, LOADERS[kind]))(path)


@pytest.fixture(autouse=True)
def no_azure_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in REQUIRED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    out = tmp_path_factory.mktemp("azure")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(out / "home"))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["azure", "up", "--dry-run", "--out", str(out / "assets"), *SETTINGS]) == 0
    yield out / "assets", printed.getvalue()


def files(folder: Path, prefix: str) -> list[Path]:
    return sorted(folder.glob(f"{prefix}-*.yml"))


def test_the_dry_run_writes_every_asset_and_each_loads_back(dry_run: tuple[Path, str]) -> None:
    folder, printed = dry_run
    listed = [line.strip() for line in printed.splitlines()[1:]]
    kinds = sorted({next(k for k in sorted(LOADERS, key=len, reverse=True) if name.startswith(k + "-"))
                    for name in listed if name.endswith(".yml")})
    assert kinds == sorted(LOADERS), printed
    assert "online-autoscale.json" in listed
    for name in listed:
        assert (folder / name).is_file(), name
        if name.endswith(".yml"):
            assert load(folder / name) is not None  # the SDK's schema accepts it
    assert (folder / "code-tabular" / "inference.py").is_file()  # deployments' code, beside the YAML
    assert yaml.safe_load((folder / "online-deployment-blue.yml").read_text())["code_configuration"]["code"] \
        == "code-tabular"


def test_clusters_scale_to_zero_and_the_gpu_one_has_gpus(dry_run: tuple[Path, str]) -> None:
    clusters = {c.name: c for c in map(load, files(dry_run[0], "compute"))}
    assert set(clusters) == {"cpu-cluster", "gpu-cluster"}
    for c in clusters.values():
        assert c.min_instances == 0, c.name
        assert 0 < c.idle_time_before_scale_down <= 3600, c.name
        assert c.enable_node_public_ip is False, c.name
    assert clusters["gpu-cluster"].size.startswith("Standard_N")


def test_the_workspace_is_network_isolated_with_its_own_resources(dry_run: tuple[Path, str]) -> None:
    (path,) = files(dry_run[0], "workspace")
    ws = load(path)
    assert ws.public_network_access == "Disabled"
    assert ws.managed_network.isolation_mode == "AllowOnlyApprovedOutbound"
    scope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops/providers/"
    for attribute, provider in (("storage_account", "Microsoft.Storage/storageAccounts/"),
                                ("key_vault", "Microsoft.KeyVault/vaults/"),
                                ("container_registry", "Microsoft.ContainerRegistry/registries/"),
                                ("application_insights", "Microsoft.Insights/components/")):
        assert getattr(ws, attribute).startswith(scope + provider), attribute
    storage = ws.storage_account.rsplit("/", 1)[1]
    assert re.fullmatch(r"[a-z0-9]{3,24}", storage), storage  # a storage account's own naming rule


def test_environments_are_registered_and_pinned(dry_run: tuple[Path, str]) -> None:
    envs = [load(p) for p in files(dry_run[0], "environment")]
    assert [e.name for e in envs] == ["mlops-tabular"]
    for env in envs:
        assert env.version and ":" in env.image and not env.image.endswith(":latest"), env.image
        pip = next(d["pip"] for d in env.conda_file["dependencies"] if isinstance(d, dict))
        loose = [r for r in pip if not r.startswith("-") and "==" not in r]
        assert not loose, loose
    deployment = load(dry_run[0] / "online-deployment-blue.yml")
    assert deployment.environment == f"{envs[0].name}:{envs[0].version}"  # the registered one, by version


def test_the_schedule_retrains_the_exported_pipeline(dry_run: tuple[Path, str]) -> None:
    (path,) = files(dry_run[0], "schedule")
    schedule = load(path)
    assert schedule.trigger.expression == "0 3 * * 1"
    job = schedule.create_job
    assert "train" in job.jobs
    assert job.inputs["InputDataUrl"].path.removeprefix("azureml:") == "tabular-raw:1"  # the data asset, by version
    assert job.settings.force_rerun  # the asset's folder is the same whatever landed in it: no stale reuse
    (data,) = files(dry_run[0], "data")
    assert (load(data).name, load(data).version) == ("tabular-raw", "1")


@pytest.mark.parametrize("name", ["abc", "a1-b2", "Churn-Endpoint", "a" * 32])
def test_endpoint_names_azure_takes(name: str) -> None:
    assert name_problem(name, "endpoint_name") is None
    assert settings(endpoint_name=name).endpoint_names()[0] == name


@pytest.mark.parametrize("name", ["ab", "1abc", "abc-", "a_b", "-abc", "a" * 33])
def test_endpoint_names_azure_refuses_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="3-32 characters, starts with a letter") as e:
        settings(endpoint_name=name)
    assert repr(name) in str(e.value)


def test_the_default_endpoint_names_are_valid_and_differ_per_workspace() -> None:
    a, b = settings().endpoint_names(), settings(workspace="other-ws").endpoint_names()
    long = settings(workspace="a-very-long-workspace-name-indeed-0123456789").endpoint_names()
    for name in (*a, *b, *long):
        assert name_problem(name, "endpoint_name") is None, name
    assert len({*a, *b}) == 4
    assert a == settings().endpoint_names()  # stable: the same workspace keeps its endpoint


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--region", "West Europe", "lowercase letters"),
    ("--gpu-size", "Standard_DS3_v2", "not a GPU size"),
    ("--cpu-size", "DS3 v2", "a VM size such as"),
    ("--instance-type", "Standard_DS1_v2", "SmallSKUs"),
    ("--retrain-cron", "0 3 * *", "five fields"),
    ("--subscription-id", "my-subscription", "a GUID"),
])
def test_a_size_region_or_cron_the_sdk_can_tell_is_wrong_fails_at_dry_run(
        flag: str, value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "up", "--dry-run", "--out", str(tmp_path), *SETTINGS, flag, value]) == 2
    assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was written


# -- up, against a fake MLClient -------------------------------------------------------------------

class Poller:
    def result(self) -> None:
        return None


class Operations:
    def __init__(self, name: str, calls: list[tuple[str, str, str]], client: FakeClient) -> None:
        self.name, self.calls, self.client = name, calls, client

    def __getattr__(self, method: str) -> Any:
        def call(entity: Any = None, **kwargs: Any) -> Any:
            if method == "list_sizes":
                return [type("VmSize", (), {"name": n})() for n in self.client.offered]
            if method == "list":
                return iter(self.client.registered)
            self.calls.append((f"{self.name}.{method}", type(entity).__name__, str(entity.name)))
            self.client.sent.append(entity)
            return Poller() if method.startswith("begin_") else entity
        return call


class FakeClient:
    """MLClient's operation groups, recording each create call: (operations.method, entity type, name)."""

    built: list[tuple[Any, ...]] = []  # the arguments of every client made
    last: FakeClient

    def __init__(self, *args: Any) -> None:
        FakeClient.built.append(args)
        self.calls: list[tuple[str, str, str]] = []
        self.sent: list[Any] = []  # the entities sent, in order
        self.offered = ["Standard_DS3_v2", "Standard_NC4as_T4_v3"]
        # the model's versions as models.list gives them: version 1 approved (registry.py's tags)
        self.registered: list[Any] = [_version("1", "Approved")]
        FakeClient.last = self

    def __getattr__(self, name: str) -> Operations:
        return Operations(name, self.calls, self)


@pytest.fixture
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    import azure.ai.ml
    import azure.identity

    FakeClient.built = []
    monkeypatch.setattr(azure.ai.ml, "MLClient", FakeClient)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: "credential")
    return FakeClient


@pytest.mark.parametrize("given", [[], SETTINGS[:4], SETTINGS[2:]])
def test_missing_settings_are_named_before_any_call(
        given: list[str], fake_azure: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "up", *given]) == 2
    err = capsys.readouterr().err
    for flag, env in (("--subscription-id", "AZURE_SUBSCRIPTION_ID"), ("--resource-group", "AZURE_RESOURCE_GROUP"),
                      ("--workspace", "AZUREML_WORKSPACE_NAME"), ("--region", "AZURE_LOCATION")):
        assert (f"{flag} (env {env})" in err) == (flag not in given), err
    assert fake_azure.built == []  # no MLClient was made


def test_up_creates_every_asset_in_dependency_order(
        fake_azure: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "up", *SETTINGS]) == 0
    assert fake_azure.built == [("credential", "00000000-0000-0000-0000-000000000000", "rg-mlops", "mlops-ws")]
    calls = [(op, kind) for op, kind, _ in fake_azure.last.calls]
    assert calls == [
        ("workspaces.begin_create", "Workspace"),
        ("compute.begin_create_or_update", "AmlCompute"),
        ("compute.begin_create_or_update", "AmlCompute"),
        ("environments.create_or_update", "Environment"),
        ("data.create_or_update", "Data"),
        ("online_endpoints.begin_create_or_update", "ManagedOnlineEndpoint"),  # no deployment, no traffic
        ("batch_endpoints.begin_create_or_update", "BatchEndpoint"),
        ("batch_deployments.begin_create_or_update", "ModelBatchDeployment"),
        ("batch_endpoints.begin_create_or_update", "BatchEndpoint"),  # its default deployment
        ("schedules.begin_create_or_update", "JobSchedule"),
    ]
    out = capsys.readouterr().out
    assert "not applied: online-autoscale.json" in out
    # the registry decides what serves: the online deployment is `mlops azure deploy`'s, and batch
    # scoring uses the approved version, never @latest (re-running `up` must not undo a rollout)
    assert "left to `mlops azure deploy`" in out
    (batch,) = [e for e in fake_azure.last.sent if type(e).__name__ == "ModelBatchDeployment"]
    assert batch.model == "azureml:churn-models:1"


def test_up_deploys_batch_scoring_only_once_a_version_is_approved(fake_azure: type[FakeClient],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeClient, "__init__", _pending_only)
    assert main(["azure", "up", *SETTINGS]) == 0
    kinds = [kind for _, kind, _ in fake_azure.last.calls]
    assert "ManagedOnlineDeployment" not in kinds and "ModelBatchDeployment" not in kinds
    assert kinds[-1] == "JobSchedule"  # the schedule that will register one


def test_up_refuses_a_size_the_region_does_not_offer_before_creating_anything(
        fake_azure: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["azure", "up", *SETTINGS, "--gpu-size", "Standard_ND96amsr_A100_v4"]) == 1
    assert "gpu_size 'Standard_ND96amsr_A100_v4' is not offered in westeurope" in capsys.readouterr().err
    assert fake_azure.last.calls == []


_original_init = FakeClient.__init__


def _pending_only(self: FakeClient, *args: Any) -> None:
    _original_init(self, *args)
    self.registered = [_version("1", "PendingManualApproval")]


def _version(number: str, approval: str) -> Any:
    return types.SimpleNamespace(version=number, tags={"approval_status": approval})
