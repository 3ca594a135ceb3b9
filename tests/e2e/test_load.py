"""Load on the local inference endpoint: 32 concurrent signed clients get no error and no reset.

The runner of ``make bench-load`` (``benchmarks/bench_load.py``: 60 s, figures in docs/inference.md)
for 5 s on the session's cloud. Each client opens a new loopback connection per request, as the
CLI does; before the gateway listened with a backlog large enough for them, 13 of these requests
in 5 s were reset while 32 clients connected at once.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mlops_local.cloud import CREDENTIALS, LocalCloudOptions
from mlops_local.testing import LocalCloudProcess

pytestmark = pytest.mark.xdist_group("load")

ROOT = Path(__file__).resolve().parents[2]


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "benchmarks" / "bench_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_32_concurrent_signed_clients_get_no_error_and_no_reset(local_cloud: LocalCloudProcess) -> None:
    # GIVEN a champion serving on the local cloud, answering one signed request
    bench = runner()
    record = bench.serve_champion(local_cloud, name="load-guard")
    for _ in range(5):
        status, _ = local_cloud.api("POST", "models/load-guard/predict", {"record": record})
        if status == 200:
            break
    assert status == 200
    url = local_cloud.api_url.rstrip("/") + "/models/load-guard/predict"
    signer = bench.Signer(CREDENTIALS[0], CREDENTIALS[1], local_cloud.region)
    # WHEN 32 clients send signed predictions back to back for 5 s, each on a new connection
    report = bench.run_load(
        url, json.dumps({"record": record}).encode(), signer, clients=32, seconds=5.0, max_requests=5000
    )
    # THEN every request got a 2xx: no other status, no connection reset, no other socket error
    summary = report.summary()
    assert report.ok > 32, summary
    assert (report.http_errors, report.resets, report.socket_errors) == (0, 0, 0), summary["errors"][:5]
    # AND the inference function ran in no more execution environments than the warm pool allows
    assert local_cloud.process is not None
    workers = [p for p in bench.processes(local_cloud.process.pid) if p["role"] == "worker:inference"]
    assert 1 <= len(workers) <= LocalCloudOptions().max_workers, workers


def test_the_load_goes_to_loopback_only() -> None:
    # GIVEN the runner  WHEN it is pointed at a host other than loopback  THEN it refuses before sending
    bench = runner()
    with pytest.raises(ValueError, match="loopback only"):
        bench.run_load(
            "http://192.0.2.1:80/v1/models/m/predict",
            b"{}",
            bench.Signer("a", "b", "us-east-1"),
            clients=1,
            seconds=1.0,
            max_requests=1,
        )
