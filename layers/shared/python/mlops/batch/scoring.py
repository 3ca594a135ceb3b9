"""One batch of rows: typed, validated against the spec, predicted by the pinned version, written.

A batch's result object is ``<prefix>/parts/<first row, 12 digits>.json``: its key depends only on
the rows it holds, so a batch retried after its write (an environment that died on return) or
redriven after a failed job writes the same key with the same content, and the job's output never
holds a row twice. Rows are validated the way the inference API validates a request (the serving
room's request models): the column-wise check first for the whole batch, and row by row only when
it finds something, so a refused row costs its own check and never the batch.

A share of the scored rows (``capture_rate``, drawn per batch) goes to the model's capture store in
the inference function's format (role ``batch``), so the drift check's windows see batch traffic.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from mlops.batch.rows import RowRefusedError, RowTyper
from mlops.batch.services import BatchServices
from mlops.contracts.batch import Job, Row, Scored, ScoreRequest
from mlops.serving.capture import capture_key, capture_lines
from mlops.serving.errors import RequestError
from mlops.serving.requests import RequestModels
from mlops.serving.routing import PredictResult


def part_key(prefix: str, first_row: int) -> str:
    """``<prefix>/parts/000000000500.json``: sorted by key is sorted by row."""
    return f"{prefix}/parts/{first_row:012d}.json"


def _refusal(requests: RequestModels, record: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) when the serving validation refuses ``record``, else None."""
    try:
        requests.validate([record])
    except RequestError as exc:
        details = getattr(exc, "details", None) or [{}]
        first = details[0]
        return str(first.get("field") or ""), str(first.get("message") or exc)
    return None


def validate_rows(
    requests: RequestModels, typed: list[tuple[int, dict[str, Any]]]
) -> tuple[list[int], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows' numbers and records the model takes, and an error (row, field, why) for each other."""
    records = [r for _, r in typed]
    valid = requests.validator.validate(records) if records else []
    if valid is not None:
        return [n for n, _ in typed], valid, []
    rows: list[int] = []
    accepted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for number, record in typed:
        refused = _refusal(requests, record)
        if refused is None:
            rows.append(number)
            accepted.append(requests.validate([record])[0])
        else:
            errors.append({"row": number, "field": refused[0], "why": refused[1]})
    return rows, accepted, errors


def score_rows(services: BatchServices, job: Job, items: list[Row]) -> dict[str, Any]:
    """The batch's result document: ``results`` (row, prediction, probabilities) and ``errors``."""
    loaded = services.model(job.model, job.version)
    typer = RowTyper(loaded.spec)
    read = typer.csv if job.reader == "CSV" else typer.jsonl
    typed: list[tuple[int, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for item in items:
        try:
            typed.append((item.row, read(item.values)))
        except RowRefusedError as exc:
            errors.append({"row": item.row, "field": exc.field, "why": exc.why})
    rows, records, refused = validate_rows(loaded.requests, typed)
    errors = sorted(errors + refused, key=lambda e: int(e["row"]))
    results: list[dict[str, Any]] = []
    if records:
        prediction = loaded.predictor.predict(records)
        probabilities = prediction.probabilities
        classes = [str(c) for c in prediction.classes] if prediction.classes is not None else None
        for index, row in enumerate(rows):
            result: dict[str, Any] = {"row": row, "prediction": prediction.predictions[index]}
            if probabilities is not None and classes is not None:
                result["probabilities"] = dict(zip(classes, probabilities[index], strict=True))
            results.append(result)
    return {"results": results, "errors": errors, "records": records}


def _capture(services: BatchServices, job: Job, first_row: int, document: dict[str, Any]) -> int:
    """Write the batch's scored rows to the capture store when this batch is drawn; rows captured."""
    rate = job.capture_rate
    records, results = document["records"], document["results"]
    if not records or rate <= 0:
        return 0
    # Drawn per batch, seeded by the job and the batch: a retried batch makes the same draw.
    if rate < 1 and random.Random(f"{job.job_id}:{first_row}").random() >= rate:
        return 0
    body: dict[str, Any] = {"predictions": [r["prediction"] for r in results]}
    if results and "probabilities" in results[0]:
        body["probabilities"] = [list(r["probabilities"].values()) for r in results]
    result = PredictResult(body=body, model=job.model, version=job.version, role="batch", records=len(records))
    request_id = f"batch-{job.job_id}-{first_row:012d}"
    at = datetime.now(UTC)
    services.s3.put_object(
        Bucket=services.bucket,
        Key=capture_key(job.model, request_id, at),
        Body=capture_lines(request_id, at, result, records, None),
    )
    return len(records)


def score(request: ScoreRequest, services: BatchServices) -> Scored:
    """Score one batch and write its result object (same key, same content on a retry)."""
    job, items = request.job, request.items
    started = time.perf_counter()
    first_row = min((item.row for item in items), default=0)
    document = score_rows(services, job, items)
    captured = _capture(services, job, first_row, document)
    key = part_key(job.prefix, first_row)
    part = {
        "first_row": first_row,
        "rows": len(items),
        "results": document["results"],
        "errors": document["errors"],
        "captured": captured,
        "seconds": round(time.perf_counter() - started, 4),
    }
    body = json.dumps(part, separators=(",", ":"), default=str).encode()
    services.s3.put_object(Bucket=job.output_bucket, Key=key, Body=body, ContentType="application/json")
    return Scored(
        first_row=first_row,
        rows=len(items),
        scored=len(document["results"]),
        refused=len(document["errors"]),
        key=key,
    )
