"""Model imports through the import API: who imported what, onto which dataset version, and the run.

``POST /models/{model}/imports`` (its own route, so its own ``execute-api:Invoke`` permission)
records an import grant: the caller AWS authenticated, the artifact's sha256, size and format, the
dataset version to evaluate it on and where it came from; it answers a presigned PUT of exactly
that content to ``imports/<model>/<sha256>/model.<ext>``. The object's creation starts the
training pipeline (the same rule and starter as a dataset upload), which finds the grant here and
runs the import as the run's one candidate (:mod:`mlops.training.steps.imports`). The uploader is
the grant's caller, never a value the client writes. Light imports only: the API and starter
functions have no science layer.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import UPLOADER_METADATA_KEY
from mlops.data.trigger import DatasetUpload
from mlops.errors import InputError, NotFoundError
from mlops.registry.keys import PK, SK, model_items, model_pk, sk_prefix
from mlops.registry.origin import IMPORT_FILE_NAMES, IMPORT_FORMATS, SOURCES
from mlops.registry.tables import Condition, Put
from mlops.registry.versions import Registry, check_actor, check_model_name
from mlops.storage import presigned_put

IMPORT_PREFIX = "imports/"  # stacks/stateful.py's IMPORT_PREFIX: the rule and the grants use it
IMPORT_SK_PREFIX = "IMPORT#"
IMPORT_URL_SECONDS = 15 * 60
MAX_IMPORT_BYTES = 1024**3  # an artifact larger than 1 GiB would not fit a Lambda function anyway
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_KEY = re.compile(r"^imports/(?P<model>[a-z][a-z0-9-]{0,62})/(?P<sha256>[0-9a-f]{64})/(?P<file>model\.(onnx|pkl))$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ImportGrant:
    """An import the platform authorized: this caller, this content, onto this dataset version."""

    model: str
    bucket: str
    key: str
    sha256: str
    size: int
    format: str
    source: str
    dataset_version: str
    caller: str
    created_at: str
    expires_at: str
    request_id: str
    run_name: str
    source_sha256: str | None = None
    run_id: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ImportGrant:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["size"] = int(values["size"] or 0)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def imported(self) -> dict[str, Any]:
        """What the run's candidate carries: the stored artifact and its origin."""
        return {
            "uri": f"s3://{self.bucket}/{self.key}",
            "format": self.format,
            "sha256": self.sha256,
            "source": self.source,
            "uploader": self.caller,
            **({"source_sha256": self.source_sha256} if self.source_sha256 else {}),
            **({"run_id": self.run_id} if self.run_id else {}),
        }


def import_key(model: str, sha256: str) -> str:
    """Where an import's artifact is stored: one object per model and content."""
    return f"{IMPORT_PREFIX}{model}/{sha256}/"


def is_import_key(key: str) -> bool:
    return key.startswith(IMPORT_PREFIX)


def run_model_key(model: str, run_id: str) -> str:
    """Where a notebook run's logged model is stored: its own folder, never an import's key.

    An import's key is its content's (``imports/<model>/<sha256>/``) and its arrival starts the
    import a grant authorized; a run's model arriving at that key would be taken for the import of
    whoever was last granted those bytes. Under ``imports/<model>/runs/<run id>/`` it starts nothing
    (:func:`is_run_model_key`); ``mlops models import M --run RUN`` imports it through a grant of its own.
    """
    return f"{IMPORT_PREFIX}{model}/runs/{run_id}/"


def is_run_model_key(key: str) -> bool:
    """Whether ``key`` is a notebook run's logged model (:func:`run_model_key`)."""
    parts = key.split("/")
    return key.startswith(IMPORT_PREFIX) and len(parts) == 5 and parts[2] == "runs"


def import_run_name(model: str, sha256: str, dataset_version: str) -> str:
    """The training execution of one import onto one dataset version (<= 80 characters, repeatable)."""
    digest = hashlib.sha256(f"{sha256}\n{dataset_version}".encode()).hexdigest()[:32]
    return f"import-{_NAME_UNSAFE.sub('-', model)[:40]}-{digest}"


def check_import(body: dict[str, Any]) -> None:
    """Each field of an import request, or :class:`InputError` naming the bad one."""
    if body.get("format") not in IMPORT_FORMATS:
        raise InputError(f"format: must be one of {', '.join(IMPORT_FORMATS)}")
    for name in ("sha256", "source_sha256"):
        value = body.get(name)
        if (name == "sha256" or value is not None) and (not isinstance(value, str) or not _SHA256.match(value)):
            raise InputError(f"{name}: must be a SHA-256 as 64 lowercase hexadecimal digits")
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMPORT_BYTES:
        raise InputError(f"size: must be the artifact's size in bytes, a whole number from 1 to {MAX_IMPORT_BYTES:,}")
    if body.get("source") not in SOURCES:
        raise InputError(f"source: must be one of {', '.join(SOURCES)}")
    if not isinstance(body.get("dataset_version"), str) or not body["dataset_version"]:
        raise InputError("dataset_version: must be the S3 version id of one of the model's dataset versions")
    run_id = body.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.match(run_id)):
        raise InputError("run_id: 1-128 characters of letters, digits, '.', '_', ':' and '-'")


def authorize_import(
    registry: Registry,
    s3: Any,
    bucket: str,
    model: str,
    body: dict[str, Any],
    *,
    caller: str,
    request_id: str | None = None,
    expires_s: int = IMPORT_URL_SECONDS,
) -> dict[str, Any]:
    """Authorize ``caller`` to import one artifact for ``model`` and presign its PUT.

    Raises
    ------
    InputError
        A bad field (named).
    NotFoundError
        The model has no spec, or no such dataset version (the message says how to get one).
    TransitionError
        The model is archived.
    """
    from mlops.registry.specs import SpecStore

    check_actor(caller)
    check_model_name(model)
    check_import(body)
    try:
        SpecStore(registry).get(model)
    except NotFoundError:
        raise NotFoundError(
            f"model {model!r} has no spec, so an import cannot be checked against it: store the spec first"
            f" (`mlops spec put {model}.yaml`); nothing was uploaded"
        ) from None
    registry.ensure_active(model)
    dataset = DatasetCatalog(registry).find(model, body["dataset_version"])
    if dataset is None:
        raise NotFoundError(
            f"dataset_version {body['dataset_version']!r}: model {model!r} has no such dataset version; the import"
            f" is evaluated on the holdout of one (`mlops data upload FILE --model {model}`, then its version id)"
        )
    sha256 = body["sha256"]
    key = f"{import_key(model, sha256)}{IMPORT_FILE_NAMES[body['format']]}"
    now = registry.clock()
    request = request_id or str(uuid.uuid4())
    grant = ImportGrant(
        model=model,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=int(body["size"]),
        format=body["format"],
        source=body["source"],
        dataset_version=body["dataset_version"],
        caller=caller,
        created_at=now,
        expires_at=(_parse(now) + timedelta(seconds=expires_s)).strftime(_TIME_FORMAT)[:-4] + "Z",
        request_id=request,
        run_name=import_run_name(model, sha256, body["dataset_version"]),
        source_sha256=body.get("source_sha256"),
        run_id=body.get("run_id"),
    )
    item = {
        PK: model_pk(model),
        SK: f"{IMPORT_SK_PREFIX}{sha256}#{now}#{request}",
        "kind": "import",
        **grant.to_dict(),
    }
    registry.audit.append(
        model,
        actor=caller,
        action="model.import_authorized",
        subject=f"s3://{bucket}/{key}",
        after={k: v for k, v in grant.to_dict().items() if k not in ("model", "bucket", "caller", "request_id")},
        request_id=request_id,
        with_ops=[Put(registry.table, item, Condition(item_exists=False))],
    )
    put = presigned_put(
        s3,
        bucket=bucket,
        key=key,
        sha256=sha256,
        size=int(body["size"]),
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
        "size": int(body["size"]),
        "dataset_version": body["dataset_version"],
        "run_name": grant.run_name,
    }


def _parse(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def import_grant_for(registry: Registry, key: str) -> ImportGrant:
    """The newest import grant for the object at ``key`` (``imports/<model>/<sha256>/model.*``).

    Raises
    ------
    InputError
        The key is outside the import layout.
    NotFoundError
        No grant names this content and key (written to S3 directly, not through the import API).
    """
    match = _KEY.match(key)
    if match is None:
        raise InputError(f"object key {key!r} is outside the import layout imports/<model>/<sha256>/model.onnx|pkl")
    model, sha256 = match["model"], match["sha256"]
    found: list[ImportGrant] = []
    start = None
    while True:
        page = registry.store.query(
            registry.table, model_items(model), sk_prefix=sk_prefix(f"{IMPORT_SK_PREFIX}{sha256}#"), start=start
        )
        found.extend(g for g in (ImportGrant.from_item(i) for i in page.items) if g.key == key)
        if not page.last_key:
            break
        start = page.last_key
    if not found:
        raise NotFoundError(f"{key}: no import was authorized for this content (written to S3 directly?)")
    return found[-1]


def import_upload(registry: Registry, grant: ImportGrant) -> DatasetUpload:
    """The training execution's ``upload``: the grant's dataset version, carrying the import."""
    dataset = DatasetCatalog(registry).get(grant.model, grant.dataset_version)
    if not dataset.bucket or not dataset.version_id:
        raise NotFoundError(f"dataset version {grant.dataset_version} of {grant.model!r} has no S3 object version")
    return DatasetUpload(
        bucket=dataset.bucket,
        key=dataset.key,
        version_id=dataset.version_id,
        model=grant.model,
        size=dataset.size,
        uploader=dataset.uploaded_by,
        imported=grant.imported(),
    )


def start_import(sfn_client: Any, state_machine_arn: str, upload: DatasetUpload, run_name: str) -> dict[str, Any]:
    """Start the training pipeline for an import; a duplicate delivery is reported, not run twice."""
    import json

    try:
        response = sfn_client.start_execution(
            stateMachineArn=state_machine_arn, name=run_name, input=json.dumps({"upload": upload.to_dict()})
        )
    except sfn_client.exceptions.ExecutionAlreadyExists:
        return {"started": False, "duplicate": True, "execution_name": run_name}
    return {"started": True, "duplicate": False, "execution_arn": response["executionArn"], "execution_name": run_name}
