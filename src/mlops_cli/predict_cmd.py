"""``mlops predict M --data JSON|@FILE``: predictions from a model's champion over the platform API.

The request is signed with SigV4 (service ``execute-api``) using your own AWS credentials.
``--data`` takes a record (``{"tenure_months": 3, ...}``), a list of records, or a full request
body (``{"record": ...}`` / ``{"records": [...]}``); ``@FILE`` reads it from a JSON file, ``@-``
from standard input. One request answers it, printed as one answer.

Files of records: ``@FILE.csv`` (a header row; columns matched to the serving spec's features by
name, each value sent as its feature's JSON type; other columns ignored) and ``@FILE.jsonl`` (one
record per line), or more records than one request takes, are split into batches within the API's
limits (``--batch-size`` records, default 1,000: the deployment's ``max_batch_size``; and
:data:`mlops.serving.service.DEFAULT_MAX_BODY_BYTES` of body), sent in order (``--concurrency`` at a time),
and answered with one prediction per input record, in input order, with its row, line and request
id: JSON Lines or CSV, on stdout or ``--out FILE``. A batch the API still finds too large (413: a
deployment with lower limits) is split in two and sent again. The first refused batch stops the
run: the predictions before it are written, and the error names its rows, their lines and the API's
message (exit 2 for a refused record, 3 for a cloud or resource error).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click

from mlops.errors import ConflictError, InputError, MlopsError, NotFoundError
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request

_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    404: NotFoundError,
    409: ConflictError,
    413: InputError,
    415: InputError,
}
# The inference function's limits as deployed by default (stacks/inference.py, mlops.serving.service).
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 10_000  # stacks/config.py's ceiling for max_batch_size
PROGRESS_SECONDS = 2.0
# Bytes of a batch body around its records: {"records":[ ... ]}
_ENVELOPE = len(b'{"records":[]}')


# ------------------------------------------------------------------------------------------ reading
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
            return [row.record for row in _jsonl_rows(name, text)]
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


@dataclass(frozen=True)
class Row:
    """One input record: its 1-based row, the file line it starts on (None inline) and the record."""

    row: int
    line: int | None
    record: Any

    @property
    def where(self) -> str:
        return f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")


def _open_text(path: Path) -> IO[str]:
    raw = path.open("rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _jsonl_rows(name: str, text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{name}, line {number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise InputError(f"{name}, line {number}: a record is a JSON object, not {type(record).__name__}")
        rows.append(Row(len(rows) + 1, number, record))
    return rows


def _csv_value(text: str, feature: Any, missing: frozenset[str]) -> Any:
    """A CSV field as its feature's JSON type; text the type cannot take is sent as is (the API names it)."""
    from mlops.data.validation.coerce import FALSE_STRINGS, TRUE_STRINGS
    from mlops.spec.model import FeatureType
    from mlops.values import canonical_label

    if text in missing:
        return None
    kind = feature.type
    if kind in (FeatureType.FLOAT, FeatureType.INT):
        try:
            number = float(text)
        except ValueError:
            return text
        if kind is FeatureType.INT and number.is_integer() and abs(number) < 2**63:
            return int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else int(number)
        return number
    if kind is FeatureType.BOOL:
        lowered = text.strip().lower()
        return True if lowered in TRUE_STRINGS else False if lowered in FALSE_STRINGS else text
    if kind is FeatureType.CATEGORY and feature.allowed and not all(isinstance(a, str) for a in feature.allowed):
        label = canonical_label(text)
        return next((a for a in feature.allowed if canonical_label(a) == label), text)
    return text


def csv_rows(path: Path, spec: Any) -> list[Row]:
    """Records of a CSV (or gzip CSV) file, one per data row, typed by the spec's features."""
    from mlops.data.validation.reader import NA_STRINGS
    from mlops.spec.model import FeatureType

    missing = frozenset(NA_STRINGS)
    try:
        handle = _open_text(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    rows: list[Row] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if not header:
                raise InputError(f"{path}: the file is empty (the first line must name the columns)")
            where = {name: index for index, name in reversed(list(enumerate(header)))}
            used = [(f, where[f.name]) for f in spec.features if f.name in where]
            absent = [
                f.name
                for f in spec.features
                if f.name not in where and not f.nullable and f.type is not FeatureType.STRING
            ]
            if absent:
                raise InputError(
                    f"{path}: no column for feature(s) {', '.join(map(repr, absent))} of model {spec.name!r}"
                    f" (the file's columns: {', '.join(map(repr, header[:12]))}{', ...' if len(header) > 12 else ''})"
                )
            line = reader.line_num + 1
            for fields in reader:
                if not fields or fields == [""]:
                    line = reader.line_num + 1
                    continue
                if len(fields) != len(header):
                    raise InputError(f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}")
                record = {f.name: _csv_value(fields[i], f, missing) for f, i in used}
                rows.append(Row(len(rows) + 1, line, record))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
        except (UnicodeDecodeError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise InputError(f"{path}: cannot be read ({exc})") from None
    if not rows:
        raise InputError(f"{path}: the file has a header but no data rows")
    return rows


# ------------------------------------------------------------------------------------------ batching
def plan_batches(sizes: Sequence[int], max_records: int, max_bytes: int) -> list[range]:
    """Consecutive index ranges over records of JSON ``sizes`` (bytes), each one request within the limits.

    Greedy: a batch takes records in order while it holds at most ``max_records`` and its body
    (``{"records":[r1,r2,...]}``) at most ``max_bytes``. Every index is in exactly one range, in order.

    Raises
    ------
    ValueError
        A record alone makes a body over ``max_bytes`` (its index is ``args[1]``).

    Examples
    --------
    >>> plan_batches([10, 10, 10, 10, 10], max_records=2, max_bytes=1000)
    [range(0, 2), range(2, 4), range(4, 5)]
    >>> plan_batches([40, 40, 40], max_records=10, max_bytes=_ENVELOPE + 81)
    [range(0, 2), range(2, 3)]
    """
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    batches: list[range] = []
    start, used = 0, _ENVELOPE
    for index, size in enumerate(sizes):
        if _ENVELOPE + size > max_bytes:
            raise ValueError(f"record of {size} bytes is over the {max_bytes}-byte request limit", index)
        grown = used + size + (1 if index > start else 0)
        if index > start and (index - start >= max_records or grown > max_bytes):
            batches.append(range(start, index))
            start, grown = index, _ENVELOPE + size
        used = grown
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


@dataclass
class Answer:
    """The API's answer to one batch, or the error that refused it."""

    rows: Sequence[Row]
    results: list[dict[str, Any]]  # one per request sent (several when a 413 split the batch)
    error: MlopsError | None = None

    def predictions(self) -> Iterator[dict[str, Any]]:
        rows = iter(self.rows)
        for result in self.results:
            probabilities = result.get("probabilities")
            classes = result.get("classes")
            for index, prediction in enumerate(result["predictions"]):
                row = next(rows)
                out: dict[str, Any] = {"row": row.row, "line": row.line, "prediction": prediction}
                if probabilities and classes:
                    out["probabilities"] = {str(c): p for c, p in zip(classes, probabilities[index], strict=False)}
                out["version"] = result.get("version")
                out["request_id"] = result.get("request_id")
                yield out


class _TooLargeError(InputError):
    """The API answered 413 for a batch (split it and send again)."""


Send = Callable[[bytes], dict[str, Any]]


def predict_batch(send: Send, rows: Sequence[Row], parts: Sequence[bytes]) -> Answer:
    """Send one batch (``parts`` are its records' JSON); a 413 splits it in two, recursively."""
    body = b'{"records":[' + b",".join(parts) + b"]}"
    try:
        return Answer(rows, [send(body)])
    except _TooLargeError as exc:
        if len(rows) == 1:
            return Answer(rows, [], InputError(str(exc)))
        half = len(rows) // 2
        first = predict_batch(send, rows[:half], parts[:half])
        if first.error is not None:
            return Answer(rows, first.results, first.error)
        second = predict_batch(send, rows[half:], parts[half:])
        return Answer(rows, first.results + second.results, second.error)
    except MlopsError as exc:
        return Answer(rows, [], exc)


def _locate(message: str, rows: Sequence[Row], done: int) -> str:
    """The API names records by their index in the batch: name them by input row and line."""

    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1)) - done
        return rows[index].where if 0 <= index < len(rows) else match.group(0)

    return re.sub(r"\brecord (\d+)\b", replace, message)


def _span(rows: Sequence[Row]) -> str:
    first, last = rows[0], rows[-1]
    if first is last:
        return first.where
    lines = f" (lines {first.line}-{last.line})" if first.line is not None and last.line is not None else ""
    return f"rows {first.row}-{last.row}{lines}"


def _in_order(
    run: Callable[[range], Answer], batches: Sequence[range], concurrency: int
) -> Generator[Answer, None, None]:
    """Answers in batch order, with at most ``concurrency`` batches in flight; none is sent after a stop."""
    if concurrency == 1:
        yield from map(run, batches)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        pending: deque[Future[Answer]] = deque()
        ahead = iter(batches)
        for batch in ahead:
            pending.append(pool.submit(run, batch))
            if len(pending) >= concurrency:
                break
        while pending:
            answer = pending.popleft().result()
            yield answer
            following = next(ahead, None)
            if following is not None:
                pending.append(pool.submit(run, following))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def _serving_spec(app: AppContext, model: str) -> Any:
    """The spec of the version that serves ``model`` (its champion), else its latest spec."""
    from mlops.registry.specs import SpecStore
    from mlops.spec.model import parse_spec
    from mlops_cli.models_cmd import open_registry

    registry = open_registry(app)
    revision: int | None = None
    champion = registry.get_model(model).champion
    if champion is not None:
        revision = registry.get_version(model, champion).spec_revision
    stored = SpecStore(registry).get(model, revision)
    return parse_spec(stored.document, f"spec of {model} revision {stored.revision}")


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
        return name, csv_rows(path, _serving_spec(app, model))
    try:
        with _open_text(path) as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{name}: cannot be read ({exc})") from None
    rows = _jsonl_rows(name, text)
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
    from mlops.serving.service import DEFAULT_MAX_BODY_BYTES

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
