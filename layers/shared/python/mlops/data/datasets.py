"""Dataset versions: what exactly a model was trained on.

A dataset version is the S3 object's ``VersionId`` plus its sha256, size, row count, columns,
column types (inferred: int, float, bool, string) and a schema fingerprint (sha256 of the sorted
column names, as in validation reports: columns are matched by name, so their order is not part of
the schema), who uploaded it and when. Computing it streams the object
once, in chunks: the bytes pass through sha256 on their way into pandas' chunked CSV reader, so
memory stays bounded by the chunk size whatever the object's size (a 2 GB CSV never needs 2 GB).

Who uploaded a version is an identity AWS verified (:mod:`mlops.data.uploads`), never a value the
client writes: the object's ``uploaded-by`` metadata is kept in ``extra["claimed_uploader"]`` for
information only. Records of versions live in the registry table (:mod:`mlops.data.catalog`).

Examples
--------
>>> import io
>>> scan = scan_csv(io.BytesIO(b"a,b\\n1,x\\n2,y\\n"))
>>> (scan.rows, scan.columns, scan.column_types)
(2, ['a', 'b'], {'a': 'int', 'b': 'string'})
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from mlops.errors import InputError, NotFoundError

UPLOADER_METADATA_KEY = "uploaded-by"
UNVERIFIED = "unverified"
UPLOAD_API_SOURCE = "upload-api"
PLATFORM_SOURCE = "platform"
VERIFIED_SOURCES = (UPLOAD_API_SOURCE, PLATFORM_SOURCE)
READ_CHUNK_BYTES = 1 << 20
CSV_CHUNK_ROWS = 50_000


class _HashingReader(io.RawIOBase):
    """A read-only stream over byte chunks that hashes and counts whatever passes through."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        data, self._pending = self._pending[:n], self._pending[n:]
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read (and hash) whatever the parser left unread."""
        while self.readinto(bytearray(READ_CHUNK_BYTES)):
            pass


def _file_chunks(stream: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk


@dataclass(frozen=True)
class CsvScan:
    """What one streaming pass over a CSV file found."""

    sha256: str
    size: int
    rows: int
    columns: list[str]
    column_types: dict[str, str]
    schema_fingerprint: str


def _kind(series: Any) -> str:
    import pandas as pd

    values = series.dropna()
    if values.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "int"
    if pd.api.types.is_float_dtype(values):
        finite = values[values.abs() != float("inf")]
        # A column of whole numbers with gaps reads as float; it is still an int column.
        return "int" if len(finite) == len(values) and bool((values == values.round()).all()) else "float"
    return "string"


def _merge(a: str, b: str) -> str:
    if a == b or b == "empty":
        return a
    if a == "empty":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "string"


def schema_fingerprint(columns: list[str]) -> str:
    """sha256 of the sorted column names: the same fingerprint validation reports use."""
    from mlops.data.validation import schema_fingerprint as fingerprint

    return fingerprint(columns)


def scan_csv(
    source: IO[bytes] | Iterable[bytes], *, chunk_rows: int = CSV_CHUNK_ROWS, source_name: str = "dataset"
) -> CsvScan:
    """Stream a CSV once: sha256, size, rows, columns, column types, schema fingerprint.

    Parameters
    ----------
    source
        A binary stream (read ``READ_CHUNK_BYTES`` at a time, never all at once) or an
        iterable of byte chunks (such as ``StreamingBody.iter_chunks()``).
    chunk_rows
        Rows parsed at a time; memory is bounded by this times the row width.
    source_name
        Names the data in error messages.

    Raises
    ------
    InputError
        The data is empty, not UTF-8, or not a well-formed CSV (the message names the line).
    """
    import pandas as pd

    chunks = _file_chunks(cast(IO[bytes], source), READ_CHUNK_BYTES) if hasattr(source, "read") else iter(source)
    reader = _HashingReader(chunks)
    buffered = io.BufferedReader(reader, buffer_size=READ_CHUNK_BYTES)
    header = _header(buffered.peek(READ_CHUNK_BYTES))
    rows = 0
    columns: list[str] = []
    kinds: dict[str, str] = {}
    try:
        with pd.read_csv(buffered, chunksize=chunk_rows, encoding="utf-8") as parts:
            for part in parts:
                if not columns:
                    columns = [str(c) for c in part.columns]
                    # pandas renames a repeated name ("a", "a.1"); the record keeps the header as
                    # written, as validation reports it, and a repeated name's type covers each column.
                    if header is not None and len(header) == len(columns):
                        columns = header
                    kinds = dict.fromkeys(columns, "empty")
                rows += len(part)
                for position, name in enumerate(columns):
                    kinds[name] = _merge(kinds[name], _kind(part.iloc[:, position]))
    except pd.errors.EmptyDataError:
        raise InputError(f"{source_name}: the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{source_name}: not a well-formed CSV: {exc}".strip()) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{source_name}: not UTF-8 text ({exc.reason} at byte {exc.start} of a chunk)") from None
    if not columns:
        raise InputError(f"{source_name}: the file has no columns")
    reader.drain()
    types = {c: ("string" if kinds[c] == "empty" else kinds[c]) for c in columns}
    return CsvScan(
        sha256=reader.sha256.hexdigest(),
        size=reader.size,
        rows=rows,
        columns=columns,
        column_types=types,
        schema_fingerprint=schema_fingerprint(columns),
    )


def _header(head: bytes) -> list[str] | None:
    """The header's names as written, from the first bytes (None when it cannot be read there)."""
    text = head.decode("utf-8-sig", "replace")
    end = text.find("\n")
    if end < 0:
        return None
    try:
        names = next(csv.reader(io.StringIO(text[:end].rstrip("\r"))), None)
    except csv.Error:
        return None
    return names or None


@dataclass(frozen=True)
class DatasetVersion:
    """One version of one dataset object, and what it holds."""

    bucket: str | None
    key: str
    version_id: str | None
    sha256: str
    size: int
    rows: int
    columns: list[str]
    column_types: dict[str, str]
    schema_fingerprint: str
    uploaded_by: str
    uploaded_at: str | None
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # How ``uploaded_by`` is known: ``upload-api`` (the caller AWS authenticated at the upload API)
    # or ``platform`` (a platform function wrote the dataset itself); None: not verified.
    uploader_source: str | None = None

    @property
    def uploader_verified(self) -> bool:
        return self.uploader_source in VERIFIED_SOURCES and self.uploaded_by not in ("", UNVERIFIED, "unknown")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ref(self) -> dict[str, Any]:
        """What a model version records about its training data."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "sha256": self.sha256,
            "rows": self.rows,
            "schema_fingerprint": self.schema_fingerprint,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> DatasetVersion:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["columns"] = list(item.get("columns") or [])
        values["column_types"] = dict(item.get("column_types") or {})
        values["extra"] = dict(item.get("extra") or {})
        return cls(**values)


def describe_file(path: str | Path, *, uploaded_by: str = "unknown", model: str | None = None) -> DatasetVersion:
    """A dataset version for a local CSV file (no S3 version id), streamed in chunks."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            scan = scan_csv(stream, source_name=str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    return DatasetVersion(
        bucket=None,
        key=str(path),
        version_id=None,
        uploaded_by=uploaded_by,
        uploaded_at=None,
        model=model,
        **_scan_fields(scan),
    )


def _scan_fields(scan: CsvScan) -> dict[str, Any]:
    return {
        "sha256": scan.sha256,
        "size": scan.size,
        "rows": scan.rows,
        "columns": scan.columns,
        "column_types": scan.column_types,
        "schema_fingerprint": scan.schema_fingerprint,
    }


def describe_s3_object(
    s3: Any,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    uploaded_by: str | None = None,
    model: str | None = None,
    chunk_size: int = READ_CHUNK_BYTES,
) -> DatasetVersion:
    """A dataset version for an S3 object, streamed once (bounded memory).

    Parameters
    ----------
    s3
        A boto3 ``s3`` client.
    bucket, key
        The object.
    version_id
        Which version (the latest when None). The bucket must be versioned.
    uploaded_by
        Who uploaded it, when the caller verified it; else ``unverified`` (the object's
        ``uploaded-by`` metadata is a claim: it goes to ``extra["claimed_uploader"]``).
    model
        The model the dataset belongs to (recorded, not checked).

    Raises
    ------
    NotFoundError
        The object or version does not exist.
    InputError
        The bucket is not versioned, or the object is not a readable CSV.
    """
    from botocore.exceptions import ClientError

    where = f"s3://{bucket}/{key}"
    extra = {"VersionId": version_id} if version_id else {}
    try:
        response = s3.get_object(Bucket=bucket, Key=key, **extra)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchVersion", "404", "NoSuchBucket", "InvalidArgument"):
            version = f" version {version_id}" if version_id else ""
            raise NotFoundError(f"{where}{version} does not exist ({code})") from None
        raise
    vid = response.get("VersionId")
    if not vid or vid == "null":
        response["Body"].close()
        raise InputError(f"{where}: bucket {bucket!r} is not versioned, so this dataset has no stable version id")
    body = response["Body"]
    try:
        scan = scan_csv(body.iter_chunks(chunk_size), source_name=where)
    finally:
        body.close()
    expected_size = response.get("ContentLength")
    if expected_size is not None and int(expected_size) != scan.size:
        raise InputError(f"{where}: read {scan.size} bytes but the object has {expected_size} (interrupted read)")
    metadata = {k.lower(): v for k, v in (response.get("Metadata") or {}).items()}
    modified = response.get("LastModified")
    claimed = metadata.get(UPLOADER_METADATA_KEY)
    return DatasetVersion(
        bucket=bucket,
        key=key,
        version_id=str(vid),
        uploaded_by=uploaded_by or UNVERIFIED,
        uploaded_at=modified.isoformat() if hasattr(modified, "isoformat") else None,
        model=model,
        extra={"claimed_uploader": claimed} if claimed else {},
        **_scan_fields(scan),
    )


# ------------------------------------------------------------------------------- verified uploads
