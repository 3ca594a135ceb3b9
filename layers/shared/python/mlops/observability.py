"""Logs, traces and metrics: the same for every function, from this one module.

One Powertools :data:`logger`, :func:`tracer` and :data:`metrics` per execution environment (the
logger and metrics built at the cold start, the tracer by the first traced handler). Their service
name and metrics namespace come from the environment every function is given by
``stacks/function.py``: ``POWERTOOLS_SERVICE_NAME`` (``mlops-<env>-<function>``, the ``service``
dimension of every metric) and ``POWERTOOLS_METRICS_NAMESPACE``. A handler is one of three shapes, each decorated with
``logger.inject_lambda_context``, ``tracer.capture_lambda_handler`` and ``metrics.log_metrics``:

- :func:`step_handler` for a state machine's task: the correlation id is the pipeline run
  (:func:`run_id`: the execution name the ASL passes), so every log line of one run, across every
  function and every state machine it starts, can be found with one filter;
- :func:`api_handler` for API Gateway: the correlation id is the API's request id, the one the
  caller sees in the ``x-amzn-RequestId`` header;
- :func:`event_handler` for scheduled and other asynchronous events: the EventBridge event's id,
  else the Lambda request id.

The correlation id is the ``correlation_id`` key of every JSON log line and the ``run_id``
annotation of the function's X-Ray segment (searchable: ``annotation.run_id = "..."``).

Tracing needs ``aws_xray_sdk`` (in the runtime layer). Powertools disables the tracer by itself
outside Lambda (no ``LAMBDA_TASK_ROOT``: unit and integration tests) and when
``POWERTOOLS_TRACE_DISABLED`` is true; with neither, segments go to the X-Ray daemon over UDP,
which never blocks or fails a call when no daemon listens (the local cloud).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from mlops.errors import TransientError

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

__all__ = [
    "api_handler",
    "event_handler",
    "is_transient",
    "logger",
    "metrics",
    "run_id",
    "step_handler",
    "tracer",
]

logger = Logger()
metrics = Metrics()


@functools.cache
def tracer() -> Tracer:
    """The execution environment's tracer, made by the first traced handler.

    Made on first use, not at import: the X-Ray SDK and its botocore patch cost 0.06-0.2 s of a
    cold start, which the inference function (no AWS SDK call to trace, and a cold start that is
    part of its contract) does not pay; it uses :data:`logger` and :data:`metrics` only.
    """
    from aws_lambda_powertools import Tracer  # here, not at the top: see above

    # The functions reach AWS only through boto3: trace its calls, and patch (import) nothing else.
    return Tracer(patch_modules=["botocore"])


# Most invocations publish no metric of their own; Powertools would warn about that on each one.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

Step = Callable[..., dict[str, Any]]
Handler = Callable[[Any, Any], Any]

# Where a state machine puts its run in a task's payload: ``run_id`` (the monitoring run, which
# ``mlops monitor`` may name), ``execution_name`` ($$.Execution.Name), ``execution``
# ($$.Execution.Id, an ARN ending in the name). The first present wins.
RUN_FIELDS = ("run_id", "execution_name", "execution")


def run_id(event: Any) -> str | None:
    """The pipeline run a state machine's payload belongs to: its execution name, or None.

    Examples
    --------
    >>> run_id({"execution": "arn:aws:states:us-east-1:123456789012:execution:training:run-7"})
    'run-7'
    >>> run_id({"execution_name": "run-7", "execution": "arn:...:execution:training:other"})
    'run-7'
    >>> run_id({"plan": {"model": "churn", "run_id": "run-7"}})
    'run-7'
    >>> run_id({"items": [], "job": {"execution": "arn:aws:states:us-east-1:1:execution:batch:churn.j-1"}})
    'churn.j-1'
    >>> run_id({"model": "churn"}) is None
    True
    """
    if not isinstance(event, Mapping):
        return None
    for field in RUN_FIELDS:
        value = event.get(field)
        if isinstance(value, str) and value:
            # An execution ARN is arn:<partition>:states:<region>:<account>:execution:<machine>:<name>.
            return value.rsplit(":", 1)[-1] if value.startswith("arn:") else value
    # The monitoring machine's states after Plan are sent the plan, which carries the run; the batch
    # machine's Score and Finish states the job, which carries its execution.
    for key in ("plan", "job"):
        if isinstance(event.get(key), Mapping):
            return run_id(event[key])
    return None


def _instrumented(handler: Handler, correlation_id: Callable[[Any, Any], str | None], *, trace: bool = True) -> Handler:
    """``handler`` with the context logged, the correlation id set, a trace and metrics flushed.

    Responses are not recorded in traces: API answers carry presigned URLs (usable credentials)
    and step outputs can exceed X-Ray's 64 KB segment limit. With ``trace=False`` the function has
    no SDK subsegments (Lambda's active tracing still records its invocation).
    """

    @logger.inject_lambda_context(clear_state=True)
    @functools.wraps(handler)
    def logged(event: Any, context: Any) -> Any:
        correlation = correlation_id(event, context) or context.aws_request_id
        logger.set_correlation_id(correlation)
        if trace:
            tracer().put_annotation("run_id", correlation)
        return handler(event, context)

    traced = tracer().capture_lambda_handler(logged, capture_response=False) if trace else logged
    # flushes on failure too, so a failed run still publishes what it counted
    return metrics.log_metrics(traced)


def step_handler(step: Step) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler running ``step(event, request_id=...)``, instrumented, its run as correlation id.

    A failure of the infrastructure (:func:`is_transient`) is raised as
    :class:`~mlops.errors.TransientError`, the name the state machine's Retry matches.
    """

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return step(event, request_id=context.aws_request_id)
        except Exception as exc:
            if is_transient(exc):
                # named so the state machine's Retry (ErrorEquals TransientError) runs the step again
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise

    functools.update_wrapper(handler, step)
    return _instrumented(handler, lambda event, _context: run_id(event))


def _api_request_id(event: Any, _context: Any) -> str | None:
    # The REST API's own request id, not the Lambda's.
    if isinstance(event, Mapping):
        request_id = (event.get("requestContext") or {}).get("requestId")
        return str(request_id) if request_id else None
    return None


def api_handler(handler: Handler | None = None, *, trace: bool = True) -> Any:
    """``handler`` (an API Gateway proxy integration) instrumented, the API request id as correlation id.

    ``@api_handler`` or ``@api_handler(trace=False)`` (the inference function: see :func:`tracer`).
    """
    if handler is None:
        return functools.partial(_instrumented, correlation_id=_api_request_id, trace=trace)
    return _instrumented(handler, _api_request_id, trace=trace)


def _event_id(event: Any, _context: Any) -> str | None:
    if isinstance(event, Mapping) and isinstance(event.get("id"), str) and event.get("detail-type"):
        return str(event["id"])  # an EventBridge event (a schedule, an S3 notification)
    return None


def event_handler(handler: Handler) -> Handler:
    """``handler`` (scheduled or event-driven) instrumented, the event's id (else the request id) as correlation id."""
    return _instrumented(handler, _event_id)


# DynamoDB and other services' throttling codes: after the SDK's own retries, worth a step retry.
_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the infrastructure failing (retry the step), not the input (a finding)."""
    # here, not at the top: the inference function imports this module and never botocore
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

    if isinstance(exc, (HTTPClientError, ConnectionError, IncompleteReadError)):  # reset mid-stream, timeouts
        return True
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) in _THROTTLING
    return False
