"""The Python serving path on the local cloud: a model without an ONNX converter, served over real HTTP.

The model is palmerpenguins' species classifier (the CSV the package ships, with its missing
values) with a Nystroem kernel map between the platform's preprocessing and the classifier:
skl2onnx has no converter for it, so the version is registered with its pickle only. A signed
request goes through the local API Gateway to the inference function, which validates it, routes
it and invokes the fallback function (the scientific layer) through the local Lambda API; the
answers must equal the pipeline's own ``predict`` and ``predict_proba``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops.registry.serving_path import COLD_STARTS, ONNX_ERROR_TAG, SERVING_PATH_TAG
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops.training.export import OnnxExportError, export_onnx
from mlops.training.fit import train
from mlops.training.frames import coerce_frame, model_input
from mlops_local.testing import CREDENTIALS, LocalCloudProcess, serve_as_champion
from tests.conformance.datasets import PENGUINS
from tests.unit.serving.no_converter import kernel_pipeline

MODEL = "penguins-python-path"
MLOPS = str(Path(sys.executable).parent / "mlops")
pytestmark = pytest.mark.xdist_group("fallback")


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


def predict(cloud: LocalCloudProcess, model: str, body: Any) -> tuple[int, dict[str, Any], float]:
    """POST /models/{model}/predict, SigV4-signed; the status, the JSON answer and the seconds it took."""
    url = cloud.api_url.rstrip("/") + f"/models/{model}/predict"
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*CREDENTIALS), "execute-api", cloud.region).add_auth(request)
    outgoing = urllib.request.Request(url, data=data, headers=dict(request.headers.items()), method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(outgoing, timeout=120) as response:
            return int(response.status), json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"{}"), time.perf_counter() - started


@pytest.fixture(scope="module")
def served(local_cloud: LocalCloudProcess) -> dict[str, Any]:
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    document = PENGUINS.spec.model_dump(mode="json")
    document.update(name=MODEL, deployment={"strategy": "all_at_once"})
    spec = parse_spec(document)
    revision = SpecStore(registry).put(spec, actor="alice").revision
    frame = PENGUINS.frame()
    held_back = PENGUINS.held_back_rows()
    training = frame.drop(index=held_back).reset_index(drop=True)
    pipeline = kernel_pipeline(training, spec, train(training, spec))
    # registered as the Register state registers a pipeline whose export fails (mlops.training.steps.outcome)
    with pytest.raises(OnnxExportError) as refused:
        export_onnx(pipeline, spec)
    why = str(refused.value)
    version = serve_as_champion(
        registry,
        local_cloud.client("s3"),
        parameter(local_cloud, "data-bucket"),
        spec,
        pipeline,
        spec_revision=revision,
        prefix="python-path",
        onnx=False,
        tags={SERVING_PATH_TAG: "python", ONNX_ERROR_TAG: why[:500]},
    )
    rows = PENGUINS.held_back_frame()
    return {"spec": spec, "pipeline": pipeline, "version": version, "rows": rows, "records": PENGUINS.records(rows)}


def test_a_model_without_an_onnx_converter_is_served_by_the_fallback(
    local_cloud: LocalCloudProcess, served: dict[str, Any]
) -> None:
    # GIVEN a champion whose pipeline skl2onnx cannot convert (registered with its pickle only)
    spec, pipeline = served["spec"], served["pipeline"]
    with pytest.raises(OnnxExportError):
        export_onnx(pipeline, spec)
    # WHEN palmerpenguins' 100 held-back rows are posted, signed, as one batch (the first request: cold)
    status, answer, cold_s = predict(local_cloud, MODEL, {"records": served["records"]})
    # THEN the answer is the pipeline's own, in the ONNX path's shape
    assert status == 200, answer
    x = model_input(coerce_frame(served["rows"], spec), spec)
    assert answer["predictions"] == [str(label) for label in pipeline.predict(x)]
    np.testing.assert_allclose(answer["probabilities"], pipeline.predict_proba(x), atol=1e-6)
    assert answer["classes"] == [str(c) for c in pipeline.classes_] and answer["version"] == served["version"]
    assert set(answer) == {"request_id", "model", "version", "predictions", "classes", "probabilities"}
    # AND a warm request costs less than the cold one (printed: docs/inference.md quotes them)
    status, _, warm_s = predict(local_cloud, MODEL, {"record": served["records"][0]})
    assert status == 200
    print(f"\nfallback path on the local cloud: first request {cold_s:.2f} s, warm request {warm_s * 1000:.0f} ms")


def test_row_order_changes_nothing(local_cloud: LocalCloudProcess, served: dict[str, Any]) -> None:
    # GIVEN the same held-back rows in reverse order WHEN posted THEN the answers come back reversed
    status, forward, _ = predict(local_cloud, MODEL, {"records": served["records"]})
    status_back, backward, _ = predict(local_cloud, MODEL, {"records": served["records"][::-1]})
    assert status == status_back == 200
    assert backward["predictions"] == forward["predictions"][::-1]
    np.testing.assert_allclose(backward["probabilities"], forward["probabilities"][::-1], atol=1e-9)


def test_a_bad_record_is_refused_by_the_inference_function_before_the_fallback(
    local_cloud: LocalCloudProcess, served: dict[str, Any]
) -> None:
    # GIVEN a record whose island is not one the spec allows WHEN posted
    record = {**served["records"][0], "island": "Atlantis"}
    status, answer, _ = predict(local_cloud, MODEL, {"records": [served["records"][1], record]})
    # THEN 400 naming the record and the field, as on the ONNX path
    assert status == 400 and answer["error"] == "invalid_record", answer
    assert any(d["record"] == 1 and d["field"] == "island" for d in answer["details"]), answer


def test_models_show_names_the_python_path_and_its_cold_start(
    local_cloud: LocalCloudProcess, served: dict[str, Any], local_env: dict[str, str]
) -> None:
    # GIVEN the served version WHEN `mlops models show M --version V` runs against the local cloud
    done = subprocess.run(
        [MLOPS, "models", "show", MODEL, "--version", str(served["version"])],
        env={**os.environ, **local_env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # THEN it names the Python path and the measured cold start it is quoted with
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith("serving_path"))
    assert "python:" in line and f"{COLD_STARTS['python'].seconds:.2f} s cold start" in line, done.stdout
    # AND why there is no ONNX export
    assert any(line.strip().startswith("why_not_onnx") for line in done.stdout.splitlines()), done.stdout
    print("\n" + done.stdout)
