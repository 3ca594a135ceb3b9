"""An approval decision arriving through the approval API, as the calling IAM identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.deployment.approval import decide
from mlops.deployment.plan import spec_of
from mlops.deployment.services import DeploymentServices
from mlops.errors import InputError


def approve_from_api(
    model: str,
    version: str | int,
    decision: str,
    *,
    caller: str | None,
    body: Mapping[str, Any] | None,
    request_id: str | None = None,
    services: DeploymentServices | None = None,
) -> dict[str, Any]:
    """An approval API request: the approver is ``caller`` (from the request's credentials).

    ``body`` may hold ``comment`` (approve) or ``reason`` (reject); an ``actor`` or ``approver``
    field in it is refused rather than silently ignored, so nobody believes it was used.
    """
    if not caller:
        raise InputError("the request carries no IAM identity (the route must use IAM authorization)")
    body = dict(body or {})
    for forbidden in ("actor", "approver", "by", "user"):
        if forbidden in body:
            raise InputError(f"body field {forbidden!r}: the approver is taken from your credentials, not the body")
    try:
        number = int(version)
    except ValueError:
        raise InputError(f"version {version!r}: must be a whole number") from None
    services = services or DeploymentServices.from_env()
    text = body.get("reason") if decision == "reject" else body.get("comment")
    if text is not None and not isinstance(text, str):
        raise InputError("comment/reason: must be text")
    return decide(
        services.registry,
        model,
        number,
        "approve" if decision == "approve" else "reject",
        actor=caller,
        callbacks=services.sfn,
        four_eyes=_four_eyes(services, model, number),
        comment=text,
        request_id=request_id,
    )


def _four_eyes(services: DeploymentServices, model: str, version: int) -> bool:
    """The platform's rule (config ``approval_four_eyes``) is a floor; a spec can only add it."""
    if services.four_eyes:
        return True
    return bool(spec_of(services.registry, services.registry.get_version(model, version)).approval.four_eyes)
