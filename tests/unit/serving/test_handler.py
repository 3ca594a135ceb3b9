"""The Lambda handler: API Gateway events in, JSON answers out (the service injected, on the in-memory registry)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlops import observability
from tests.unit.serving.conftest import MODEL, World

HANDLER = Path(__file__).resolve().parents[3] / "functions" / "inference" / "handler.py"


class Context:
    function_name = "inference"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference"
    aws_request_id = "lambda-req"


@pytest.fixture
def handler(world: World, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MLOps")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mlops-inference")
    # The handler's metrics are mlops.observability's, built once per process (per execution
    # environment on Lambda, where the environment is set before any import): set what it read.
    monkeypatch.setattr(observability.metrics, "namespace", "MLOps")
    monkeypatch.setattr(observability.metrics, "service", "mlops-inference")
    spec = importlib.util.spec_from_file_location("inference_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._service = world.service(on_refused=module._artifact_refused)  # type: ignore[attr-defined]
    return module


def event(method: str, path: str, body: Any = None, content_type: str = "application/json") -> dict[str, Any]:
    resource = "/models/{model}/predict" if path.endswith("/predict") else path
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": content_type, "Host": "api.example"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"model": path.split("/")[2]} if path.startswith("/models/") else None,
        "requestContext": {"requestId": "api-req-1", "stage": "v1", "resourcePath": resource, "httpMethod": method},
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }


def call(handler: ModuleType, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    answer = handler.handler(event(*args, **kwargs), Context())
    return answer["statusCode"], json.loads(answer["body"])


def test_predict_returns_predictions_version_and_request_id(handler: ModuleType, world: World) -> None:
    # GIVEN a champion WHEN a batch is posted THEN 200 with predictions, version and the API request id
    world.champion(world.register(0))
    status, answer = call(handler, "POST", f"/models/{MODEL}/predict", {"records": world.records[:3]})
    assert status == 200, answer
    assert answer["version"] == 1 and answer["request_id"] == "api-req-1" and len(answer["predictions"]) == 3


def test_refusals_are_json_with_the_request_id(handler: ModuleType, world: World) -> None:
    world.champion(world.register(0))
    # WHEN a record breaks the schema THEN 400 naming the field
    status, answer = call(handler, "POST", f"/models/{MODEL}/predict", {"record": {"tenure_months": "x"}})
    assert status == 400 and answer["error"] == "invalid_record" and answer["request_id"] == "api-req-1"
    assert any(d["field"] == "tenure_months" for d in answer["details"])
    # AND a wrong content type is 415, an unknown model 404
    assert call(handler, "POST", f"/models/{MODEL}/predict", "a=b", content_type="text/plain")[0] == 415
    assert call(handler, "POST", "/models/ghost/predict", {"record": {}})[0] == 404


def test_broken_platform_is_500_without_internals(handler: ModuleType, world: World) -> None:
    # GIVEN a registry that fails with an unexpected error
    world.champion(world.register(0))

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret table name mlops-dev-registry exploded")

    handler._service.registry.get_model = broken
    # WHEN predicting THEN 500 internal_error, nothing of the exception in the body
    status, answer = call(handler, "POST", f"/models/{MODEL}/predict", {"record": world.records[0]})
    assert status == 500 and answer["error"] == "internal_error"
    assert "secret" not in json.dumps(answer) and answer["request_id"] == "api-req-1"


def test_openapi_route_and_no_describe_route(handler: ModuleType, world: World) -> None:
    world.champion(world.register(0))
    status, document = call(handler, "GET", "/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "https://api.example/v1"}]
    # GET /models/{model} is the model catalog's (functions/api): this function does not serve it
    status, answer = call(handler, "GET", f"/models/{MODEL}")
    assert status == 404 and answer["error"] == "not_found", answer


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format lines printed to stdout."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def test_refused_artifact_is_counted_per_version_and_once_for_every_model(
    handler: ModuleType, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a champion whose artifact bytes no longer match the registry's sha256
    version = world.register(0)
    world.champion(version)
    world.artifacts.objects[f"s3://bucket/artifacts/{MODEL}/0/model.pkl"] = b"tampered bytes"
    capsys.readouterr()
    # WHEN a prediction is asked for
    status, answer = call(handler, "POST", f"/models/{MODEL}/predict", {"record": world.records[0]})
    # THEN 503 artifact_integrity
    assert status == 503 and answer["error"] == "artifact_integrity"
    metrics = emf_lines(capsys.readouterr().out)
    refused = [m for m in metrics if "ArtifactRefused" in m]
    # AND one EMF line per model and version (which artifact) ...
    per_version = [
        m for m in refused if m["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["model", "version", "service"]]
    ]
    assert len(per_version) == 1 and per_version[0]["model"] == MODEL and per_version[0]["version"] == str(version)
    # AND one with only the service dimension, the one alarm that watches every model
    aggregate = [m for m in refused if m["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]]
    assert len(aggregate) == 1, refused
    line = aggregate[0]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLOps"
    assert {"Name": "ArtifactRefused", "Unit": "Count"} in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert line["service"] == "mlops-inference" and line["ArtifactRefused"] in (1, 1.0, [1.0])


def test_canary_alarms_name_exactly_the_dimensions_the_handler_emits(
    handler: ModuleType, world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops.contracts.names import service_name
    from mlops.deployment.canary import canary_alarms

    # GIVEN the handler deployed in dev (its service name as synth sets it) and a champion
    monkeypatch.setattr(observability.metrics, "service", service_name("dev", "inference"))
    world.champion(world.register(0))
    capsys.readouterr()
    # WHEN a prediction is made
    status, _ = call(handler, "POST", f"/models/{MODEL}/predict", {"record": world.records[0]})
    assert status == 200
    # THEN each canary alarm's dimension set is exactly the one its metric carries (CloudWatch
    # matches exactly: an alarm missing Powertools' service dimension would never see data)
    emitted = {
        name: {d: line[d] for d in line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]}
        for line in emf_lines(capsys.readouterr().out)
        for name in (m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"])
    }
    for alarm in canary_alarms("dev", MODEL, 1).values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == emitted[alarm["MetricName"]], alarm
