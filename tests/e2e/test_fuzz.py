"""Schema-derived fuzzing of the inference API on the local cloud, signed: no response is a 5xx.

The same runner as ``make fuzz`` (``benchmarks/fuzz_api.py``: 10,000 cases, about half an hour on a
busy 2-core machine), with 1,000 cases here so the suite stays within its time. The cases come from
the OpenAPI document the API serves; each is sent over HTTP, SigV4-signed, through the local API
Gateway and the inference Lambda handler to real models (ONNX exports, a classifier and a
regressor: what the inference function's layer can run; a pickle-only version is served by the
fallback function, which the inference function invokes).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mlops_local.testing import LocalCloudProcess

pytestmark = pytest.mark.xdist_group("fuzz")

ROOT = Path(__file__).resolve().parents[2]
CASES = 1000


def runner() -> ModuleType:
    """``benchmarks/fuzz_api.py`` (benchmarks/ is scripts, not a package), loaded once."""
    if "fuzz_api" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / "benchmarks" / "fuzz_api.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_api"] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules["fuzz_api"]


def test_signed_schema_derived_cases_get_no_5xx(local_cloud: LocalCloudProcess) -> None:
    # GIVEN two served models (ONNX exports, classification and regression)
    fuzz_api = runner()
    models = fuzz_api.serve_models(local_cloud)
    # WHEN 1,000 cases derived from the served OpenAPI document are sent, signed
    report = fuzz_api.fuzz(local_cloud, CASES, seed=1, models=models)
    # THEN every one was answered, none with a 5xx, every refusal with a JSON error
    assert report.cases == CASES, report.summary()
    assert report.five_xx == 0, report.server_errors[:5]
    assert report.unexplained_refusals == [], report.unexplained_refusals[:5]
    # AND the cases reached the models (200) as well as their checks (4xx)
    assert report.by_operation["POST /models/{model}/predict 2xx"] > 0, report.summary()
    assert report.by_operation["POST /models/{model}/predict 4xx"] > 0, report.summary()


def test_the_runner_signs_what_it_sends(local_cloud: LocalCloudProcess) -> None:
    # GIVEN the runner's SigV4 auth  WHEN a request goes out with it, and one without it
    import requests

    from mlops_local.cloud import CREDENTIALS

    url = local_cloud.api_url.rstrip("/") + "/openapi.json"
    signed = requests.get(url, auth=runner().SigV4(*CREDENTIALS, local_cloud.region), timeout=60)
    unsigned = requests.get(url, timeout=60)
    # THEN the signed one passes the gateway's signature check, the other is refused
    assert signed.status_code == 200 and unsigned.status_code == 403


def test_a_version_without_an_onnx_export_is_served_by_the_fallback_function(local_cloud: LocalCloudProcess) -> None:
    # GIVEN a champion registered with only its pickled pipeline (the inference layer has no scikit-learn)
    import json

    import requests

    from mlops.registry.specs import SpecStore
    from mlops.registry.versions import Registry
    from mlops.spec.model import parse_spec
    from mlops.training.fit import train
    from mlops.training.frames import model_input
    from mlops.training.onnx_model import records_from_frame
    from mlops_local.cloud import CREDENTIALS
    from mlops_local.testing import serve_as_champion

    fuzz_api = runner()
    generate, load_spec = fuzz_api._example_tools()
    ssm = local_cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
    )
    document = load_spec(ROOT / "examples" / "specs" / "churn.yaml").model_dump(mode="json")
    training = {**document["training"], "estimator": "sklearn.linear_model.LogisticRegression", "params": {}}
    document.update(name="pickle-only", deployment={"strategy": "all_at_once"}, training={**training, "search": None})
    spec = parse_spec(document)
    revision = SpecStore(registry).put(spec, actor="alice").revision
    result = train(generate("churn", rows=300, seed=5), spec, code_revision="pickle-only")
    serve_as_champion(
        registry,
        local_cloud.client("s3"),
        parameter("data-bucket"),
        spec,
        result.pipeline,
        spec_revision=revision,
        prefix="pickle-only",
        onnx=False,
    )
    # WHEN it is asked for a prediction
    record = records_from_frame(result.holdout.head(1), spec)[0]
    url = local_cloud.api_url.rstrip("/") + "/models/pickle-only/predict"
    auth = fuzz_api.SigV4(*CREDENTIALS, local_cloud.region)
    answer = requests.post(url, json={"record": record}, auth=auth, timeout=120)
    # THEN the inference function (onnxruntime, no scikit-learn, as on Lambda) had the fallback
    # function (the scientific layer) predict it: the pipeline's own answer
    assert answer.status_code == 200, answer.text
    body = json.loads(answer.text)
    assert body["predictions"] == [int(v) for v in result.pipeline.predict(model_input(result.holdout.head(1), spec))]
