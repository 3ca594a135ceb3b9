"""``mlops approve M V [--comment]``: sign off a waiting candidate through the approval API.

The request is signed with SigV4 (service ``execute-api``) using your own AWS credentials: the API
records the identity those credentials belong to as the approver. ``mlops reject`` shares this.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError, NotFoundError
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request

_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    403: CheckFailedError,
    404: NotFoundError,
    409: ConflictError,
}


def signed_post(app: AppContext, path: str, body: dict[str, Any], *, timeout: float = 60) -> dict[str, Any]:
    """POST ``body`` to the platform API at ``path``, signed with the caller's credentials.

    Raises the :mod:`mlops.errors` class matching the answer (403 for the four-eyes rule or a
    missing permission is a refused check, exit 1; 404/409 exit 3; 400 exit 2).
    """
    return signed_request(
        app,
        "POST",
        path,
        json.dumps(body).encode(),
        errors=_ERRORS,
        why_credentials="the approval API identifies approvers by their credentials",
        timeout=timeout,
    )


def decision_path(model: str, version: int, decision: str) -> str:
    return f"models/{quote(model, safe='')}/versions/{version}/{decision}"


def print_decision(app: AppContext, result: dict[str, Any]) -> None:
    text = (
        f"model {result['model']} version {result['version']}: {result['decision']} by {result['by']} at {result['at']}"
    )
    if result.get("resumed"):
        text += "; the deployment pipeline continues"
    if result.get("resume_error"):
        text += f"\nwarning: {result['resume_error']}"
    emit(app, result, text)


@click.command("approve")
@click.argument("model")
@click.argument("version", type=click.IntRange(1))
@click.option("--comment", default=None, help="Why you approve (recorded with your identity).")
@json_option
@pass_app
def command(app: AppContext, model: str, version: int, comment: str | None) -> None:
    """Approve MODEL VERSION, which waits in its deployment pipeline; the pipeline then deploys it.

    You are recorded as the approver from your AWS credentials. With the four-eyes rule on, whoever
    uploaded the training data may not approve (exit 1).
    """
    result = signed_post(app, decision_path(model, version, "approve"), {"comment": comment} if comment else {})
    print_decision(app, result)
