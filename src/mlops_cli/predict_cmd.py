"""``mlops predict M --data JSON|@FILE``: predictions from a model's champion over the platform API.

The request is signed with SigV4 (service ``execute-api``) using your own AWS credentials.
``--data`` takes a record (``{"tenure_months": 3, ...}``), a list of records, or a full request
body (``{"record": ...}`` / ``{"records": [...]}``); ``@FILE`` reads it from a JSON file, ``@-``
from standard input. One request answers it, printed as one answer.

Files of records: ``@FILE.csv`` (a header row; columns matched to the serving spec's features by
name, each value sent as its feature's JSON type; other columns ignored) and ``@FILE.jsonl`` (one
record per line), or more records than one request takes, are split into batches within the API's
limits (``--batch-size`` records, default 1,000: the deployment's ``max_batch_size``; and
:data:`mlops.serving.settings.DEFAULT_MAX_BODY_BYTES` of body), sent in order (``--concurrency`` at a time),
and answered with one prediction per input record, in input order, with its row, line and request
id: JSON Lines or CSV, on stdout or ``--out FILE``. A batch the API still finds too large (413: a
deployment with lower limits) is split in two and sent again. The first refused batch stops the
run: the predictions before it are written, and the error names its rows, their lines and the API's
message (exit 2 for a refused record, 3 for a cloud or resource error).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click

from mlops.errors import ConflictError, InputError, MlopsError, NotFoundError
from mlops.serving.settings import DEFAULT_MAX_BODY_BYTES
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request
from mlops_cli.predict_batches import Answer, _in_order, _locate, _span, _TooLargeError, plan_batches, predict_batch
from mlops_cli.predict_input import Row, jsonl_rows, open_text, read_data, request_body

_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    404: NotFoundError,
    409: ConflictError,
    413: InputError,
    415: InputError,
}
# The inference function's limits as deployed by default (stacks/inference.py, mlops.serving.settings).
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 10_000  # stacks/config.py's ceiling for max_batch_size
PROGRESS_SECONDS = 2.0


# ------------------------------------------------------------------------------------------ output
class _Writer:
    def __init__(self, stream: IO[str], kind: str) -> None:
        self.stream = stream
        self.kind = kind
        self.csv: Any = None
        self.count = 0

    def write(self, prediction: dict[str, Any]) -> None:
        self.count += 1
        if self.kind == "jsonl":
            self.stream.write(json.dumps(prediction, default=str) + "\n")
            return
        probabilities = prediction.get("probabilities") or {}
        row = {
            "row": prediction["row"],
            "line": prediction["line"] if prediction["line"] is not None else "",
            "prediction": prediction["prediction"],
            **{f"p_{c}": p for c, p in probabilities.items()},
            "version": prediction["version"],
            "request_id": prediction["request_id"],
        }
        if self.csv is None:
            self.csv = csv.DictWriter(self.stream, fieldnames=list(row), lineterminator="\n")
            self.csv.writeheader()
        self.csv.writerow(row)


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


def _file_rows(app: AppContext, model: str, data: str) -> tuple[str, list[Row]] | None:
    """``(source, rows)`` for a ``@FILE.csv`` / ``@FILE.jsonl`` (gzip too), else None."""
    if not data.startswith("@") or data in ("@", "@-"):
        return None
    name = data[1:]
    suffixes = Path(name.lower()).suffixes
    kind = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if kind not in (".csv", ".jsonl"):
        return None
    path = Path(name)
    if not path.is_file():
        raise InputError(f"{name}: {'is a directory' if path.is_dir() else 'no such file'}")
    if kind == ".csv":
        # Here, not at the top: reading a CSV loads the validation package (pandas, about 1.4 s),
        # which a prediction from JSON never needs.
        from mlops_cli.predict_csv import csv_rows, serving_spec

        return name, csv_rows(path, serving_spec(app, model))
    try:
        with open_text(path) as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{name}: cannot be read ({exc})") from None
    rows = jsonl_rows(name, text)
    if not rows:
        raise InputError(f"{name}: no records (one JSON object per line)")
    return name, rows


@click.command("predict")
@click.argument("model")
@click.option("--data", "data", required=True, help="A record, a list of records or a request body: JSON, @FILE or @-.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH_SIZE),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Records per request for a file (the deployment's max_batch_size).",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 8), default=1, show_default=True, help="Batches in flight at once."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the predictions of a file here (default: stdout).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Predictions of a file as JSON Lines or CSV (default: from --out's suffix, else jsonl).",
)
@json_option
@pass_app
def command(
    app: AppContext,
    model: str,
    data: str,
    batch_size: int,
    concurrency: int,
    out: Path | None,
    output_format: str | None,
) -> None:
    """Predict with MODEL's champion (or its canary) over the platform's HTTPS API.

    Prints each prediction (with class probabilities for classifiers), the version that answered
    and the request id. Invalid records exit 2 with the record index and field named.

    A file of records, @FILE.csv (columns by the features' names) or @FILE.jsonl (one record per
    line), is sent in batches within the API's limits and answered one line per input record, in
    input order, with its row, line, version and request id (JSON Lines, or CSV with --format csv).
    """
    found = _file_rows(app, model, data)
    if found is None:
        document = read_data(data)
        body = request_body(document)
        records = body.get("records")
        encoded = json.dumps(body).encode()
        small = not isinstance(records, list) or (len(records) <= batch_size and len(encoded) <= DEFAULT_MAX_BODY_BYTES)
        if small and out is None and output_format is None:
            result = signed_request(
                app,
                "POST",
                f"models/{quote(model, safe='')}/predict",
                encoded,
                errors=_ERRORS,
                why_credentials="the inference API takes SigV4-signed requests",
            )
            emit(app, result, _text(result))
            return
        listed = records if isinstance(records, list) else [body["record"]]
        found = (
            "--data" if not data.startswith("@") else data[1:],
            [Row(i + 1, None, r) for i, r in enumerate(listed)],
        )
    source, rows = found
    kind = output_format or ("csv" if out is not None and out.suffix.lower() == ".csv" else "jsonl")
    _predict_rows(app, model, source, rows, batch_size, concurrency, out, kind, DEFAULT_MAX_BODY_BYTES)


def _predict_rows(
    app: AppContext,
    model: str,
    source: str,
    rows: list[Row],
    batch_size: int,
    concurrency: int,
    out: Path | None,
    kind: str,
    max_bytes: int,
) -> None:
    parts = [json.dumps(row.record, separators=(",", ":"), allow_nan=False).encode() for row in rows]
    try:
        batches = plan_batches([len(p) for p in parts], batch_size, max_bytes)
    except ValueError as exc:
        raise InputError(f"{source}, {rows[exc.args[1]].where}: {exc.args[0]}") from None
    path = f"models/{quote(model, safe='')}/predict"
    app.platform()  # found once, before any thread asks

    def send(body: bytes) -> dict[str, Any]:
        errors = {**_ERRORS, 413: _TooLargeError}
        why = "the inference API takes SigV4-signed requests"
        return signed_request(app, "POST", path, body, errors=errors, why_credentials=why)

    def run(batch: range) -> Answer:
        return predict_batch(send, rows[batch.start : batch.stop], parts[batch.start : batch.stop])

    started = last = time.monotonic()
    stream: IO[str]
    try:
        stream = out.open("w", encoding="utf-8", newline="") if out is not None else sys.stdout
    except OSError as exc:
        raise InputError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    writer = _Writer(stream, kind)
    failure: MlopsError | None = None
    versions: set[Any] = set()
    requests = 0
    try:
        with closing(_in_order(run, batches, concurrency)) as answers:
            for number, answer in enumerate(answers, start=1):
                for prediction in answer.predictions():
                    writer.write(prediction)
                    versions.add(prediction["version"])
                requests += len(answer.results)
                if answer.error is not None:
                    done = sum(len(r["predictions"]) for r in answer.results)
                    failed = answer.rows[done:]
                    failure = type(answer.error)(
                        f"{source}: {_span(failed)} (batch {number} of {len(batches)}) refused: "
                        f"{_locate(str(answer.error), failed, 0)}\n"
                        f"{writer.count:,} prediction(s) before them were written" + (f" to {out}" if out else "")
                    )
                    break
                now = time.monotonic()
                if now - last >= PROGRESS_SECONDS and number < len(batches):
                    last = now
                    click.echo(
                        f"  {writer.count:,} of {len(rows):,} records ({number} of {len(batches)} batches),"
                        f" {now - started:.1f} s",
                        err=True,
                    )
    finally:
        if out is not None:
            stream.close()
        else:
            stream.flush()
    if failure is not None:
        raise failure
    elapsed = time.monotonic() - started
    shown = ", ".join(str(v) for v in sorted(versions, key=str))
    summary = {
        "model": model,
        "source": source,
        "records": len(rows),
        "predictions": writer.count,
        "batches": len(batches),
        "requests": requests,
        "versions": sorted(versions, key=str),
        "seconds": round(elapsed, 3),
        "out": str(out) if out is not None else None,
        "format": kind,
    }
    text = (
        f"{model}: {writer.count:,} predictions for {len(rows):,} records of {source} in {len(batches)} batch(es)"
        f" of at most {batch_size:,}, {elapsed:.1f} s; version {shown}"
        + (f"; written to {out} ({kind})" if out is not None else "")
    )
    if out is not None:
        emit(app, summary, text)
    else:
        click.echo(text, err=True)
