"""Local Lambda execution environments: one warm worker process per function (more under load).

Each function runs in its own processes with only its own environment variables (plus the ones the
Lambda runtime sets and the local endpoint and credentials), its code directory and layers first
on ``sys.path``, and its timeout enforced by killing the worker, as Lambda ends a timed-out
environment. Errors come back in the payload shape Lambda returns with ``FunctionError``
``Unhandled``.

An init (the handler module's imports) that takes longer than Lambda's 10 s init phase is not an
error: as on Lambda, it goes on inside the first invocation and counts against the function's
timeout. On a busy machine importing pandas and scikit-learn can take longer than 10 s; refusing
such an init failed pipeline steps that Lambda would have run.

One environment's worker process is :class:`mlops_local.worker_process.WorkerProcess`.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.errors import NotFoundError
from mlops_local import patches
from mlops_local.faults import FaultPlan
from mlops_local.worker_process import INIT_TIMEOUT_S, FunctionSpec, InvokeResult, WorkerProcess

# The fork server starts once and forks every worker from a process that already imported these:
# the SDK, and the third-party libraries the platform's functions share (numpy, pandas, scipy,
# scikit-learn, pydantic, Powertools, onnxruntime). A cold start then pays for the function's own
# modules, not for importing the same libraries again in every environment (about 3 s of CPU
# each; with twenty concurrent runs, 40 environments started at once and cold inits outlived
# Lambda's 10 s init limit). So a local Init Duration is shorter than on Lambda, where a layer's
# libraries are imported at every cold start. What a function may import is unchanged (the
# environment's packages were importable before); what its layers ship is checked by the layer
# tests. A module missing from this environment is skipped by the fork server.
PRELOAD = [
    "mlops_local.worker",
    "json",
    "boto3",
    "botocore.session",
    "numpy",
    "pandas",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "onnxruntime",
    "skl2onnx",
]


class LambdaRuntime:
    """Runs registered functions in warm worker processes.

    Parameters
    ----------
    endpoint_url
        The local AWS endpoint the functions' SDK clients use (``AWS_ENDPOINT_URL``).
    region, account
        Region and account the functions believe they run in.
    log_dir
        Each function's output (including START/END/REPORT lines) is appended to
        ``<log_dir>/<function>.log``; ``None`` leaves it on the parent's stdout and stderr.
    max_workers
        Concurrent execution environments per function.
    start_method
        ``"forkserver"`` (default, fast warm-up) or ``"spawn"``.
    on_metrics
        Called with the embedded-metric-format lines an invocation printed (CloudWatch turns
        them into metrics; the local cloud stores them in its CloudWatch).
    init_timeout_s
        Lambda's init phase limit; a longer init goes on inside the first invocation, under the
        function's timeout.
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account: str,
        log_dir: Path | None = None,
        max_workers: int = 4,
        start_method: str = "forkserver",
        credentials: tuple[str, str] = ("testing", "testing"),
        on_metrics: Callable[[list[str]], None] | None = None,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.init_timeout_s = init_timeout_s
        self.on_metrics = on_metrics
        self.region = region
        self.account = account
        self.log_dir = log_dir
        self.max_workers = max_workers
        self.credentials = credentials
        self.context: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self.context.set_forkserver_preload(PRELOAD)
        self.functions: dict[str, FunctionSpec] = {}
        self._idle: dict[str, list[WorkerProcess]] = {}
        self._busy: dict[str, int] = {}
        self._lock = threading.Condition()
        self._stopped = False
        # Injected faults, like AWS Fault Injection Service's Lambda actions: function name
        # fragment -> [remaining count, errorType, errorMessage].
        self.faults: dict[str, list[Any]] = {}
        # Failure drills (mlops_local.faults): this runtime applies the plan's function faults.
        self.plan = FaultPlan()
        self._running: set[WorkerProcess] = set()
        self.invocations: list[dict[str, Any]] = []  # name, request id, error, duration: for summaries

    def register(self, spec: FunctionSpec) -> None:
        """Make ``spec`` invokable by name and by ARN; replaces (and retires) an older version."""
        with self._lock:
            old = self._idle.pop(spec.name, [])
            self.functions[spec.name] = spec
        for w in old:
            w.kill()

    def lookup(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn
        if name.startswith("arn:"):
            name = name.split(":")[6]
        elif ":" in name:
            name = name.split(":")[0]
        spec = self.functions.get(name)
        if spec is None:
            raise NotFoundError(f"function {name_or_arn} is not deployed in the local cloud")
        return spec

    def worker_config(self, spec: FunctionSpec) -> dict[str, Any]:
        access, secret = self.credentials
        environment = {
            # What the Lambda runtime sets ...
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(spec.code_dir),
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            # ... where the local cloud is, with credentials it accepts ...
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": "local",
            # ... and the function's own configuration (wins, as on Lambda for non-reserved keys).
            **spec.environment,
        }
        return {
            "function_name": spec.name,
            "function_arn": spec.arn,
            "handler": spec.handler,
            "memory": spec.memory,
            "environment": environment,
            "paths": [str(spec.code_dir), *(str(d / "python") for d in spec.layer_dirs)],
            "packages": sorted(spec.packages) if spec.packages is not None else None,
            "log_path": str(self.log_dir / f"{spec.name}.log") if self.log_dir else None,
            # The SDK's retry back-off inside functions is compressed with the cloud's other waits.
            "time_scale": patches.scaled(1.0),
            "max_wait_s": patches.scaled(1e9),
        }

    def _acquire(self, spec: FunctionSpec) -> WorkerProcess:
        with self._lock:
            while True:
                if self._stopped:
                    raise RuntimeError("the local Lambda runtime is stopped")
                idle = self._idle.setdefault(spec.name, [])
                while idle:
                    w = idle.pop()
                    if w.alive and w.spec is spec:
                        self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                        return w
                    w.kill()
                if self._busy.get(spec.name, 0) < self.max_workers:
                    self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                    break
                self._lock.wait()
        try:
            return WorkerProcess(self, spec, self.init_timeout_s)
        except BaseException:
            self._release(spec, None)
            raise

    def _release(self, spec: FunctionSpec, w: WorkerProcess | None) -> None:
        with self._lock:
            self._busy[spec.name] -= 1
            if w is not None and w.alive and not self._stopped and self.functions.get(spec.name) is spec:
                self._idle.setdefault(spec.name, []).append(w)
            elif w is not None:
                w.kill()
            self._lock.notify_all()

    def invoke(self, name_or_arn: str, payload: bytes | str | None = None) -> InvokeResult:
        """Run one invocation synchronously (RequestResponse) and return its result.

        Examples
        --------
        >>> result = runtime.invoke("mlops-dev-validate", b'{"x": 1}')  # doctest: +SKIP
        >>> result.function_error, result.json()  # doctest: +SKIP
        (None, {...})
        """
        spec = self.lookup(name_or_arn)
        data = payload.encode() if isinstance(payload, str) else (payload or b"")
        request_id = str(uuid.uuid4())
        injected = self._take_fault(spec.name)
        if injected is not None:
            self.invocations.append(
                {
                    "function": spec.name,
                    "request_id": request_id,
                    "ok": False,
                    "duration_ms": 0.0,
                    "error": injected["errorType"],
                    "injected": True,
                }
            )
            return InvokeResult(json.dumps({**injected, "requestId": request_id}).encode(), "Unhandled", request_id)
        fault = self.plan.take_function(spec.name, data)
        if fault is not None and fault["kind"] == "function.hold":
            self.plan.hold(fault["delay_s"])  # then the handler runs as usual
            fault = None
        if fault is not None and fault["kind"] == "function.error" and fault["phase"] == "before":
            error = {"errorType": fault["error_type"], "errorMessage": fault["message"], "stackTrace": []}
            self.invocations.append(
                {
                    "function": spec.name,
                    "request_id": request_id,
                    "ok": False,
                    "duration_ms": 0.0,
                    "error": fault["error_type"],
                    "injected": True,
                }
            )
            return InvokeResult(json.dumps({**error, "requestId": request_id}).encode(), "Unhandled", request_id)
        invoked_arn = name_or_arn if name_or_arn.startswith("arn:") else spec.arn
        started = time.time()
        w = self._acquire(spec)
        body: dict[str, Any] | bytes
        try:
            if w.init_error is not None:
                ok, body = False, {**w.init_error, "requestId": request_id}
            else:
                with self._lock:
                    self._running.add(w)
                try:
                    ok, body = w.invoke(data, request_id, invoked_arn, fault)
                finally:
                    with self._lock:
                        self._running.discard(w)
        finally:
            self._release(spec, w)
        self.invocations.append(
            {
                "function": spec.name,
                "request_id": request_id,
                "ok": ok,
                "duration_ms": round((time.time() - started) * 1000, 1),
                "error": None if ok else body.get("errorType") if isinstance(body, dict) else None,
                **({"injected": True} if fault is not None else {}),
            }
        )
        if ok:
            assert isinstance(body, bytes)
            return InvokeResult(body, None, request_id)
        return InvokeResult(json.dumps(body).encode(), "Unhandled", request_id)

    def inject_fault(
        self,
        function: str,
        *,
        count: int = 1,
        error_type: str = "Lambda.ServiceException",
        message: str = "fault injected by the local cloud",
    ) -> None:
        """Make the next ``count`` invocations of functions whose name contains ``function`` fail.

        The failure has the shape of an unhandled function error with ``errorType`` set, which is
        what a state's ``Retry``/``Catch`` matches on (``Lambda.ServiceException`` is retried by
        the pipelines, any other type is caught). ``count`` 0 removes the fault.
        """
        with self._lock:
            if count <= 0:
                self.faults.pop(function, None)
            else:
                self.faults[function] = [count, error_type, message]

    def _take_fault(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            for fragment, fault in list(self.faults.items()):
                if fragment in name:
                    fault[0] -= 1
                    if fault[0] <= 0:
                        del self.faults[fragment]
                    return {"errorType": fault[1], "errorMessage": fault[2], "stackTrace": []}
        return None

    def restart(self) -> None:
        """Kill every execution environment, idle and busy, as a host failure would.

        A busy environment dies mid-invocation: its caller gets ``Runtime.ExitError``. Later
        invocations start new environments (cold starts). Functions stay registered.
        """
        with self._lock:
            idle = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
            busy = list(self._running)
        for w in idle:
            w.kill()
        for w in busy:  # the invoking thread sees the process end and cleans up after it
            if w.process.is_alive():
                w.process.kill()

    def warm(self, names: list[str] | None = None) -> None:
        """Start (and import) one environment per function ahead of the first request."""
        threads = []
        for name in names or list(self.functions):
            spec = self.functions[name]

            def start(s: FunctionSpec = spec) -> None:
                self._release(s, self._acquire(s))

            t = threading.Thread(target=start, daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()

    def stop(self) -> None:
        """Kill every worker (idle ones now; busy ones when they return)."""
        with self._lock:
            self._stopped = True
            workers = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
            self._lock.notify_all()
        for w in workers:
            w.kill()
