"""Training-code versions: a model's code packages, recorded like dataset versions.

``mlops code upload DIR --model M`` asks the code upload API (``POST /models/{model}/code``, its
own route and IAM permission, apart from dataset uploads) to record a new version: the next number,
the package's sha256, size and top-level package name, and the caller AWS authenticated as the
uploader (never a request field). The answer is a presigned PUT of exactly that content (S3 checks
its SHA-256) to ``code/<model>/<version>/<sha256>.zip``
(:func:`mlops.registry.keys.code_object_key`), which only the code upload function's role may
write. Every use of a version checks the stored bytes against the recorded sha256 again
(:func:`mlops.training.code.activate_code`).

A version is recorded ``pending`` when its upload is authorized and counts only once its package
arrived with the recorded sha256: the CLI asks the same route to confirm it after the PUT
(body ``{"confirm": <version>}``, :func:`confirm_code_upload`), which reads the object back, checks
its sha256 and records it ``stored`` (audited ``code.stored``). A run resolves its code with
:func:`resolve_code_version`: "latest" is the newest version whose package is there (a pending one
whose PUT landed but was never confirmed counts after the same check), and a pinned version whose
package never arrived is refused with a message naming it and what to do.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mlops.errors import CheckFailedError, ConflictError, InputError, NotFoundError
from mlops.registry.keys import CODE_SK_PREFIX, code_object_key, code_version_key, model_items, sk_prefix
from mlops.registry.specs import SpecStore
from mlops.registry.tables import Condition, ConditionFailedError, Put, Update
from mlops.registry.versions import Registry, check_actor, check_model_name
from mlops.storage import presigned_put

CODE_URL_SECONDS = 15 * 60
MAX_CODE_UPLOAD_BYTES = 50 * 1024**2  # mlops.training.code.MAX_CODE_BYTES: the CLI refuses larger first
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
CODE_UPLOADER_METADATA_KEY = "uploaded-by"
_ALLOCATE_ATTEMPTS = 5
PENDING, STORED = "pending", "stored"  # a code version's state: authorized / its package arrived and checked

# Reads the object an ``s3://bucket/key`` URI names: its bytes, or None when there is no such object.
FetchPackage = Callable[[str], bytes | None]


class CodeUploadRefusedError(CheckFailedError):
    """The caller is not one of the environment's code uploaders (403; the CLI exits 1)."""

    http_status = 403


class CodePendingError(ConflictError):
    """A code version whose package never arrived (or arrived with other bytes): not usable (409)."""


@dataclass(frozen=True)
class CodeVersion:
    """One recorded code package of a model."""

    model: str
    version: int
    sha256: str
    size: int
    package: str
    uploader: str
    uploaded_at: str
    bucket: str
    key: str
    request_id: str
    state: str = PENDING
    stored_at: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CodeVersion:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["version"] = int(values["version"] or 0)
        values["size"] = int(values["size"] or 0)
        values["state"] = values["state"] or PENDING  # recorded before states: checked like a pending one
        values["stored_at"] = values["stored_at"] or ""
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uri": self.uri}

    def lineage(self, entry_point: str) -> dict[str, Any]:
        """What a training run and a registered version record of the code they ran."""
        return {
            "version": self.version,
            "sha256": self.sha256,
            "uri": self.uri,
            "package": self.package,
            "entry_point": entry_point,
            "uploader": self.uploader,
            "uploaded_at": self.uploaded_at,
        }


def may_upload_code(caller: str, uploaders: list[str] | tuple[str, ...]) -> bool:
    """Whether ``caller`` (an ARN AWS verified) matches one of the environment's code uploader patterns."""
    return any(fnmatch.fnmatchcase(caller.lower(), pattern.lower()) for pattern in uploaders)


def check_code_request(model: str, package: Any, sha256: Any, size: Any) -> None:
    """:class:`InputError` naming the bad field of a code upload request."""
    check_model_name(model)
    if not isinstance(package, str) or not _PACKAGE.match(package):
        raise InputError(f"package: {package!r} is not a Python package name (letters, digits and '_')")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InputError("sha256: must be the package zip's SHA-256 as 64 lowercase hexadecimal digits")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_CODE_UPLOAD_BYTES:
        raise InputError(f"size: must be the zip's size in bytes, a whole number from 1 to {MAX_CODE_UPLOAD_BYTES:,}")


def list_code_versions(registry: Registry, model: str) -> list[CodeVersion]:
    """Every code version of ``model``, oldest first."""
    check_model_name(model)
    found: list[CodeVersion] = []
    start = None
    while True:
        page = registry.store.query(
            registry.table, model_items(model), sk_prefix=sk_prefix(CODE_SK_PREFIX), start=start
        )
        found.extend(CodeVersion.from_item(i) for i in page.items)
        if not page.last_key:
            return found
        start = page.last_key


def get_code_version(registry: Registry, model: str, version: int | None = None) -> CodeVersion:
    """Code version ``version`` of ``model`` (the latest when None); :class:`NotFoundError` saying how to add one."""
    if version is None:
        versions = list_code_versions(registry, model)
        if not versions:
            raise NotFoundError(
                f"model {model!r} has no training code: its spec names training.entry_point; upload the package "
                f"first (`mlops code upload DIR --model {model}`)"
            )
        return versions[-1]
    item = registry.store.get(registry.table, code_version_key(model, version))
    if item is None:
        raise NotFoundError(
            f"training.code_version: model {model!r} has no code version {version} (`mlops code list --model {model}`)"
        )
    return CodeVersion.from_item(item)


def package_arrived(record: CodeVersion, fetch: FetchPackage) -> bool:
    """Whether ``record``'s package is stored with the sha256 the registry recorded."""
    data = fetch(record.uri)
    return data is not None and hashlib.sha256(data).hexdigest() == record.sha256


def pending_message(record: CodeVersion) -> str:
    """Why a pending version cannot be used and what to do (the run's reason, the CLI's message)."""
    return (
        f"training.code_version: code version {record.version} of {record.model!r} is pending: its package never "
        f"arrived at {record.uri} with sha256 {record.sha256[:12]}... (upload authorized {record.uploaded_at} for "
        f"{record.uploader}); upload the code again (`mlops code upload DIR --model {record.model}`) and pin the "
        "version it prints, or drop training.code_version to use the latest stored version"
    )


def resolve_code_version(registry: Registry, model: str, version: int | None, fetch: FetchPackage) -> CodeVersion:
    """The code version a run trains with: ``version`` (a pin), else the newest one whose package arrived.

    A ``stored`` version counts; a ``pending`` one counts only if ``fetch`` finds its package with
    the recorded sha256 (its PUT landed, the CLI's confirmation did not). "Latest" skips the rest.

    Raises
    ------
    NotFoundError
        The model has no code version (or not the pinned one), or none of its versions arrived.
    CodePendingError
        The pinned version's package never arrived: the message names it and what to do.
    """
    if version is not None:
        record = get_code_version(registry, model, version)
        if record.state != STORED and not package_arrived(record, fetch):
            raise CodePendingError(pending_message(record))
        return record
    versions = list_code_versions(registry, model)
    for record in reversed(versions):
        if record.state == STORED or package_arrived(record, fetch):
            return record
    if not versions:
        get_code_version(registry, model)  # raises: no training code, and how to upload it
    raise NotFoundError(
        f"model {model!r} has no stored training code: its code versions "
        f"{', '.join(str(v.version) for v in versions)} are pending (their packages never arrived); upload the "
        f"package again (`mlops code upload DIR --model {model}`)"
    )


def confirm_code_upload(
    registry: Registry,
    fetch: FetchPackage,
    model: str,
    version: Any,
    *,
    caller: str,
    uploaders: list[str] | tuple[str, ...],
    request_id: str | None = None,
) -> CodeVersion:
    """Record code version ``version`` of ``model`` as ``stored`` once its package arrived with its sha256.

    The CLI calls it (through the code upload route) right after its PUT. Idempotent: a stored
    version is returned as it is. Audited ``code.stored``.

    Raises
    ------
    CodeUploadRefusedError
        The caller may not upload training code (403).
    InputError
        ``version`` is not a whole number from 1.
    NotFoundError
        No such code version.
    CodePendingError
        The package is not stored, or not with the recorded sha256 (409).
    """
    check_actor(caller)
    if not may_upload_code(caller, uploaders):
        raise CodeUploadRefusedError(f"{caller} may not upload training code for {model!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError("confirm: must be the code version to confirm, a whole number from 1")
    check_model_name(model)
    record = get_code_version(registry, model, version)
    if record.state == STORED:
        return record
    data = fetch(record.uri)
    if data is None:
        raise CodePendingError(
            f"code version {version} of {model!r}: no package at {record.uri} yet; PUT it with the presigned URL "
            f"(it lasts {CODE_URL_SECONDS // 60} minutes) or upload again (`mlops code upload DIR --model {model}`)"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != record.sha256:
        raise CodePendingError(
            f"code version {version} of {model!r}: the package at {record.uri} hashes to {actual}, not the recorded "
            f"{record.sha256}; upload again (`mlops code upload DIR --model {model}`)"
        )
    stored_at = registry.clock()
    with contextlib.suppress(ConditionFailedError):  # confirmed meanwhile by another call: nothing to do
        registry.audit.append(
            model,
            actor=caller,
            action="code.stored",
            subject=f"model/{model}/code/{version}",
            before={"state": record.state},
            after={"state": STORED, "sha256": record.sha256},
            request_id=request_id,
            with_ops=[
                Update(
                    registry.table,
                    code_version_key(model, version),
                    set={"state": STORED, "stored_at": stored_at},
                    condition=Condition(item_exists=True, not_equals={"state": STORED}),
                )
            ],
        )
    return get_code_version(registry, model, version)


def authorize_code_upload(
    registry: Registry,
    s3: Any,
    bucket: str,
    model: str,
    *,
    package: Any,
    sha256: Any,
    size: Any,
    caller: str,
    uploaders: list[str] | tuple[str, ...],
    request_id: str | None = None,
    expires_s: int = CODE_URL_SECONDS,
) -> dict[str, Any]:
    """Record the next code version of ``model`` for ``caller`` and presign the PUT of its package.

    ``caller`` is the principal AWS authenticated at the API. It must match one of ``uploaders``
    (the environment's ``code_uploaders``): uploading code is its own permission, since the code
    runs with the training role. The version is audited (``code.upload``) in the same transaction.

    Raises
    ------
    CodeUploadRefusedError
        The caller may not upload training code (403).
    InputError
        A bad model name, package name, sha256 or size (the message names the field).
    NotFoundError
        The model has no spec.
    """
    check_actor(caller)
    if not may_upload_code(caller, uploaders):
        raise CodeUploadRefusedError(
            f"{caller} may not upload training code for {model!r}: code runs with the training role, so uploading "
            "it is its own permission (the environment's code_uploaders); ask a platform engineer to add you"
        )
    check_code_request(model, package, sha256, size)
    try:
        SpecStore(registry).get(model)
    except NotFoundError:
        raise NotFoundError(
            f"model {model!r} has no spec: store it first (`mlops spec put {model}.yaml`); nothing was uploaded"
        ) from None
    registry.ensure_active(model)
    for _ in range(_ALLOCATE_ATTEMPTS):
        existing = list_code_versions(registry, model)
        version = existing[-1].version + 1 if existing else 1
        record = CodeVersion(
            model=model,
            version=version,
            sha256=str(sha256),
            size=int(size),
            package=str(package),
            uploader=caller,
            uploaded_at=registry.clock(),
            bucket=bucket,
            key=code_object_key(model, version, str(sha256)),
            request_id=request_id or "",
            state=PENDING,
        )
        item = {**code_version_key(model, version), "kind": "code", **asdict(record)}
        try:
            registry.audit.append(
                model,
                actor=caller,
                action="code.upload",
                subject=f"model/{model}/code/{version}",
                after={"sha256": record.sha256, "size": record.size, "package": record.package, "uri": record.uri},
                request_id=request_id,
                with_ops=[Put(registry.table, item, Condition(item_exists=False))],
            )
            break
        except ConditionFailedError:
            continue  # another upload took this number: take the next
    else:
        raise CheckFailedError(f"model {model!r}: could not allocate a code version; try again")
    put = presigned_put(
        s3,
        bucket=bucket,
        key=record.key,
        sha256=record.sha256,
        size=record.size,
        who=caller,
        metadata_key=CODE_UPLOADER_METADATA_KEY,
        expires_s=expires_s,
    )
    return {**record.to_dict(), **put}
