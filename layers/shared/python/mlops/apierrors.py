"""One way the control APIs (uploads, approvals) answer a deliberate error: JSON with its status.

Each :class:`~mlops.errors.MlopsError` names its HTTP status (``http_status``); anything else is a
fault of the platform and is left to the resolver (500, logged with the request id).
"""

from __future__ import annotations

import json
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


MAX_GRANT_BODY_CHARS = 4 * 1024  # a grant request is a few short fields
MAX_GRANT_BODY_DEPTH = 2  # an object of scalars (a list value is refused by the field's own check)


def json_depth_over(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests objects and arrays deeper than ``limit`` (brackets inside strings
    do not count). Checked before parsing: a deep nesting would exhaust the parser's recursion.

    >>> json_depth_over('{"params": {"a": [1, "[[["]}}', 3), json_depth_over("[[[[]]]]", 3)
    (False, True)
    """
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def verified_caller(event: Any) -> str:
    """The caller AWS authenticated (IAM: ``requestContext.identity``), never a value the client wrote."""
    identity = event.request_context.identity
    caller = identity.user_arn or identity.caller
    if not caller:
        raise InputError("the request carries no IAM identity (the route must use IAM authorization)")
    return str(caller)


def grant_fields(
    text: str | None,
    fields: tuple[str, ...],
    required: tuple[str, ...] | None = None,
    *,
    who: str = "uploader",
    max_chars: int = MAX_GRANT_BODY_CHARS,
) -> dict[str, Any]:
    """A grant request's body (upload, code upload, import) as one flat JSON object of ``fields``,
    or :class:`InputError` (400) naming what is wrong: missing, too long, nested, not JSON, not an
    object, an unknown field (the ``who`` is taken from the credentials, never the body), or a
    ``required`` field (default: all) missing."""
    required = fields if required is None else required
    wanted = f"a JSON object with {', '.join(required)}"
    if not text:
        raise InputError(f"request body is missing: send {wanted}")
    if len(text) > max_chars:
        raise InputError(f"request body is {len(text)} characters; at most {max_chars} are accepted")
    if json_depth_over(text, MAX_GRANT_BODY_DEPTH):  # refused before parsing: no deep nesting reaches json
        raise InputError(f"request body must be one flat JSON object: send {wanted}")
    try:
        body = json.loads(text)
    except ValueError:
        raise InputError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputError(f"request body must be {wanted}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InputError(
            f"body field {unknown[0]!r} is not accepted (fields: {', '.join(fields)}); "
            f"the {who} is taken from your credentials, never from the body"
        )
    missing = [f for f in required if f not in body]
    if missing:
        raise InputError(f"body field {missing[0]!r} is missing")
    return body
