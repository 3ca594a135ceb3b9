"""The process a local Lambda function runs in: one warm execution environment.

Imports only the standard library at module level, so the fork server can preload it cheaply. The
parent (``mlops_local.runtime``) sends one invocation at a time over a pipe; the handler module is
imported once (cold start) and stays imported (warm starts), as in a Lambda execution environment.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import botocore.endpoint

# Variables a process needs to run at all; everything else comes from the function's configuration.
_KEEP = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT", "VIRTUAL_ENV", "MLOPS_LOCAL_PROFILE")


class LambdaContext:
    """The ``context`` argument: the same attributes and methods as the Lambda Python runtime's."""

    def __init__(self, config: dict[str, Any], request_id: str, deadline: float, invoked_arn: str) -> None:
        self.function_name: str = config["function_name"]
        self.function_version: str = config.get("version", "$LATEST")
        self.invoked_function_arn: str = invoked_arn or config["function_arn"]
        self.memory_limit_in_mb: int = int(config.get("memory", 128))
        self.aws_request_id: str = request_id
        self.log_group_name: str = f"/aws/lambda/{self.function_name}"
        self.log_stream_name: str = config.get("log_stream", "local")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _MetricTee:
    """Passes a function's stdout through and keeps the embedded-metric-format lines it prints.

    CloudWatch Logs turns such lines into metrics; the parent does the same with what is kept here.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.partial = ""
        self.documents: list[str] = []

    def write(self, text: str) -> int:
        self.partial += text
        if "\n" in self.partial:
            *lines, self.partial = self.partial.split("\n")
            self.documents.extend(line for line in lines if '"_aws"' in line and "CloudWatchMetrics" in line)
        return self.stream.write(text)

    def take(self) -> list[str]:
        taken, self.documents = self.documents, []
        return taken

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The payload Lambda returns for an unhandled exception."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(frames),
    }


# What the Lambda Python runtime ships beside the standard library: the AWS SDK and its dependencies.
RUNTIME_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six", "jmespath"})


# Where a function extracts a model's training-code package (mlops.training.code.CODE_DIR_NAME,
# under the temporary folder: /tmp on Lambda). A package there is the function's own code on Lambda
# too (sha256-checked against the registry before it is extracted), so the fence lets it import.
CODE_DIR_NAME = "mlops-code"


def _in_code_dir(top: str) -> bool:
    """Whether ``top`` is a package extracted to a code folder that is on ``sys.path``."""
    root = Path(tempfile.gettempdir()) / CODE_DIR_NAME
    for entry in sys.path:
        folder = Path(entry)
        if folder.parent == root and ((folder / top / "__init__.py").is_file() or (folder / f"{top}.py").is_file()):
            return True
    return False


class _Fence:
    """A meta path finder that refuses what Lambda would not find: a package neither the function's
    code, its layers, the standard library nor the runtime's SDK ships (``No module named ...``)."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        top = fullname.partition(".")[0]
        if top in self.allowed or _in_code_dir(top):
            return None  # the next finders look for it
        raise ModuleNotFoundError(f"No module named '{top}' (not in the function's layers)", name=top)


def _fence(packages: frozenset[str]) -> None:
    """Let the function import only what it could import on Lambda.

    The fork server preloaded the platform's common libraries, and this process can see the local
    environment's packages: both would let a handler import a library its layers do not ship, and
    fail only on Lambda. Forget the preloaded modules it may not have, and refuse any import outside
    its code, its layers, the standard library and the runtime's SDK.
    """
    allowed = packages | RUNTIME_PACKAGES | frozenset(sys.stdlib_module_names) | {"mlops_local", "__main__"}

    def shipped(name: str, module: Any) -> bool:
        # an alias counts by what it is: sklearn registers its Cython modules under short names too
        real = str(getattr(module, "__name__", name) or name)
        return name.partition(".")[0] in allowed or real.partition(".")[0] in allowed

    for name in [n for n, module in list(sys.modules.items()) if not shipped(n, module)]:
        del sys.modules[name]
    sys.meta_path.insert(0, _Fence(allowed))


def _init(config: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, function_name = config["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        payload = error_payload(exc, "Runtime.ImportModuleError")
        payload["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        return None, payload
    except Exception as exc:
        return None, error_payload(exc)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        return None, {
            "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        }
    return handler, None


def _compress_sdk_backoff(scale: float, max_wait_s: float) -> None:
    """Scale the SDK's sleeps between retries (botocore sleeps in ``botocore.endpoint``).

    The local cloud compresses every wait (Step Functions back-off, Wait states); a function that
    meets a throttled DynamoDB would otherwise sleep DynamoDB's full legacy back-off (about 25 s over
    ten attempts). The attempts and their order are unchanged.
    """
    if scale >= 1.0:
        return

    class _ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(min(seconds * scale, max_wait_s))

    botocore.endpoint.time = _ScaledTime()


def _hang(conn: Any) -> None:
    """An injected timeout: tell the parent, then never answer (it ends this process)."""
    conn.send(("hung", None))
    while True:
        time.sleep(60)


def _call(handler: Any, event: Any, context: Any) -> Any:
    """Run the handler; under ``MLOPS_LOCAL_PROFILE=DIR`` with cProfile, its stats written to
    ``DIR/<function>-<request id>.prof`` (where a pipeline's time goes: ``python -m pstats``)."""
    where = os.environ.get("MLOPS_LOCAL_PROFILE")
    if not where:
        return handler(event, context)
    profile = cProfile.Profile()
    try:
        return profile.runcall(handler, event, context)
    finally:
        Path(where).mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(Path(where) / f"{context.function_name}-{context.aws_request_id}.prof"))


def main(conn: Any, config: dict[str, Any]) -> None:
    """Entry point of the worker process; ``config`` is built by ``mlops_local.runtime``."""
    kept = {k: v for k, v in os.environ.items() if k in _KEEP}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.update(config["environment"])
    log_path = config.get("log_path")
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sys.path[:0] = [p for p in config["paths"] if p not in sys.path[: len(config["paths"])]]
    # The fork server imported this module, and with it the ``mlops`` package from the local
    # environment; forget it so the function imports ``mlops`` from its layer, as on Lambda.
    for name in [n for n in sys.modules if n == "mlops" or n.startswith("mlops.")]:
        del sys.modules[name]
    if config.get("packages") is not None:
        _fence(frozenset(config["packages"]))
    os.chdir(config["paths"][0])
    tee = _MetricTee(sys.stdout)
    sys.stdout = tee
    started = time.time()
    handler, init_error = _init(config)
    init_ms = (time.time() - started) * 1000
    conn.send(("ready", init_error))
    if init_error is not None:
        return  # the next invocation gets a fresh environment, as Lambda retries the init
    _compress_sdk_backoff(float(config.get("time_scale", 1.0)), float(config.get("max_wait_s", 1e9)))
    cold = True
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message[0] != "invoke":
            return
        _, payload, request_id, timeout_s, invoked_arn, *extra = message
        # A failure drill's fault for this invocation (mlops_local.faults), or None.
        fault: dict[str, Any] | None = extra[0] if extra else None
        if fault and fault.get("hang") == "before":
            _hang(conn)
        deadline = time.time() + timeout_s
        os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{int(time.time()):08x}-{request_id.replace('-', '')[:24]}"
        print(f"START RequestId: {request_id} Version: {config.get('version', '$LATEST')}", flush=True)
        begun = time.time()
        try:
            event = json.loads(payload) if payload else {}
            result = _call(handler, event, LambdaContext(config, request_id, deadline, invoked_arn))
            try:
                body = json.dumps(result)
            except (TypeError, ValueError) as exc:
                reply: tuple[str, Any] = (
                    "error",
                    {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": request_id,
                        "stackTrace": [],
                    },
                )
            else:
                reply = ("ok", body)
        except Exception as exc:
            error = error_payload(exc)
            error["requestId"] = request_id
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", flush=True)
            traceback.print_exc()
            reply = ("error", error)
        duration = (time.time() - begun) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        init = f"\tInit Duration: {init_ms:.2f} ms" if cold else ""
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Memory Size: {config.get('memory', 128)} MB{init}",
            flush=True,
        )
        sys.stderr.flush()
        cold = False
        if fault and fault.get("hang") == "after":
            _hang(conn)
        if fault and fault.get("hold"):
            # An injected restart: the handler's work is done, the environment dies before answering.
            while True:
                time.sleep(60)
        if fault and fault.get("error"):
            # The handler ran (its writes are made); the answer is lost, as when the environment fails on return.
            print(f"[ERROR] injected {fault['error']['errorType']} after the handler returned", flush=True)
            reply = ("error", {**fault["error"], "requestId": request_id})
        conn.send((*reply, tee.take()))
