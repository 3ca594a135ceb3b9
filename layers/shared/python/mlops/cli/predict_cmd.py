"""``mlops predict M --data JSON|@FILE``: predictions from a model's champion over the platform API.

The request is signed with SigV4 (service ``execute-api``) using your own AWS credentials.
``--data`` takes a record (``{"tenure_months": 3, ...}``), a list of records, or a full request
body (``{"record": ...}`` / ``{"records": [...]}``); ``@FILE`` reads it from a JSON file, or from a
JSON Lines file (``.jsonl``, one record per line); ``@-`` reads standard input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app, signed_request
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
    result = signed_request(
        app,
        "POST",
        f"models/{quote(model, safe='')}/predict",
        body,
        errors=_ERRORS,
        why_credentials="the inference API takes SigV4-signed requests",
    )
    emit(app, result, _text(result))
