"""Failure drills: faults the local cloud applies on purpose, where AWS itself would fail.

A :class:`FaultPlan` holds the faults; the local cloud applies them at its boundaries, never inside
the platform's code, so the real handler code, boto3's retries and the state machines'
``Retry``/``Catch`` meet each failure as they would on AWS:

=====================  ==================================================================================
kind                   what happens (``target`` / ``match`` select where)
=====================  ==================================================================================
``function.error``     an invocation of a function whose name contains ``target`` fails with
                       ``error_type`` (default ``Lambda.ServiceException``): ``phase="before"`` without
                       running the handler, ``phase="after"`` after the handler ran to its end (its
                       writes are made; the answer is lost), as when an environment dies on return
``function.timeout``   the invocation outlives the function's timeout: the environment hangs
                       (``phase`` before or after the handler) and is killed; the caller gets Lambda's
                       ``Sandbox.Timedout`` payload. Time is compressed: the kill comes at once
``function.restart``   the matching invocation's handler runs and its environment holds the answer;
                       ``delay_s`` seconds in, every execution environment of every function is killed
                       (busy ones mid-invocation, which end with ``Runtime.ExitError``, the matching one
                       always among them); later invocations start cold
``function.hold``      the matching invocation waits, before its handler runs, until the plan is cleared
                       (``clear_faults``) or ``delay_s`` seconds pass, as when a step is slow to start:
                       a test holds a pipeline at a step to look at what it left behind
``dynamodb.throttle``  DynamoDB requests on a table whose name contains ``target`` are refused with
                       ``error_type`` (``ProvisionedThroughputExceededException`` or
                       ``ThrottlingException``), HTTP 400, before moto sees them
``s3.reset``           an S3 ``GetObject`` of a key starting with ``target`` sends its headers and
                       ``after_bytes`` bytes of the body, then the connection is shut (a reset mid-stream)
``sns.error``          SNS ``Publish`` to a topic whose ARN contains ``target`` fails with ``error_type``
                       (default ``InternalError``, HTTP 500; any other code is answered with 400)
=====================  ==================================================================================

``match`` (optional) is a substring, or a list of substrings, that the invocation payload or the
request body must all contain (a model's name, ``"candidate"``), so concurrent drills do not
disturb each other. ``count`` is how many times the fault applies (``None``: every time, until
cleared). Every application is recorded in :attr:`FaultPlan.applied`.

From a test, against ``mlops local up``: ``POST /_mlops/faults`` with ``{"add": [fault, ...]}``,
``{"clear": true}`` or ``{}`` (read); the answer is ``{"faults": [...], "applied": [...]}``.
:meth:`mlops_local.testing.LocalCloudProcess.add_faults` and ``clear_faults`` wrap it.

Not drilled: the whole local cloud restarting. Its AWS state (moto's tables, buckets, executions)
lives in the memory of the ``mlops local up`` process, so a restart is a new, empty cloud, not a
recovery; ``function.restart`` is the restart that can happen under a running execution.

Examples
--------
>>> plan = FaultPlan()
>>> _ = plan.add({"kind": "function.error", "target": "TrainingGate", "count": 2})
>>> plan.take_function("mlops-dev-TrainingGate-1", b"{}")["error_type"]
'Lambda.ServiceException'
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from mlops.errors import InputError

FUNCTION_KINDS = ("function.error", "function.timeout", "function.restart", "function.hold")
HTTP_KINDS = ("dynamodb.throttle", "s3.reset", "sns.error")
KINDS = FUNCTION_KINDS + HTTP_KINDS
_DEFAULT_ERRORS = {
    "function.error": "Lambda.ServiceException",
    "dynamodb.throttle": "ProvisionedThroughputExceededException",
    "sns.error": "InternalError",
}
# DynamoDB's JSON error types, as botocore reads them ("namespace#Code").
_DYNAMODB_TYPES = {
    "ProvisionedThroughputExceededException": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "ThrottlingException": "com.amazon.coral.availability#ThrottlingException",
    "RequestLimitExceeded": "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
}


@dataclass
class Fault:
    """One fault of a plan; see the module's table for each ``kind``."""

    kind: str
    target: str = ""
    match: str | list[str] = ""
    count: int | None = 1
    error_type: str = ""
    message: str = "fault injected by the local cloud"
    phase: str = "before"
    after_bytes: int = 0
    delay_s: float = 0.5
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    applied: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"fault kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.phase not in ("before", "after"):
            raise InputError(f"fault phase {self.phase!r} is not 'before' or 'after'")
        if self.count is not None and self.count < 1:
            raise InputError(f"fault count {self.count} must be at least 1 (or null for always)")
        self.error_type = self.error_type or _DEFAULT_ERRORS.get(self.kind, "")
        if self.kind == "dynamodb.throttle" and self.error_type not in _DYNAMODB_TYPES:
            raise InputError(f"dynamodb.throttle error_type must be one of {', '.join(_DYNAMODB_TYPES)}")

    def matches(self, text: str) -> bool:
        wanted = [self.match] if isinstance(self.match, str) else self.match
        return all(w in text for w in wanted)

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Fault:
        known = {k: v for k, v in document.items() if k in cls.__dataclass_fields__ and k not in ("id", "applied")}
        unknown = sorted(set(document) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown fault field(s) {', '.join(unknown)}")
        if "kind" not in known:
            raise InputError("a fault needs a kind")
        return cls(**known)


class FaultPlan:
    """The faults a local cloud applies; thread-safe (the servers and the runtime share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        self.applied: list[dict[str, Any]] = []
        self._cleared = threading.Condition(self._lock)
        self._clears = 0

    # -- changing the plan ----------------------------------------------------------------------
    def add(self, fault: Fault | dict[str, Any]) -> Fault:
        parsed = fault if isinstance(fault, Fault) else Fault.parse(fault)
        with self._lock:
            self.faults.append(parsed)
        return parsed

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self._clears += 1
            self._cleared.notify_all()

    def hold(self, seconds: float) -> bool:
        """Wait until the plan is cleared or ``seconds`` pass (a ``function.hold``); True if cleared."""
        with self._lock:
            clears = self._clears
            return self._cleared.wait_for(lambda: self._clears != clears, timeout=seconds)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": [asdict(f) for f in self.faults], "applied": list(self.applied)}

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """The ``/_mlops/faults`` route: ``clear`` first, then ``add`` (a list); answers the plan."""
        if request.get("clear"):
            self.clear()
        for fault in request.get("add") or []:
            if not isinstance(fault, dict):
                raise InputError(f"each fault to add is an object, not {fault!r}")
            self.add(fault)
        return self.to_json()

    # -- applying it ----------------------------------------------------------------------------
    def active(self, kinds: tuple[str, ...]) -> bool:
        with self._lock:
            return any(f.kind in kinds for f in self.faults)

    def _take(self, kinds: tuple[str, ...], hit: Callable[[Fault], bool], where: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind in kinds and hit(fault):
                    fault.applied += 1
                    if fault.count is not None and fault.applied >= fault.count:
                        self.faults.remove(fault)
                    entry = {"id": fault.id, "kind": fault.kind, "where": where, "error_type": fault.error_type}
                    self.applied.append({**entry, "at": time.time()})
                    return fault
        return None

    def take_function(self, function: str, payload: bytes) -> dict[str, Any] | None:
        """The fault (as a plain dict) the next invocation of ``function`` with ``payload`` meets."""
        text = payload.decode(errors="replace")
        fault = self._take(FUNCTION_KINDS, lambda f: f.target in function and f.matches(text), function)
        return asdict(fault) if fault is not None else None

    # -- the HTTP boundary ----------------------------------------------------------------------
    def wsgi(
        self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Serve one AWS API request through ``app``, failing it when a fault says so."""
        if not self.active(HTTP_KINDS):
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            body = _read_body(environ)
            text = body.decode(errors="replace")
            tables = _dynamodb_tables(body)
            fault = self._take(
                ("dynamodb.throttle",),
                lambda f: any(f.target in t for t in tables) and f.matches(text),
                f"dynamodb {target.split('.')[-1]} {','.join(sorted(tables))}",
            )
            if fault is not None:
                document = {"__type": _DYNAMODB_TYPES[fault.error_type], "message": fault.message}
                return _answer(start_response, "400 Bad Request", "application/x-amz-json-1.0", json.dumps(document))
            return app(environ, start_response)
        if method == "POST" and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = _read_body(environ)
            form = parse_qs(body.decode(errors="replace"))
            if form.get("Action") == ["Publish"]:
                topic = (form.get("TopicArn") or form.get("TargetArn") or [""])[0]
                message = (form.get("Message") or [""])[0] + (form.get("Subject") or [""])[0]
                fault = self._take(
                    ("sns.error",),
                    lambda f: f.target in topic and f.matches(message),
                    f"sns Publish {topic}",
                )
                if fault is not None:
                    status = "500 Internal Server Error" if fault.error_type == "InternalError" else "400 Bad Request"
                    kind = "Receiver" if status.startswith("5") else "Sender"
                    xml = (
                        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{fault.error_type}</Code>"
                        f"<Message>{fault.message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
                    )
                    return _answer(start_response, status, "text/xml", xml)
            return app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if method == "GET" and set(query) <= {"versionId"}:  # GetObject (not a listing, tagging, ...)
            path = unquote(environ.get("PATH_INFO", ""))
            key = path.lstrip("/").partition("/")[2]
            if key:
                fault = self._take(
                    ("s3.reset",), lambda f: key.startswith(f.target) and f.matches(key), f"s3 GetObject {key}"
                )
                if fault is not None:
                    return _cut(app(environ, start_response), fault.after_bytes, environ.get("werkzeug.socket"))
        return app(environ, start_response)


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so the application reads it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _dynamodb_tables(body: bytes) -> set[str]:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return set()
    tables = {str(request["TableName"])} if "TableName" in request else set()
    tables.update(str(name) for name in request.get("RequestItems") or {})
    for item in request.get("TransactItems") or []:
        for operation in item.values():
            if isinstance(operation, dict) and "TableName" in operation:
                tables.add(str(operation["TableName"]))
    return tables


def _answer(start_response: Callable[..., Any], status: str, content_type: str, text: str) -> list[bytes]:
    data = text.encode()
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))],
    )
    return [data]


def _cut(response: Iterable[bytes], after_bytes: int, sock: Any) -> Iterator[bytes]:
    """The response's first ``after_bytes`` body bytes, then the connection shut under the client."""
    sent = 0
    try:
        for chunk in response:
            if sent + len(chunk) >= after_bytes:
                if after_bytes > sent:
                    yield chunk[: after_bytes - sent]
                break
            sent += len(chunk)
            yield chunk
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    if sock is not None:
        # What a dropped connection looks like to the client: the bytes stop before Content-Length.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
