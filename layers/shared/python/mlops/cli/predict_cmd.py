"""``mlops predict M --data JSON|@FILE``: predictions from a model's champion over the platform API.

The request is signed with SigV4 (service ``execute-api``) using your own AWS credentials.
``--data`` takes a record (``{"tenure_months": 3, ...}``), a list of records, or a full request
body (``{"record": ...}`` / ``{"records": [...]}``); ``@FILE`` reads it from a JSON file, or from a
JSON Lines file (``.jsonl``, one record per line); ``@-`` reads standard input.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.errors import ConflictError, InputError, MlopsError, NotFoundError

_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    404: NotFoundError,
    409: ConflictError,
    413: InputError,
    415: InputError,
}


def read_data(data: str) -> Any:
    """The JSON ``--data`` names: inline, ``@FILE`` (JSON or ``.jsonl``), or ``@-`` (stdin)."""
    source = "--data"
    if data.startswith("@"):
        name = data[1:]
        source = name or "-"
        try:
            text = sys.stdin.read() if name in ("", "-") else Path(name).read_text()
        except OSError as exc:
            raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        if name.endswith(".jsonl"):
            records = []
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError as exc:
                        raise InputError(f"{name}, line {number}: not valid JSON ({exc})") from None
            return records
    else:
        text = data
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from None


def request_body(document: Any) -> dict[str, Any]:
    """A request body from a record, a list of records, or a body that is already shaped."""
    if isinstance(document, list):
        return {"records": document}
    if isinstance(document, dict):
        if set(document) in ({"record"}, {"records"}):
            return document
        return {"record": document}
    raise InputError("--data must be a JSON object (one record), a list of records, or a request body")


def _region(app: AppContext, url: str) -> str:
    host = urlsplit(url).hostname or ""
    if ".execute-api." in host:
        return host.split(".execute-api.", 1)[1].split(".", 1)[0]
    return app.session().region_name or "us-east-1"


def signed_request(
    app: AppContext, method: str, path: str, body: bytes | None = None, *, timeout: float = 60
) -> dict[str, Any]:
    """Call the platform API at ``path`` with the caller's credentials (SigV4, ``execute-api``).

    Raises
    ------
    InputError
        The API refused the request as invalid (400, 413, 415): the message names record and field.
    NotFoundError, ConflictError, MlopsError
        Unknown model (404), no champion (409), anything else.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    base = app.platform().api_url
    if not base:
        raise NotFoundError(f"environment {app.environment!r} has no API deployed (SSM api-url is missing)")
    url = base.rstrip("/") + "/" + path.lstrip("/")
    credentials = app.session().get_credentials()
    if credentials is None:
        raise InputError("no AWS credentials: the inference API takes SigV4-signed requests")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", _region(app, url)).add_auth(request)
    outgoing = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as response:  # noqa: S310 - the platform's API URL
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            answer = json.loads(text)
            message = answer.get("message") or answer.get("error") or text
            details = answer.get("details") or []
        except (ValueError, AttributeError):
            message, details = text, []
        lines = [f"{message} (HTTP {exc.code})"]
        lines += [f"  record {d.get('record')}, field {d.get('field')}: {d.get('message')}" for d in details[1:10]]
        raise _ERRORS.get(exc.code, MlopsError)("\n".join(lines)) from None
    except urllib.error.URLError as exc:
        raise MlopsError(f"cannot reach the platform API at {base}: {exc.reason}") from None


def _text(result: dict[str, Any]) -> str:
    lines = [f"model {result['model']} version {result['version']} (request {result['request_id']})"]
    probabilities = result.get("probabilities")
    classes = result.get("classes")
    for index, prediction in enumerate(result["predictions"]):
        line = f"  [{index}] {prediction}"
        if probabilities and classes:
            line += "  " + ", ".join(f"P({c})={p:.3f}" for c, p in zip(classes, probabilities[index], strict=False))
        lines.append(line)
    return "\n".join(lines)


@click.command("predict")
@click.argument("model")
@click.option("--data", "data", required=True, help="A record, a list of records or a request body: JSON, @FILE or @-.")
@json_option
@pass_app
def command(app: AppContext, model: str, data: str) -> None:
    """Predict with MODEL's champion (or its canary) over the platform's HTTPS API.

    Prints each prediction (with class probabilities for classifiers), the version that answered
    and the request id. Invalid records exit 2 with the record index and field named.
    """
    body = json.dumps(request_body(read_data(data))).encode()
    result = signed_request(app, "POST", f"models/{quote(model, safe='')}/predict", body)
    emit(app, result, _text(result))
