"""A batch job's two ends: ``start`` pins what it scores, ``finish`` assembles what it produced.

``start`` pins one model version for the whole job (the champion at start, or the version asked
for), and the input object's VersionId and sha256 (read once, streamed); a gzip CSV is staged
uncompressed under the job's prefix (the ItemReader reads CSV and JSON Lines text). A CSV whose
header lacks a feature the spec requires is refused here, before any batch runs, with the columns
named.

``finish`` reads the batches' result objects (``parts/``) in key order, which is input order,
checks that they cover rows ``0..N-1`` exactly once (a gap or an overlap fails the job instead of
writing a wrong output), and writes ``output.jsonl`` (one line per scored row: row, prediction,
probabilities, version), ``errors.jsonl`` (row, field, why) and ``manifest.json``, then appends
the job to the model's audit chain.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mlops.batch.services import BatchServices
from mlops.contracts.batch import FinishRequest, InputFormat, Job, Manifest, StartRequest
from mlops.contracts.names import BATCH_INPUT_PREFIX, BATCH_JOB_PREFIX
from mlops.errors import InputError, MlopsError, NotFoundError
from mlops.registry.versions import Status
from mlops.spec.view import FeatureType

CHUNK = 8 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class BatchIncompleteError(MlopsError):
    """The batches' result objects do not cover the input's rows exactly once."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def job_id_for(execution_name: str | None) -> str:
    """The job id: the execution's name (unique per state machine), or a new one."""
    if execution_name:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in execution_name)[:80]
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def input_format(key: str, head: bytes) -> InputFormat:
    """The input's format from its first bytes (gzip) and its name (``.jsonl``/``.ndjson``)."""
    lowered = key.lower()
    if head.startswith(GZIP_MAGIC):
        if lowered.removesuffix(".gz").endswith(JSONL_SUFFIXES):
            raise InputError(f"{key}: gzip JSON Lines is not read by batch scoring; send it uncompressed")
        return "csv.gz"
    return "jsonl" if lowered.endswith(JSONL_SUFFIXES) else "csv"


def _chunks(body: Any) -> Iterator[bytes]:
    while True:
        chunk = body.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _pin_version(services: BatchServices, model: str, asked: int | None) -> tuple[int, int | None]:
    """(version, spec revision) the job scores with: the one asked for, or the champion now."""
    registry = services.registry
    summary = registry.get_model(model)  # NotFoundError names an unknown model
    if asked is None:
        champion = summary.alias("champion")
        if champion is None:
            raise InputError(f"model {model!r} has no champion; name a version (--version V)")
        asked = champion
    record = registry.get_version(model, asked)
    if record.status is Status.REJECTED:
        raise InputError(f"model {model!r} version {asked} was rejected; it scores nothing")
    return record.version, record.spec_revision


def _check_header(services: BatchServices, model: str, version: int, header: list[str], where: str) -> None:
    loaded = services.model(model, version)
    columns = set(header)
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{where}: the header names column(s) {', '.join(repeated)} more than once")
    needed = [
        f.name
        for f in loaded.spec.features
        if f.name not in columns and not f.nullable and f.type is not FeatureType.STRING
    ]
    if needed:
        raise InputError(f"{where}: the header lacks the column(s) the spec requires: {', '.join(needed)}")


def start(request: StartRequest, services: BatchServices) -> Job:
    """Pin the version and the input object; stage a gzip input uncompressed. See the module docstring."""
    given = request.input
    where = uri(given.bucket, given.key)
    if given.bucket != services.bucket or not given.key.startswith(f"{BATCH_INPUT_PREFIX}/"):
        # The state machine and the functions may read the data bucket's batch/ only (least privilege).
        raise InputError(f"{where}: batch inputs are read under s3://{services.bucket}/{BATCH_INPUT_PREFIX}/")
    version, spec_revision = _pin_version(services, given.model, given.version)
    job_id = given.job_id or job_id_for(request.execution_name)
    prefix = (given.output_prefix or f"{BATCH_JOB_PREFIX}/{given.model}/{job_id}").strip("/")
    extra = {"VersionId": given.version_id} if given.version_id else {}
    try:
        got = services.s3.get_object(Bucket=given.bucket, Key=given.key, **extra)
    except services.s3.exceptions.NoSuchKey:
        raise NotFoundError(f"{where}: no such object") from None
    version_id = got.get("VersionId") or given.version_id
    if not version_id or version_id == "null":
        raise InputError(f"{where}: the bucket does not version objects; batch jobs pin the input's VersionId")
    digest = hashlib.sha256()
    size = 0
    fmt: InputFormat | None = None
    header_text = b""
    staged = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after its upload
    gunzip = zlib.decompressobj(wbits=47)
    try:
        for chunk in _chunks(got["Body"]):
            digest.update(chunk)
            size += len(chunk)
            if fmt is None:
                fmt = input_format(given.key, chunk)
            text = chunk
            if fmt == "csv.gz":
                try:
                    text = gunzip.decompress(chunk)
                except zlib.error as exc:
                    raise InputError(f"{where}: not a readable gzip file ({exc})") from None
                staged.write(text)
            if len(header_text) < 1024 * 1024 and b"\n" not in header_text:
                header_text += text[: 1024 * 1024]
        if fmt is None:
            raise InputError(f"{where}: the object is empty")
        if fmt == "csv.gz":
            staged.write(gunzip.flush())
        if fmt != "jsonl":
            first_line = codecs.decode(header_text.split(b"\n", 1)[0], "utf-8", "replace").lstrip("\ufeff")
            header = next(csv.reader(io.StringIO(first_line)), [])
            if not header:
                raise InputError(f"{where}: the first line must name the columns")
            _check_header(services, given.model, version, header, where)
        reader_key, reader_version_id = given.key, version_id
        if fmt == "csv.gz":
            reader_key = f"{prefix}/input.csv"
            staged.seek(0)
            services.s3.upload_fileobj(staged, services.bucket, reader_key)
            reader_version_id = services.s3.head_object(Bucket=services.bucket, Key=reader_key)["VersionId"]
    finally:
        staged.close()
    settings = services.settings
    return Job(
        job_id=job_id,
        model=given.model,
        version=version,
        spec_revision=spec_revision,
        bucket=given.bucket,
        key=given.key,
        version_id=version_id,
        sha256=digest.hexdigest(),
        size=size,
        format=fmt,
        reader="JSONL" if fmt == "jsonl" else "CSV",
        reader_key=reader_key,
        reader_version_id=reader_version_id,
        prefix=prefix,
        output_bucket=services.bucket,
        started_at=_now(),
        trigger=given.trigger or "manual",
        actor=given.started_by or f"pipeline:{request.execution_name or job_id}",
        started_by=given.started_by,
        execution=request.execution,
        batch_size=settings.batch_size,
        max_concurrency=settings.max_concurrency,
        capture_rate=settings.capture_rate,
    )


def _parts(services: BatchServices, job: Job) -> Iterator[dict[str, Any]]:
    """The batches' result documents, in key order (= input order)."""
    paginator = services.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=job.output_bucket, Prefix=f"{job.prefix}/parts/"):
        for item in page.get("Contents", []):
            body = services.s3.get_object(Bucket=job.output_bucket, Key=item["Key"])["Body"].read()
            yield json.loads(body)


def _lines(values: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(v, separators=(",", ":"), default=str) + "\n" for v in values).encode()


def finish(request: FinishRequest, services: BatchServices, *, request_id: str | None = None) -> Manifest:
    """Assemble the output, errors and manifest objects in input order; audit the job."""
    job = request.job
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    expected = 0
    batches = captured = 0
    for part in _parts(services, job):
        first, rows = int(part["first_row"]), int(part["rows"])
        if first != expected:
            what = "missing" if first > expected else "scored twice"
            raise BatchIncompleteError(
                f"job {job.job_id}: rows {min(first, expected)}..{max(first, expected) - 1} are {what} "
                f"(the batch after row {expected - 1} starts at row {first}); the output is not written"
            )
        expected = first + rows
        batches += 1
        captured += int(part.get("captured", 0))
        for result in part["results"]:
            result["version"] = job.version
            results.append(result)
        errors.extend(part["errors"])
    output, refused = _lines(results), _lines(errors)
    keys = {"output": f"{job.prefix}/output.jsonl", "errors": f"{job.prefix}/errors.jsonl"}
    bucket = job.output_bucket
    services.s3.put_object(Bucket=bucket, Key=keys["output"], Body=output, ContentType="application/x-ndjson")
    services.s3.put_object(Bucket=bucket, Key=keys["errors"], Body=refused, ContentType="application/x-ndjson")
    finished_at = _now()
    began = datetime.strptime(job.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    duration = (datetime.strptime(finished_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - began).total_seconds()
    manifest = Manifest(
        job_id=job.job_id,
        model=job.model,
        version=job.version,
        spec_revision=job.spec_revision,
        input={
            "uri": uri(job.bucket, job.key),
            "key": job.key,
            "version_id": job.version_id,
            "sha256": job.sha256,
            "size": job.size,
            "format": job.format,
        },
        rows=expected,
        scored=len(results),
        refused=len(errors),
        batches=batches,
        output={
            "uri": uri(bucket, keys["output"]),
            "key": keys["output"],
            "sha256": hashlib.sha256(output).hexdigest(),
            "rows": len(results),
        },
        errors={
            "uri": uri(bucket, keys["errors"]),
            "key": keys["errors"],
            "sha256": hashlib.sha256(refused).hexdigest(),
            "rows": len(errors),
        },
        manifest_key=f"{job.prefix}/manifest.json",
        started_at=job.started_at,
        finished_at=finished_at,
        duration_s=max(duration, round(time.monotonic() - started, 3)),
        trigger=job.trigger,
        actor=job.actor,
        started_by=job.started_by,
        execution=request.execution or job.execution,
        captured=captured,
    )
    body = json.dumps(manifest.model_dump(mode="json"), indent=2).encode()
    services.s3.put_object(Bucket=bucket, Key=manifest.manifest_key, Body=body, ContentType="application/json")
    services.registry.audit.append(
        job.model,
        actor=job.actor,
        action="batch.score",
        subject=f"model/{job.model}/version/{job.version}/batch/{job.job_id}",
        after={
            k: manifest.model_dump(mode="json")[k]
            for k in (
                "job_id",
                "version",
                "input",
                "rows",
                "scored",
                "refused",
                "output",
                "manifest_key",
                "trigger",
                "started_by",
            )
        },
        request_id=request_id,
    )
    return manifest


def read_manifest(services: BatchServices, prefix: str) -> dict[str, Any] | None:
    """A finished job's manifest, or None while it runs (or if it failed)."""
    try:
        body = services.s3.get_object(Bucket=services.bucket, Key=f"{prefix.strip('/')}/manifest.json")["Body"]
    except services.s3.exceptions.NoSuchKey:
        return None
    loaded: dict[str, Any] = json.loads(body.read())
    return loaded
