"""Capture: a sample of requests and answers written as JSON lines under captures/ (never failing a prediction)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from mlops.serving.predictors import Prediction
from mlops.serving.routing import PredictResult

CAPTURE_PREFIX = "captures"


class CaptureSink(Protocol):
    """Where captured requests go (an S3 bucket in production, a list in tests)."""

    def put(self, key: str, body: bytes) -> None: ...


class S3Capture:
    """Captures as S3 objects in ``bucket`` (a boto3 ``s3`` client)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson")


def capture_key(model: str, request_id: str, at: datetime) -> str:
    """``captures/<model>/<yyyy>/<mm>/<dd>/<hour>/<request-id>.jsonl`` (UTC)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request_id) or "request"
    return f"{CAPTURE_PREFIX}/{model}/{at:%Y/%m/%d/%H}/{safe}.jsonl"


def capture_lines(
    request_id: str, at: datetime, result: PredictResult, records: list[dict[str, Any]], shadow: Prediction | None
) -> bytes:
    """One JSON line per record: input, the answer, and the shadow's answer if there was one."""
    body = result.body
    lines = []
    for index, record in enumerate(records):
        line: dict[str, Any] = {
            "request_id": request_id,
            "at": at.isoformat(),
            "model": result.model,
            "version": result.version,
            "role": result.role,
            "index": index,
            "input": record,
            "prediction": body["predictions"][index],
        }
        if "probabilities" in body:
            line["probabilities"] = body["probabilities"][index]
        if shadow is not None:
            line["shadow"] = {"version": result.shadow_version, "prediction": shadow.predictions[index]}
        lines.append(json.dumps(line, default=str, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()
