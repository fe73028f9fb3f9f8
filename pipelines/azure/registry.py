"""Approval in Azure ML's model registry: a tag on each model version, as the local registry keeps it.

Azure ML's registry has no approval status (SageMaker's ModelApprovalStatus has no counterpart there).
A version carries it in its tags, with the names and values the local MLflow registry uses
(pipelines/local/registry.py): `approval_status` = PendingManualApproval | Approved | Rejected,
`approved_at` (UTC, ISO 8601) and `approval_note`. Tags, because they are the part of a model version
azure-ai-ml documents as mutable ("Tags can be added, removed, and updated"; the files never change),
`models.list` returns them, and the studio shows them. Not the version's `stage`: azure-ai-ml 1.35 types
it as a free string with no values of its own, and drops it on the wire for a model with deployment
templates (Model._to_rest_object).

The pipeline's register node registers its `model_version` output (a custom_model) without tags, so a
version without the tag is PendingManualApproval, as the registration.json among its files says.

The champion, what `mlops azure deploy` rolls out, is the version approved last, as locally: approving
an older version again is how to roll back. Approval itself deploys nothing on Azure (on SageMaker the
approval event does): `mlops azure deploy` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
STATUS_TAG, APPROVED_AT_TAG, NOTE_TAG = "approval_status", "approved_at", "approval_note"


class ApprovalError(ValueError):
    """An approval request that cannot be done (no such version, a rejected one); says why."""


def status(model: Any) -> str:
    return str((model.tags or {}).get(STATUS_TAG, PENDING))


def _number(model: Any) -> int:
    version = str(model.version)
    return int(version) if version.isdigit() else -1  # the pipeline's versions are 1, 2, ...; a named one sorts first


def versions(client: Any, name: str) -> list[Any]:
    """Every version of the model `name` (azure-ai-ml Model entities), oldest first; [] if none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = list(client.models.list(name=name))
    except ResourceNotFoundError:  # no such model: nothing registered yet
        return []
    return sorted(found, key=lambda m: (_number(m), str(m.version)))


def champion(models: Sequence[Any]) -> Any | None:
    """The version approved last (then the highest number), or None."""
    approved = [m for m in models if status(m) == APPROVED]
    return max(approved, key=lambda m: (str((m.tags or {}).get(APPROVED_AT_TAG, "")), _number(m)), default=None)


def set_status(client: Any, name: str, version: str, new: str, note: str = "") -> str:
    """Tag `version` of `name` Approved or Rejected (models.create_or_update of the version as read: Azure
    updates its tags in place); returns what changed, in words."""
    models = versions(client, name)
    model = next((m for m in models if str(m.version) == version), None)
    if model is None:
        have = ", ".join(str(m.version) for m in models)
        raise ApprovalError(f"{name} has no version {version} "
                            f"({'its versions: ' + have if have else 'it has no versions'}; "
                            "see `mlops models list --target azure`)")
    if new == APPROVED and status(model) == REJECTED:
        # Unlike locally, nothing stops the Azure pipeline registering an identical model again (it is
        # given no RegisteredModelDigests): the message does not promise it.
        raise ApprovalError(f"{name} version {version} was rejected: a rejected version cannot be approved "
                            "(train and register another)")
    before = champion(models)
    tags = {**(model.tags or {}), STATUS_TAG: new}
    if new == APPROVED:
        tags[APPROVED_AT_TAG] = datetime.now(UTC).isoformat(timespec="seconds")
    if note:
        tags[NOTE_TAG] = note
    model.tags = tags
    client.models.create_or_update(model)
    deploy = "`mlops azure deploy` rolls it out (the endpoint serves what it served until then)"
    if new == APPROVED:
        was = "" if before is None or before is model else f" (was version {before.version})"
        return f"approved {name} version {version}: it is the champion now{was}; {deploy}"
    message = f"rejected {name} version {version}"
    if before is model:  # the champion passes to the version approved before it, as locally
        after = champion(models)
        message += (f"; version {after.version} (approved before it) is the champion now; {deploy}" if after else
                    "; no approved version is left: `mlops azure deploy` refuses until one is approved, and the "
                    "endpoint keeps serving what it serves")
    return message
