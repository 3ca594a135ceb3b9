"""Serving reads a stored spec as a SpecView (no pydantic): it must read what ModelSpec reads.

And the reason it exists: a cold start serves a valid prediction without importing pydantic, boto3
or PyYAML (checked in a fresh interpreter running the real handler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops.registry.specs import SpecRevision, SpecStore
from mlops.registry.versions import Registry
from mlops.serving.awsapi import DECLINED_SETTINGS
from mlops.serving.errors import RequestError
from mlops.serving.requests import request_models
from mlops.spec.model import ModelSpec, load_spec, parse_spec
from mlops.spec.view import SpecView
from mlops.training.artifacts import sha256_hex
from mlops.training.export import ONNX_TAG_SHA256, ONNX_TAG_URI, export_onnx
from mlops.training.threshold import DecisionThreshold
from tests.unit.serving.conftest import MODEL, World

ROOT = Path(__file__).resolve().parents[3]
HANDLER = ROOT / "functions" / "inference" / "handler.py"

# Every constraint a feature can carry, and a classification target with classes.
_EVERY_CONSTRAINT: dict[str, Any] = {
    "name": "every-constraint",
    "task": "classification",
    "target": {"name": "label", "classes": ["no", "yes"]},
    "features": [
        {"name": "amount", "type": "float", "min": 0, "max": 1e6, "nullable": True, "description": "in EUR"},
        {"name": "visits", "type": "int", "min": 0, "max": 100},
        {"name": "tier", "type": "int", "allowed": [1, 2, 3]},
        {"name": "plan", "type": "category", "allowed": ["basic", "pro"]},
        {"name": "code", "type": "category", "regex": "^[A-Z]{2}$"},
        {"name": "customer_id", "type": "string", "regex": "^c-[0-9]+$"},
        {"name": "active", "type": "bool"},
        {"name": "signup", "type": "datetime"},
    ],
    "training": {"estimator": "sklearn.ensemble.RandomForestClassifier"},
}


def _stored(spec: ModelSpec) -> SpecRevision:
    registry = Registry.in_memory()
    store = SpecStore(registry)
    store.put(spec, actor="alice")
    return store.get(spec.name, 1)


def _specs() -> list[ModelSpec]:
    return [load_spec(p) for p in sorted((ROOT / "examples" / "specs").glob("*.yaml"))] + [
        parse_spec(_EVERY_CONSTRAINT)
    ]


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s.name)
def test_view_reads_what_the_spec_reads(spec: ModelSpec) -> None:
    # GIVEN a spec stored in the registry
    revision = _stored(spec)
    # WHEN serving reads it as a view
    view = revision.view()
    # THEN it holds the same name, task, target classes, fingerprint and features, constraint by constraint
    assert (view.name, view.task, view.target.classes) == (spec.name, spec.task, spec.target.classes)
    assert view.fingerprint() == spec.fingerprint() == revision.fingerprint
    assert view.feature_names == spec.feature_names
    for seen, expected in zip(view.features, spec.features, strict=True):
        for attribute in ("name", "type", "description", "nullable", "min", "max", "allowed", "regex"):
            assert getattr(seen, attribute) == getattr(expected, attribute), (spec.name, seen.name, attribute)
        assert seen.type is expected.type  # the same enum member: serving compares with `is`
    # AND the whole spec can still be had from it, equal to the stored one
    assert view.model_spec() == spec


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s.name)
def test_request_models_from_the_view_equal_those_from_the_spec(spec: ModelSpec) -> None:
    # GIVEN request models built from the spec and from its stored view
    view = _stored(spec).view()
    from_spec = request_models(spec, spec_revision=None, max_batch_size=7)
    from_view = request_models(view, spec_revision=None, max_batch_size=7)
    # THEN the published input schema is the same
    assert from_view.input_schema() == from_spec.input_schema()
    # AND a record missing every feature is refused with the same details by both
    with pytest.raises(RequestError) as by_spec:
        from_spec.validate([{"unknown": 1}])
    with pytest.raises(RequestError) as by_view:
        from_view.validate([{"unknown": 1}])
    assert by_view.value.details == by_spec.value.details
    assert any(d["problem"] == "extra_field" for d in by_view.value.details)


def test_view_of_a_document_keeps_the_fingerprint_it_is_given() -> None:
    spec = parse_spec(_EVERY_CONSTRAINT)
    view = SpecView.from_document(json.loads(spec.canonical_json()), spec.fingerprint())
    assert view.fingerprint() == spec.fingerprint()
    assert [f.type.value for f in view.features] == [f["type"] for f in _EVERY_CONSTRAINT["features"]]


_COLD_START = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
handler = importlib.util.module_from_spec(spec); spec.loader.exec_module(handler)
production = handler.service()  # the production wiring: settings, platform names, clients
from mlops.registry.versions import Registry
from mlops.serving.predictors import MemoryArtifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
state = json.load(open(sys.argv[2]))
registry = Registry.in_memory()
for table, items in state["tables"].items():
    for item in items:
        registry.store.raw_put(table, item)
objects = {uri: bytes.fromhex(data) for uri, data in state["objects"].items()}
handler._service = InferenceService(registry, MemoryArtifacts(objects), ServingSettings(capture_rate=0.0))
class Context:
    function_name = "inference"; memory_limit_in_mb = 1024; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference"
def ask(record):
    event = {"resource": "/models/{model}/predict", "path": "/models/churn/predict", "httpMethod": "POST",
             "headers": {"Content-Type": "application/json"}, "pathParameters": {"model": "churn"},
             "requestContext": {"requestId": "r", "stage": "v1"}, "body": json.dumps({"record": record})}
    return handler.handler(event, Context())
heavy = ("pydantic", "boto3", "botocore.session", "yaml", "sklearn", "pandas", "scipy")
valid = ask(state["record"])
after_valid = sorted(m for m in heavy if m in sys.modules)
refused = ask({**state["record"], "unexpected": 1})
print(json.dumps({"valid": valid, "after_valid": after_valid, "refused": refused,
                  "pydantic_after_refusal": "pydantic" in sys.modules,
                  "clients": [type(production.registry.store.client).__module__,
                              type(production.artifacts.client).__name__]}))
"""


def test_a_cold_start_serves_a_valid_request_without_pydantic_boto3_or_yaml(world: World, tmp_path: Path) -> None:
    # GIVEN a champion with an ONNX export, its registry items and artifacts written out for a fresh process
    data = export_onnx(world.trained[0].pipeline, world.spec)
    uri = "s3://bucket/artifacts/churn/0/model.onnx"
    world.artifacts.objects[uri] = data
    assert (ONNX_TAG_URI, ONNX_TAG_SHA256) == ("onnx_uri", "onnx_sha256")
    # with a decision threshold: its labels are computed in numpy, no scikit-learn either
    threshold = DecisionThreshold(value=0.3, positive_class=1).tag()
    version = world.register(0, onnx_uri=uri, onnx_sha256=sha256_hex(data), decision_threshold=threshold)
    world.champion(version)
    store: Any = world.registry.store
    state = {
        "tables": {table: store.raw_items(table) for table in ("registry", "audit")},
        "objects": {k: v.hex() for k, v in world.artifacts.objects.items()},
        "record": world.records[0],
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    # This machine's proxy and CA settings are not Lambda's.
    unlike_lambda = {*DECLINED_SETTINGS, "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"}
    environment = {
        **{k: v for k, v in os.environ.items() if k not in unlike_lambda},
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "DATA_BUCKET": "data",
        "REGISTRY_TABLE": "registry",
        "AUDIT_TABLE": "audit",
        "POWERTOOLS_METRICS_NAMESPACE": "MLOps",
        "POWERTOOLS_SERVICE_NAME": "mlops-test-inference",
    }

    # WHEN a fresh interpreter imports the handler, builds the production service and serves a
    # valid record, then a refused one
    done = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(HANDLER), str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    # THEN the valid record was answered by the ONNX champion, and none of the heavy packages was imported
    assert seen["valid"]["statusCode"] == 200, seen["valid"]
    answer = json.loads(seen["valid"]["body"])
    assert answer["model"] == MODEL
    assert answer["predictions"] == [1 if p[1] >= 0.3 else 0 for p in answer["probabilities"]]
    assert seen["after_valid"] == []
    # AND production talks to AWS through mlops.serving.awsapi, not boto3
    assert seen["clients"] == ["mlops.serving.awsapi", "S3"]
    # AND the refusal still names the field, pydantic having been imported to explain it
    assert seen["refused"]["statusCode"] == 400
    assert "unexpected" in seen["refused"]["body"]
    assert seen["pydantic_after_refusal"] is True
