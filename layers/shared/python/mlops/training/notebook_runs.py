"""Runs recorded from a notebook (:mod:`mlops.tracking`): parameters, metrics and tags of a model's run.

``POST /models/{model}/runs`` (the import API's function, its own route and permission) records
one run in the registry table under ``NOTEBOOK#<run id>`` of the model's partition, audited as
``run.recorded`` in the model's chain, in one transaction. The recorder is the caller API Gateway
authenticated, never a body field. ``mlops runs list --model M`` lists these runs beside the
training pipeline's (source ``notebook``). Light imports only: the API function has no science layer.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.apierrors import json_depth_over
from mlops.data.datasets import UPLOADER_METADATA_KEY
from mlops.errors import InputError, NotFoundError
from mlops.registry.keys import NOTEBOOK_RUN_SK_PREFIX, SK, model_items, notebook_run_key, sk_prefix
from mlops.registry.origin import IMPORT_FILE_NAMES, IMPORT_FORMATS, ORIGIN_TAG_PREFIX
from mlops.registry.specs import SpecStore
from mlops.registry.tables import Condition, Put
from mlops.registry.versions import ModelVersion, Registry, check_actor, check_model_name
from mlops.storage import presigned_put
from mlops.training.import_grants import IMPORT_URL_SECONDS, MAX_IMPORT_BYTES, run_model_key

NOTEBOOK_SOURCE = "notebook"
TRACKING_SOURCE = "tracking-run"  # an import's origin (mlops.registry.origin.SOURCES): a notebook run's model
MAX_ENTRIES = 200  # params, metrics or tags of one run
MAX_VALUE_CHARS = 1024  # a parameter or tag value as JSON
MAX_DEPTH = 4  # body -> params -> a list value; model -> its fields
MAX_STORED_CHARS = 120_000  # params, metrics and tags as JSON text: the registry item and the audit event
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$")
_RUN_ID = re.compile(r"^nb-[0-9a-f]{20}$")
FIELDS = ("params", "metrics", "tags", "model")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class NotebookRun:
    """One recorded run: who recorded it (AWS verified), when, and what it logged."""

    model: str
    run_id: str
    caller: str
    created_at: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    source: str = NOTEBOOK_SOURCE
    artifact: dict[str, Any] | None = None  # the logged model: bucket, key, format, sha256, size

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> NotebookRun:
        return cls(
            model=str(item["model"]),
            run_id=str(item["run_id"]),
            caller=str(item["caller"]),
            created_at=str(item["created_at"]),
            # stored as JSON text: DynamoDB numbers would lose floats' exact values and types
            params=json.loads(item.get("params_json") or "{}"),
            metrics=json.loads(item.get("metrics_json") or "{}"),
            tags=json.loads(item.get("tags_json") or "{}"),
            artifact=json.loads(item["artifact_json"]) if item.get("artifact_json") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_body(text: str) -> dict[str, Any]:
    """The request body as strict JSON (``NaN`` and ``Infinity`` refused), or :class:`InputError`."""
    if json_depth_over(text, MAX_DEPTH):
        raise InputError(
            f"request body nests deeper than {MAX_DEPTH} levels: a run's body is an object of params,"
            " metrics and tags whose values are scalars or lists of scalars"
        )
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise InputError(f"request body is not valid JSON ({exc}); metrics must be finite numbers") from None
    if not isinstance(body, dict):
        raise InputError(f"request body must be a JSON object with {', '.join(FIELDS)}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InputError(
            f"body field {unknown[0]!r} is not accepted (fields: {', '.join(FIELDS)}); "
            "who recorded the run is taken from your credentials, never from the body"
        )
    return body


def _entries(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise InputError(f"{name}: must be an object of name -> value")
    if len(value) > MAX_ENTRIES:
        raise InputError(f"{name}: {len(value)} entries; at most {MAX_ENTRIES} are accepted")
    for key in value:
        if not _NAME.match(key):
            raise InputError(f"{name}.{key}: a name is 1-128 characters of letters, digits, '_', '.', ':', '/' and '-'")
    return value


def check_run(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Params (JSON scalars or lists of them), metrics (finite numbers) and tags (strings), or
    :class:`InputError` naming the field."""
    params = _entries(body, "params")
    for key, value in params.items():
        check_param(key, value)
    metrics = _entries(body, "metrics")
    for key, value in metrics.items():
        check_metric(key, value)
    tags = _entries(body, "tags")
    for key, value in tags.items():
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise InputError(f"tags.{key}: must be a string of at most {MAX_VALUE_CHARS} characters")
    return params, {k: float(v) for k, v in metrics.items()}, tags


def check_metric(key: str, value: Any) -> None:
    """A metric is a finite number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"metrics.{key}: {value!r} is not a number")
    if not math.isfinite(value):
        raise InputError(f"metrics.{key}: {value!r} is not a finite number")


def check_param(key: str, value: Any) -> None:
    """A parameter is a string, a finite number, a boolean, null, or a list of those."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None or isinstance(item, str | bool):
            continue
        if isinstance(item, int | float) and math.isfinite(item):
            continue
        raise InputError(
            f"params.{key}: {item!r} ({type(item).__name__}) is not a JSON value this run can record"
            " (a string, a finite number, a boolean, null, or a list of those)"
        )
    text = json.dumps(value, allow_nan=False)
    if len(text) > MAX_VALUE_CHARS:
        raise InputError(f"params.{key}: {len(text)} characters as JSON; at most {MAX_VALUE_CHARS} are accepted")


def check_logged_model(value: Any) -> dict[str, Any]:
    """The logged model's ``{"format", "sha256", "size"}``, or :class:`InputError` naming the field."""
    if not isinstance(value, dict) or set(value) != {"format", "sha256", "size"}:
        raise InputError("model: must be an object with exactly format, sha256 and size")
    if value["format"] not in IMPORT_FORMATS:
        raise InputError(f"model.format: must be one of {', '.join(IMPORT_FORMATS)}")
    if not isinstance(value["sha256"], str) or not _SHA256.match(value["sha256"]):
        raise InputError("model.sha256: must be a SHA-256 as 64 lowercase hexadecimal digits")
    size = value["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMPORT_BYTES:
        raise InputError(f"model.size: must be the model's size in bytes, from 1 to {MAX_IMPORT_BYTES:,}")
    return dict(value)


def check_run_body(
    body: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float], dict[str, str], dict[str, Any] | None]:
    """A run's params, metrics, tags and logged model (or None), each checked (:class:`InputError` naming the field)."""
    params, metrics, tags = check_run(body)
    logged = check_logged_model(body["model"]) if body.get("model") is not None else None
    stored = sum(len(json.dumps(values, sort_keys=True)) for values in (params, metrics, tags))
    if stored > MAX_STORED_CHARS:  # non-ASCII text is stored escaped (up to 12 characters for one)
        raise InputError(
            f"params, metrics and tags: {stored:,} characters as stored; at most {MAX_STORED_CHARS:,} are"
            " accepted (a DynamoDB item holds 400 KB)"
        )
    return params, metrics, tags, logged


def record_run(
    registry: Registry,
    model: str,
    body: dict[str, Any],
    *,
    caller: str,
    request_id: str | None = None,
    s3: Any = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Record ``caller``'s run of ``model`` and audit it; answers the run as stored and, when the run
    logged a model, ``upload``: a presigned PUT of exactly those bytes under
    ``imports/<model>/runs/<run id>/`` (not an import's key, so its arrival starts nothing and is
    never taken for an import; ``mlops models import M --run`` imports it through its own grant).

    Raises
    ------
    InputError
        A bad name or value (the message names it: ``metrics.auc: nan is not a finite number``).
    NotFoundError
        The model has no spec.
    TransitionError
        The model is archived.
    """
    check_actor(caller)
    check_model_name(model)
    params, metrics, tags, logged = check_run_body(body)
    if logged is not None and (s3 is None or not bucket):
        raise InputError("model: this deployment cannot store a run's model")
    try:
        SpecStore(registry).get(model)
    except NotFoundError:
        raise NotFoundError(
            f"model {model!r} has no spec, so a run cannot be recorded for it: store the spec first"
            f" (`mlops spec put {model}.yaml`)"
        ) from None
    registry.ensure_active(model)
    run_id = f"nb-{uuid.uuid4().hex[:20]}"
    artifact = None
    if logged is not None:
        key = f"{run_model_key(model, run_id)}{IMPORT_FILE_NAMES[logged['format']]}"
        artifact = {"bucket": bucket, "key": key, **logged}
    run = NotebookRun(
        model=model,
        run_id=run_id,
        caller=caller,
        created_at=registry.clock(),
        params=params,
        metrics=metrics,
        tags=tags,
        artifact=artifact,
    )
    item = {
        **notebook_run_key(model, run.run_id),
        "kind": "notebook_run",
        "model": model,
        "run_id": run.run_id,
        "caller": caller,
        "created_at": run.created_at,
        "params_json": json.dumps(params, sort_keys=True),
        "metrics_json": json.dumps(metrics, sort_keys=True),
        "tags_json": json.dumps(tags, sort_keys=True),
        **({"artifact_json": json.dumps(artifact, sort_keys=True)} if artifact else {}),
    }
    registry.audit.append(
        model,
        actor=caller,
        action="run.recorded",
        subject=f"{model}/runs/{run.run_id}",
        after={
            "run_id": run.run_id,
            "source": NOTEBOOK_SOURCE,
            "params": params,
            "metrics": metrics,
            "tags": tags,
            **({"artifact": artifact} if artifact else {}),
        },
        request_id=request_id,
        with_ops=[Put(registry.table, item, Condition(item_exists=False))],
    )
    answer = run.to_dict()
    if artifact is not None:
        answer["upload"] = presigned_put(
            s3,
            bucket=str(bucket),
            key=artifact["key"],
            sha256=artifact["sha256"],
            size=artifact["size"],
            who=caller,
            metadata_key=UPLOADER_METADATA_KEY,
            expires_s=IMPORT_URL_SECONDS,
        )
    return answer


def list_notebook_runs(registry: Registry, model: str) -> list[NotebookRun]:
    """The model's notebook runs, newest first."""
    runs: list[NotebookRun] = []
    start = None
    while True:
        page = registry.store.query(
            registry.table, model_items(model), sk_prefix=sk_prefix(NOTEBOOK_RUN_SK_PREFIX), start=start
        )
        runs.extend(NotebookRun.from_item(i) for i in page.items if str(i.get(SK, "")).startswith("NOTEBOOK#"))
        if not page.last_key:
            break
        start = page.last_key
    runs.sort(key=lambda r: r.created_at, reverse=True)
    return runs


def is_notebook_run_id(run_id: str) -> bool:
    """``nb-`` and 20 hexadecimal digits: the ids :func:`record_run` gives."""
    return bool(_RUN_ID.match(run_id))


def imported_from(registry: Registry, model: str, run_id: str) -> list[ModelVersion]:
    """The versions of ``model`` imported from notebook run ``run_id`` (origin ``tracking-run``), oldest first."""
    found = [
        version
        for version in registry.iter_versions(model)
        if version.tags.get(f"{ORIGIN_TAG_PREFIX}run_id") == run_id
        and version.tags.get(f"{ORIGIN_TAG_PREFIX}source") == TRACKING_SOURCE
    ]
    return sorted(found, key=lambda version: version.version)


def get_notebook_run(registry: Registry, model: str, run_id: str) -> NotebookRun:
    """One notebook run, or :class:`NotFoundError` naming it."""
    item = registry.store.get(registry.table, notebook_run_key(model, run_id)) if _RUN_ID.match(run_id) else None
    if item is None:
        raise NotFoundError(f"model {model!r} has no notebook run {run_id!r} (`mlops runs list --model {model}`)")
    return NotebookRun.from_item(item)
