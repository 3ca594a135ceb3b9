"""Verified uploads: who uploaded a dataset version, as an identity AWS verified.

The uploader is never a value the client writes: the caller the upload API
(``POST /models/{model}/uploads``) recorded when it authorized an upload of exactly this content
(sha256) to this key, or the platform actor that wrote a dataset itself (retraining) through the
same record (:func:`authorize_upload`, :func:`record_platform_upload`, :func:`verified_uploader`).
Anything else is ``unverified``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.data.datasets import PLATFORM_SOURCE, UNVERIFIED, UPLOAD_API_SOURCE, UPLOADER_METADATA_KEY
from mlops.data.trigger import DATASET_PREFIX, parse_key
from mlops.errors import ConflictError, InputError, NotFoundError
from mlops.registry.keys import (
    model_items,
    sk_prefix,
    upload_key,
    upload_prefix,
)
from mlops.registry.tables import Condition, Put
from mlops.registry.versions import Registry, check_actor, check_model_name
from mlops.storage import presigned_put

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
    put = presigned_put(
        s3,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=int(size),
        who=caller,
        metadata_key=UPLOADER_METADATA_KEY,
        expires_s=expires_s,
    )
    return {
        "bucket": bucket,
        "key": key,
        **put,
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
