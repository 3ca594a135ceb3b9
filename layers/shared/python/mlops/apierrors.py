"""One way the control APIs (uploads, approvals) answer a deliberate error: JSON with its status.

Each :class:`~mlops.errors.MlopsError` names its HTTP status (``http_status``); anything else is a
fault of the platform and is left to the resolver (500, logged with the request id).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from mlops.errors import InputError, MlopsError, NotFoundError


def error_response(exc: MlopsError) -> Response:
    """``{"error": message}`` with the error's HTTP status."""
    return Response(status_code=exc.http_status, content_type=content_types.APPLICATION_JSON, body={"error": str(exc)})


def answer_errors_as_json(app: Any) -> None:
    """Register :func:`error_response` on a Powertools resolver for every deliberate error, and for a
    path no route matches (the same ``{"error": ...}`` shape as every other refusal, status 404)."""
    app.exception_handler(MlopsError)(error_response)

    def no_route(_exc: Exception) -> Response:
        event = app.current_event
        path = event.path if len(event.path) <= 200 else event.path[:200] + "..."  # not echoed whole
        return error_response(NotFoundError(f"no route {event.http_method} {path}"))

    app.not_found(no_route)


def body_text(event: Any) -> str | None:
    """The request body as text (None when there is none); a body that is not UTF-8 is the
    caller's error (400), never a decoding failure of the handler (502)."""
    if not event.body:
        return None
    try:
        return str(event.decoded_body)
    except (UnicodeDecodeError, ValueError):  # ValueError: base64 that is not base64 (binascii.Error)
        raise InputError("request body is not UTF-8 text: send a JSON object") from None
