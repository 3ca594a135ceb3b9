"""Dataset versions: what exactly a model was trained on.

A dataset version is the S3 object's ``VersionId`` plus its sha256, size, row count, columns,
column types (inferred: int, float, bool, string) and a schema fingerprint (sha256 of the sorted
column names, as in validation reports: columns are matched by name, so their order is not part of
the schema), who uploaded it and when. Computing it streams the object
once, in chunks: the bytes pass through sha256 on their way into pandas' chunked CSV reader, so
memory stays bounded by the chunk size whatever the object's size (a 2 GB CSV never needs 2 GB).

The uploader is an identity AWS verified, never a value the client writes: the caller the upload
API (``POST /models/{model}/uploads``) recorded when it authorized an upload of exactly this
content (sha256) to this key, or the platform actor that wrote a dataset itself (retraining)
through the same record (:func:`authorize_upload`, :func:`record_platform_upload`,
:func:`verified_uploader`). Anything else is ``unverified``; the object's ``uploaded-by``
metadata is kept in ``extra["claimed_uploader"]`` for information only.

Records live in the registry table (``MODEL#<name>`` / ``DATASET#<version id>``), are written
once (``attribute_not_exists``) in one transaction with their audit event, and are never changed.

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
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

from mlops.data.trigger import DATASET_PREFIX, parse_key
from mlops.errors import ConflictError, InputError, NotFoundError
from mlops.registry.audit import decode_token, encode_token
from mlops.registry.keys import (
    DATASET_SK_PREFIX,
    dataset_key,
    model_items,
    model_partition,
    sk_prefix,
    upload_key,
    upload_prefix,
)
from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry, ResultPage, check_actor, check_model_name

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
UPLOAD_URL_SECONDS = 15 * 60  # how long an authorized upload's presigned URL stays valid
MAX_UPLOAD_BYTES = 5 * 1024**3  # S3's limit for one PUT
CLOCK_SKEW_SECONDS = 5 * 60  # between the clock that wrote a grant and S3's LastModified
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class UploadGrant:
    """An upload the platform authorized: this caller, this content, this key, until ``expires_at``.

    ``caller`` is the principal AWS authenticated at the upload API (``source: upload-api``) or the
    platform actor that writes the dataset itself (``source: platform``).
    """

    model: str
    bucket: str
    key: str
    sha256: str
    size: int
    caller: str
    source: str
    created_at: str
    expires_at: str
    request_id: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UploadGrant:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["size"] = int(values["size"] or 0)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def covers(self, modified: datetime | None) -> bool:
        """Whether an object written at ``modified`` could have been written under this grant."""
        if modified is None:
            return True
        start = _parse_time(self.created_at) - timedelta(seconds=CLOCK_SKEW_SECONDS)
        end = _parse_time(self.expires_at) + timedelta(seconds=CLOCK_SKEW_SECONDS)
        return start <= modified.astimezone(UTC) <= end


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _later(now: str, seconds: int) -> str:
    return (_parse_time(now) + timedelta(seconds=seconds)).strftime(_TIME_FORMAT)[:-4] + "Z"


def check_upload(model: str, name: str, sha256: str, size: Any) -> str:
    """The object key of an upload request, or :class:`InputError` naming the bad field."""
    check_model_name(model)
    if not isinstance(name, str) or not _UPLOAD_NAME.match(name):
        raise InputError(
            f"name {name!r}: the object name under datasets/{model}/ must be 1-200 characters of letters, "
            "digits, '.', '_' and '-', starting with a letter or digit"
        )
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InputError("sha256: must be the file's SHA-256 as 64 lowercase hexadecimal digits")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_UPLOAD_BYTES:
        raise InputError(f"size: must be the file's size in bytes, a whole number from 1 to {MAX_UPLOAD_BYTES:,}")
    return f"{DATASET_PREFIX}{model}/{name}"


def grants_for(registry: Registry, model: str, key: str, sha256: str) -> list[UploadGrant]:
    """Every upload grant for content ``sha256`` at ``key`` (oldest first)."""
    found: list[UploadGrant] = []
    start = None
    while True:
        page = registry.store.query(
            registry.table, model_items(model), sk_prefix=sk_prefix(upload_prefix(sha256)), start=start
        )
        found.extend(g for g in (UploadGrant.from_item(i) for i in page.items) if g.key == key)
        if not page.last_key:
            return found
        start = page.last_key


def _grant(
    registry: Registry,
    *,
    model: str,
    bucket: str,
    key: str,
    sha256: str,
    size: int,
    caller: str,
    source: str,
    request_id: str | None,
    expires_s: int,
) -> UploadGrant:
    import uuid

    now = registry.clock()
    request = request_id or str(uuid.uuid4())
    grant = UploadGrant(
        model=model,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=size,
        caller=caller,
        source=source,
        created_at=now,
        expires_at=_later(now, expires_s),
        request_id=request,
    )
    item = {**upload_key(model, sha256, now, request), "kind": "upload", **grant.to_dict()}
    registry.audit.append(
        model,
        actor=caller,
        action="dataset.upload_authorized",
        subject=f"s3://{bucket}/{key}",
        after={"sha256": sha256, "size": size, "source": source, "expires_at": grant.expires_at},
        request_id=request_id,
        with_ops=[Put(registry.table, item, Condition(item_exists=False))],
    )
    return grant


def authorize_upload(
    registry: Registry,
    s3: Any,
    bucket: str,
    model: str,
    *,
    name: str,
    sha256: str,
    size: Any,
    caller: str,
    request_id: str | None = None,
    expires_s: int = UPLOAD_URL_SECONDS,
) -> dict[str, Any]:
    """Authorize ``caller`` to upload one file to ``datasets/<model>/<name>`` and presign its PUT.

    ``caller`` is the principal AWS authenticated (the API's ``requestContext.identity.userArn``),
    never a request field. Nothing is stored in S3 here; the grant (audited
    ``dataset.upload_authorized``) is what the training pipeline later finds for the object.

    Returns
    -------
    dict
        ``bucket``, ``key``, ``url`` (a presigned PUT, ``expires_s`` seconds), ``method``, the
        ``headers`` the PUT must carry (they are signed: the uploader metadata, the SHA-256 checksum
        S3 checks the body against, the length), ``expires_at``, ``caller``.

    Raises
    ------
    InputError
        A bad model name, object name, sha256 or size (the message names the field).
    NotFoundError
        The model has no spec: its data could never be validated.
    TransitionError
        The model is archived (409): it takes no new data until ``mlops models unarchive``.
    ConflictError
        Another principal holds a live grant for the same content at the same key.
    """
    import base64

    from mlops.registry.specs import SpecStore

    check_actor(caller)
    key = check_upload(model, name, sha256, size)
    try:
        SpecStore(registry).get(model)
    except NotFoundError:
        raise NotFoundError(
            f"model {model!r} has no spec, so its data cannot be validated: store the spec first "
            f"(`mlops spec put {model}.yaml`); nothing was uploaded"
        ) from None
    registry.ensure_active(model)  # 409: an archived model takes no new data (the message says how to restore it)
    now = _parse_time(registry.clock())
    for other in grants_for(registry, model, key, sha256):
        if not same_principal(other.caller, caller) and _parse_time(other.expires_at) > now:
            raise ConflictError(
                f"{key}: {other.caller} may upload this same content there until {other.expires_at}; "
                "upload it under another name (--name) so each dataset version has one uploader"
            )
    grant = _grant(
        registry,
        model=model,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=int(size),
        caller=caller,
        source=UPLOAD_API_SOURCE,
        request_id=request_id,
        expires_s=expires_s,
    )
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    url = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "Metadata": {UPLOADER_METADATA_KEY: caller},
            "ChecksumSHA256": checksum,
            "ContentLength": int(size),
        },
        ExpiresIn=expires_s,
        HttpMethod="PUT",
    )
    return {
        "bucket": bucket,
        "key": key,
        "url": url,
        "method": "PUT",
        "headers": {f"x-amz-meta-{UPLOADER_METADATA_KEY}": caller, "x-amz-checksum-sha256": checksum},
        "expires_at": grant.expires_at,
        "caller": caller,
        "sha256": sha256,
        "size": int(size),
    }


def record_platform_upload(
    registry: Registry,
    model: str,
    bucket: str,
    key: str,
    *,
    sha256: str,
    size: int,
    actor: str,
    request_id: str | None = None,
    expires_s: int = UPLOAD_URL_SECONDS,
) -> UploadGrant:
    """A platform function is about to write a dataset itself (retraining): record it as the uploader.

    Call it before the ``put_object``; the training pipeline then finds ``actor`` as the verified
    uploader of that content at that key, exactly as for an upload through the API.
    """
    check_actor(actor)
    parse_key(key)
    return _grant(
        registry,
        model=model,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=int(size),
        caller=actor,
        source=PLATFORM_SOURCE,
        request_id=request_id,
        expires_s=expires_s,
    )


@dataclass(frozen=True)
class VerifiedUploader:
    """Who uploaded an object version, as far as the platform can prove it."""

    identity: str  # the caller's ARN or platform actor, or ``unverified``
    source: str | None  # upload-api, platform, or None
    note: str  # why it is unverified ("" when verified)


def verified_uploader(
    registry: Registry, model: str, key: str, sha256: str, modified: datetime | None
) -> VerifiedUploader:
    """The uploader of the object at ``key`` with content ``sha256`` written at ``modified``.

    It is the caller of the one upload grant for that key and content whose validity covers
    ``modified``; an object no grant covers (written straight to S3) or that two principals were
    granted is ``unverified``.
    """
    grants = [g for g in grants_for(registry, model, key, sha256) if g.covers(modified)]
    callers = {g.caller.lower(): g for g in grants}
    if len(callers) == 1:
        grant = next(iter(callers.values()))
        return VerifiedUploader(grant.caller, grant.source, "")
    if callers:
        return VerifiedUploader(
            UNVERIFIED, None, f"{len(callers)} principals were authorized to upload this content to {key}"
        )
    return VerifiedUploader(
        UNVERIFIED,
        None,
        "no upload authorization matches this object (written to S3 directly, not through `mlops data upload`)",
    )


def same_principal(a: str, b: str) -> bool:
    """Whether two principals are the same person.

    ARNs compare exactly (case-insensitively), except assumed-role sessions
    (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``): the same session name in the same account
    is the same person whatever the role, since an SSO sign-in names the session after the user
    (``AWSReservedSSO_Scientist_.../alice`` and ``AWSReservedSSO_Approver_.../alice`` are one alice).

    Examples
    --------
    >>> same_principal("arn:aws:iam::1:user/bob", "ARN:AWS:IAM::1:USER/BOB")
    True
    >>> same_principal("arn:aws:sts::1:assumed-role/A/alice", "arn:aws:sts::1:assumed-role/B/alice")
    True
    >>> same_principal("arn:aws:sts::1:assumed-role/A/alice", "arn:aws:sts::2:assumed-role/A/alice")
    False
    """
    left, right = a.strip().lower(), b.strip().lower()
    if left == right:
        return True
    one, two = _session(left), _session(right)
    return one is not None and one == two


def _session(arn: str) -> tuple[str, str] | None:
    """(account, session name) of an assumed-role session ARN, else None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sts":
        return None
    resource = parts[5].split("/")
    if len(resource) != 3 or resource[0] != "assumed-role" or not resource[2]:
        return None
    return parts[4], resource[2]


class DatasetCatalog:
    """Dataset version records in the registry table, written once and audited.

    Parameters
    ----------
    registry
        The registry whose table, store, clock and audit trail to use.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def record(
        self, model: str, dataset: DatasetVersion, *, actor: str, request_id: str | None = None
    ) -> DatasetVersion:
        """Store a dataset version for ``model`` (idempotent for the same content).

        Raises
        ------
        InputError
            The dataset has no S3 version id.
        ConflictError
            The version id is recorded already with different content.
        """
        check_model_name(model)
        check_actor(actor)
        if not dataset.version_id:
            raise InputError(f"{dataset.key}: only S3 object versions can be recorded (no version id)")
        existing = self.find(model, dataset.version_id)
        if existing is not None:
            return self._same_or_conflict(existing, dataset)
        now = self.registry.clock()
        record = DatasetVersion(**{**dataset.to_dict(), "model": model})
        item = {**dataset_key(model, dataset.version_id), "kind": "dataset", **record.to_dict(), "recorded_at": now}
        try:
            self.registry.audit.append(
                model,
                actor=actor,
                action="dataset.record",
                subject=f"model/{model}/dataset/{dataset.version_id}",
                after=record.ref(),
                request_id=request_id,
                with_ops=[
                    Put(self.registry.table, item, Condition(item_exists=False)),
                    self.registry.touch_model(model, actor, now),
                ],
            )
        except ConditionFailedError:
            # Recorded by someone else in the meantime.
            again = self.find(model, dataset.version_id)
            if again is None:
                raise
            return self._same_or_conflict(again, dataset)
        return record

    @staticmethod
    def _same_or_conflict(existing: DatasetVersion, dataset: DatasetVersion) -> DatasetVersion:
        if existing.sha256 != dataset.sha256:
            raise ConflictError(
                f"dataset version {dataset.version_id} of {existing.model!r} is recorded with sha256 "
                f"{existing.sha256[:12]}..., not {dataset.sha256[:12]}...; records are never overwritten"
            )
        return existing

    def find(self, model: str, version_id: str) -> DatasetVersion | None:
        item = self.registry.store.get(self.registry.table, dataset_key(model, version_id))
        return DatasetVersion.from_item(item) if item is not None else None

    def get(self, model: str, version_id: str) -> DatasetVersion:
        """One recorded dataset version. Raises NotFoundError if there is none."""
        check_model_name(model)
        found = self.find(model, version_id)
        if found is None:
            raise NotFoundError(f"model {model!r} has no dataset version {version_id}")
        return found

    def list(self, model: str, *, limit: int = 20, next_token: str | None = None) -> ResultPage:
        """Recorded dataset versions of a model (in version-id order, as S3 gives no time order)."""
        check_model_name(model)
        start = decode_token(next_token, model_partition(model)) if next_token else None
        page = self.registry.store.query(
            self.registry.table, model_items(model), sk_prefix=sk_prefix(DATASET_SK_PREFIX), limit=limit, start=start
        )
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        return ResultPage([DatasetVersion.from_item(item) for item in page.items], token)
