"""Load: many concurrent signed clients against the local cloud's inference endpoint, bounded.

Starts the local cloud (``mlops local up`` in a child process, on loopback, from a synthesized
assembly), stores a spec, trains one small churn model in process, stores its artifacts (pickle
and ONNX export, as the pipeline registers them), registers, approves and makes it champion, and
warms the function's execution environments. Then, against ``POST /models/<model>/predict``:

1. baseline: 1 client for ``--baseline-seconds``;
2. load: ``--clients`` (32) clients for ``--seconds`` (60), at most ``--max-requests`` in all.

Each request is SigV4-signed for ``execute-api`` with the local credentials, exactly as the CLI's
``signed_request`` and the e2e tests sign (botocore's ``SigV4Auth`` over method, URL and body), and
sent over a new loopback connection as the CLI sends (``--keep-alive`` reuses one connection per
client instead). Every answer that is not a 2xx, and every socket error (connection reset, refused,
timed out), is counted and listed. Reported: p50/p99 latency, requests per second and its ratio to
the one-client baseline measured in the same run, and the resident memory of the local cloud's
processes (the API server process, the multiprocessing fork server, each Lambda worker: VmRSS at
start, end and the sampled peak, and the kernel's VmHWM), checked against the bound the design gives.

Exit 0 when no request got an error or a reset and memory stayed within its bound, 1 otherwise.

Run: ``python benchmarks/bench_load.py [--assembly cdk.out] [--clients 32] [--seconds 60]``
(``make bench-load``); ``tests/e2e/test_load.py`` runs :func:`run_load` for 3 s on the session's cloud.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
MODEL = "load-churn"
MAX_ERRORS_LISTED = 50


# ------------------------------------------------------------------------------------------ serving
def serve_champion(cloud: Any, name: str = MODEL, environment: str = "dev") -> dict[str, Any]:
    """Make ``name`` (the churn example, a 20-tree forest) champion on ``cloud``; return one valid record.

    Trained in process, as the fuzzing runner does: the pipeline's own training is covered by the
    pipeline tests, and what is measured here is the request path. The artifacts are the ones the
    pipeline registers (pickle, plus its ONNX export when skl2onnx is installed). A model that is
    already champion is reused.
    """
    from mlops.registry.specs import SpecStore
    from mlops.registry.versions import Registry
    from mlops.spec.model import load_spec, parse_spec
    from mlops.training.fit import train
    from mlops.training.onnx_model import records_from_frame
    from mlops_local.testing import serve_as_champion

    module_spec = importlib.util.spec_from_file_location("example_generate", ROOT / "examples" / "generate.py")
    assert module_spec is not None and module_spec.loader is not None
    generate = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(generate)

    ssm = cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/{environment}/{leaf}")["Parameter"]["Value"])

    registry = Registry.for_dynamodb(
        cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
    )
    document = load_spec(ROOT / "examples" / "specs" / "churn.yaml").model_dump(mode="json")
    document.update(name=name, deployment={"strategy": "all_at_once"})
    training = dict(document["training"])
    training.update(estimator="sklearn.ensemble.RandomForestClassifier", params={"n_estimators": 20}, search=None)
    document["training"] = training
    spec = parse_spec(document)
    result = train(generate.generate("churn", rows=600, seed=3), spec, code_revision="load")
    record: dict[str, Any] = records_from_frame(result.holdout.head(1), spec)[0]
    summary = next((m for m in registry.list_models(limit=100).items if m.name == name), None)
    if summary is not None and summary.champion is not None:
        return record
    revision = SpecStore(registry).put(spec, actor="alice").revision
    bucket, s3 = parameter("data-bucket"), cloud.client("s3")
    onnx = importlib.util.find_spec("skl2onnx") is not None
    serve_as_champion(registry, s3, bucket, spec, result.pipeline, spec_revision=revision, prefix="load", onnx=onnx)
    return record


# ------------------------------------------------------------------------------------------ clients
@dataclass
class LoadReport:
    """What one load phase saw."""

    clients: int
    seconds: float = 0.0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    resets: int = 0
    socket_errors: int = 0
    http_errors: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    capped: bool = False

    @property
    def requests(self) -> int:
        return self.ok + self.http_errors + self.resets + self.socket_errors

    @property
    def failures(self) -> int:
        return self.http_errors + self.resets + self.socket_errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "ok_2xx": self.ok,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(0.50), 1),
            "p99_ms": round(self.percentile(0.99), 1),
            "max_ms": round(max(self.latencies) * 1000, 1) if self.latencies else None,
            "statuses": dict(sorted(self.statuses.items())),
            "non_2xx": self.http_errors,
            "connection_resets": self.resets,
            "other_socket_errors": self.socket_errors,
            "errors": self.errors[:MAX_ERRORS_LISTED],
            "stopped_by_request_cap": self.capped,
        }


class Signer:
    """SigV4 for ``execute-api`` with the given credentials: what ``signed_request`` in the CLI does."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        from botocore.credentials import Credentials

        self.credentials = Credentials(access_key, secret_key)
        self.region = region

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())


def run_load(
    url: str,
    body: bytes,
    signer: Signer,
    *,
    clients: int,
    seconds: float,
    max_requests: int,
    keep_alive: bool = False,
    timeout_s: float = 60.0,
) -> LoadReport:
    """``clients`` threads each send signed ``POST url`` back to back until ``seconds`` pass or
    ``max_requests`` were sent in all; every answer and socket error is counted."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load goes to loopback only, not {parts.hostname}")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    report = LoadReport(clients=clients)
    lock = threading.Lock()
    tickets = iter(range(max_requests))
    started = time.perf_counter()
    deadline = started + seconds

    def record_error(kind: str, client: int, detail: str) -> None:
        if len(report.errors) < MAX_ERRORS_LISTED:
            report.errors.append(
                {"at_s": round(time.perf_counter() - started, 2), "client": client, "kind": kind, "detail": detail}
            )

    def client(index: int) -> None:
        connection: http.client.HTTPConnection | None = None
        while time.perf_counter() < deadline:
            with lock:
                if next(tickets, None) is None:
                    report.capped = True
                    break
            headers = signer.headers("POST", url, body)  # signed per request (X-Amz-Date), as callers do
            if not keep_alive:
                headers["Connection"] = "close"
            begun = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s
                    )
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status = response.status
                elapsed = time.perf_counter() - begun
                if not keep_alive or response.will_close:
                    connection.close()
                    connection = None
            except ConnectionResetError as exc:
                _closed(connection)
                connection = None
                with lock:
                    report.resets += 1
                    record_error("connection reset", index, repr(exc))
                continue
            except (OSError, http.client.HTTPException) as exc:
                _closed(connection)
                connection = None
                with lock:
                    report.socket_errors += 1
                    record_error("socket error", index, repr(exc))
                continue
            with lock:
                report.statuses[status] = report.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    report.ok += 1
                    report.latencies.append(elapsed)
                else:
                    report.http_errors += 1
                    record_error(f"HTTP {status}", index, answer[:300].decode(errors="replace"))
        _closed(connection)

    threads = [threading.Thread(target=client, args=(i,), name=f"load-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout_s + 30)
    report.seconds = time.perf_counter() - started
    return report


def _closed(connection: http.client.HTTPConnection | None) -> None:
    if connection is not None:
        connection.close()


# ------------------------------------------------------------------------------------------ memory
def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in KiB (empty when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


_HANDLERS: dict[str, str] = {}


def _function_of(pid: int) -> str:
    """Which function a worker runs: its working directory is the function's code (``handler.py``)."""
    if not _HANDLERS:
        for path in (ROOT / "functions").glob("*/handler.py"):
            _HANDLERS[hashlib.sha256(path.read_bytes()).hexdigest()] = path.parent.name
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        return _HANDLERS.get(hashlib.sha256((cwd / "handler.py").read_bytes()).hexdigest(), cwd.name)
    except OSError:
        return "unknown"


def processes(root: int) -> list[dict[str, Any]]:
    """The local cloud's process tree under ``root`` (``mlops local up``), each with its role and memory."""
    tree = _children()
    found: list[dict[str, Any]] = []

    def visit(pid: int, parent_role: str | None) -> None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return
        if parent_role is None:
            role = "api-server"
        elif parent_role == "forkserver":  # forked by it, so its command line is the fork server's
            role = f"worker:{_function_of(pid)}"
        elif "forkserver" in cmdline:
            role = "forkserver"
        elif "resource_tracker" in cmdline:
            role = "resource-tracker"
        else:
            role = "other"
        memory = _status(pid)
        if memory:
            found.append(
                {"pid": pid, "role": role, "rss_kib": memory.get("VmRSS", 0), "hwm_kib": memory.get("VmHWM", 0)}
            )
        for child in tree.get(pid, []):
            visit(child, role)

    visit(root, None)
    return found


class MemorySampler:
    """Samples the tree's VmRSS every ``interval_s``; keeps the peak of the sum and of each process."""

    def __init__(self, root: int, interval_s: float = 0.5) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_total_kib = 0
        self.peak_by_pid: dict[int, dict[str, Any]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> list[dict[str, Any]]:
        found = processes(self.root)
        self.samples += 1
        self.peak_total_kib = max(self.peak_total_kib, sum(p["rss_kib"] for p in found))
        for p in found:
            seen = self.peak_by_pid.get(p["pid"])
            if seen is None or p["rss_kib"] > seen["rss_kib"]:
                self.peak_by_pid[p["pid"]] = dict(p)
        return found

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def by_role(found: list[dict[str, Any]]) -> dict[str, Any]:
    """Processes, summed RSS and largest RSS (MiB) per role."""
    roles: dict[str, list[int]] = {}
    for p in found:
        roles.setdefault(p["role"], []).append(p["rss_kib"])
    return {
        "total_rss_mib": round(sum(p["rss_kib"] for p in found) / 1024, 1),
        "by_role": {
            role: {
                "processes": len(rss),
                "rss_mib": round(sum(rss) / 1024, 1),
                "max_rss_mib": round(max(rss) / 1024, 1),
            }
            for role, rss in sorted(roles.items())
        },
    }


def memory_bound(
    start: list[dict[str, Any]],
    end: list[dict[str, Any]],
    peak_total_kib: int,
    requests: int,
    max_workers: int,
    per_request_kib: float,
) -> dict[str, Any]:
    """The design's bound on the local cloud's memory under load, and whether the run kept it.

    The runtime keeps at most ``max_workers`` execution environments per function (the warm pool);
    under this load only the inference function runs, so the workers are bounded in number, and a
    warm worker holds one model whatever the number of requests (its RSS at the end within 1.5 × its
    start, or 64 MiB more). The API server process keeps what a cloud keeps per request (the
    request record, the invocation record, the captured request in the in-memory S3 bucket), so
    it may grow by at most ``per_request_kib`` per request over its RSS at the start:

        bound = api_server_start + requests × per_request_kib + fork server and tracker at start
              + max_workers × max(1.5 × worker_start, worker_start + 64 MiB)
    """

    def total(found: list[dict[str, Any]], prefix: str) -> int:
        return sum(p["rss_kib"] for p in found if p["role"].startswith(prefix))

    inference_start = [p["rss_kib"] for p in start if p["role"] == "worker:inference"]
    inference_end = [p for p in end if p["role"] == "worker:inference"]
    per_worker = max(inference_start) if inference_start else 0
    worker_cap = max(per_worker * 1.5, per_worker + 64 * 1024)
    server_cap = total(start, "api-server") + requests * per_request_kib
    others = sum(p["rss_kib"] for p in start if p["role"] in ("forkserver", "resource-tracker", "other"))
    bound_kib = server_cap + others + max_workers * worker_cap
    end_total = sum(p["rss_kib"] for p in end)
    other_workers = [p for p in end if p["role"].startswith("worker:") and p["role"] != "worker:inference"]
    checks = {
        "inference_workers_at_most_pool": len(inference_end) <= max_workers,
        "each_inference_worker_within_cap": all(p["rss_kib"] <= worker_cap for p in inference_end),
        "api_server_within_cap": total(end, "api-server") <= server_cap,
        "total_within_bound": end_total <= bound_kib,
        "sampled_peak_within_bound": peak_total_kib <= bound_kib,
    }
    return {
        "max_workers_per_function": max_workers,
        "inference_workers_at_end": len(inference_end),
        "other_function_workers_at_end": len(other_workers),
        "per_worker_start_mib": round(per_worker / 1024, 1),
        "per_worker_cap_mib": round(worker_cap / 1024, 1),
        "api_server_growth_mib": round((total(end, "api-server") - total(start, "api-server")) / 1024, 1),
        "api_server_growth_per_request_kib": round(
            (total(end, "api-server") - total(start, "api-server")) / max(1, requests), 2
        ),
        "api_server_cap_mib": round(server_cap / 1024, 1),
        "bound_mib": round(bound_kib / 1024, 1),
        "end_total_mib": round(end_total / 1024, 1),
        "checks": checks,
        "within_bound": all(checks.values()),
    }


# ------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=None, help="synthesized cdk.out (default: synthesize now)")
    parser.add_argument("--env", default="dev", help="the environment the assembly was synthesized for")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on the load phase's requests")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--keep-alive", action="store_true", help="reuse one connection per client")
    parser.add_argument(
        "--per-request-kib", type=float, default=16.0, help="the API server's allowed growth per request"
    )
    args = parser.parse_args()

    from mlops_local.cloud import CREDENTIALS, LocalCloudOptions
    from mlops_local.testing import LocalCloudProcess, synthesize_once

    started = time.perf_counter()
    assembly = args.assembly if args.assembly is not None else synthesize_once(args.env, ROOT)
    load_before = os.getloadavg()
    with LocalCloudProcess(assembly, "--no-schedules") as cloud:
        assert cloud.process is not None
        record = serve_champion(cloud, environment=args.env)
        url = cloud.api_url.rstrip("/") + f"/models/{MODEL}/predict"
        body = json.dumps({"record": record}).encode()
        signer = Signer(CREDENTIALS[0], CREDENTIALS[1], cloud.region)
        # Every execution environment the pool will start is started, and its model loaded, before
        # the clock: cold starts are the cold-start benchmark's business. Its errors still count.
        warm = run_load(
            url,
            body,
            signer,
            clients=args.clients,
            seconds=10.0,
            max_requests=args.max_requests,
            keep_alive=args.keep_alive,
        )
        setup_s = time.perf_counter() - started
        baseline = run_load(
            url,
            body,
            signer,
            clients=1,
            seconds=args.baseline_seconds,
            max_requests=args.max_requests,
            keep_alive=args.keep_alive,
        )
        memory_start = processes(cloud.process.pid)
        with MemorySampler(cloud.process.pid) as sampler:
            load = run_load(
                url,
                body,
                signer,
                clients=args.clients,
                seconds=args.seconds,
                max_requests=args.max_requests,
                keep_alive=args.keep_alive,
            )
        memory_end = processes(cloud.process.pid)
        load_after = os.getloadavg()
        bound = memory_bound(
            memory_start,
            memory_end,
            sampler.peak_total_kib,
            load.requests,
            LocalCloudOptions().max_workers,
            args.per_request_kib,
        )
    report: dict[str, Any] = {
        "setup_seconds": round(setup_s, 1),
        "endpoint": url,
        "connections": "keep-alive" if args.keep_alive else "new per request (as the CLI sends)",
        "warm_up": warm.summary(),
        "baseline_1_client": baseline.summary(),
        "load": load.summary(),
        "rps_ratio_to_1_client": round(load.rps / baseline.rps, 2) if baseline.rps else None,
        "memory": {
            "start": by_role(memory_start),
            "end": by_role(memory_end),
            "peak_sampled_total_rss_mib": round(sampler.peak_total_kib / 1024, 1),
            "samples": sampler.samples,
            "sum_of_vmhwm_mib": round(sum(p["hwm_kib"] for p in memory_end) / 1024, 1),
            "bound": bound,
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    failures = warm.failures + baseline.failures + load.failures
    verdict = "PASS" if failures == 0 and bound["within_bound"] else "FAIL"
    print(
        f"{verdict}: {args.clients} signed clients for {load.seconds:.0f} s: {load.requests} requests,"
        f" {load.rps:.1f} rps = {report['rps_ratio_to_1_client']}x one client ({baseline.rps:.1f} rps),"
        f" p50 {load.percentile(0.5):.0f} ms, p99 {load.percentile(0.99):.0f} ms;"
        f" {load.http_errors} non-2xx, {load.resets} connection resets, {load.socket_errors} other socket errors"
        f" (warm-up and baseline: {warm.failures + baseline.failures});"
        f" memory {bound['end_total_mib']} MiB at the end, peak {report['memory']['peak_sampled_total_rss_mib']} MiB,"
        f" bound {bound['bound_mib']} MiB ({'kept' if bound['within_bound'] else 'EXCEEDED'});"
        f" load average {load_after[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
