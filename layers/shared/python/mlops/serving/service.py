"""Online inference: request models from the spec, a bounded model cache, canary and shadow, capture.

One :class:`InferenceService` per execution environment serves every model of the deployment:

- **requests** are validated against a pydantic model built from the serving version's spec
  (:func:`request_models`, cached per model and spec revision): one record (``{"record": {...}}``)
  or a batch (``{"records": [...]}``, at most ``max_batch_size``). Every problem is a 4xx
  :class:`ServingError` naming the record index and the field;
- **models** are loaded once after their bytes hash to the sha256 the registry recorded (an ONNX
  export when the version has one, served with onnxruntime and no scikit-learn; otherwise the
  pickled pipeline through :func:`mlops.training.artifacts.load_artifact`), and kept in an LRU cache bounded
  in bytes (:class:`ModelCache`);
- **aliases** are re-read at most every ``alias_ttl_seconds``; when the champion or challenger
  moves, the next request after the check serves the new version;
- **rollouts** come from the model's rollout item (:func:`mlops.registry.rollouts.get_rollout`): in
  ``canary`` mode the challenger answers ``share`` of the requests; in ``shadow`` mode it predicts
  on every request, its answer is captured and never returned. A challenger without a matching
  rollout item is treated as a shadow (it never answers unless a canary was configured);
- **capture**: a sample (``capture_rate``) of requests and answers goes to
  ``captures/<model>/<yyyy>/<mm>/<dd>/<hour>/<request-id>.jsonl`` on a background thread; a failed
  capture write is logged and counted, never turned into a failed prediction.

Serving reads a version's spec as a :class:`mlops.spec.view.SpecView` (validated when it was
stored); pydantic is imported only to build the request models, which explain a refused request
and describe the API, so a cold start's first valid prediction does not import it.

Nothing here reads the environment or creates clients at import time: :class:`ServingSettings`
reads the environment when asked, and clients are passed in.

Examples
--------
>>> service = InferenceService(registry, artifacts=MemoryArtifacts({...}))  # doctest: +SKIP
>>> service.predict("churn", '{"record": {...}}', content_type="application/json", request_id="r1")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import numpy as np

from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError
from mlops.registry.rollouts import get_rollout
from mlops.registry.versions import ModelVersion, Registry
from mlops.spec.view import FeatureType, FeatureView, SpecView

if TYPE_CHECKING:  # pydantic is imported where a request model is built, not on a cold start's first prediction
    from pydantic import BaseModel, TypeAdapter, ValidationError

    from mlops.spec.model import Feature, ModelSpec
from mlops.values import canonical_label as _canonical_label

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_ALIAS_TTL_SECONDS = 30.0
DEFAULT_CAPTURE_RATE = 1.0
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
# Share of the function's memory the model cache may use; the rest is the runtime and requests.
CACHE_MEMORY_SHARE = 0.5
CAPTURE_PREFIX = "captures"
ONNX_TAG_URI = "onnx_uri"
ONNX_TAG_SHA256 = "onnx_sha256"
MISSING_CATEGORY = "(missing)"
MAX_DETAILS = 50
_NS_PER_DAY = 86_400 * 10**9
# Deepest JSON nesting a request may have. A valid request is 3 levels deep ({"records": [{...}]});
# the limit is checked by a byte scan before parsing, so no parser ever recurses on a caller's body.
DEFAULT_MAX_JSON_DEPTH = 32
# Datetimes a model can take: the range of datetime64[ns], which training and serving both use
# (whole days inside it, in UTC). Outside it numpy wraps around and pandas gives NaT.
EARLIEST_DATETIME = datetime(1677, 9, 22)
LATEST_DATETIME = datetime(2262, 4, 10, 23, 59, 59, 999999)
# Numbers a model can take: scikit-learn's trees and the ONNX graph compute in float32, so a larger
# magnitude becomes infinity there (scikit-learn then refuses the whole batch).
FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------------------------- errors
class ServingError(MlopsError):
    """A request the endpoint answers with an error: HTTP ``status``, a stable ``code``, details.

    ``details`` are ``{"record": index, "field": name, "problem": code, "message": text}`` items.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]] = (), code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = [dict(d) for d in details]
        if code is not None:
            self.code = code

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON error body (never internals)."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if request_id:
            body["request_id"] = request_id
        return body


class RequestError(ServingError):
    """The request body is not a valid prediction request (400)."""


class PayloadTooLargeError(ServingError):
    """More records or bytes than the endpoint takes (413)."""

    status = 413
    code = "batch_too_large"


class UnsupportedMediaTypeError(ServingError):
    """The body is not declared as JSON (415)."""

    status = 415
    code = "unsupported_media_type"


class UnknownModelError(ServingError):
    """The registry does not know the model (404)."""

    status = 404
    code = "unknown_model"


class ModelArchivedError(ServingError):
    """The model is archived (410): it serves nothing until ``mlops models unarchive``."""

    status = 410
    code = "model_archived"


class NoChampionError(ServingError):
    """The model exists but nothing serves it yet (409: approve and deploy a version first)."""

    status = 409
    code = "no_champion"


class ArtifactRefusedError(ServingError):
    """The serving version's artifact failed its integrity check and is not loaded (503)."""

    status = 503
    code = "artifact_refused"


class ServingUnavailableError(ServingError):
    """The platform cannot serve right now (503); the message holds no internals."""

    status = 503
    code = "unavailable"


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ServingSettings:
    """Knobs of the inference service.

    Attributes
    ----------
    max_batch_size
        Most records one request may hold (``MAX_BATCH_SIZE``, default 1000).
    alias_ttl_seconds
        How long a model's aliases and rollout are trusted before re-reading (``ALIAS_TTL_SECONDS``).
    cache_bytes
        Budget of the model cache (half of ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` MiB by default).
    capture_rate
        Share of requests captured to S3 (``CAPTURE_SAMPLE_RATE``, 0..1).
    max_body_bytes
        Largest request body accepted (``MAX_BODY_BYTES``).
    max_json_depth
        Deepest nesting of arrays and objects a request body may have (``MAX_JSON_DEPTH``, default 32).
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    alias_ttl_seconds: float = DEFAULT_ALIAS_TTL_SECONDS
    cache_bytes: int = 512 * 1024 * 1024
    capture_rate: float = DEFAULT_CAPTURE_RATE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServingSettings:
        """Settings from environment variables (pass ``os.environ``); bad values are named."""

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"environment variable {name}={raw!r} is not a number") from None
            if not low <= value <= high or not math.isfinite(value):
                raise InputError(f"environment variable {name}={raw!r} must be between {low} and {high}")
            return value

        memory_mib = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 1024, 128, 10240)
        return cls(
            max_batch_size=int(number("MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE, 1, 100_000)),
            alias_ttl_seconds=number("ALIAS_TTL_SECONDS", DEFAULT_ALIAS_TTL_SECONDS, 0, 3600),
            cache_bytes=int(memory_mib * 1024 * 1024 * CACHE_MEMORY_SHARE),
            capture_rate=number("CAPTURE_SAMPLE_RATE", DEFAULT_CAPTURE_RATE, 0, 1),
            max_body_bytes=int(number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 10 * 1024 * 1024)),
            max_json_depth=int(number("MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH, 3, 256)),
        )


# ---------------------------------------------------------------------------------------------- schema
_DATETIME_RANGE = (
    f"must be between {EARLIEST_DATETIME:%Y-%m-%d}T00:00:00Z and {LATEST_DATETIME:%Y-%m-%d}T23:59:59Z"
    " (UTC; the range a model's datetime features hold)"
)
_ONE_DAY = timedelta(days=1)


def utc_datetime(value: str) -> datetime:
    """A request's ISO 8601 date or date-time as a naive UTC datetime inside the model's range.

    Without an offset the time is UTC (as in training). An offset is applied without
    ``astimezone``: near the ends of the calendar (``0001-01-01T00:00:00+01:00``) that overflows.

    Raises
    ------
    ValueError
        Not ISO 8601, or outside ``EARLIEST_DATETIME`` .. ``LATEST_DATETIME`` once in UTC (the message
        says which; pydantic and :class:`RecordValidator` turn it into a 400 naming the field).
    """
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date or date-time, for example 2026-10-01T12:00:00Z") from None
    local = parsed.replace(tzinfo=None)
    # An offset is under a day, so a local time within a day of the range converts without overflow.
    if not EARLIEST_DATETIME - _ONE_DAY <= local <= LATEST_DATETIME + _ONE_DAY:
        raise ValueError(_DATETIME_RANGE)
    offset = parsed.utcoffset()
    utc = local - offset if offset else local
    if not EARLIEST_DATETIME <= utc <= LATEST_DATETIME:
        raise ValueError(_DATETIME_RANGE)
    return utc


def _iso_datetime(value: str) -> str:
    utc_datetime(value)
    return value


def _numeric_bounds(feature: Feature | FeatureView) -> tuple[float, float]:
    """The spec's bounds of a number feature (as written), narrowed to what float32 holds."""
    low: float = -FLOAT32_MAX if feature.min is None or feature.min < -FLOAT32_MAX else feature.min
    high: float = FLOAT32_MAX if feature.max is None or feature.max > FLOAT32_MAX else feature.max
    return low, high


def _field(feature: Feature | FeatureView) -> tuple[Any, Any]:
    """The annotation and default of one feature in the request record model."""
    from pydantic import AfterValidator, Field

    kind = feature.type
    constraints: dict[str, Any] = {"description": feature.description or None}
    annotation: Any
    low, high = _numeric_bounds(feature)
    if kind is FeatureType.FLOAT:
        annotation = float
        constraints.update(ge=low, le=high, allow_inf_nan=False)
    elif kind is FeatureType.INT:
        if feature.allowed:
            annotation = Literal[tuple(int(v) for v in feature.allowed if not isinstance(v, bool))]
        else:
            annotation = int
            # Whole-number bounds: pydantic refuses a float bound on int (float32's range when unbounded).
            constraints.update(ge=math.ceil(low), le=math.floor(high))
    elif kind is FeatureType.BOOL:
        annotation = bool
    elif kind is FeatureType.DATETIME:
        annotation = Annotated[str, AfterValidator(_iso_datetime)]
        constraints["json_schema_extra"] = {"format": "date-time"}
    elif feature.allowed:
        annotation = Literal[tuple(feature.allowed)]
    else:
        annotation = str
        if feature.regex:
            constraints["pattern"] = feature.regex
    constraints = {k: v for k, v in constraints.items() if v is not None}
    # String features are identifiers the model does not use: optional, but checked when given.
    optional = feature.nullable or kind is FeatureType.STRING
    if optional:
        return annotation | None, Field(default=None, **constraints)
    return annotation, Field(**constraints)


class RequestModels:
    """How one model's requests are checked (built from its spec, see :func:`request_models`).

    Valid requests are checked column by column (:class:`RecordValidator`: one pass over each
    feature's values, the numeric bounds with numpy), not one pydantic model instance per record.
    The pydantic models (``record``, ``single``, ``batch``) are built on first use: they explain a
    refused request with the same details as before (record index, field, problem, message) and
    give the JSON Schema of the OpenAPI document, and are not needed to serve a valid request.
    """

    def __init__(self, spec: ModelSpec | SpecView, *, spec_revision: int | None, max_batch_size: int) -> None:
        self.spec = spec
        self.model = spec.name
        self.spec_revision = spec_revision
        self.max_batch_size = max_batch_size
        self.validator = RecordValidator(spec)
        self._built: tuple[type[BaseModel], type[BaseModel], type[BaseModel], TypeAdapter[Any]] | None = None
        self._lock = threading.Lock()

    def _pydantic(self) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel], TypeAdapter[Any]]:
        built = self._built
        if built is not None:
            return built
        from pydantic import ConfigDict, Field, TypeAdapter, create_model

        with self._lock:
            if self._built is None:
                name = _class_name(self.spec.name)
                config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re", title=f"{name}Record")
                fields = {f.name: _field(f) for f in self.spec.features}
                record = create_model(f"{name}Record", __config__=config, **fields)  # type: ignore[call-overload]
                strict = ConfigDict(extra="forbid", strict=True)
                single = create_model(f"{name}SingleRequest", __config__=strict, record=(record, ...))
                batch = create_model(
                    f"{name}BatchRequest",
                    __config__=strict,
                    records=(list[record], Field(min_length=1, max_length=self.max_batch_size)),
                )
                self._built = (record, single, batch, TypeAdapter(list[record]))
            return self._built

    @property
    def record(self) -> type[BaseModel]:
        """One record: every feature a field, extra fields refused."""
        return self._pydantic()[0]

    @property
    def single(self) -> type[BaseModel]:
        """``{"record": Record}``."""
        return self._pydantic()[1]

    @property
    def batch(self) -> type[BaseModel]:
        """``{"records": [Record, ...]}`` (1 to ``max_batch_size`` records)."""
        return self._pydantic()[2]

    @property
    def records_adapter(self) -> TypeAdapter[Any]:
        """A list of records (what explains a refused batch)."""
        return self._pydantic()[3]

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of one record."""
        return self.record.model_json_schema()

    def validate(self, records: list[Any]) -> list[dict[str, Any]]:
        """Validated records (every feature a key, in spec order), or :class:`RequestError` naming each problem."""
        valid = self.validator.validate(records)
        if valid is not None:
            return valid
        # Something is off (or unusual, like True for a Literal[1]): pydantic has the last word.
        from pydantic import ValidationError

        try:
            validated = self.records_adapter.validate_python(records)
        except ValidationError as exc:
            details = _details(exc)
            _say_what_to_send(details, records, self.spec)
            raise RequestError(_summary(details, exc.error_count()), details=details, code="invalid_record") from None
        return [r.model_dump() for r in validated]


_NONE = type(None)


class RecordValidator:
    """Column-wise check of request records against a spec: accepts exactly what is surely valid.

    :meth:`validate` returns the records as the pydantic record model would dump them (every
    feature a key, floats as float) when every value is of the JSON type its feature takes and
    within its constraints; otherwise None, and the caller asks pydantic, which names each problem.
    It never accepts what the pydantic model refuses (a property test checks the two agree).
    """

    def __init__(self, spec: ModelSpec | SpecView) -> None:
        self.names = [f.name for f in spec.features]
        self.known = frozenset(self.names)
        optional = {f.name for f in spec.features if f.nullable or f.type is FeatureType.STRING}
        self.required = frozenset(self.known - optional)
        self.checks: list[tuple[str, Callable[[list[Any]], bool]]] = [
            (f.name, _column_check(f, f.name in optional)) for f in spec.features
        ]
        self.floats = [f.name for f in spec.features if f.type is FeatureType.FLOAT]

    def validate(self, records: list[Any]) -> list[dict[str, Any]] | None:
        """The records ready for the model, or None when any record needs a closer look.

        Records that hold every feature are returned themselves (ints of float features turned
        into floats in place); the others as new dicts with the missing optional features None.
        """
        known, required = self.known, self.required
        for record in records:
            if type(record) is not dict:
                return None
            keys = record.keys()
            if not (keys <= known and keys >= required):
                return None
        for name, check in self.checks:
            if not check([r.get(name) for r in records]):
                return None
        names, floats, count = self.names, self.floats, len(self.names)
        # A record with every feature is used as it is (the request's own dict); others are completed.
        out = [record if len(record) == count else {name: record.get(name) for name in names} for record in records]
        for name in floats:  # an int given for a float feature is a float, as pydantic dumps it
            for row in out:
                if type(row[name]) is int:
                    row[name] = float(row[name])
        return out


def _column_check(feature: Feature | FeatureView, optional: bool) -> Callable[[list[Any]], bool]:
    """A function that says whether one feature's values (a column) are surely valid."""
    kind = feature.type
    low, high = _numeric_bounds(feature)
    extra: set[type] = {_NONE} if optional else set()
    pattern = re.compile(feature.regex) if feature.regex else None

    def typed(values: list[Any], allowed: set[type]) -> list[Any] | None:
        kinds = set(map(type, values))
        if not kinds <= allowed | extra:
            return None
        return [v for v in values if v is not None] if _NONE in kinds else values

    if kind is FeatureType.FLOAT:

        def check_float(values: list[Any]) -> bool:
            present = typed(values, {float, int})
            if present is None:
                return False
            if not present:
                return True
            try:
                column = np.asarray(present, dtype=np.float64)
            except (OverflowError, ValueError):
                return False
            if not np.isfinite(column).all():
                return False
            return bool(column.min() >= low and column.max() <= high)

        return check_float
    if kind is FeatureType.INT:
        if feature.allowed:
            choices = frozenset(int(v) for v in feature.allowed if not isinstance(v, bool))

            def check_int_choice(values: list[Any]) -> bool:
                present = typed(values, {int})
                return present is not None and all(v in choices for v in present)

            return check_int_choice

        def check_int(values: list[Any]) -> bool:
            present = typed(values, {int})
            if present is None:
                return False
            if not present:
                return True
            return min(present) >= low and max(present) <= high

        return check_int
    if kind is FeatureType.BOOL:
        return lambda values: typed(values, {bool}) is not None
    if kind is FeatureType.DATETIME:

        def check_datetime(values: list[Any]) -> bool:
            present = typed(values, {str})
            if present is None:
                return False
            try:
                for text in set(present):
                    _iso_datetime(text)
            except ValueError:
                return False
            return True

        return check_datetime
    if kind is FeatureType.CATEGORY and feature.allowed:
        # Literal values match by value and JSON type here (True is not 1); pydantic judges the rest.
        choices_typed = frozenset((type(v), v) for v in feature.allowed)

        def check_choice(values: list[Any]) -> bool:
            if not optional and None in values:
                return False
            try:
                return all((type(v), v) in choices_typed for v in values if v is not None)
            except TypeError:  # an unhashable value (a list or an object)
                return False

        return check_choice

    def check_text(values: list[Any]) -> bool:
        present = typed(values, {str})
        if present is None:
            return False
        if pattern is not None:
            search = pattern.search
            return all(search(v) is not None for v in set(present))
        return True

    return check_text


_MODELS_CACHE: dict[tuple[str, int | None, str, int], RequestModels] = {}
_MODELS_LOCK = threading.Lock()


def _class_name(model: str) -> str:
    return "".join(part.capitalize() for part in model.replace("-", " ").split()) or "Model"


def request_models(spec: ModelSpec | SpecView, *, spec_revision: int | None, max_batch_size: int) -> RequestModels:
    """The request models of a spec, cached per (model, spec revision, spec fingerprint, batch limit).

    Parameters
    ----------
    spec
        The spec of the serving version (its features and constraints).
    spec_revision
        The spec revision the serving version was trained under (part of the cache key).
    max_batch_size
        Most records a batch may hold.

    Returns
    -------
    RequestModels
        The column-wise validator, and (built on first use) the pydantic models ``record`` (one
        record: every feature a field, extra fields refused), ``single`` (``{"record": Record}``)
        and ``batch`` (``{"records": [Record, ...]}``).
    """
    key = (spec.name, spec_revision, spec.fingerprint(), max_batch_size)
    cached = _MODELS_CACHE.get(key)
    if cached is not None:
        return cached
    with _MODELS_LOCK:
        built = _MODELS_CACHE.get(key)
        if built is None:
            built = RequestModels(spec, spec_revision=spec_revision, max_batch_size=max_batch_size)
            _MODELS_CACHE[key] = built
        return built


_PROBLEMS = {
    "missing": "missing_field",
    "extra_forbidden": "extra_field",
    "literal_error": "not_allowed",
    "string_pattern_mismatch": "pattern_mismatch",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "finite_number": "out_of_range",
    "value_error": "invalid_value",
}


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:MAX_DETAILS]:
        location = list(error["loc"])
        record = location[0] if location and isinstance(location[0], int) else None
        field_name = ".".join(str(p) for p in location[1:]) if record is not None else ".".join(map(str, location))
        problem = _PROBLEMS.get(error["type"], "wrong_type" if error["type"].endswith("_type") else error["type"])
        details.append({"record": record, "field": field_name, "problem": problem, "message": error["msg"]})
    return details


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "the JSON boolean " + ("true" if value else "false")
    if isinstance(value, int | float):
        return f"the JSON number {json.dumps(value)}"
    if isinstance(value, str):
        return f"the JSON string {json.dumps(value)}"
    return f"a JSON {'array' if isinstance(value, list) else 'object' if isinstance(value, dict) else 'value'}"


def _number_text(value: str) -> int | float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if re.fullmatch(r"[+-]?\d+", value.strip()) else number


def _what_to_send(feature: Feature | FeatureView, value: Any) -> str | None:
    """What a caller should send instead of ``value`` when only its JSON type is wrong, else None."""
    kind = feature.type
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in (FeatureType.CATEGORY, FeatureType.STRING):
        allowed = feature.allowed or []
        if allowed and not all(isinstance(a, str) for a in allowed):
            # Categories the spec writes as numbers (allowed: [1, 2]) take numbers: match by label.
            match = next((a for a in allowed if _canonical_label(a) == _canonical_label(value)), None)
            if match is not None and type(match) is not type(value):
                return f"send this category value as JSON {json.dumps(match)}, not {json.dumps(value)}"
            return None
        if not is_number and not isinstance(value, bool):
            return None
        text = _canonical_label(value)
        example = text if not allowed or text in {_canonical_label(a) for a in allowed} else str(allowed[0])
        what = "category" if kind is FeatureType.CATEGORY else "string"
        return f"send {what} values as strings, e.g. {json.dumps(example)}"
    if kind in (FeatureType.INT, FeatureType.FLOAT) and isinstance(value, str):
        number = _number_text(value)
        if number is None or (kind is FeatureType.INT and not isinstance(number, int)):
            return None
        return f"send numbers as JSON numbers, e.g. {json.dumps(number)}, not {json.dumps(value)}"
    if kind is FeatureType.INT and isinstance(value, float) and value.is_integer():
        return f"send whole numbers without a decimal point, e.g. {int(value)}"
    if kind is FeatureType.BOOL and (is_number or isinstance(value, str)):
        return "send true or false (JSON booleans)"
    if kind is FeatureType.DATETIME and (is_number or isinstance(value, bool)):
        return 'send an ISO 8601 date or date-time as a string, e.g. "2026-10-01T12:00:00Z"'
    return None


def _say_what_to_send(details: list[dict[str, Any]], records: list[Any], spec: ModelSpec | SpecView) -> None:
    """Type mismatches get a message that says what to send (``send category values as strings``)."""
    features = {f.name: f for f in spec.features}
    for detail in details:
        index, feature = detail["record"], features.get(detail["field"])
        if detail["problem"] not in ("wrong_type", "not_allowed") or feature is None or index is None:
            continue
        record = records[index] if 0 <= index < len(records) else None
        if not isinstance(record, dict) or detail["field"] not in record:
            continue
        value = record[detail["field"]]
        hint = _what_to_send(feature, value)
        if hint is not None:
            detail["message"] = f"{hint} (got {_json_kind(value)}; {detail['message']})"


def _summary(details: list[dict[str, Any]], total: int) -> str:
    first = details[0]
    where = f"record {first['record']}" if first["record"] is not None else "request"
    more = f" (and {total - 1} more problem(s))" if total > 1 else ""
    return f"{where}, field {first['field']!r}: {first['message']}{more}"


# Brackets and quotes are all the depth scan keeps of a body; each bracket's step in the depth.
_DEPTH_DROP = bytes(b for b in range(256) if b not in b'[]{}"')
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, by a scan of its bytes (no parser).

    Brackets inside strings are skipped: escaped backslashes and escaped quotes are removed first
    (``bytes.replace``, left to right, as a JSON reader pairs them), every byte but brackets and
    quotes is dropped (``bytes.translate``), and numpy sums the steps of the brackets that an even
    number of quotes precedes. A few milliseconds for a 1,000-record batch, about 20 times less
    than parsing it. A malformed text gets a depth too (the parser refuses it afterwards).

    Examples
    --------
    >>> json_depth(b'{"records": [{"a": "[[[[", "b": "\\\\"}]}')
    3
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(None, _DEPTH_DROP)
    if not kept:
        return 0
    codes = np.frombuffer(kept, dtype=np.uint8)
    outside = (np.cumsum(codes == ord('"'), dtype=np.int32) & 1) == 0
    steps = np.where(outside, _DEPTH_STEP[codes], 0)
    return max(0, int(np.cumsum(steps, dtype=np.int32).max()))


def _check_depth(raw: bytes, max_depth: int) -> None:
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # too few brackets to be deeper than the limit: no scan
    depth = json_depth(raw)
    if depth > max_depth:
        raise RequestError(
            f"request body nests arrays and objects {depth} levels deep; at most {max_depth} are accepted"
            ' (a request is {"record": {...}} or {"records": [{...}, ...]} with plain values)',
            code="too_deeply_nested",
        )


def parse_request(
    body: str | bytes | None,
    content_type: str | None,
    models: RequestModels,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> tuple[list[dict[str, Any]], bool]:
    """Validate a prediction request body.

    Parameters
    ----------
    body
        The raw body.
    content_type
        The request's ``Content-Type`` header (must be ``application/json``).
    models
        The model's request models.
    max_body_bytes
        Largest body accepted.
    max_depth
        Deepest nesting of arrays and objects accepted, checked before the body is parsed.

    Returns
    -------
    tuple of (list of dict, bool)
        The records as plain dicts (validated) and whether the request was a single record.

    Raises
    ------
    ServingError
        415 for a content type other than JSON; 413 for a body or batch over the limits; 400 for
        a body nested deeper than ``max_depth``, malformed JSON, a body that is neither
        ``{"record": ...}`` nor ``{"records": [...]}``, an empty batch, or records that break the
        schema (each problem names record index and field; a datetime outside the range a model
        holds, or a number outside float32's, is such a problem).
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, not {content_type or '(none)'}", code="unsupported_media_type"
        )
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if len(raw) > max_body_bytes:
        raise PayloadTooLargeError(
            f"request body is {len(raw)} bytes; at most {max_body_bytes} are accepted", code="body_too_large"
        )
    _check_depth(raw, max_depth)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RequestError(f"request body is not valid JSON{where}", code="malformed_json") from None
    if not isinstance(document, dict) or len(document) != 1 or next(iter(document)) not in ("record", "records"):
        keys = sorted(document) if isinstance(document, dict) else []
        raise RequestError(
            'request body must be an object with exactly one key, "record" (one record) or "records" (a batch)'
            + (f"; got keys {keys}" if keys else f"; got {type(document).__name__}"),
            code="bad_request_shape",
        )
    single = "record" in document
    records = [document["record"]] if single else document["records"]
    if not isinstance(records, list):
        raise RequestError('"records" must be a list of records', code="bad_request_shape")
    if not records:
        raise RequestError('"records" is empty: send at least one record', code="empty_batch")
    if len(records) > models.max_batch_size:
        raise PayloadTooLargeError(
            f"batch of {len(records)} records; at most {models.max_batch_size} per request", code="batch_too_large"
        )
    return models.validate(records), single


# ---------------------------------------------------------------------------------------------- predictors
@dataclass
class Prediction:
    """What a model said about a batch: one prediction per record (and class probabilities)."""

    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None


class Predictor(Protocol):
    """A loaded model (ONNX or scikit-learn) that predicts validated records."""

    kind: str
    nbytes: int

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction: ...


def _datetime64(value: str | None) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "ns")
    return np.datetime64(utc_datetime(value), "ns")  # validated: inside the range datetime64[ns] holds


def feature_columns(records: Sequence[Mapping[str, Any]], spec: ModelSpec | SpecView) -> dict[str, np.ndarray]:
    """The model-input columns of validated records, without pandas (what the ONNX graph takes).

    Same values as :func:`mlops.training.fit.model_input`: numbers and booleans as float (missing
    NaN), categories as canonical text (missing ``"(missing)"``), each datetime as ``__days`` and
    ``__month``; string features left out. Shapes are ``[N, 1]``.
    """
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        name = feature.name
        kind = feature.type
        if kind is FeatureType.STRING:
            continue
        values = [r.get(name) for r in records]
        if kind in (FeatureType.FLOAT, FeatureType.INT, FeatureType.BOOL):
            # None becomes NaN; through float64 first, as float(v) would, then to the graph's float32.
            columns[name] = np.array(values, dtype=np.float64).astype(np.float32)
        elif kind is FeatureType.CATEGORY:
            # A batch repeats few distinct values: label each once (keyed by type too: True is not 1).
            keys = [(type(v), v) for v in values]
            labels = {k: MISSING_CATEGORY if k[1] is None else _canonical_label(k[1]) for k in set(keys)}
            columns[name] = np.array([labels[k] for k in keys], dtype=object)
        else:
            parsed = {v: _datetime64(v) for v in set(values)}
            stamps = np.array([parsed[v] for v in values], dtype="datetime64[ns]")
            missing = np.isnat(stamps)
            ns = stamps.astype("int64").astype(np.float64)
            months = stamps.astype("datetime64[M]").astype("int64") % 12 + 1
            columns[f"{name}__days"] = np.where(missing, np.nan, ns / _NS_PER_DAY).astype(np.float32)
            columns[f"{name}__month"] = np.where(missing, np.nan, months).astype(np.float32)
    return {k: v.reshape(-1, 1) for k, v in columns.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _class_values(labels: Iterable[Any], spec: ModelSpec | SpecView) -> list[Any]:
    """Model class labels as the spec writes them (so 1 comes back as 1, not "1")."""
    by_text = {_canonical_label(c): c for c in spec.target.classes or []}
    return [by_text.get(_canonical_label(_plain(c)), _plain(c)) for c in labels]


class OnnxPredictor:
    """An ONNX export (see :mod:`mlops.training.export`) run by onnxruntime: no scikit-learn, no code on load."""

    kind = "onnx"

    def __init__(self, data: bytes, spec: ModelSpec | SpecView) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.spec = spec
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.nbytes = 2 * len(data) + 64 * 1024
        self.classes: list[Any] | None = None
        meta = self.session.get_modelmeta().custom_metadata_map
        # The spec's column behind each graph input, in order (graph input names are identifiers
        # made from the column names); models exported before this record were named as-is.
        self.columns = json.loads(meta["columns"]) if "columns" in meta else list(self.inputs)
        if spec.task == "classification":
            labels = json.loads(meta["classes"]) if "classes" in meta else list(spec.target.classes or [])
            self.classes = _class_values(labels, spec)

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        columns = feature_columns(records, self.spec)
        feeds = {name: columns[column] for name, column in zip(self.inputs, self.columns, strict=True)}
        outputs = self.session.run(None, feeds)
        if self.classes is None:
            values = np.asarray(outputs[0], dtype=np.float64).ravel()
            return Prediction([float(v) for v in values])
        probabilities = np.asarray(outputs[self.outputs.index("probabilities")], dtype=np.float64)
        best = probabilities.argmax(axis=1)  # first maximum wins, as in scikit-learn
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


class SklearnPredictor:
    """A pickled scikit-learn pipeline (versions registered before ONNX export; needs pandas)."""

    kind = "sklearn"

    def __init__(self, pipeline: Any, spec: ModelSpec, nbytes: int) -> None:
        self.pipeline = pipeline
        self.spec = spec
        self.nbytes = nbytes
        self.classes = (
            _class_values(pipeline.classes_, spec)
            if spec.task == "classification" and hasattr(pipeline, "classes_")
            else None
        )

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        import pandas as pd

        from mlops.training.fit import model_input

        frame = pd.DataFrame.from_records(list(records), columns=self.spec.feature_names)
        x = model_input(frame, self.spec)
        if self.classes is None:
            return Prediction([float(v) for v in self.pipeline.predict(x)])
        probabilities = np.asarray(self.pipeline.predict_proba(x), dtype=np.float64)
        best = probabilities.argmax(axis=1)
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


def records_from_frame(frame: Any, spec: ModelSpec | SpecView) -> list[dict[str, Any]]:
    """Typed training rows (a frame from :func:`mlops.training.fit.coerce_frame`) as request records."""
    records: list[dict[str, Any]] = []
    names = [f.name for f in spec.features if f.name in frame.columns]
    kinds = {f.name: f.type for f in spec.features}
    for row in frame[names].itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is np.datetime64("NaT"):
                record[name] = None
                continue
            kind = kinds[name]
            if kind is FeatureType.DATETIME:
                record[name] = None if str(value) == "NaT" else str(np.datetime64(value, "s")) + "Z"
            elif kind is FeatureType.INT:
                record[name] = int(value)
            elif kind is FeatureType.BOOL:
                record[name] = bool(value)
            elif kind is FeatureType.FLOAT:
                record[name] = float(value)
            else:
                record[name] = _plain(value)
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------- artifacts
class ArtifactSource(Protocol):
    """Reads artifact bytes by URI (``s3://bucket/key``)."""

    def read(self, uri: str) -> bytes: ...


class S3Artifacts:
    """Artifacts on S3 (a boto3 ``s3`` client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self, uri: str) -> bytes:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise NotFoundError(f"artifact URI {uri!r} is not an s3:// URI")
        bucket, key = uri[5:].split("/", 1)
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"artifact {uri} does not exist") from None


class MemoryArtifacts:
    """Artifacts in a dict (unit tests)."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.reads = 0

    def read(self, uri: str) -> bytes:
        self.reads += 1
        if uri not in self.objects:
            raise NotFoundError(f"artifact {uri} does not exist")
        return self.objects[uri]


def load_predictor(version: ModelVersion, spec: ModelSpec | SpecView, artifacts: ArtifactSource) -> Predictor:
    """Load a version's model after checking its bytes against the registry's sha256.

    The ONNX export (tags ``onnx_uri`` and ``onnx_sha256``) is preferred; without one, the
    pickled pipeline is loaded with :func:`mlops.training.artifacts.load_artifact` (restricted unpickler).

    Raises
    ------
    ArtifactRefusedError
        The bytes do not hash to the recorded sha256, or the artifact is not a loadable model.
    ServingUnavailableError
        The version records no artifact, or the runtime to serve it is not installed.
    """
    from mlops.training.artifacts import sha256_hex

    where = f"model {version.model!r} version {version.version}"
    onnx_uri = version.tags.get(ONNX_TAG_URI)
    if onnx_uri:
        data = artifacts.read(onnx_uri)
        expected = (version.tags.get(ONNX_TAG_SHA256) or "").lower()
        actual = sha256_hex(data)
        if actual != expected:
            raise ArtifactRefusedError(
                f"{where}: the model artifact failed its integrity check (sha256 mismatch); it is not served",
                code="artifact_integrity",
            )
        try:
            return OnnxPredictor(data, spec)
        except ImportError:
            raise ServingUnavailableError(f"{where}: this function cannot run ONNX models") from None
        except Exception:  # onnxruntime raises its own types for a bad graph
            raise ArtifactRefusedError(
                f"{where}: the ONNX artifact cannot be loaded", code="artifact_invalid"
            ) from None
    if not version.artifact_uri or not version.artifact_sha256:
        raise ServingUnavailableError(f"{where} records no model artifact")
    data = artifacts.read(version.artifact_uri)
    try:
        from mlops.training.artifacts import load_artifact

        pipeline = load_artifact(data, version.artifact_sha256)
    except ImportError:
        raise ServingUnavailableError(
            f"{where} has no ONNX export and this function does not carry scikit-learn; re-register it"
        ) from None
    except CheckFailedError as exc:
        integrity = "sha256 mismatch" in str(exc)
        raise ArtifactRefusedError(
            f"{where}: the model artifact failed its integrity check (sha256 mismatch); it is not served"
            if integrity
            else f"{where}: the model artifact cannot be loaded safely; it is not served",
            code="artifact_integrity" if integrity else "artifact_invalid",
        ) from None
    # A pickled pipeline takes the spec's full model (scikit-learn and pandas are imported anyway).
    full = spec.model_spec() if isinstance(spec, SpecView) else spec
    return SklearnPredictor(pipeline, full, nbytes=2 * len(data) + 64 * 1024)


# ---------------------------------------------------------------------------------------------- cache
@dataclass
class LoadedModel:
    """A model version ready to predict, with the request models of its spec."""

    model: str
    version: int
    predictor: Predictor
    requests: RequestModels
    spec: ModelSpec | SpecView

    @property
    def nbytes(self) -> int:
        return int(self.predictor.nbytes)


class ModelCache:
    """Loaded models by ``(model, version)``, least recently used out once over ``budget_bytes``.

    The entry just added is never evicted, so one model larger than the budget still serves.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.entries: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> LoadedModel | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, entry: LoadedModel) -> None:
        key = (entry.model, entry.version)
        with self.lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self.entries[key] = entry
            self.nbytes += entry.nbytes
            while self.nbytes > self.budget_bytes and len(self.entries) > 1:
                _, evicted = self.entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
                self.evictions += 1

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.entries


# ---------------------------------------------------------------------------------------------- capture
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


# ---------------------------------------------------------------------------------------------- routing
@dataclass
class Routing:
    """Which versions serve a model, as last read from the registry."""

    champion: int | None
    challenger: int | None
    mode: str  # single, canary or shadow
    share: float
    checked_at: float


@dataclass
class PredictResult:
    """A successful prediction: the response body and what the handler reports as metrics."""

    body: dict[str, Any]
    model: str
    version: int
    role: str  # champion or challenger (canary)
    records: int
    shadow_version: int | None = None
    shadow_error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- service
class InferenceService:
    """Serves every model of a deployment (see the module docstring).

    Parameters
    ----------
    registry
        The model registry (versions, aliases, spec revisions, rollout items).
    artifacts
        Reads artifact bytes (:class:`S3Artifacts` or :class:`MemoryArtifacts`).
    settings
        Limits, TTLs, cache budget and capture rate.
    capture
        Where captures go (None: no capture).
    clock
        Monotonic seconds (tests pass a fake to move past the alias TTL).
    rng
        Random numbers for canary routing and capture sampling (tests pass a seeded one).
    capture_async
        Write captures on a background thread (the default); tests may write inline.
    """

    def __init__(
        self,
        registry: Registry,
        artifacts: ArtifactSource,
        settings: ServingSettings | None = None,
        *,
        capture: CaptureSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        capture_async: bool = True,
        on_refused: Callable[[str, int, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.settings = settings or ServingSettings()
        self.capture = capture
        self.clock = clock
        self.rng = rng or random.Random()
        self.cache = ModelCache(self.settings.cache_bytes)
        self.routes: dict[str, Routing] = {}
        self.refused: dict[tuple[str, int], tuple[float, ArtifactRefusedError]] = {}
        self.capture_failures = 0
        self.captured = 0
        self.on_refused = on_refused
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="capture") if capture_async else None
        self._pending: list[Any] = []

    # ------------------------------------------------------------------------------------------ routing
    def routing(self, model: str) -> Routing:
        """The model's serving versions, re-read when older than the alias TTL."""
        now = self.clock()
        cached = self.routes.get(model)
        if cached is not None and now - cached.checked_at < self.settings.alias_ttl_seconds:
            return cached
        try:
            summary = self.registry.get_model(model)
        except (NotFoundError, InputError):
            self.routes.pop(model, None)
            raise UnknownModelError(f"model {model!r} does not exist", code="unknown_model") from None
        if summary.archived is not None:
            # Not cached: an archived model is refused within the alias TTL, and served again on
            # the first request after `mlops models unarchive`.
            self.routes.pop(model, None)
            raise ModelArchivedError(
                f"model {model!r} is archived: it serves no predictions until `mlops models unarchive {model}`",
                code="model_archived",
            )
        mode, share = "single", 0.0
        if summary.challenger is not None:
            rollout = get_rollout(self.registry, model)
            if rollout.mode == "canary" and rollout.challenger == summary.challenger:
                mode, share = "canary", min(1.0, max(0.0, float(rollout.share)))
            else:
                mode = "shadow"
        routing = Routing(summary.champion, summary.challenger, mode, share, now)
        self.routes[model] = routing
        return routing

    def loaded(self, model: str, version: int) -> LoadedModel:
        """A version from the cache, loading (and verifying) it on a miss."""
        key = (model, version)
        entry = self.cache.get(key)
        if entry is not None:
            return entry
        refused = self.refused.get(key)
        if refused is not None and self.clock() - refused[0] < self.settings.alias_ttl_seconds:
            raise refused[1]
        version_record = self.registry.get_version(model, version)
        from mlops.registry.specs import SpecStore

        spec = SpecStore(self.registry).get(model, version_record.spec_revision).view()
        try:
            predictor = load_predictor(version_record, spec, self.artifacts)
        except ArtifactRefusedError as exc:
            self.refused[key] = (self.clock(), exc)
            logger.error(
                "model artifact refused",
                extra={"model": model, "version": version, "reason": exc.code, "detail": exc.message},
            )
            if self.on_refused is not None:
                self.on_refused(model, version, exc.code)
            raise
        except NotFoundError:
            raise ServingUnavailableError(f"model {model!r} version {version}: its artifact is missing") from None
        requests = request_models(
            spec, spec_revision=version_record.spec_revision, max_batch_size=self.settings.max_batch_size
        )
        entry = LoadedModel(model, version, predictor, requests, spec)
        self.refused.pop(key, None)
        self.cache.put(entry)
        return entry

    def spec_requests(self, model: str, version: int) -> RequestModels:
        """A version's request models from its spec alone (no artifact is loaded)."""
        entry = self.cache.entries.get((model, version))
        if entry is not None:
            return entry.requests
        from mlops.registry.specs import SpecStore

        record = self.registry.get_version(model, version)
        spec = SpecStore(self.registry).get(model, record.spec_revision).view()
        return request_models(spec, spec_revision=record.spec_revision, max_batch_size=self.settings.max_batch_size)

    def _champion(self, model: str) -> tuple[Routing, LoadedModel]:
        routing = self.routing(model)
        if routing.champion is None:
            raise NoChampionError(
                f"model {model!r} has no champion yet: approve and deploy a version first", code="no_champion"
            )
        return routing, self.loaded(model, routing.champion)

    # ------------------------------------------------------------------------------------------ API
    def predict(
        self, model: str, body: str | bytes | None, *, content_type: str | None, request_id: str
    ) -> PredictResult:
        """Validate a request, predict with the champion (or the canary), shadow, capture.

        Returns
        -------
        PredictResult
            ``body``: ``request_id``, ``model``, ``version`` (that answered), ``predictions``, and
            for classifiers ``classes`` and ``probabilities`` (one list per record, in ``classes``
            order).

        Raises
        ------
        ServingError
            Every refusal, with its HTTP status (see the error classes).
        """
        started = time.perf_counter()
        routing = self.routing(model)
        if routing.champion is None:
            raise NoChampionError(
                f"model {model!r} has no champion yet: approve and deploy a version first", code="no_champion"
            )
        # The request is checked against the champion's spec before its model is loaded: a refused
        # request never costs a model load (a pickled one imports scikit-learn, seconds on a cold start).
        records, _single = parse_request(
            body,
            content_type,
            self.spec_requests(model, routing.champion),
            max_body_bytes=self.settings.max_body_bytes,
            max_depth=self.settings.max_json_depth,
        )
        champion = self.loaded(model, routing.champion)
        validated = time.perf_counter()
        answering, role = champion, "champion"
        challenger: LoadedModel | None = None
        if routing.challenger is not None and routing.challenger != routing.champion:
            try:
                challenger = self.loaded(model, routing.challenger)
            except ServingError as exc:
                logger.warning(
                    "challenger not served", extra={"model": model, "version": routing.challenger, "reason": exc.code}
                )
        if challenger is not None and routing.mode == "canary" and self.rng.random() < routing.share:
            answering, role = challenger, "challenger"
        try:
            prediction = answering.predictor.predict(records)
        except Exception:
            if answering is champion:
                raise
            logger.exception(
                "canary failed; the champion answers", extra={"model": model, "version": answering.version}
            )
            answering, role = champion, "champion"
            prediction = champion.predictor.predict(records)
        predicted = time.perf_counter()
        shadow: Prediction | None = None
        shadow_error: str | None = None
        if challenger is not None and routing.mode == "shadow":
            try:
                shadow = challenger.predictor.predict(records)
            except Exception as exc:  # a shadow never affects the answer
                shadow_error = type(exc).__name__
                logger.warning("shadow prediction failed", extra={"model": model, "version": challenger.version})
        response: dict[str, Any] = {
            "request_id": request_id,
            "model": model,
            "version": answering.version,
            "predictions": prediction.predictions,
        }
        if prediction.classes is not None:
            response["classes"] = prediction.classes
            response["probabilities"] = prediction.probabilities
        result = PredictResult(
            response,
            model,
            answering.version,
            role,
            len(records),
            shadow_version=challenger.version if shadow is not None and challenger is not None else None,
            shadow_error=shadow_error,
        )
        self._maybe_capture(model, request_id, records, result, shadow)
        done = time.perf_counter()
        result.timings_ms = {
            "validate": (validated - started) * 1000,
            "predict": (predicted - validated) * 1000,
            "total": (done - started) * 1000,
        }
        return result

    def describe(self, model: str) -> dict[str, Any]:
        """Serving versions (champion, challenger, rollout mode and share) and the input schema."""
        routing, champion = self._champion(model)
        serving: dict[str, Any] = {"champion": self._version_summary(model, routing.champion)}
        if routing.challenger is not None:
            serving["challenger"] = self._version_summary(model, routing.challenger)
        return {
            "model": model,
            "serving": serving,
            "rollout": {"mode": routing.mode, "share": routing.share},
            "spec_revision": champion.requests.spec_revision,
            "task": champion.spec.task,
            "max_batch_size": self.settings.max_batch_size,
            "input_schema": champion.requests.input_schema(),
        }

    def _version_summary(self, model: str, version: int | None) -> dict[str, Any] | None:
        if version is None:
            return None
        record = self.registry.get_version(model, version)
        return {
            "version": record.version,
            "status": record.status.value,
            "spec_revision": record.spec_revision,
            "artifact_format": "onnx" if record.tags.get(ONNX_TAG_URI) else "sklearn-pickle",
            "metrics": record.metrics,
        }

    # ------------------------------------------------------------------------------------------ capture
    def _maybe_capture(
        self,
        model: str,
        request_id: str,
        records: list[dict[str, Any]],
        result: PredictResult,
        shadow: Prediction | None,
    ) -> None:
        if self.capture is None or self.settings.capture_rate <= 0:
            return
        if self.settings.capture_rate < 1 and self.rng.random() >= self.settings.capture_rate:
            return
        at = datetime.now(UTC)
        key = capture_key(model, request_id, at)
        sink = self.capture

        def write() -> None:
            try:
                sink.put(key, capture_lines(request_id, at, result, records, shadow))
                self.captured += 1
            except Exception:  # a lost capture must never cost the prediction
                self.capture_failures += 1
                logger.warning("capture write failed", extra={"model": model, "key": key}, exc_info=True)

        if self._executor is None:
            write()
        else:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._executor.submit(write))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait for pending capture writes (tests, and before an environment is frozen for long)."""
        deadline = time.monotonic() + timeout
        for future in list(self._pending):
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        self._pending = []


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


# ---------------------------------------------------------------------------------------------- openapi
@cache
def _response_models() -> tuple[type[BaseModel], ...]:
    """The response models of the OpenAPI document (built when the document is first asked for)."""
    from pydantic import BaseModel, Field

    class ErrorDetail(BaseModel):
        record: int | None = Field(description="Index of the record in the batch (0 for a single record)")
        field: str = Field(description="The field the problem is about")
        problem: str = Field(description="missing_field, extra_field, wrong_type, out_of_range, not_allowed, ...")
        message: str

    class ErrorResponse(BaseModel):
        error: str = Field(description="A stable code: malformed_json, invalid_record, empty_batch, unknown_model, ...")
        message: str
        details: list[ErrorDetail] | None = None
        request_id: str | None = None

    class PredictResponse(BaseModel):
        request_id: str
        model: str
        version: int = Field(description="The model version that answered (champion, or the canary)")
        predictions: list[Any]
        classes: list[Any] | None = Field(default=None, description="Classifiers: the order of each probability list")
        probabilities: list[list[float]] | None = Field(default=None, description="Classifiers: one list per record")

    class ServingVersion(BaseModel):
        version: int
        status: str
        spec_revision: int | None
        artifact_format: str
        metrics: dict[str, float]

    class ModelDescription(BaseModel):
        model: str
        serving: dict[str, ServingVersion | None]
        rollout: dict[str, Any]
        spec_revision: int | None
        task: str
        max_batch_size: int
        input_schema: dict[str, Any]

    return PredictResponse, ErrorResponse, ModelDescription


def openapi_document(
    models: Sequence[RequestModels] = (), *, server_url: str | None = None, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the inference API, built from the same pydantic models.

    Parameters
    ----------
    models
        Request models of the models to describe (each adds ``<Model>Record``, single and batch
        request schemas under ``components.schemas``); the path's request body is one of them.
    server_url
        The API's base URL, if known.
    max_batch_size
        The batch limit shown for the generic request.
    """
    from pydantic import ConfigDict, Field, create_model
    from pydantic.json_schema import models_json_schema

    generic_record = create_model("Record", __config__=ConfigDict(extra="allow", title="Record"))
    generic_single = create_model("SingleRequest", record=(generic_record, ...))
    generic_batch = create_model(
        "BatchRequest",
        records=(list[generic_record], Field(min_length=1, max_length=max_batch_size)),
    )
    all_models: list[type[BaseModel]] = [
        generic_single,
        generic_batch,
        *_response_models(),
    ]
    for m in models:
        all_models += [m.single, m.batch]
    _, schema = models_json_schema([(m, "validation") for m in all_models], ref_template="#/components/schemas/{model}")
    components = schema.get("$defs", {})
    request_refs = [{"$ref": "#/components/schemas/SingleRequest"}, {"$ref": "#/components/schemas/BatchRequest"}]
    for m in models:
        request_refs += [
            {"$ref": f"#/components/schemas/{m.single.__name__}"},
            {"$ref": f"#/components/schemas/{m.batch.__name__}"},
        ]

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        }

    model_parameter = {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,62}$"},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "MLOps inference API",
            "version": "1",
            "description": "Predictions from each model's champion (and canary). Requests are signed with SigV4"
            " (service execute-api) unless the deployment uses API keys (header x-api-key).",
        },
        "paths": {
            "/models/{model}/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict one record or a batch",
                    "parameters": [model_parameter],
                    "requestBody": {
                        "required": True,
                        # anyOf, not oneOf: a valid request of a model is also a valid generic request.
                        "content": {"application/json": {"schema": {"anyOf": request_refs}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Predictions, the version that answered and the request id",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
                            },
                        },
                        "400": error("Malformed JSON, bad shape, empty batch, or records that break the schema"),
                        "403": error("Missing or invalid signature (or API key)"),
                        "404": error("Unknown model"),
                        "409": error("The model has no champion yet"),
                        "410": error("The model is archived (mlops models unarchive restores it)"),
                        "413": error("Batch or body over the limit"),
                        "415": error("Content-Type is not application/json"),
                        "503": error("The serving version's artifact was refused or cannot be loaded"),
                    },
                }
            },
            "/models/{model}": {
                "get": {
                    "operationId": "describeModel",
                    "summary": "Serving versions and the input schema",
                    "parameters": [model_parameter],
                    "responses": {
                        "200": {
                            "description": "The model's serving versions and the schema of one record",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ModelDescription"}}
                            },
                        },
                        "404": error("Unknown model"),
                        "409": error("The model has no champion yet"),
                        "410": error("The model is archived (mlops models unarchive restores it)"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {"schemas": components},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def serving_openapi(service: InferenceService, *, server_url: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The OpenAPI document with the request schemas of up to ``limit`` models that have a champion."""
    described: list[RequestModels] = []
    for summary in service.registry.list_models(limit=limit).items:
        if summary.champion is None:
            continue
        try:
            described.append(service.spec_requests(summary.name, summary.champion))
        except MlopsError:
            continue
    return openapi_document(described, server_url=server_url, max_batch_size=service.settings.max_batch_size)
