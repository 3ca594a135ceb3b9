"""Entry points: validate a file, a byte stream (an S3 body) or an in-memory DataFrame."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops.data.validation.engine import Validator, read_as_text
from mlops.data.validation.options import ValidationOptions, settings_in_force
from mlops.data.validation.reader import DEFAULT_BLOCK_SIZE, CsvReader
from mlops.data.validation.report import CheckResult, SourceInfo, Status, ValidationReport
from mlops.spec.model import ModelSpec

if TYPE_CHECKING:
    from mlops.data.profile import ReferenceProfile


def schema_fingerprint(columns: list[str]) -> str:
    """sha256 of the header's column names, sorted (part of a dataset version's identity).

    Every reader matches columns by header name, so two files with the same columns in another
    order hold the same schema and get the same fingerprint; the file's own order is kept in the
    report's ``columns`` and its exact bytes in ``sha256``. A repeated name counts each time.
    """
    return hashlib.sha256(json.dumps(sorted(columns), separators=(",", ":")).encode()).hexdigest()


def validate_stream(
    stream: IO[bytes],
    spec: ModelSpec,
    source_name: str,
    reference: ReferenceProfile | None = None,
    max_examples: int = 5,
    options: ValidationOptions | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> ValidationReport:
    """Validate a CSV or gzip CSV byte stream against a spec, reading it once in blocks.

    Memory stays bounded by ``block_size`` (plus 16 bytes a row for uniqueness and duplicate
    checks), so an S3 ``StreamingBody`` larger than the function's memory is validated whole.
    Reading problems (empty, binary, not UTF-8, ragged rows...) are findings, never exceptions.

    Parameters
    ----------
    stream:
        Binary file-like object with ``read(n)``; read to its end (size and sha256 are reported).
    spec:
        The model spec to check against.
    source_name:
        Named in the report (an S3 URI, a path).
    reference:
        Reference profile of the champion's training data; enables the ``reference.*`` checks.
    max_examples:
        Failing rows kept per check.
    options:
        Policy knobs; ``max_examples`` above wins over ``options.max_examples``.

    Returns
    -------
    ValidationReport
        ``valid`` is False when the data cannot be read (``readable`` False) or a check failed.

    Examples
    --------
    >>> body = s3.get_object(Bucket=b, Key=k)["Body"]  # doctest: +SKIP
    >>> report = validate_stream(body, spec, f"s3://{b}/{k}")  # doctest: +SKIP
    """
    started = time.perf_counter()
    options = (options or ValidationOptions()).model_copy(update={"max_examples": max_examples})
    validator = Validator(spec, reference, options)
    text_columns = read_as_text(spec)
    wanted = [*spec.feature_names, spec.target.name]
    reader = CsvReader(stream, source_name, wanted, text_columns, max_examples=max_examples, block_size=block_size)
    started_checks = False
    for chunk in reader.chunks():
        if not started_checks:
            validator.start(reader.header or [])
            started_checks = True
        validator.consume(chunk.frame, chunk.rows)
    if not started_checks and reader.header is not None:
        validator.start(reader.header)
        started_checks = True
    validator.rows = reader.records
    source = reader.finish_source()
    checks = reader.findings()
    if reader.header is not None and reader.records == 0 and not reader.fatal:
        checks.append(
            CheckResult(
                check="file.no_rows",
                status=Status.FAILED,
                failing_count=1,
                message="the file has a header but no data rows",
            )
        )
    readable = not reader.fatal and reader.header is not None
    if started_checks and not reader.fatal:
        checks.extend(validator.results())
    return _report(spec, source, checks, readable, reader.header or [], reader.records, reference, started)


def validate_file(
    path: str | Path,
    spec: ModelSpec,
    reference: ReferenceProfile | None = None,
    max_examples: int = 5,
    options: ValidationOptions | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> ValidationReport:
    """Validate a CSV or gzip CSV file (detected from its bytes, not its name); see :func:`validate_stream`.

    A file that cannot be opened gives an unreadable report (``file.unreadable``), not an exception.

    Examples
    --------
    >>> report = validate_file("train.csv.gz", spec)  # doctest: +SKIP
    >>> print(report.render_text())  # doctest: +SKIP
    """
    path = Path(path)
    started = time.perf_counter()
    try:
        handle = path.open("rb")
    except OSError as exc:
        problem = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        check = CheckResult(
            check="file.unreadable",
            status=Status.FAILED,
            failing_count=1,
            message=f"{path}: cannot be opened ({problem})",
        )
        return _report(spec, SourceInfo(name=str(path)), [check], False, [], 0, reference, started)
    with handle:
        try:
            return validate_stream(handle, spec, str(path), reference, max_examples, options, block_size)
        except IsADirectoryError:
            check = CheckResult(
                check="file.unreadable",
                status=Status.FAILED,
                failing_count=1,
                message=f"{path}: is a directory, not a file",
            )
            return _report(spec, SourceInfo(name=str(path)), [check], False, [], 0, reference, started)


def validate_frame(
    frame: pd.DataFrame,
    spec: ModelSpec,
    reference: ReferenceProfile | None = None,
    max_examples: int = 5,
    options: ValidationOptions | None = None,
    source_name: str = "<dataframe>",
) -> ValidationReport:
    """Run the same checks on a DataFrame already in memory (rows are numbered from 1).

    Examples
    --------
    >>> validate_frame(pd.DataFrame({"tenure": [1, 2], "churned": [0, 1]}), spec).valid  # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    options = (options or ValidationOptions()).model_copy(update={"max_examples": max_examples})
    validator = Validator(spec, reference, options)
    header = [str(c) for c in frame.columns]
    validator.start(header)
    wanted = [c for c in [*spec.feature_names, spec.target.name] if c in frame.columns]
    validator.consume(frame[wanted], np.arange(1, len(frame) + 1, dtype=np.int64))
    return _report(
        spec, SourceInfo(name=source_name), validator.results(), True, header, len(frame), reference, started
    )


def _report(
    spec: ModelSpec,
    source: SourceInfo,
    checks: list[CheckResult],
    readable: bool,
    columns: list[str],
    rows: int,
    reference: ReferenceProfile | None,
    started: float,
) -> ValidationReport:
    summary = {status.value: 0 for status in Status}
    for check in checks:
        summary[check.status.value] += 1
    return ValidationReport(
        valid=readable and summary[Status.FAILED.value] == 0,
        readable=readable,
        model=spec.name,
        spec_fingerprint=spec.fingerprint(),
        source=source,
        rows=rows,
        columns=columns,
        schema_fingerprint=schema_fingerprint(columns) if columns else None,
        reference_used=reference is not None,
        settings=settings_in_force(spec),
        duration_seconds=round(time.perf_counter() - started, 4),
        summary=summary,
        checks=checks,
    )
