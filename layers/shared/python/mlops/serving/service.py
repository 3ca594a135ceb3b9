"""The inference service: one facade that routes, validates, predicts, shadows and captures.

One :class:`InferenceService` per execution environment serves every model of the deployment; each
part lives in its own module of :mod:`mlops.serving`:

- **requests** (:mod:`~mlops.serving.requests`) are checked against the serving version's spec:
  one record (``{"record": {...}}``) or a batch (``{"records": [...]}``, at most
  ``max_batch_size``), column by column (:mod:`~mlops.serving.validation`); pydantic is imported
  only to explain a refusal. Every problem is a 4xx :class:`~mlops.serving.errors.ServingError`
  naming the record index and the field;
- **models** (:mod:`~mlops.serving.predictors`) are loaded once after their bytes hash to the
  sha256 the registry recorded (an ONNX export when the version has one, served with onnxruntime
  and no scikit-learn; otherwise the pickled pipeline through
  :func:`mlops.training.artifacts.load_artifact`), and kept in an LRU cache bounded in bytes
  (:class:`~mlops.serving.cache.ModelCache`). A ``python``-path version (no ONNX export) is predicted
  by the fallback function (:mod:`~mlops.serving.fallback`), after the same validation and routing,
  and captured the same way;
- **aliases** are re-read at most every ``alias_ttl_seconds``; when the champion or challenger
  moves, the next request after the check serves the new version;
- **rollouts** (:mod:`~mlops.serving.routing`) come from the model's rollout item
  (:func:`mlops.registry.rollouts.get_rollout`): in ``canary`` mode the challenger answers
  ``share`` of the requests; in ``shadow`` mode it predicts on every request, its answer is
  captured and never returned. A challenger without a matching rollout item is a shadow;
- **capture** (:mod:`~mlops.serving.capture`): a sample (``capture_rate``) of requests and answers
  goes to ``captures/<model>/<yyyy>/<mm>/<dd>/<hour>/<request-id>.jsonl`` on a background thread;
  a failed capture write is logged and counted, never turned into a failed prediction.

The OpenAPI document is :mod:`mlops.serving.openapi`; the settings :mod:`mlops.serving.settings`.
Nothing here reads the environment or creates clients at import time: clients are passed in.

Examples
--------
>>> service = InferenceService(registry, artifacts=MemoryArtifacts({...}))  # doctest: +SKIP
>>> service.predict("churn", '{"record": {...}}', content_type="application/json", request_id="r1")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from mlops.errors import NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.cache import LoadedModel, ModelCache
from mlops.serving.capture import CaptureSink, capture_key, capture_lines
from mlops.serving.errors import ArtifactRefusedError, NoChampionError, ServingError, ServingUnavailableError
from mlops.serving.fallback import FallbackInvoker, RemotePredictor
from mlops.serving.predictors import ArtifactSource, Prediction, load_predictor
from mlops.serving.requests import RequestModels, parse_request, request_models
from mlops.serving.routing import PredictResult, Routing, read_routing
from mlops.serving.settings import ServingSettings

logger = logging.getLogger(__name__)


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
    on_refused
        Called with the model, version and code of a refused artifact (the function's metrics).
    fallback
        Reaches the fallback function, which serves ``python``-path versions (the inference
        function's service); without it they are loaded here (the fallback function, tests).
    serve_onnx
        False in the fallback function: every version is loaded from its pickle.
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
        fallback: FallbackInvoker | None = None,
        serve_onnx: bool = True,
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
        self.fallback = fallback
        self.serve_onnx = serve_onnx
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
            routing = read_routing(self.registry, model, now)
        except ServingError:
            # Not cached: an unknown or archived model is refused within the alias TTL, and an
            # archived one served again on the first request after `mlops models unarchive`.
            self.routes.pop(model, None)
            raise
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
        spec = SpecStore(self.registry).get(model, version_record.spec_revision).view()
        try:
            predictor = load_predictor(
                version_record, spec, self.artifacts, fallback=self.fallback, serve_onnx=self.serve_onnx
            )
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
        record = self.registry.get_version(model, version)
        spec = SpecStore(self.registry).get(model, record.spec_revision).view()
        return request_models(spec, spec_revision=record.spec_revision, max_batch_size=self.settings.max_batch_size)

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
            prediction = _predict(answering, records, request_id)
        except Exception:
            if answering is champion:
                raise
            logger.exception(
                "canary failed; the champion answers", extra={"model": model, "version": answering.version}
            )
            answering, role = champion, "champion"
            prediction = _predict(champion, records, request_id)
        predicted = time.perf_counter()
        shadow: Prediction | None = None
        shadow_error: str | None = None
        if challenger is not None and routing.mode == "shadow":
            try:
                shadow = _predict(challenger, records, request_id)
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


def _predict(entry: LoadedModel, records: list[dict[str, Any]], request_id: str) -> Prediction:
    """A loaded version's prediction; the fallback function is told the API's request id."""
    if isinstance(entry.predictor, RemotePredictor):
        return entry.predictor.predict(records, request_id)
    return entry.predictor.predict(records)
