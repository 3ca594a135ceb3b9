"""Benchmark: the inference endpoint (issue 8), each number against a baseline measured in the same run.

1. warm handler latency, in process: the Lambda handler (API Gateway event in, JSON out) serving a
   100-tree random forest on the churn spec, p50/p99 for 1 and 1000 records, against the bare
   model predict on already-prepared input (onnxruntime ``session.run``, and scikit-learn
   ``predict_proba`` on a ready frame);
2. cold start: a fresh process that imports the handler and serves its first request, against a
   fresh process that imports scikit-learn and unpickles the same model (ratio baseline / ours),
   and boto3's import with its two clients against mlops.serving.awsapi's (``--cold-only``: this part only);
3. many models: 500 small models, warm p99 over random models vs the single-model p99, and the cost
   of a cache miss (read, sha256, load);
4. (``--http``) requests per second through the local cloud's HTTP endpoint, 8 concurrent clients,
   1-record requests, signed with SigV4.

The ONNX path needs onnxruntime and skl2onnx; without them the pickle path is measured and said so.

Run: ``python benchmarks/bench_inference.py [--http] [--models 500]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.predictors import MemoryArtifacts
from mlops.serving.requests import request_models
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.spec.model import ModelSpec, load_spec, parse_spec
from mlops.training.artifacts import dump_artifact, sha256_hex
from mlops.training.fit import TrainResult, train
from mlops.training.frames import model_input
from mlops.training.onnx_model import ONNX_TAG_SHA256, ONNX_TAG_URI, feature_columns, records_from_frame

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "functions" / "inference" / "handler.py"


def _generate() -> Callable[..., pd.DataFrame]:
    spec = importlib.util.spec_from_file_location("example_generate", ROOT / "examples" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("skl2onnx") is not None


def churn_spec(trees: int, name: str = "churn") -> ModelSpec:
    document = load_spec(ROOT / "examples" / "specs" / "churn.yaml").model_dump(mode="json")
    document["name"] = name
    document["training"].update(
        estimator="sklearn.ensemble.RandomForestClassifier", params={"n_estimators": trees}, search=None
    )
    return parse_spec(document)


def register(
    registry: Registry, artifacts: MemoryArtifacts, spec: ModelSpec, result: TrainResult, bucket: str = "bench"
) -> int:
    SpecStore(registry).put(spec, actor="bench")
    data, sha256 = dump_artifact(result.pipeline)
    uri = f"s3://{bucket}/artifacts/{spec.name}/model.pkl"
    artifacts.objects[uri] = data
    tags: dict[str, str] = {}
    if onnx_available():
        from mlops.training.export import export_onnx

        onnx = export_onnx(result.pipeline, spec)
        artifacts.objects[uri + ".onnx"] = onnx
        tags = {ONNX_TAG_URI: uri + ".onnx", ONNX_TAG_SHA256: sha256_hex(onnx)}
    version = registry.register_version(
        spec.name, actor="bench", spec_revision=1, artifact_uri=uri, artifact_sha256=sha256, tags=tags
    ).version
    registry.approve(spec.name, version, actor="bench")
    registry.set_alias(spec.name, "champion", version, actor="bench")
    return version


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    for _ in range(min(20, repeat)):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def load_handler(service: InferenceService) -> ModuleType:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MLOps")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mlops-inference")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    spec = importlib.util.spec_from_file_location("inference_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._service = service  # type: ignore[attr-defined]
    return module


def event(model: str, body: str) -> dict[str, Any]:
    return {
        "resource": "/models/{model}/predict",
        "path": f"/models/{model}/predict",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "pathParameters": {"model": model},
        "requestContext": {"requestId": "bench", "stage": "v1"},
        "body": body,
        "isBase64Encoded": False,
    }


class Context:
    function_name = "inference"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference"
    aws_request_id = "bench"


def warm(spec: ModelSpec, result: TrainResult, repeat: int) -> dict[str, Any]:
    registry, artifacts = Registry.in_memory(), MemoryArtifacts()
    register(registry, artifacts, spec, result)
    service = InferenceService(registry, artifacts, ServingSettings(capture_rate=0.0))
    handler = load_handler(service)
    frame = pd.concat([result.holdout] * 3, ignore_index=True).head(1000)
    records = records_from_frame(frame, spec)
    out: dict[str, Any] = {"path": "onnx" if onnx_available() else "sklearn-pickle"}
    for size in (1, 1000):
        body = json.dumps({"records": records[:size]})
        n = repeat if size == 1 else max(50, repeat // 20)
        answer = handler.handler(event(spec.name, body), Context())
        assert answer["statusCode"] == 200, answer

        def serve(body: str = body) -> Any:
            return handler.handler(event(spec.name, body), Context())

        ours = timed(serve, n)
        x = model_input(frame.head(size), spec)

        def bare_sklearn(x: pd.DataFrame = x) -> Any:
            return result.pipeline.predict_proba(x)

        sklearn_bare = timed(bare_sklearn, n)
        row: dict[str, Any] = {"handler": ours, "sklearn_predict_proba": sklearn_bare}
        loaded = service.cache.get((spec.name, 1))
        if loaded is not None and loaded.predictor.kind == "onnx":
            session = loaded.predictor.session  # type: ignore[attr-defined]
            columns = feature_columns(records[:size], spec)
            feeds = {name: columns[name] for name in loaded.predictor.inputs}  # type: ignore[attr-defined]

            def bare_onnx(session: Any = session, feeds: dict[str, Any] = feeds) -> Any:
                return session.run(None, feeds)

            bare = timed(bare_onnx, n)
            row["onnx_session_run"] = bare
            row["overhead_vs_onnx_p50_ms"] = round(ours["p50_ms"] - bare["p50_ms"], 3)
        row["overhead_vs_sklearn_p50_ms"] = round(ours["p50_ms"] - sklearn_bare["p50_ms"], 3)
        out[f"{size}_records"] = row
    out["validation_1000_records"] = validation(spec, records[:1000], max(50, repeat // 20))
    return out


def validation(spec: ModelSpec, records: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Checking a 1000-record batch: column-wise (now) against a pydantic model per record (before)."""
    models = request_models(spec, spec_revision=1, max_batch_size=len(records))
    adapter = models.records_adapter
    assert models.validate(records) == [r.model_dump() for r in adapter.validate_python(records)]

    def per_record() -> Any:
        return [r.model_dump() for r in adapter.validate_python(records)]

    before = timed(per_record, repeat)
    after = timed(lambda: models.validate(records), repeat)
    return {
        "pydantic_per_record": before,
        "column_wise": after,
        "speedup_p50": round(before["p50_ms"] / after["p50_ms"], 1),
    }


_COLD = """
import json, os, sys, time
started = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
handler = importlib.util.module_from_spec(spec); spec.loader.exec_module(handler)
imported = time.perf_counter()
production = handler.service()  # what a cold start builds: settings, platform names, mlops.serving.awsapi clients
built = time.perf_counter()
# The stand-ins for DynamoDB and S3 are filled here, from items the parent wrote (no spec is parsed
# here: that would import pydantic outside the clock); the harness's work, not counted.
from mlops.registry.versions import Registry
from mlops.serving.predictors import MemoryArtifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
state = json.load(open(sys.argv[2]))
registry = Registry.in_memory()
for table, items in state["tables"].items():
    for item in items:
        registry.store.raw_put(table, item)
objects = {uri: open(path, "rb").read() for uri, path in state["files"].items()}
resumed = time.perf_counter()
class Sink:  # the capture bucket's stand-in: production captures every request by default
    def __init__(self): self.objects = {}
    def put(self, key, body): self.objects[key] = body
sink = Sink()
settings = ServingSettings.from_env(os.environ)
handler._service = InferenceService(registry, MemoryArtifacts(objects), settings, capture=sink)
class C:
    function_name = "inference"; memory_limit_in_mb = 1024; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference"
event = {"resource": "/models/{model}/predict", "path": "/models/%s/predict" % state["model"], "httpMethod": "POST",
         "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
         "pathParameters": {"model": state["model"]}, "requestContext": {"requestId": "cold", "stage": "v1"},
         "body": json.dumps({"record": state["record"]}), "isBase64Encoded": False}
answer = handler.handler(event, C())
assert answer["statusCode"] == 200, answer
done = time.perf_counter()
handler._service.flush()
assert len(sink.objects) == 1, "the request was captured"
print(json.dumps({"seconds": (built - started) + (done - resumed), "import_handler": imported - started,
                  "service": built - imported, "first_request": done - resumed,
                  "stand_in_setup_not_counted": resumed - built,
                  "heavy": sorted(m for m in ("sklearn", "pandas", "scipy", "boto3", "botocore.session", "yaml",
                                              "pydantic") if m in sys.modules)}))
"""

_BASELINE = """
import json, pickle, sys, time
started = time.perf_counter()
import sklearn.ensemble, sklearn.pipeline, sklearn.compose, sklearn.preprocessing, sklearn.impute
model = pickle.loads(open(sys.argv[1], "rb").read())
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

# What the inference function no longer pays (mlops.serving.awsapi): importing boto3 and creating its
# DynamoDB and S3 clients, in a fresh process.
_BOTO3_CLIENTS = """
import json, os, time
started = time.perf_counter()
import boto3
boto3.client("dynamodb"); boto3.client("s3")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

# What it pays instead: importing mlops.serving.awsapi and creating its two clients, in a fresh process
# with the same environment (the numbers quoted in mlops.serving.awsapi's docstring).
_AWSAPI_CLIENTS = """
import json, os, time
started = time.perf_counter()
from mlops.serving.awsapi import clients_from_env
assert clients_from_env(os.environ) is not None
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

# The floor of the ONNX path: the runtime (and numpy) imported, this model's session created.
_ONNX_FLOOR = """
import json, sys, time
started = time.perf_counter()
import onnxruntime
options = onnxruntime.SessionOptions(); options.intra_op_num_threads = 1; options.inter_op_num_threads = 1
onnxruntime.InferenceSession(open(sys.argv[1], "rb").read(), options, providers=["CPUExecutionProvider"])
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def cold(spec: ModelSpec, result: TrainResult, runs: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    data, sha256 = dump_artifact(result.pipeline)
    (workdir / "model.pkl").write_bytes(data)
    files = {"s3://bench/model.pkl": str(workdir / "model.pkl")}
    version: dict[str, Any] = {"artifact_uri": "s3://bench/model.pkl", "artifact_sha256": sha256}
    if onnx_available():
        from mlops.training.export import export_onnx

        onnx = export_onnx(result.pipeline, spec)
        (workdir / "model.onnx").write_bytes(onnx)
        files["s3://bench/model.onnx"] = str(workdir / "model.onnx")
        version["tags"] = {ONNX_TAG_URI: "s3://bench/model.onnx", ONNX_TAG_SHA256: sha256_hex(onnx)}
    registry = Registry.in_memory()
    SpecStore(registry).put(spec, actor="bench")
    registry.register_version(spec.name, actor="bench", spec_revision=1, **version)
    registry.approve(spec.name, 1, actor="bench")
    registry.set_alias(spec.name, "champion", 1, actor="bench")
    store: Any = registry.store
    state = {
        "model": spec.name,
        "tables": {table: store.raw_items(table) for table in ("registry", "audit")},
        "files": files,
        "record": records_from_frame(result.holdout.head(1), spec)[0],
    }
    (workdir / "state.json").write_text(json.dumps(state))

    # As deployed: the function's settings and the shared layer as Lambda gets it (with bytecode);
    # credentials and region in the environment, as Lambda sets them.
    sys.path.insert(0, str(ROOT))
    from stacks.function import RUNTIME_ENVIRONMENT
    from stacks.layers import SHARED_SOURCE, stage_shared_layer

    layer = stage_shared_layer(SHARED_SOURCE).path / "python"
    # This machine's proxy and CA settings are not Lambda's (and would make the function use boto3).
    from mlops.serving.awsapi import DECLINED_SETTINGS

    unlike_lambda = {*DECLINED_SETTINGS, "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"}
    lambda_env = {
        **{k: v for k, v in os.environ.items() if k not in unlike_lambda},
        **RUNTIME_ENVIRONMENT,
        "POWERTOOLS_SERVICE_NAME": "mlops-bench-inference",
        "PYTHONPATH": str(layer),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DATA_BUCKET": "bench-data",
        "REGISTRY_TABLE": "registry",
        "AUDIT_TABLE": "audit",
    }

    def process(code: str, *args: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        env = lambda_env
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        return wall, json.loads(done.stdout.strip().splitlines()[-1])

    samples: dict[str, list[float]] = {}
    heavy: list[str] = []

    def add(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    # Interleaved, so a busy machine slows every side alike.
    for _ in range(runs):
        wall, inner = process(_COLD, str(HANDLER), str(workdir / "state.json"))
        add("ours_wall", wall)
        for key in ("seconds", "import_handler", "service", "first_request"):
            add(key, inner[key])
        heavy = inner["heavy"]
        wall, inner = process(_BASELINE, str(workdir / "model.pkl"))
        add("base_wall", wall)
        add("baseline", inner["seconds"])
        add("boto3_clients", process(_BOTO3_CLIENTS)[1]["seconds"])
        add("awsapi_clients", process(_AWSAPI_CLIENTS)[1]["seconds"])
        if onnx_available():
            add("onnx_floor", process(_ONNX_FLOOR, str(workdir / "model.onnx"))[1]["seconds"])
    m = {k: statistics.median(v) for k, v in samples.items()}
    out: dict[str, Any] = {
        "path": "onnx" if onnx_available() else "sklearn-pickle",
        "heavy_modules_imported": heavy,
        "handler_first_request_s": round(m["seconds"], 3),
        "breakdown_s": {
            "import_handler": round(m["import_handler"], 3),
            "build_service_awsapi_clients": round(m["service"], 4),
            "first_request": round(m["first_request"], 3),
        },
        "baseline_import_sklearn_unpickle_s": round(m["baseline"], 3),
        "ratio_baseline_over_ours": round(m["baseline"] / m["seconds"], 2),
        "shared_layer_bytecode": any(layer.rglob("*.pyc")),
        "boto3_import_and_two_clients_s": round(m["boto3_clients"], 3),
        "awsapi_import_and_two_clients_s": round(m["awsapi_clients"], 4),
        "ratio_boto3_over_awsapi_clients": round(m["boto3_clients"] / m["awsapi_clients"], 1),
        "ratio_if_boto3_clients_were_used": round(m["baseline"] / (m["seconds"] + m["boto3_clients"]), 2),
        "process_wall_ours_s": round(m["ours_wall"], 3),
        "process_wall_baseline_s": round(m["base_wall"], 3),
        "ratio_wall": round(m["base_wall"] / m["ours_wall"], 2),
    }
    if "onnx_floor" in m:
        out["onnx_floor_s"] = round(m["onnx_floor"], 3)
        out["ratio_ceiling_onnx_alone"] = round(m["baseline"] / m["onnx_floor"], 2)
    return out


def many(base: ModelSpec, count: int, repeat: int) -> dict[str, Any]:
    frame = _generate()("churn", rows=600, seed=7)
    small = churn_spec(5, "m-0")
    result = train(frame, small)
    registry, artifacts = Registry.in_memory(), MemoryArtifacts()
    for index in range(count):
        register(registry, artifacts, churn_spec(5, f"m-{index}"), result)
    service = InferenceService(registry, artifacts, ServingSettings(capture_rate=0.0, cache_bytes=2 * 1024**3))
    body = json.dumps({"record": records_from_frame(result.holdout.head(1), small)[0]})

    def ask(model: str) -> None:
        service.predict(model, body, content_type="application/json", request_id="m")

    misses = []
    for index in range(count):
        started = time.perf_counter()
        ask(f"m-{index}")
        misses.append(time.perf_counter() - started)
    rng = random.Random(1)
    single = timed(lambda: ask("m-0"), repeat)
    spread = timed(lambda: ask(f"m-{rng.randrange(count)}"), repeat)
    return {
        "models": count,
        "cache_entries": len(service.cache),
        "cache_mib": round(service.cache.nbytes / 2**20, 1),
        "single_model": single,
        "random_model_warm": spread,
        "p99_ratio": round(spread["p99_ms"] / single["p99_ms"], 2),
        "cache_miss": percentiles(misses),
    }


def http(result: TrainResult, spec: ModelSpec, seconds: float) -> dict[str, Any]:
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from mlops_local.testing import CREDENTIALS, LocalCloudProcess, synthesize_once

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    with LocalCloudProcess(synthesize_once("dev", ROOT), "--no-schedules") as cloud:
        ssm = cloud.client("ssm")

        def parameter(leaf: str) -> str:
            return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

        bucket = parameter("data-bucket")
        registry = Registry.for_dynamodb(
            cloud.client("dynamodb"),
            registry_table=parameter("registry-table"),
            audit_table=parameter("audit-table"),
        )
        staged = MemoryArtifacts()
        register(registry, staged, spec, result, bucket)  # the same artifacts (pickle and ONNX) as in process
        for uri, data in staged.objects.items():
            cloud.client("s3").put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=data)
        url = cloud.api_url.rstrip("/") + f"/models/{spec.name}/predict"
        body = json.dumps({"record": records_from_frame(result.holdout.head(1), spec)[0]}).encode()
        credentials = Credentials(*CREDENTIALS)

        def one() -> int:
            request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
            SigV4Auth(credentials, "execute-api", cloud.region).add_auth(request)
            outgoing = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
            with urllib.request.urlopen(outgoing, timeout=60) as response:
                return int(response.status)

        def clients(count: int, duration: float) -> float:
            deadline = time.perf_counter() + duration

            def client() -> int:
                done = 0
                while time.perf_counter() < deadline:
                    assert one() == 200
                    done += 1
                return done

            started = time.perf_counter()
            with ThreadPoolExecutor(count) as pool:
                total = sum(pool.map(lambda _: client(), range(count)))
            return total / (time.perf_counter() - started)

        assert one() == 200
        # Every execution environment the runtime will start is started (and its model loaded) before
        # the clock: their cold starts are the cold-start benchmark's business, not throughput's.
        starting = clients(8, 5.0)
        eight = clients(8, seconds)
        single = clients(1, seconds / 2)
    return {
        "clients": 8,
        "rps": round(eight, 1),
        "rps_one_client": round(single, 1),
        "rps_first_5s_while_environments_start": round(starting, 1),
        "cpus": os.cpu_count(),
        "note": "client, gateway, fake AWS and function processes share these CPUs",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--http", action="store_true", help="also measure the local cloud's HTTP endpoint")
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument("--cold-only", action="store_true", help="measure only the cold start (part 2)")
    args = parser.parse_args()
    spec = churn_spec(100)
    frame = _generate()("churn", rows=2000, seed=7)
    result = train(frame, spec)
    np.random.seed(0)
    report: dict[str, Any] = {"onnx_available": onnx_available()}
    if args.cold_only:
        report["cold_start"] = cold(spec, result, args.cold_runs)
        print(json.dumps(report, indent=2))
        return
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # the handler's EMF metric lines
        report["warm"] = warm(spec, result, args.repeat)
    report["cold_start"] = cold(spec, result, args.cold_runs)
    report["many_models"] = many(spec, args.models, args.repeat)
    if args.http:
        report["http"] = http(result, spec, args.http_seconds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
