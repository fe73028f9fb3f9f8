"""`mlops azure deploy`: the approved model onto the online endpoint `mlops azure up` created, blue/green.

The endpoint has two deployment colours. The one taking no traffic is created or updated with the
champion (the version approved last, pipelines/azure/registry.py); only once Azure reports it created
(healthy: begin_create_or_update's poller fails otherwise) does the endpoint's traffic move to it, all at
once. The colour that served before keeps running with no traffic, so going back is a traffic change,
not a new deployment. The deployment itself is pipelines/azure/endpoint.py's, as `up` builds it: the
workload's registered environment, its serving script, data collection on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipelines.azure import registry
from pipelines.azure import workspace as ws
from pipelines.azure.endpoint import endpoint


class RolloutError(ValueError):
    """A rollout that cannot start (nothing approved, no endpoint); says why and what to run."""


@dataclass(frozen=True)
class Plan:
    endpoint: str
    version: str  # the champion's
    model: str  # azureml:<name>:<version>
    colour: str  # the deployment to create or update: the one not taking traffic
    live: str | None  # the deployment taking traffic now, if any
    settings: ws.WorkspaceSettings  # with deployment_name = colour
    deployment: Any  # ManagedOnlineDeployment
    current: Any  # the endpoint as read (ManagedOnlineEndpoint)
    serving_already: bool = False  # the live colour runs this very version: nothing to do

    def traffic(self) -> dict[str, int]:
        # The old colour is named at 0 rather than left out: the new split is explicit whatever Azure
        # does with a deployment missing from the map.
        return {self.colour: 100, **({self.live: 0} if self.live else {})}


def colours(first: str) -> tuple[str, str]:
    """The two deployment names: the workspace's (blue unless told) and the other one."""
    return (first, "green" if first != "green" else "blue")


def live_colour(traffic: dict[str, int] | None) -> str | None:
    """The deployment with the most traffic, None when none has any."""
    taking = {name: int(share) for name, share in (traffic or {}).items() if int(share) > 0}
    return max(taking, key=lambda name: taking[name]) if taking else None


def serves(model_ref: str | None, name: str, version: str) -> bool:
    """Whether a deployment's model is `name` version `version`: as we write it (azureml:name:version), as
    azure-ai-ml's loader reads it back (name:version), or as an ARM id (.../models/name/versions/version)."""
    ref = str(model_ref or "").rstrip("/")
    return (ref.removeprefix("azureml:") == f"{name}:{version}"
            or ref.endswith(f"/models/{name}/versions/{version}"))


def plan(client: Any, s: ws.WorkspaceSettings, code: Path) -> Plan:
    """What a rollout would do, from two reads (the registry, the endpoint); nothing changes."""
    from azure.core.exceptions import ResourceNotFoundError

    name = s.target.model_name
    champion = registry.champion(registry.versions(client, name))
    if champion is None:
        raise RolloutError(f"no version of {name} is approved in workspace {s.workspace}: nothing to roll out "
                           f"(`mlops models list --target azure --model {name}`, then `mlops models approve N "
                           f"--target azure --model {name}`)")
    online = s.endpoint_names()[0]
    try:
        current = client.online_endpoints.get(name=online)
    except ResourceNotFoundError:
        raise RolloutError(f"workspace {s.workspace} has no online endpoint {online}: `mlops azure up` "
                           "creates it") from None
    live = live_colour(current.traffic)
    version = str(champion.version)
    # Rolling the serving version out again would only double the VMs: a re-run changes nothing.
    already = live is not None and serves(client.online_deployments.get(name=live, endpoint_name=online).model,
                                          name, version)
    pair = colours(s.deployment_name)
    colour = pair[1] if live == pair[0] else pair[0]  # blue unless blue serves; any other name: replaced by blue
    target_settings = replace(s, deployment_name=colour)
    serving = ws.reference(ws.environments(s)[0])  # the environment `up` registered for the workload
    _, deployment = endpoint(target_settings.target, version, code=code, environment_ref=serving)
    return Plan(endpoint=online, version=version, model=str(deployment.model), colour=colour, live=live,
                settings=target_settings, deployment=deployment, current=current, serving_already=already)


def roll_out(client: Any, p: Plan, say: Callable[[str], None] = print) -> str:
    """Create or update the idle colour with the champion, wait until Azure has it, then move the traffic."""
    say(f"online_deployments.begin_create_or_update {p.colour} ({p.model}) on {p.endpoint} ...")
    client.online_deployments.begin_create_or_update(p.deployment).result()  # raises if it does not come up
    before = ", ".join(f"{n} {v}%" for n, v in (p.current.traffic or {}).items()) or "none"
    p.current.traffic = p.traffic()
    say(f"online_endpoints.begin_create_or_update {p.endpoint}: traffic {before} -> {p.colour} 100% ...")
    client.online_endpoints.begin_create_or_update(p.current).result()
    kept = (f"; {p.live} keeps running with no traffic: to go back, approve its version again and deploy, "
            f"or set the endpoint's traffic to {p.live}=100" if p.live else "")
    return f"{p.endpoint} serves {p.model} from deployment {p.colour} (all traffic){kept}"
