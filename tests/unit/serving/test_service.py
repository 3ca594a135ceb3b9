"""The inference service on the in-memory registry: routing, refresh, canary, shadow, integrity, cache, capture."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.data.validation import coerce
from mlops.deployment.rollout import deploy_version
from mlops.registry.specs import SpecStore
from mlops.serving.cache import LoadedModel, ModelCache
from mlops.serving.capture import capture_key
from mlops.serving.errors import ArtifactRefusedError, NoChampionError, UnknownModelError
from mlops.serving.openapi import openapi_document, serving_openapi
from mlops.serving.requests import request_models
from mlops.serving.settings import ServingSettings
from mlops.training.frames import model_input
from mlops.training.onnx_model import feature_columns
from mlops.values import canonical_label as _canonical_label
from tests.unit.serving.conftest import MODEL, ListSink, World

JSON = "application/json"


def body(records: list[dict[str, Any]]) -> str:
    return json.dumps({"records": records})


def test_unknown_model_is_404(world: World) -> None:
    # GIVEN an empty registry WHEN a model nobody registered is asked THEN 404 unknown_model
    with pytest.raises(UnknownModelError) as caught:
        world.service().predict("nope", body(world.records[:1]), content_type=JSON, request_id="r")
    assert caught.value.http_status == 404 and "nope" in caught.value.message


def test_model_without_champion_is_409(world: World) -> None:
    # GIVEN a registered but not deployed version WHEN predicting THEN 409 no_champion
    world.register(0)
    with pytest.raises(NoChampionError) as caught:
        world.service().predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="r")
    assert caught.value.http_status == 409 and "champion" in caught.value.message


def test_champion_answers_like_the_pipeline(world: World) -> None:
    # GIVEN a champion
    world.champion(world.register(0))
    service = world.service()
    # WHEN a batch is predicted
    result = service.predict(MODEL, body(world.records), content_type=JSON, request_id="req-1")
    # THEN predictions and probabilities equal the pipeline's on the same rows, with version and request id
    pipeline = world.trained[0].pipeline
    expected = pipeline.predict_proba(model_input(pd.DataFrame(world.records), world.spec))
    assert result.body["version"] == 1 and result.body["request_id"] == "req-1"
    assert result.body["classes"] == [0, 1]
    np.testing.assert_allclose(result.body["probabilities"], expected, atol=1e-6)
    assert result.body["predictions"] == [int(c) for c in pipeline.classes_[expected.argmax(axis=1)]]
    assert result.records == len(world.records)


def test_alias_move_is_seen_after_the_ttl(world: World) -> None:
    # GIVEN champion v1 served once
    v1, v2 = world.register(0), world.register(1)
    world.champion(v1)
    service = world.service(alias_ttl_seconds=30)
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="a").version == v1
    # WHEN the champion moves to v2
    world.registry.set_alias(MODEL, "champion", v2, actor="alice")
    # THEN within the TTL v1 still answers, after it v2 does
    world.clock.now += 10
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="b").version == v1
    world.clock.now += 25
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="c").version == v2


def test_canary_answers_its_share(world: World) -> None:
    # GIVEN champion v1 and v2 deployed as a 20% canary
    v1, v2 = world.register(0), world.register(1)
    world.champion(v1)
    deploy_version(world.registry, MODEL, v2, "canary", actor="alice", canary_percent=20)
    service = world.service()
    # WHEN 600 requests arrive (the service draws from a seeded generator here)
    versions = [
        service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id=f"r{i}").version
        for i in range(600)
    ]
    # THEN the canary answered 20% +- 4 points (binomial sd 1.6 points) and the champion the rest
    share = versions.count(v2) / len(versions)
    assert 0.16 <= share <= 0.24 and versions.count(v1) == len(versions) - versions.count(v2), share
    routing = service.routing(MODEL)
    assert (routing.mode, routing.share) == ("canary", 0.2)


def test_shadow_is_captured_but_never_answers(world: World) -> None:
    # GIVEN champion v1 and v2 as a shadow
    v1, v2 = world.register(0), world.register(1)
    world.champion(v1)
    deploy_version(world.registry, MODEL, v2, "shadow", actor="alice")
    service = world.service()
    alone = world.service()
    # WHEN predicting THEN the answer is v1's, exactly as without a shadow
    result = service.predict(MODEL, body(world.records[:5]), content_type=JSON, request_id="s1")
    assert result.version == v1 and result.shadow_version == v2
    world.registry.set_alias(MODEL, "challenger", None, actor="alice")
    baseline = alone.predict(MODEL, body(world.records[:5]), content_type=JSON, request_id="s2")
    assert result.body["predictions"] == baseline.body["predictions"]
    assert result.body["probabilities"] == baseline.body["probabilities"]
    # AND the capture holds the shadow's predictions
    (captured,) = [v for k, v in world.sink.objects.items() if k.endswith("/s1.jsonl")]
    lines = [json.loads(line) for line in captured.decode().splitlines()]
    assert len(lines) == 5 and all(line["shadow"]["version"] == v2 for line in lines)


def test_tampered_artifact_is_refused_and_reported(world: World) -> None:
    # GIVEN a champion whose artifact bytes were changed after registration
    version = world.register(0)
    world.champion(version)
    uri = world.registry.get_version(MODEL, version).artifact_uri
    assert uri is not None
    world.artifacts.objects[uri] = world.artifacts.objects[uri] + b"tampered"
    reported: list[tuple[str, int, str]] = []
    service = world.service()
    service.on_refused = lambda model, v, reason: reported.append((model, v, reason))
    # WHEN predicting THEN 503 artifact_integrity, without internals, and the refusal is reported once
    for _ in range(3):
        with pytest.raises(ArtifactRefusedError) as caught:
            service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="t")
    assert caught.value.http_status == 503 and caught.value.code == "artifact_integrity"
    assert "sha256" in caught.value.message and "Traceback" not in caught.value.message
    assert reported == [(MODEL, version, "artifact_integrity")]
    assert world.artifacts.reads == 1  # refused versions are not re-read on every request


def test_cache_evicts_least_recently_used() -> None:
    # GIVEN a cache of 250 bytes and entries of 100 bytes
    class Sized:
        kind = "fake"
        nbytes = 100

        def predict(self, records: Any) -> Any:
            return None

    cache = ModelCache(250)

    def entry(name: str) -> LoadedModel:
        return LoadedModel(name, 1, Sized(), None, None)  # type: ignore[arg-type]

    cache.put(entry("a"))
    cache.put(entry("b"))
    assert cache.get(("a", 1)) is not None  # a is now the most recent
    # WHEN a third entry arrives THEN b (least recently used) is evicted
    cache.put(entry("c"))
    assert ("b", 1) not in cache and ("a", 1) in cache and ("c", 1) in cache
    assert cache.nbytes == 200 and cache.evictions == 1


def test_many_models_share_a_bounded_cache(world: World) -> None:
    # GIVEN 6 models each with a champion, and a cache that holds about 2 of them
    for index in range(6):
        name = f"m{index}"
        SpecStore(world.registry).put(world.spec.model_copy(update={"name": name}), actor="alice")
        world.champion(world.register(index % 2, model=name), model=name)
    size = 2 * len(world.artifacts.objects["s3://bucket/artifacts/m0/0/model.pkl"]) + 64 * 1024
    service = world.service(cache_bytes=int(size * 2.5))
    # WHEN each is asked once THEN all answer, and the cache never holds more than its budget allows
    for index in range(6):
        assert service.predict(f"m{index}", body(world.records[:1]), content_type=JSON, request_id="x").version == 1
    assert len(service.cache) == 2 and service.cache.evictions == 4


def test_capture_failure_never_costs_the_prediction(world: World) -> None:
    # GIVEN a capture sink that always fails
    world.champion(world.register(0))
    world.sink = ListSink(fail=True)
    service = world.service()
    # WHEN predicting THEN the prediction is returned and the failure counted
    result = service.predict(MODEL, body(world.records[:2]), content_type=JSON, request_id="c1")
    assert len(result.body["predictions"]) == 2
    assert service.capture_failures == 1


def test_capture_rate_samples_requests(world: World) -> None:
    # GIVEN a capture rate of 0.25
    world.champion(world.register(0))
    service = world.service(capture_rate=0.25)
    # WHEN 400 requests arrive THEN about a quarter are captured, under the time-partitioned prefix
    for i in range(400):
        service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id=f"q{i}")
    assert 60 <= len(world.sink.objects) <= 140
    key = next(iter(world.sink.objects))
    assert key.startswith(f"captures/{MODEL}/") and key.endswith(".jsonl") and key.count("/") == 6


def test_capture_key_layout() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 3, 7, 5, tzinfo=UTC)
    assert capture_key("churn", "abc-1", at) == "captures/churn/2026/11/03/07/abc-1.jsonl"
    assert capture_key("churn", "../x", at) == "captures/churn/2026/11/03/07/.._x.jsonl"


def test_the_champion_spec_gives_the_input_schema(world: World) -> None:
    # GIVEN a champion WHEN its request models are built from its spec alone (no artifact loaded)
    world.champion(world.register(0))
    service = world.service()
    schema = service.spec_requests(MODEL, 1).input_schema()
    # THEN the schema of one record carries the spec's bounds, and no model was loaded for it
    assert schema["properties"]["tenure_months"]["maximum"] == 72
    assert len(service.cache) == 0 and world.artifacts.reads == 0


def test_openapi_document_is_valid_openapi(world: World) -> None:
    # GIVEN a served model WHEN the document is generated THEN it validates as OpenAPI 3.1
    from openapi_spec_validator import validate

    world.champion(world.register(0))
    document = serving_openapi(world.service(), server_url="https://example.test/v1")
    validate(document)
    assert "ChurnRecord" in document["components"]["schemas"]
    assert "/models/{model}/predict" in document["paths"]
    validate(openapi_document([request_models(world.spec, spec_revision=1, max_batch_size=3)]))


def test_settings_from_env() -> None:
    settings = ServingSettings.from_env(
        {"MAX_BATCH_SIZE": "50", "ALIAS_TTL_SECONDS": "5", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}
    )
    assert settings.max_batch_size == 50 and settings.alias_ttl_seconds == 5
    assert settings.cache_bytes == 1024 * 1024 * 1024
    from mlops.errors import InputError

    with pytest.raises(InputError, match="MAX_BATCH_SIZE"):
        ServingSettings.from_env({"MAX_BATCH_SIZE": "many"})


@pytest.mark.parametrize("value", ["a", " b ", "1", "1.0", "01", "TRUE", "x y", 3, 2.0, 2.5, True, "-3", "1e3"])
def test_canonical_label_matches_validation(value: Any) -> None:
    assert _canonical_label(value) == coerce.label(value)


def test_feature_columns_match_model_input(world: World) -> None:
    # GIVEN validated records (with a missing nullable value)
    records = [dict(r) for r in world.records[:20]]
    records[3]["total_charges"] = None
    # WHEN turned into columns without pandas THEN they equal model_input's (float32 precision)
    ours = feature_columns(records, world.spec)
    theirs = model_input(pd.DataFrame(records), world.spec)
    assert set(ours) == set(theirs.columns)
    for name, column in ours.items():
        if column.dtype == object:
            expected = theirs[name].fillna("(missing)").to_numpy(dtype=object)
            assert list(column.ravel()) == list(expected)
        else:
            np.testing.assert_allclose(column.ravel(), theirs[name].to_numpy(dtype=np.float64), rtol=1e-6)


def test_an_archived_model_is_refused_with_410_and_served_again_once_unarchived(world: World) -> None:
    # GIVEN a champion that has answered (its routing is cached for the alias TTL)
    from mlops.serving.errors import ModelArchivedError

    world.champion(world.register(0))
    service = world.service(alias_ttl_seconds=30)
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="r1").version == 1
    # WHEN the model is archived THEN the cached routing still answers until the TTL, then 410 names it
    world.registry.archive_model(MODEL, actor="dana")
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="r2").version == 1
    world.clock.now += 31
    for _ in range(2):
        with pytest.raises(ModelArchivedError) as caught:
            service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="r3")
        assert caught.value.http_status == 410 and caught.value.code == "model_archived"
        assert f"model '{MODEL}' is archived" in caught.value.message
    with pytest.raises(ModelArchivedError):
        service.routing(MODEL)
    # WHEN unarchived THEN the very next request is served (an archived state is never cached)
    world.registry.unarchive_model(MODEL, actor="dana")
    assert service.predict(MODEL, body(world.records[:1]), content_type=JSON, request_id="r4").version == 1
