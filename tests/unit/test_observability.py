"""Every handler shape logs its correlation id, traces, and publishes the metrics its code adds."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from mlops import observability
from mlops.errors import InputError, TransientError

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:mlops-dev-training:run-2026-12-06-abc"


@dataclass
class Context:
    """The attributes of Lambda's context object that Powertools reads."""

    aws_request_id: str = "lambda-request-1"
    function_name: str = "mlops-dev-validate"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-validate"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The JSON log lines the shared logger writes (its handler holds the stream it was built with)."""
    stream = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", stream)
    return stream


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The namespace and service every function is deployed with (stacks/function.py)."""
    monkeypatch.setattr(observability.metrics, "namespace", "MLOps")
    monkeypatch.setattr(observability.metrics, "service", "mlops-dev-validate")


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _metric_documents(out: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


def test_a_step_logs_its_run_as_correlation_id_and_publishes_its_metrics(
    logs: io.StringIO, emf: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a step that counts something and logs, sent a payload the training ASL passes
    def validate(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        observability.metrics.add_metric(name="RowsValidated", unit=MetricUnit.Count, value=42)
        observability.logger.info("validated", extra={"model": event["model"]})
        return {"request_id": request_id}

    handler = observability.step_handler(validate)

    # WHEN it runs
    result = handler({"model": "churn", "execution": EXECUTION_ARN, "execution_name": "run-2026-12-06-abc"}, Context())

    # THEN the step got the Lambda request id, its log line carries the run and the Lambda context
    assert result == {"request_id": "lambda-request-1"}
    (line,) = [entry for entry in _lines(logs) if entry["message"] == "validated"]
    assert line["correlation_id"] == "run-2026-12-06-abc"
    assert line["function_request_id"] == "lambda-request-1"
    assert line["model"] == "churn"
    # AND its metric is one EMF document in the platform's namespace on the function's service dimension
    (document,) = _metric_documents(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "MLOps"
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "RowsValidated", "Unit": "Count"}]
    assert document["service"] == "mlops-dev-validate"
    assert document["RowsValidated"] == [42.0]


def test_a_failed_step_still_publishes_its_metrics(emf: None, capsys: pytest.CaptureFixture[str]) -> None:
    def gate(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        observability.metrics.add_metric(name="GateRefused", unit=MetricUnit.Count, value=1)
        raise InputError("the candidate is worse than the champion")

    with pytest.raises(InputError):
        observability.step_handler(gate)({"execution_name": "run-1"}, Context())

    (document,) = _metric_documents(capsys.readouterr().out)
    assert document["GateRefused"] == [1.0]


def test_the_correlation_id_is_replaced_on_the_next_invocation(logs: io.StringIO) -> None:
    # A warm execution environment serves another run next: no key of the previous one stays.
    def step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        observability.logger.append_keys(candidate=event.get("candidate"))
        observability.logger.info("step")
        return {}

    handler = observability.step_handler(step)
    handler({"execution_name": "run-1", "candidate": "a"}, Context())
    handler({"run_id": "run-2"}, Context(aws_request_id="lambda-request-2"))

    first, second = [entry for entry in _lines(logs) if entry["message"] == "step"]
    assert (first["correlation_id"], first["candidate"]) == ("run-1", "a")
    assert second["correlation_id"] == "run-2"
    assert second.get("candidate") is None


def test_without_a_run_the_request_id_correlates(logs: io.StringIO) -> None:
    def step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        observability.logger.info("step")
        return {}

    observability.step_handler(step)({"model": "churn"}, Context(aws_request_id="lambda-request-9"))

    (line,) = [entry for entry in _lines(logs) if entry["message"] == "step"]
    assert line["correlation_id"] == "lambda-request-9"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"execution": EXECUTION_ARN}, "run-2026-12-06-abc"),
        ({"execution_name": "run-a", "execution": EXECUTION_ARN}, "run-a"),
        ({"run_id": "monitor-1", "execution_name": "run-a"}, "monitor-1"),
        ({"plan": {"model": "churn", "run_id": "monitor-1"}}, "monitor-1"),
        ({"model": "churn"}, None),
        ([{"execution_name": "run-a"}], None),
    ],
)
def test_run_id_reads_what_the_state_machines_pass(event: Any, expected: str | None) -> None:
    assert observability.run_id(event) == expected


def test_throttling_becomes_the_transient_error_the_state_machine_retries() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")

    def step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        raise throttled

    with pytest.raises(TransientError, match="ClientError") as raised:
        observability.step_handler(step)({"execution_name": "run-1"}, Context())
    assert raised.value.__cause__ is throttled


def test_an_input_error_is_not_transient() -> None:
    refused = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "PutItem")
    assert not observability.is_transient(refused)
    assert not observability.is_transient(InputError("bad column"))


def test_an_api_handler_correlates_by_the_api_request_id(logs: io.StringIO) -> None:
    @observability.api_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        observability.logger.info("answered")
        return {"statusCode": 200, "body": "{}"}

    answer = handler({"path": "/models/churn/uploads", "requestContext": {"requestId": "api-req-7"}}, Context())

    assert answer["statusCode"] == 200
    (line,) = [entry for entry in _lines(logs) if entry["message"] == "answered"]
    assert line["correlation_id"] == "api-req-7"


def test_an_event_handler_correlates_by_the_event_id(logs: io.StringIO) -> None:
    @observability.event_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        observability.logger.info("ran")
        return {}

    handler({"id": "evt-3", "detail-type": "Scheduled Event", "source": "aws.scheduler"}, Context())
    handler({}, Context(aws_request_id="lambda-request-4"))

    first, second = [entry["correlation_id"] for entry in _lines(logs) if entry["message"] == "ran"]
    assert (first, second) == ("evt-3", "lambda-request-4")


def test_the_tracer_is_off_outside_lambda() -> None:
    # Unit and integration tests run without X-Ray: Powertools turns the tracer off without LAMBDA_TASK_ROOT.
    assert observability.tracer().disabled
