"""The Python serving path: a version without an ONNX export, predicted by the fallback function.

The inference function's service (with a fallback invoker) and the fallback function's service
(``serve_onnx=False``) are both the real :class:`InferenceService`; between them the invoke payload
goes through JSON, as it does through Lambda's Invoke API (the one part stood in for here; the
local-cloud test ``tests/e2e/test_fallback_serving.py`` crosses the real boundary).
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.deployment.rollout import deploy_version
from mlops.errors import CheckFailedError
from mlops.registry.modelcard import render_model_card
from mlops.registry.serving_path import COLD_STARTS, SERVING_PATH_TAG, describe_serving, serving_path
from mlops.serving.errors import ArtifactRefusedError, ServingError, ServingUnavailableError
from mlops.serving.fallback import (
    FallbackFailedError,
    RemotePredictor,
    fallback_answer,
    fallback_request,
    prediction_from_answer,
)
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.training.artifacts import dump_artifact, load_artifact
from mlops.training.export import OnnxExportError, export_onnx
from mlops.training.frames import model_input
from mlops.training.onnx_model import ONNX_TAG_SHA256, ONNX_TAG_URI, Prediction
from mlops.training.steps.outcome import _onnx_tags
from tests.unit.serving.conftest import MODEL, World
from tests.unit.serving.no_converter import kernel_pipeline
from tests.unit.training.helpers import example_frame

JSON = "application/json"


class InProcessInvoker:
    """Lambda's synchronous Invoke, in process: the payload crosses as JSON bytes, both ways."""

    def __init__(self, fallback: InferenceService) -> None:
        self.fallback = fallback
        self.calls: list[dict[str, Any]] = []

    def predict(self, model: str, version: int, records: Sequence[Mapping[str, Any]], request_id: str) -> Prediction:
        event = json.loads(fallback_request(model, version, records, request_id))
        self.calls.append(event)
        answer = json.loads(json.dumps(fallback_answer(self.fallback, event)))
        return prediction_from_answer(answer, f"model {model!r} version {version}")


@pytest.fixture(scope="module")
def kernel(churn_models: Any) -> Any:
    spec, trained = churn_models
    return kernel_pipeline(example_frame("churn", rows=1200), spec, trained[0])


def register_pipeline(world: World, pipeline: Any, name: str, **tags: str) -> int:
    data, sha256 = dump_artifact(pipeline)
    uri = f"s3://bucket/artifacts/{MODEL}/{name}/model.pkl"
    world.artifacts.objects[uri] = data
    version = world.registry.register_version(
        MODEL, actor="pipeline", spec_revision=1, artifact_uri=uri, artifact_sha256=sha256, tags=tags
    ).version
    world.registry.approve(MODEL, version, actor="alice")
    return version


def register_onnx(world: World, index: int) -> int:
    exported = export_onnx(world.trained[index].pipeline, world.spec)
    uri = f"s3://bucket/artifacts/{MODEL}/{index}/model.onnx"
    world.artifacts.objects[uri] = exported
    from mlops.training.artifacts import sha256_hex

    tags = {ONNX_TAG_URI: uri, ONNX_TAG_SHA256: sha256_hex(exported), SERVING_PATH_TAG: "onnx"}
    return register_pipeline(world, world.trained[index].pipeline, f"onnx-{index}", **tags)


def pair(world: World, refused: list[tuple[str, int, str]] | None = None) -> tuple[InferenceService, InProcessInvoker]:
    """The inference function's service and the fallback function's, as the two handlers build them."""
    on_refused = (lambda m, v, code: refused.append((m, v, code))) if refused is not None else None
    fallback = InferenceService(
        world.registry, world.artifacts, ServingSettings(), on_refused=on_refused, serve_onnx=False
    )
    invoker = InProcessInvoker(fallback)
    front = InferenceService(
        world.registry,
        world.artifacts,
        ServingSettings(),
        capture=world.sink,
        clock=world.clock,
        capture_async=False,
        fallback=invoker,
    )
    return front, invoker


def test_a_pipeline_without_a_converter_cannot_be_exported(kernel: Any, world: World) -> None:
    # GIVEN a pipeline with a Nystroem WHEN exported THEN skl2onnx has no converter for it
    with pytest.raises(OnnxExportError):
        export_onnx(kernel, world.spec)


def test_a_version_without_onnx_is_registered_on_the_python_path() -> None:
    # GIVEN the Evaluate state's outcome of a failed export, and of a good one
    failed = _onnx_tags({"error": "no converter for Nystroem"})
    exported = _onnx_tags({"uri": "s3://b/model.onnx", "sha256": "ab" * 32})
    # THEN the first is recorded as served by Python, with why; the second by ONNX
    assert failed == {"onnx_error": "no converter for Nystroem", SERVING_PATH_TAG: "python"}
    assert exported[SERVING_PATH_TAG] == "onnx" and serving_path(exported) == "onnx"
    # AND versions registered before the tag existed keep the path their tags imply
    assert serving_path({"onnx_uri": "s3://b/m.onnx"}) == "onnx"
    assert serving_path({"onnx_error": "x"}) == serving_path({}) == "python"


def test_the_fallback_answers_like_the_pipeline_with_the_same_shape_and_capture(kernel: Any, world: World) -> None:
    # GIVEN a python-path champion, served through the inference service and its fallback
    version = register_pipeline(world, kernel, "kernel", onnx_error="no converter", serving_path="python")
    world.champion(version)
    front, invoker = pair(world)
    # WHEN a batch is predicted
    result = front.predict(MODEL, json.dumps({"records": world.records}), content_type=JSON, request_id="req-9")
    # THEN the fallback predicted once, with the API's request id, and the answer equals the pipeline's
    assert len(invoker.calls) == 1 and invoker.calls[0]["requestContext"] == {"requestId": "req-9"}
    expected = kernel.predict_proba(model_input(pd.DataFrame(world.records), world.spec))
    np.testing.assert_allclose(result.body["probabilities"], expected, atol=1e-6)
    assert result.body["predictions"] == [int(c) for c in kernel.classes_[expected.argmax(axis=1)]]
    assert result.body["predictions"] == [
        int(c) for c in kernel.predict(model_input(pd.DataFrame(world.records), world.spec))
    ]
    # AND the response has the ONNX path's shape
    assert set(result.body) == {"request_id", "model", "version", "predictions", "classes", "probabilities"}
    assert result.body["classes"] == [0, 1] and result.body["version"] == version
    # AND the inference function captured it, as for any version
    assert len(world.sink.objects) == 1
    # AND the inference function holds a handle, not the model
    entry = front.cache.get((MODEL, version))
    assert entry is not None and isinstance(entry.predictor, RemotePredictor)


def test_a_refused_request_never_reaches_the_fallback(kernel: Any, world: World) -> None:
    # GIVEN a python-path champion
    world.champion(register_pipeline(world, kernel, "kernel", serving_path="python"))
    front, invoker = pair(world)
    # WHEN a record breaks the spec THEN the inference function refuses it (400) and the fallback is not invoked
    bad = {**world.records[0], "tenure_months": "twelve"}
    with pytest.raises(ServingError) as caught:
        front.predict(MODEL, json.dumps({"record": bad}), content_type=JSON, request_id="r")
    assert caught.value.http_status == 400 and invoker.calls == []


def test_an_onnx_champion_with_a_python_canary(kernel: Any, world: World) -> None:
    # GIVEN an ONNX champion and a python-path challenger deployed as a 100% canary
    v1 = register_onnx(world, 0)
    world.champion(v1)
    v2 = register_pipeline(world, kernel, "kernel", serving_path="python")
    deploy_version(world.registry, MODEL, v2, "canary", actor="alice", canary_percent=100)
    front, invoker = pair(world)
    # WHEN predicted THEN the canary (python path) answers, through the fallback
    result = front.predict(MODEL, json.dumps({"records": world.records[:5]}), content_type=JSON, request_id="c")
    assert result.version == v2 and result.role == "challenger" and len(invoker.calls) == 1
    # AND the champion is still served from its ONNX export, in this function
    champion = front.cache.get((MODEL, v1))
    assert champion is not None and champion.predictor.kind == "onnx"


def test_an_artifact_with_a_class_outside_the_allow_list_is_refused_not_unpickled(world: World) -> None:
    # GIVEN a python-path champion whose artifact (sha256 recorded) names a class outside the allow-list
    data = pickle.dumps(Gadget(), protocol=5)
    from mlops.training.artifacts import sha256_hex

    uri = f"s3://bucket/artifacts/{MODEL}/gadget/model.pkl"
    world.artifacts.objects[uri] = data
    version = world.registry.register_version(
        MODEL, actor="pipeline", spec_revision=1, artifact_uri=uri, artifact_sha256=sha256_hex(data), tags={}
    ).version
    world.registry.approve(MODEL, version, actor="alice")
    world.champion(version)
    refused: list[tuple[str, int, str]] = []
    front, _ = pair(world, refused)
    # WHEN a prediction is asked for
    with pytest.raises(ArtifactRefusedError) as caught:
        front.predict(MODEL, json.dumps({"record": world.records[0]}), content_type=JSON, request_id="g")
    # THEN 503 artifact_invalid, counted by the fallback, and the object was never rebuilt
    assert caught.value.http_status == 503 and caught.value.code == "artifact_invalid"
    assert refused == [(MODEL, version, "artifact_invalid")]
    assert RAN == []
    # AND the restricted unpickler names what it refused
    with pytest.raises(CheckFailedError, match=r"Gadget.*may not use"):
        load_artifact(data, sha256_hex(data))
    assert RAN == []


def test_a_tampered_artifact_is_refused_by_its_sha256(kernel: Any, world: World) -> None:
    # GIVEN a python-path champion whose bytes were replaced after registration
    version = register_pipeline(world, kernel, "kernel", serving_path="python")
    world.champion(version)
    world.artifacts.objects[f"s3://bucket/artifacts/{MODEL}/kernel/model.pkl"] += b"x"
    front, _ = pair(world)
    # WHEN predicted THEN 503 artifact_integrity, from the fallback, through the inference function
    with pytest.raises(ArtifactRefusedError) as caught:
        front.predict(MODEL, json.dumps({"record": world.records[0]}), content_type=JSON, request_id="t")
    assert caught.value.code == "artifact_integrity"


def test_without_a_fallback_or_scikit_learn_the_python_path_says_what_is_missing(
    kernel: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a python-path champion and a service with no fallback, in a process without scikit-learn
    world.champion(register_pipeline(world, kernel, "kernel", serving_path="python"))
    import mlops.training.artifacts as artifacts

    def no_sklearn(*_args: Any, **_kwargs: Any) -> Any:
        raise ImportError("No module named 'sklearn'")

    monkeypatch.setattr(artifacts, "load_artifact", no_sklearn)
    # WHEN predicted THEN 503 naming the missing fallback function
    with pytest.raises(ServingUnavailableError, match="FALLBACK_FUNCTION"):
        world.service().predict(MODEL, json.dumps({"record": world.records[0]}), content_type=JSON, request_id="n")


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"model": "m"},
        {"model": "m", "version": 0, "records": [{}]},
        {"model": "m", "version": 1, "records": []},
    ],
)
def test_a_malformed_fallback_request_is_refused(world: World, event: Any) -> None:
    # GIVEN the fallback's service WHEN asked something that is not a fallback request THEN 400, named
    fallback = InferenceService(world.registry, world.artifacts, ServingSettings(), serve_onnx=False)
    answer = fallback_answer(fallback, event)
    assert answer["status"] == 400 and answer["message"].startswith("fallback request")


def test_a_fallback_answer_without_predictions_is_a_failure() -> None:
    # GIVEN an answer with neither predictions nor an error THEN the platform failed (a 500, not a 4xx)
    with pytest.raises(FallbackFailedError):
        prediction_from_answer({"unexpected": 1}, "model 'm' version 1")


def test_the_card_and_describe_name_the_path_and_its_cold_start(world: World) -> None:
    # GIVEN a python-path version's tags
    tags = {"onnx_error": "no converter for Nystroem", SERVING_PATH_TAG: "python"}
    described = describe_serving(tags)
    # THEN the description names the path, the measured cold start and why not ONNX
    assert described["serving_path"] == "python"
    assert f"{COLD_STARTS['python'].seconds:.2f} s" in described["cold_start"]
    assert described["why_not_onnx"] == "no converter for Nystroem"
    # AND the model card has a Serving section saying so
    card = render_model_card(world.spec, 3, {}, [], {}, {**described}, None, None)
    section = card.split("## Serving", 1)[1].split("##", 1)[0]
    assert "fallback function" in section and described["cold_start"] in section
    assert "no converter for Nystroem" in section
    # AND an ONNX version's card says onnxruntime, with no reason line
    onnx_card = render_model_card(world.spec, 4, {}, [], {}, describe_serving({"onnx_uri": "s3://b/m"}), None, None)
    onnx_section = onnx_card.split("## Serving", 1)[1].split("##", 1)[0]
    assert "onnxruntime" in onnx_section and "No ONNX export" not in onnx_section


RAN: list[str] = []


class Gadget:
    """A class outside the allow-list whose unpickling would run code (it records that it did)."""

    def __init__(self) -> None:
        self.payload = "anything"

    def __setstate__(self, state: dict[str, Any]) -> None:
        RAN.append("unpickled")
        self.__dict__.update(state)


FALLBACK_HANDLER = Path(__file__).resolve().parents[3] / "functions" / "inference_fallback" / "handler.py"


class Context:
    function_name = "inference-fallback"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference-fallback"
    aws_request_id = "lambda-req"


def test_the_fallback_handler_answers_and_refuses_in_its_payload(kernel: Any, world: World) -> None:
    # GIVEN the fallback function's handler on the in-memory registry, a good version and a tampered one
    spec = importlib.util.spec_from_file_location("fallback_handler", FALLBACK_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._service = InferenceService(world.registry, world.artifacts, ServingSettings(), serve_onnx=False)
    good = register_pipeline(world, kernel, "good", serving_path="python")
    bad = register_pipeline(world, kernel, "bad", serving_path="python")
    world.artifacts.objects[f"s3://bucket/artifacts/{MODEL}/bad/model.pkl"] += b"x"
    # WHEN each is invoked with the payload the inference function sends
    answers = [
        module.handler(json.loads(fallback_request(MODEL, version, world.records[:3], "api-1")), Context())
        for version in (good, bad)
    ]
    # THEN the good one answers the pipeline's predictions, the tampered one a 503 refusal (not an exception)
    expected = kernel.predict(model_input(pd.DataFrame(world.records[:3]), world.spec))
    assert answers[0]["predictions"] == [int(v) for v in expected]
    assert answers[1] == {"error": "artifact_integrity", "status": 503, "message": answers[1]["message"]}


TRANSFORMER = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class SignedLog(BaseEstimator, TransformerMixin):
    '''A custom transformer (no skl2onnx converter): sign(x) * log1p(|x|).'''

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        x = np.asarray(x, dtype=float)
        return np.sign(x) * np.log1p(np.abs(x))
"""


def test_a_model_built_by_user_code_is_served_by_the_fallback_with_its_package(
    world: World, tmp_path: Path, churn_models: Any
) -> None:
    # GIVEN a code package with a custom transformer (uploaded as `mlops code upload` stores it)
    from sklearn.base import clone
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from mlops.training.code import activate_code, package_code
    from mlops.training.frames import coerce_frame, target_array

    source = tmp_path / "fallbackcode"
    source.mkdir()
    (source / "__init__.py").write_text("")
    (source / "transforms.py").write_text(TRANSFORMER)
    package, code_sha256, name = package_code(source)
    code_uri = "s3://bucket/code/churn/1/fallbackcode.zip"
    world.artifacts.objects[code_uri] = package
    activate_code(world.artifacts.read, code_uri, code_sha256)
    transforms = importlib.import_module(f"{name}.transforms")
    # AND a pipeline built with it (as a training entry point would), registered with its code tags
    spec, trained = churn_models
    frame = coerce_frame(example_frame("churn", rows=600), spec)
    frame = frame[frame[spec.target.name].notna()]
    pipeline = Pipeline(
        [
            ("preprocess", clone(trained[0].pipeline.named_steps["preprocess"])),
            ("impute", SimpleImputer()),
            ("signed_log", transforms.SignedLog()),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(model_input(frame, spec), target_array(frame, spec))
    with pytest.raises(OnnxExportError):
        export_onnx(pipeline, spec)
    code = {"code_uri": code_uri, "code_sha256": code_sha256, "code_package": name}
    world.champion(register_pipeline(world, pipeline, "code", serving_path="python", **code))
    front, _ = pair(world)
    # WHEN predicted through the inference service and its fallback
    result = front.predict(MODEL, json.dumps({"records": world.records}), content_type=JSON, request_id="u")
    # THEN the answer is the pipeline's own: the fallback loaded the artifact with the package allowed
    expected = pipeline.predict_proba(model_input(pd.DataFrame(world.records), world.spec))
    np.testing.assert_allclose(result.body["probabilities"], expected, atol=1e-6)
