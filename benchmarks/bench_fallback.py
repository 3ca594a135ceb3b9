"""Benchmark: cold start of the Python serving path (the fallback function) against the ONNX path, same run.

The same fitted pipeline (the churn spec, a 100-tree random forest) is served both ways: its ONNX
export by the inference function's handler, its pickle by the fallback function's handler. Each
side is a fresh Python process with the function's environment and the shared layer as deployed
(with bytecode), alternating, and counts what a cold start pays: importing the handler, building
the production service (settings, clients) and the first request (registry reads, sha256, the
model loaded: onnxruntime's session, or scikit-learn imported and the restricted unpickler).
Registry items and artifacts are in-memory stand-ins filled outside the clock, as in
``benchmarks/bench_inference.py`` (whose ``--cold-only`` part this mirrors).

Also measured, in fresh processes: what the inference function pays once per execution environment
to reach the fallback (importing boto3 and making its Lambda client), which a Python-path version's
first request adds to the fallback's own cold start. The network hop itself is not measured here
(the local cloud's is in docs/inference.md, from ``tests/e2e/test_fallback_serving.py``).

Also: the worst of the runs against the serving time budget (``mlops.contracts.serving``: the
fallback's timeout, the inference function's wait for it), with the margins, and the fallback cold
start's CPU time over its wall time (about 1: single threaded, so memory beyond one vCPU does not
shorten it).

Run: ``python benchmarks/bench_fallback.py [--runs 5]``; prints JSON with the medians and the ratio
python / onnx.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.contracts import serving
from mlops.registry.serving_path import SERVING_PATH_TAG
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.training.artifacts import dump_artifact, sha256_hex
from mlops.training.export import export_onnx
from mlops.training.fit import train
from mlops.training.onnx_model import ONNX_TAG_SHA256, ONNX_TAG_URI, records_from_frame

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {"onnx": ROOT / "functions" / "inference" / "handler.py"}
HANDLERS["python"] = ROOT / "functions" / "inference_fallback" / "handler.py"

# One cold start: the handler imported, the production service built, then (stand-ins filled outside
# the clock) the first request: an API event for the inference function, an invoke for the fallback.
_COLD = """
import json, sys, time
started, cpu_started = time.perf_counter(), time.process_time()
import importlib.util
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
handler = importlib.util.module_from_spec(spec); spec.loader.exec_module(handler)
imported = time.perf_counter()
production = handler.service()
built, cpu_built = time.perf_counter(), time.process_time()
from mlops.registry.versions import Registry
from mlops.serving.predictors import MemoryArtifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
state = json.load(open(sys.argv[2]))
path = sys.argv[3]
HEAVY = ("sklearn", "pandas", "scipy", "onnxruntime", "boto3")
registry = Registry.in_memory()
for table, items in state["tables"].items():
    for item in items:
        registry.store.raw_put(table, item)
objects = {uri: open(file, "rb").read() for uri, file in state["files"].items()}
class Sink:
    def __init__(self): self.objects = {}
    def put(self, key, body): self.objects[key] = body
if path == "onnx":
    handler._service = InferenceService(registry, MemoryArtifacts(objects), production.settings, capture=Sink())
    event = {"resource": "/models/{model}/predict", "path": "/models/%s/predict" % state["model"],
             "httpMethod": "POST", "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
             "pathParameters": {"model": state["model"]}, "requestContext": {"requestId": "cold", "stage": "v1"},
             "body": json.dumps({"record": state["record"]}), "isBase64Encoded": False}
    version = state["onnx_version"]
else:
    handler._service = InferenceService(registry, MemoryArtifacts(objects), production.settings, serve_onnx=False)
    version = state["python_version"]
    event = {"model": state["model"], "version": version, "records": [state["record"]],
             "requestContext": {"requestId": "cold"}}
class C:
    function_name = "bench"; memory_limit_in_mb = 2048; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
resumed, cpu_resumed = time.perf_counter(), time.process_time()
answer = handler.handler(event, C())
done, cpu_done = time.perf_counter(), time.process_time()
if path == "onnx":
    assert answer["statusCode"] == 200, answer
    predictions = json.loads(answer["body"])["predictions"]
else:
    assert "predictions" in answer, answer
    predictions = answer["predictions"]
print(json.dumps({"seconds": (built - started) + (done - resumed), "import_handler": imported - started,
                  "cpu_seconds": (cpu_built - cpu_started) + (cpu_done - cpu_resumed),
                  "service": built - imported, "first_request": done - resumed,
                  "predictions": predictions,
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""

# What the inference function pays once to reach the fallback: boto3 imported, its Lambda client made.
_LAMBDA_CLIENT = """
import json, time
started = time.perf_counter()
from mlops.serving.fallback import LambdaInvoker
LambdaInvoker("bench-fallback").client
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _bench_inference() -> ModuleType:
    """``benchmarks/bench_inference.py`` (its example data and spec), loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_inference", ROOT / "benchmarks" / "bench_inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(workdir: Path) -> dict[str, Any]:
    """One pipeline registered twice: v1 with its ONNX export, v2 on the Python path (its pickle)."""
    bench = _bench_inference()
    spec = bench.churn_spec(100)
    result = train(bench._generate()("churn", rows=3000, seed=3), spec)
    data, sha256 = dump_artifact(result.pipeline)
    onnx = export_onnx(result.pipeline, spec)
    (workdir / "model.pkl").write_bytes(data)
    (workdir / "model.onnx").write_bytes(onnx)
    registry = Registry.in_memory()
    SpecStore(registry).put(spec, actor="bench")
    common = {"actor": "bench", "spec_revision": 1, "artifact_uri": "s3://bench/model.pkl", "artifact_sha256": sha256}
    onnx_tags = {ONNX_TAG_URI: "s3://bench/model.onnx", ONNX_TAG_SHA256: sha256_hex(onnx), SERVING_PATH_TAG: "onnx"}
    v1 = registry.register_version(spec.name, **common, tags=onnx_tags).version
    v2 = registry.register_version(spec.name, **common, tags={SERVING_PATH_TAG: "python"}).version
    for version in (v1, v2):
        registry.approve(spec.name, version, actor="bench")
    # the inference function serves the champion (v1, ONNX); the fallback is asked for v2 by number
    registry.set_alias(spec.name, "champion", v1, actor="bench")
    store: Any = registry.store
    state = {
        "model": spec.name,
        "onnx_version": v1,
        "python_version": v2,
        "tables": {table: store.raw_items(table) for table in ("registry", "audit")},
        "files": {
            "s3://bench/model.pkl": str(workdir / "model.pkl"),
            "s3://bench/model.onnx": str(workdir / "model.onnx"),
        },
        "record": records_from_frame(result.holdout.head(1), spec)[0],
    }
    (workdir / "state.json").write_text(json.dumps(state))
    return state


def lambda_environment() -> dict[str, str]:
    """The functions' environment as deployed, with the shared layer as Lambda gets it (bytecode)."""
    sys.path.insert(0, str(ROOT))
    from mlops.serving.awsapi import DECLINED_SETTINGS
    from stacks.function import RUNTIME_ENVIRONMENT
    from stacks.layers import SHARED_SOURCE, stage_shared_layer

    layer = stage_shared_layer(SHARED_SOURCE).path / "python"
    unlike_lambda = {*DECLINED_SETTINGS, "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"}
    return {
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


def run(code: str, env: dict[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per side (alternating)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-fallback-"))
    prepare(workdir)
    env = lambda_environment()
    samples: dict[str, list[float]] = {}
    heavy: dict[str, list[str]] = {}
    answers: dict[str, Any] = {}
    for _ in range(args.runs):  # alternating, so a busy machine slows both sides alike
        for path in ("onnx", "python"):
            wall, inner = run(_COLD, env, str(HANDLERS[path]), str(workdir / "state.json"), path)
            for key in ("seconds", "cpu_seconds", "import_handler", "service", "first_request"):
                samples.setdefault(f"{path}_{key}", []).append(inner[key])
            samples.setdefault(f"{path}_wall", []).append(wall)
            heavy[path], answers[path] = inner["heavy"], inner["predictions"]
        samples.setdefault("lambda_client", []).append(run(_LAMBDA_CLIENT, env)[1]["seconds"])
    m = {k: statistics.median(v) for k, v in samples.items()}
    python_total = m["python_seconds"] + m["lambda_client"]
    worst_fallback = max(samples["python_seconds"])
    # the inference function's side when both are cold: its own cold start and its Lambda client
    worst_before_invoke = max(a + b for a, b in zip(samples["onnx_seconds"], samples["lambda_client"], strict=True))
    out = {
        "runs": args.runs,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "same_answer": answers["onnx"] == answers["python"],
        "onnx_path_cold_start_s": round(m["onnx_seconds"], 3),
        "python_path_fallback_cold_start_s": round(m["python_seconds"], 3),
        "breakdown_s": {
            path: {part: round(m[f"{path}_{part}"], 3) for part in ("import_handler", "service", "first_request")}
            for path in ("onnx", "python")
        },
        "inference_function_lambda_client_once_s": round(m["lambda_client"], 3),
        "python_path_total_s": round(python_total, 3),
        "ratio_python_over_onnx": round(m["python_seconds"] / m["onnx_seconds"], 2),
        "ratio_python_total_over_onnx": round(python_total / m["onnx_seconds"], 2),
        "process_wall_s": {path: round(m[f"{path}_wall"], 3) for path in ("onnx", "python")},
        "heavy_modules_imported": heavy,
        # The timeout budget (mlops.contracts.serving) against this run's worst cold starts.
        "worst_s": {
            "onnx_path_cold_start": round(max(samples["onnx_seconds"]), 3),
            "python_path_fallback_cold_start": round(worst_fallback, 3),
            "inference_before_invoke": round(worst_before_invoke, 3),
        },
        "fallback_cpu_over_wall": round(m["python_cpu_seconds"] / m["python_seconds"], 2),
        "budget_s": {
            "api_gateway": serving.API_GATEWAY_TIMEOUT_S,
            "inference_before_invoke": serving.INFERENCE_BEFORE_INVOKE_S,
            "fallback_read_timeout": serving.FALLBACK_READ_TIMEOUT_S,
            "fallback_timeout": serving.FALLBACK_TIMEOUT_S,
            "fallback_memory_mb": serving.FALLBACK_MEMORY_MB,
        },
        "margin_s": {
            "fallback_timeout_over_worst_cold_start": round(serving.FALLBACK_TIMEOUT_S - worst_fallback, 3),
            "before_invoke_budget_over_worst": round(serving.INFERENCE_BEFORE_INVOKE_S - worst_before_invoke, 3),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
