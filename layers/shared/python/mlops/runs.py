"""Pipeline runs: uploading a dataset version and following the execution it starts.

A run is one execution of the training state machine. Its name is derived from the uploaded
object version (:func:`mlops.pipeline.execution_name`), so the CLI knows which run an upload
starts before the run exists, and a duplicate event can never start a second one.
"""

from __future__ import annotations

import hashlib
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError
from mlops.pipeline import execution_name
from mlops.registry import check_model_name

FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version_id: str
    size: int
    run_name: str
    sha256: str = ""
    uploader: str = ""  # the caller the upload API recorded (the identity AWS authenticated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Authorize = Callable[[dict[str, Any]], dict[str, Any]]


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def upload_dataset(
    model: str, path: str | Path, *, authorize: Authorize, name: str | None = None, timeout: float = 600
) -> Upload:
    """Upload a local file to ``datasets/<model>/<name>`` through the upload API; the upload starts the pipeline.

    ``authorize`` sends ``{"name", "sha256", "size"}`` to ``POST /models/<model>/uploads`` signed
    with the caller's credentials (the CLI's :func:`mlops.cli.common.signed_request`) and returns
    the API's answer: a presigned PUT and the headers it was signed with (the recorded uploader and
    the content's SHA-256, which S3 checks the body against).

    Raises
    ------
    InputError
        No such file, or the API refused the request (no spec for the model, a bad name).
    CheckFailedError
        S3 refused the PUT (the file changed after it was hashed, or the URL expired).
    """
    check_model_name(model)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    sha256, size = file_sha256(path)
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    grant = authorize({"name": name or path.name, "sha256": sha256, "size": size})
    # Content-Type set: urllib would call a PUT body a form (application/x-www-form-urlencoded).
    headers = {
        **{str(k): str(v) for k, v in (grant.get("headers") or {}).items()},
        "Content-Length": str(size),
        "Content-Type": "text/csv",
    }
    with path.open("rb") as body:
        request = urllib.request.Request(grant["url"], data=body, headers=headers, method="PUT")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the presigned URL
                version_id = response.headers.get("x-amz-version-id")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            code = re.search(r"<Code>([^<]+)</Code>", text)
            message = re.search(r"<Message>([^<]+)</Message>", text)
            raise CheckFailedError(
                f"S3 refused the upload of {path} to s3://{grant.get('bucket')}/{grant.get('key')} "
                f"(HTTP {exc.code} {code.group(1) if code else ''}: {message.group(1) if message else text[:200]}); "
                "if the file changed while uploading, upload it again"
            ) from None
        except urllib.error.URLError as exc:
            raise MlopsError(f"cannot reach S3 for the upload: {exc.reason}") from None
    bucket, key = str(grant["bucket"]), str(grant["key"])
    if not version_id or version_id == "null":
        raise CheckFailedError(f"s3://{bucket}/{key}: the bucket is not versioned; the upload has no version id")
    return Upload(
        bucket=bucket,
        key=key,
        version_id=version_id,
        size=size,
        run_name=execution_name(bucket, key, version_id, model),
        sha256=sha256,
        uploader=str(grant.get("caller") or ""),
    )


@dataclass
class Step:
    name: str
    status: str  # RUNNING, SUCCEEDED, FAILED, RETRIED
    started: str | None = None
    ended: str | None = None
    attempts: int = 0  # task invocations, retries included
    entries: int = 0  # times the state was entered (a Map iteration enters it once per item)
    error: str | None = None
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Run:
    name: str
    arn: str
    status: str
    started: str | None
    stopped: str | None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        upload = self.input.get("upload") or {}
        return upload.get("model")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model
        return data


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:...:stateMachine:X`` + name -> ``arn:...:execution:X:name``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def list_runs(sfn: Any, state_machine_arn: str, *, model: str | None = None, limit: int = 20) -> list[Run]:
    """The newest runs (of one model when given), without their step details."""
    runs: list[Run] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for item in page["executions"]:
            if model is not None and not item["name"].startswith(f"{model}-"):
                continue
            runs.append(
                Run(
                    name=item["name"],
                    arn=item["executionArn"],
                    status=item["status"],
                    started=_iso(item.get("startDate")),
                    stopped=_iso(item.get("stopDate")),
                )
            )
    runs.sort(key=lambda r: r.started or "", reverse=True)
    return runs[:limit]


def _loads(text: str | None) -> Any:
    import json

    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_run(sfn: Any, state_machine_arn: str, name_or_arn: str) -> Run:
    """A run with each step's status, attempts and failure reason (from the execution history)."""
    arn = name_or_arn if name_or_arn.startswith("arn:") else execution_arn(state_machine_arn, name_or_arn)
    try:
        described = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise NotFoundError(f"run {name_or_arn!r} does not exist (yet)") from None
    run = Run(
        name=described["name"],
        arn=arn,
        status=described["status"],
        started=_iso(described.get("startDate")),
        stopped=_iso(described.get("stopDate")),
        input=_loads(described.get("input")) or {},
        output=_loads(described.get("output")),
        error=described.get("error"),
        cause=described.get("cause"),
    )
    steps: dict[str, Step] = {}
    order: list[str] = []
    current: str | None = None
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=arn):
        for event in page["events"]:
            kind = event["type"]
            if kind.endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                if name not in steps:
                    steps[name] = Step(name=name, status="RUNNING", started=_iso(event.get("timestamp")))
                    order.append(name)
                steps[name].entries += 1
                current = name
            elif kind.endswith("StateExited") and current is not None:
                name = event["stateExitedEventDetails"]["name"]
                step = steps.get(name)
                if step is not None and step.status == "RUNNING":
                    step.status, step.ended = "SUCCEEDED", _iso(event.get("timestamp"))
            elif kind in ("TaskScheduled", "LambdaFunctionScheduled") and current in steps:
                steps[current].attempts += 1
            elif kind.endswith("Failed") and current in steps:
                details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
                step = steps[current]
                step.error, step.cause = details.get("error"), details.get("cause")
                step.status = "FAILED"
            elif kind == "ExecutionFailed":
                details = event.get("executionFailedEventDetails", {})
                run.error = run.error or details.get("error")
                run.cause = run.cause or details.get("cause")
    for step in steps.values():
        if step.status == "FAILED" and step.ended is not None:
            step.status = "RETRIED" if step.attempts > step.entries else "CAUGHT"
    run.steps = [steps[name] for name in order]
    return run


def wait_run(sfn: Any, state_machine_arn: str, name_or_arn: str, *, timeout_s: float = 900, poll_s: float = 1.0) -> Run:
    """Wait until the run exists and finishes; :class:`CheckFailedError` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            run = describe_run(sfn, state_machine_arn, name_or_arn)
        except NotFoundError:
            run = None
        if run is not None and run.finished:
            return run
        if time.monotonic() > deadline:
            state = run.status if run else "not started"
            raise CheckFailedError(f"run {name_or_arn} still {state} after {timeout_s:.0f} s")
        time.sleep(poll_s)
