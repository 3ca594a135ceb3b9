"""The parent's side of one execution environment: its worker process, init, invocations and timeout.

The child's side (the handler module, one invocation at a time over a pipe) is :mod:`mlops_local.worker`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_local import worker as worker_module

if TYPE_CHECKING:
    from mlops_local.runtime import LambdaRuntime

INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit


@dataclass
class FunctionSpec:
    """What the runtime needs to run one function, read from its template resource."""

    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: list[Path] = field(default_factory=list)
    # The top-level packages its code and layers ship; the worker refuses to import any other
    # (but the standard library and the AWS SDK the Lambda runtime ships). None: no fence.
    packages: frozenset[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    timeout: int = 3
    memory: int = 128
    runtime: str = "python3.12"
    dead_letter_arn: str | None = None


@dataclass(frozen=True)
class InvokeResult:
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed
    request_id: str = ""

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


_START_LOCK = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a worker without re-running the parent's ``__main__`` (the CLI, pytest) inside it.

    multiprocessing re-imports the main module in children it does not fork directly; a Lambda
    environment has no business running the caller's script.
    """
    main = sys.modules.get("__main__")
    with _START_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
        try:
            if main is not None:
                main.__dict__.pop("__file__", None)
                main.__dict__["__spec__"] = None
            yield
        finally:
            if main is not None:
                main.__dict__.update(saved)
                if "__spec__" not in saved:
                    main.__dict__.pop("__spec__", None)


def _timeout_payload(request_id: str, timeout: int) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "errorMessage": f"{now} {request_id} Task timed out after {timeout:.2f} seconds",
        "errorType": "Sandbox.Timedout",
        "requestId": request_id,
        "stackTrace": [],
    }


def _directive(fault: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the environment itself must do for an injected fault (see mlops_local.worker)."""
    if fault is None:
        return None
    if fault["kind"] == "function.timeout":
        return {"hang": fault["phase"]}
    if fault["kind"] == "function.error":  # phase "after": the handler runs, then the answer is lost
        return {"error": {"errorType": fault["error_type"], "errorMessage": fault["message"], "stackTrace": []}}
    if fault["kind"] == "function.restart":  # the handler runs, then holds its answer until the restart ends it
        return {"hold": True}
    return None


class WorkerProcess:
    def __init__(self, runtime: LambdaRuntime, spec: FunctionSpec, init_timeout_s: float = INIT_TIMEOUT_S) -> None:
        self.spec = spec
        self.on_metrics = runtime.on_metrics
        self.restart_all = runtime.restart
        parent, child = runtime.context.Pipe()
        self.conn = parent
        self.process = runtime.context.Process(
            target=worker_module.main,
            args=(child, runtime.worker_config(spec)),
            name=f"lambda:{spec.name}",
            daemon=True,
        )
        with _main_hidden():
            self.process.start()
        child.close()
        self.init_error: dict[str, Any] | None = None
        # Past Lambda's init phase limit the init goes on into the first invocation (see invoke).
        self.initialized = False
        if self.conn.poll(init_timeout_s):
            self._finish_init()

    def _finish_init(self) -> None:
        self.initialized = True
        try:
            _, self.init_error = self.conn.recv()
        except EOFError:
            self.init_error = {
                "errorMessage": f"RequestId: Error: Runtime exited during init of {self.spec.name}",
                "errorType": "Runtime.ExitError",
                "stackTrace": [],
            }

    @property
    def alive(self) -> bool:
        return self.init_error is None and self.process.is_alive()

    def invoke(
        self, payload: bytes, request_id: str, invoked_arn: str, fault: dict[str, Any] | None = None
    ) -> tuple[bool, dict[str, Any] | bytes]:
        timeout = self.spec.timeout
        started = time.monotonic()
        if not self.initialized:
            # Lambda retries an init that outlasted its init phase during the first invocation,
            # under the function's timeout: the rest of the init counts against this invocation.
            if not self.conn.poll(timeout):
                self.kill()
                return False, _timeout_payload(request_id, timeout)
            self._finish_init()
            if self.init_error is not None:
                return False, {**self.init_error, "requestId": request_id}
        remaining = max(0.0, timeout - (time.monotonic() - started))
        directive = _directive(fault)
        self.conn.send(("invoke", payload.decode() if payload else "", request_id, remaining, invoked_arn, directive))
        if fault is not None and fault["kind"] == "function.restart":
            # The environment holds its answer (see mlops_local.worker), so the invocation is still
            # under way when the restart comes, however fast the handler or slow the machine.
            threading.Timer(fault["delay_s"], self.restart_all).start()
        if not self.conn.poll(remaining + 0.05):
            self.kill()
            return False, _timeout_payload(request_id, timeout)
        try:
            status, body, *rest = self.conn.recv()
            if status == "hung":  # an injected timeout: the environment would run out its time; end it now
                self.kill()
                return False, _timeout_payload(request_id, timeout)
        except (EOFError, OSError):
            code = self.process.exitcode
            self.kill()
            return False, {
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
                "errorType": "Runtime.ExitError",
                "requestId": request_id,
                "stackTrace": [],
            }
        if rest and rest[0] and self.on_metrics is not None:
            self.on_metrics(rest[0])
        if status == "ok":
            return True, body.encode()
        return False, body

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()
