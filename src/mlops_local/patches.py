"""The few places where moto's behaviour is replaced for the local cloud (process-wide).

- Lambda ``invoke`` runs the deployed handler in a local execution environment
  (moto would need Docker);
- EventBridge rules deliver to every target type, asynchronously, with real input transformers;
- S3's EventBridge notification sends a properly shaped event to the default bus only;
- Step Functions Retry back-off and Wait states are compressed (unless real time is asked for);
- Step Functions copies state data (JSON) with :func:`json_copy`, not ``copy.deepcopy``
  (:class:`_JsonCopy`);
- a Distributed Map's ItemReader runs what moto lacks (ItemBatcher, JSON Lines, the ItemSelector
  per item) for the Map states :func:`mlops_local.distributed_map.rewrite` marked;
- a Distributed Map fails when its failed children exceed its tolerated failures
  (:func:`_enforce_tolerated_failures`; moto's Map succeeds whatever fails);
- Step Functions gains ``RedriveExecution``, which moto lacks (:mod:`mlops_local.redrive`);
- DynamoDB requests are applied one at a time per account and region (:func:`serialize_dynamodb`);
- every AWS API request passes the failure drills' plan first (:mod:`mlops_local.faults`), which
  may throttle it, fail it or cut its answer short.

Every patch but the last forwards to the active :class:`mlops_local.cloud.LocalCloud`; with none
active, moto's own behaviour is used. The DynamoDB lock is always on once installed: it is what
DynamoDB itself guarantees, so in-process moto tests install it too.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from mlops_local import redrive

_active: dict[str, Any] = {"cloud": None, "installed": False}
_REASONS = {
    "Put": "PutObject",
    "Post": "PostObject",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
    "Delete": "DeleteObject",
    "DeleteMarkerCreated": "DeleteObject",
}


def activate(cloud: Any) -> None:
    """Route moto's Lambda, EventBridge and Step Functions timing through ``cloud``."""
    _install()
    _active["cloud"] = cloud


def deactivate(cloud: Any) -> None:
    if _active["cloud"] is cloud:
        _active["cloud"] = None


def scaled(seconds: float) -> float:
    cloud = _active["cloud"]
    return seconds if cloud is None else cloud.scale_seconds(seconds)


_dynamodb_locks: dict[tuple[str, str], threading.RLock] = {}
_dynamodb_locks_guard = threading.Lock()


def dynamodb_lock(account: str, region: str) -> threading.RLock:
    """The lock every DynamoDB request of ``account`` in ``region`` holds while moto applies it."""
    with _dynamodb_locks_guard:
        return _dynamodb_locks.setdefault((account, region), threading.RLock())


def serialize_dynamodb() -> None:
    """Apply each DynamoDB request atomically, as DynamoDB does (process-wide, idempotent).

    DynamoDB applies each request (a conditional put, an ``ADD``, a transaction) atomically.
    moto's DynamoDB takes no lock: threads of its threaded server interleave inside one request,
    and a cancelled ``TransactWriteItems`` rolls back by putting back a deep copy of every table it
    touched, which undoes whatever another request wrote meanwhile (a lost audit event, a lost
    dataset record, an anchor that no longer matches its chain). Holding one lock per account and
    region around each whole request restores DynamoDB's guarantee; callers still interleave freely
    between requests, which is where real races live.

    The seam is ``DynamoHandler.call_action``: a public method of moto's response classes that
    both moto's server and the in-process ``mock_aws`` call once per request, after the request's
    account and region are known. The lock is re-entrant (a DynamoDB stream delivering to a Lambda
    in the same thread would re-enter); the stacks define no stream consumers.
    """
    # moto is imported where it is patched (here and in _install), not at the top: its modules cost
    # about 2.5 s, and the runtime imports this module for scaled() alone.
    from moto.dynamodb.responses import DynamoHandler

    with _dynamodb_locks_guard:
        if getattr(DynamoHandler.call_action, "_mlops_serialized", False):
            return
        original = DynamoHandler.call_action

        def call_action(self: Any) -> Any:
            with dynamodb_lock(str(self.current_account), str(self.region)):
                return original(self)

        call_action._mlops_serialized = True  # type: ignore[attr-defined]
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]


_start_execution_lock = threading.Lock()


def serialize_start_execution() -> None:
    """Refuse a second execution of one name atomically, as Step Functions does (process-wide, idempotent).

    Step Functions starts at most one execution per name (a second ``StartExecution`` of the name
    with another input is ``ExecutionAlreadyExists``): the batch jobs rely on it (one job per object
    version, whoever starts it and however many start it at once). moto checks the name and then
    deep-copies the state machine before adding the execution, so two threads of its server can
    both pass the check. Holding one lock around each whole ``StartExecution`` restores the
    guarantee; the seam is ``StepFunctionResponse.start_execution``, moto's handler of the action.
    """
    from moto.stepfunctions.responses import StepFunctionResponse  # moto: see serialize_dynamodb

    with _start_execution_lock:
        if getattr(StepFunctionResponse.start_execution, "_mlops_serialized", False):
            return
        original = StepFunctionResponse.start_execution

        def start_execution(self: Any) -> Any:
            with _start_execution_lock:
                return original(self)

        start_execution._mlops_serialized = True  # type: ignore[attr-defined]
        StepFunctionResponse.start_execution = start_execution  # type: ignore[method-assign]


def _iso(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` is compressed."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(scaled(seconds))


def _emulate_item_reader() -> None:
    """The ItemReader of a Map state :func:`mlops_local.distributed_map.rewrite` marked reads as AWS does.

    The seam is ``ItemReader._eval_body``: the component that evaluates the reader's Parameters,
    calls S3 and leaves the items on the evaluation stack. A marked reader's Parameters carry the
    emulated parts (``MlopsLocal``), which are taken out before ``GetObject`` is called with the rest.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import item_reader_decl

    from mlops_local import distributed_map

    original = item_reader_decl.ItemReader._eval_body

    def eval_body(self: Any, env: Any) -> None:
        if self.parargs is None:
            return original(self, env)
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        emulated = parameters.pop(distributed_map.FIELD, None) if isinstance(parameters, dict) else None
        if emulated is None:
            return original(self, env)
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)
        content = env.stack.pop()
        context = copy.deepcopy(env.states.context_object.context_object_data)
        items = distributed_map.read_items(json.loads(emulated), content, env.states.get_input(), context)
        env.stack.append(items)
        return None

    item_reader_decl.ItemReader._eval_body = eval_body  # type: ignore[method-assign]


def _enforce_tolerated_failures() -> None:
    """A Distributed Map whose failed children exceed its tolerated failures fails, as on AWS.

    moto's Distributed Map records a failed child execution and goes on: the Map succeeds with
    ``null`` in the failed children's places, whatever ``ToleratedFailureCount`` says. AWS fails
    the Map Run with ``States.ExceedToleratedFailureThreshold`` (both thresholds default to 0), which
    is what a redrive resumes. The seam is ``DistributedIterationComponent._map_run``, which
    returns once every child has ended; the children counted are those that failed, timed out or
    were aborted. It is replaced by the same loop over a job pool (moto's ``JobPool``, through its
    public methods) that, when the execution was redriven at this Map, closes the children that
    succeeded in the failed run with their output and runs only the others, as AWS's redrive does
    (:mod:`mlops_local.redrive` keeps a failed Map's successful children). Differences: AWS stops
    starting children once the threshold is exceeded (here every child runs first), and with both
    thresholds given AWS fails when either is exceeded (here: when both are; one given alone
    behaves as on AWS).
    """
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as component,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
        DEFAULT_MAX_CONCURRENCY_VALUE,
    )

    from mlops_local import redrive

    class RedrivePool(JobPool):
        """The children of a Map: those that succeeded before a redrive are closed with their output."""

        def __init__(self, program: Any, inputs: list[Any], done: dict[int, Any]) -> None:
            super().__init__(job_program=program, job_inputs=inputs)
            self.lock = threading.Lock()
            jobs: list[Any] = []
            self.pending: list[Any] = []
            while (job := super().next_job()) is not None:
                jobs.append(job)
            for job in jobs:
                if job.job_index in done:
                    job.job_output = done[job.job_index]
                    self.close_job(job)
                else:
                    self.pending.append(job)
            self.pending.reverse()

        def next_job(self) -> Any:
            with self.lock:
                return self.pending.pop() if self.pending else None

    def run_children(self: Any, env: Any, eval_input: Any) -> None:
        """moto's ``_map_run``, but a redriven Map runs only its children that did not succeed."""
        items: list[Any] = env.stack.pop()
        context = env.states.context_object.context_object_data
        where = (context["Execution"]["Id"], context["State"]["Name"])
        done = redrive.take_succeeded_children(*where)
        pool = RedrivePool(self._get_iteration_program(), items, done)
        concurrency = eval_input.map_run_record.max_concurrency
        workers = len(pool.pending) if concurrency == DEFAULT_MAX_CONCURRENCY_VALUE else concurrency
        for _ in range(min(workers, len(pool.pending))):
            self._launch_worker(env=env, eval_input=eval_input, job_pool=pool)
        pool.await_jobs()
        if (exception := pool.get_worker_exception()) is not None:
            raise exception
        closed = pool.get_closed_jobs()
        # a child that failed leaves None; what succeeded is kept for a redrive of this execution
        succeeded = {job.job_index: job.job_output for job in closed if job.job_output is not None}
        redrive.record_children(*where, succeeded, complete=len(succeeded) == len(items))
        env.stack.append([job.job_output for job in closed])

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        run_children(self, env, eval_input)
        counter = eval_input.map_run_record.item_counter
        total = counter.total.get()
        failed = counter.failed.get() + counter.timed_out.get() + counter.aborted.get()
        count = int(eval_input.tolerated_failure_count or 0)
        percentage = float(eval_input.tolerated_failure_percentage or 0)
        if failed <= count or (total and failed * 100.0 <= percentage * total):
            return
        error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
        cause = f"{failed} of {total} child execution(s) failed; tolerated: {count} ({percentage:g}%)"
        details: Any = {"mapRunFailedEventDetails": MapRunFailedEventDetails(error=error.error_name, cause=cause)}
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=error,
                event_type=HistoryEventType.MapRunFailed,
                event_details=details,
            )
        )

    component.DistributedIterationComponent._map_run = map_run  # type: ignore[method-assign]


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, strings, numbers, booleans, None).

    What moto's Step Functions interpreter copies is state data, copied several times per state
    (its input when entered, read and reset; its result; the history event). ``copy.deepcopy``
    keeps a memo of every object for cycles and shared references, which JSON never has: this
    copy is 5.8 to 10.7 times faster on a child execution's 2,000 real rows (two runs of
    ``benchmarks/bench_state_copy.py`` on a busy 2-core machine), where a 200,000-row batch job on the local cloud spent
    about 40% of its cloud process's CPU in ``deepcopy``. Any other type
    (a subclass, an object of moto's) is copied by ``copy.deepcopy``.

    >>> data = {"Items": [{"row": 0, "values": {"x": "1.5"}}], "n": None}
    >>> copied = json_copy(data)
    >>> copied == data and copied["Items"][0] is not data["Items"][0]
    True
    """
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


class _JsonCopy:
    """Stands in for the ``copy`` module inside moto's Step Functions interpreter: ``deepcopy`` is
    :func:`json_copy`, the rest is ``copy``'s."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return json_copy(value)


def _install() -> None:
    if _active["installed"]:
        return
    serialize_dynamodb()
    serialize_start_execution()
    # moto, only once a cloud installs the patches (see serialize_dynamodb).
    from moto.awslambda import models as lambda_models
    from moto.core.config import default_user_config
    from moto.events import models as events_models
    from moto.s3 import notifications
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True

    original_invoke = lambda_models.LambdaFunction.invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        cloud = _active["cloud"]
        if cloud is None:
            return original_invoke(self, body, request_headers, response_headers)
        data = body.encode() if isinstance(body, str) else (body or b"")
        kind = (request_headers.get("X-Amz-Invocation-Type") if request_headers else None) or "RequestResponse"
        if kind == "DryRun":
            return b""
        if kind == "Event":
            cloud.invoke_async(self.function_arn, data)
            return b""
        payload, error = cloud.invoke(self.function_arn, data)
        if error:
            response_headers["x-amz-function-error"] = error
        response_headers["x-amz-executed-version"] = str(getattr(self, "version", "$LATEST"))
        return payload

    lambda_models.LambdaFunction.invoke = invoke  # type: ignore[method-assign]

    original_send = events_models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        cloud = _active["cloud"]
        if cloud is None:
            return original_send(self, original_event, transform_input)
        event = copy.deepcopy(original_event)
        event["time"] = _iso(event.get("time"))
        event.pop("ingestion-time", None)
        # A schedule rule gets only its schedule's events (the dispatcher's
        # scheduler and `fire`), never the bus's: moto's empty pattern matches every event, which
        # ran the audit digest function on each S3 upload and execution status change.
        if self.scheduled_expression or not self.event_pattern.matches_event(event):
            return None
        cloud.dispatcher.on_match(self.name, self.arn, self.state, list(self.targets), event)
        return None

    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]

    original_s3 = notifications._send_event_bridge_message

    def send_s3_event(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        cloud = _active["cloud"]
        if cloud is None:
            return original_s3(account_id, bucket, event_name, key)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": notifications._detail_type(event_name),
            "source": "aws.s3",
            "account": account_id,
            "time": _iso(time.time()),
            "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket.name},
                "object": {
                    "key": key.name,
                    "size": key.size,
                    "etag": key.etag.replace('"', ""),
                    **({"version-id": key.version_id} if key.version_id and key.version_id != "null" else {}),
                    "sequencer": f"{int(time.time() * 1e6):018X}",
                },
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": account_id,
                "source-ip-address": "127.0.0.1",
                "reason": _REASONS.get(event_name.rsplit(":", 1)[-1], event_name.rsplit(":", 1)[-1]),
            },
        }
        bus = events_models.events_backends[account_id][bucket.region_name].event_buses.get("default")
        if bus is not None:
            for rule in list(bus.rules.values()):
                rule.send_to_targets(json.loads(json.dumps(event)))
        return None

    notifications._send_event_bridge_message = send_s3_event

    retrier_decl.time = _ScaledTime()  # type: ignore[assignment]
    # moto's interpreter modules that copy state data (their `import copy` module global).
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.eval import states
    from moto.stepfunctions.parser.asl.eval.event import event_manager

    for module in (result_path, string_expression, execute_state, state_map, state_task_service, states, event_manager):
        module.copy = _JsonCopy()  # type: ignore[attr-defined]
    _emulate_item_reader()
    _enforce_tolerated_failures()
    redrive.install()

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        deadline = time.time() + scaled(float(wait_seconds))
        while env.is_running():
            remaining = deadline - time.time()
            if remaining <= 0:
                return
            if env.program_state_event.wait(remaining):  # set: the execution stopped, or a spurious wake-up
                time.sleep(min(0.05, max(0.0, remaining)))

    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # moto: see serialize_dynamodb

    original_call = DomainDispatcherApplication.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        cloud = _active["cloud"]
        plan = getattr(getattr(cloud, "runtime", None), "plan", None)
        if plan is None:
            return original_call(self, environ, start_response)
        return plan.wsgi(lambda e, s: original_call(self, e, s), environ, start_response)

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
    _active["installed"] = True
