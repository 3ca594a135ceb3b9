"""The fallback's time budget: within API Gateway's 29 s, and what the inference function retries.

The numbers come from measurements (mlops.contracts.serving says which); these tests hold the
arithmetic and the retry rule to them, with botocore's own exceptions raised by a stub client.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from mlops.contracts import serving
from mlops.serving.errors import ServingUnavailableError
from mlops.serving.fallback import INVOKE_READ_TIMEOUT_S, FallbackFailedError, LambdaInvoker, retried

ANSWER = {"predictions": ["Yes"], "probabilities": [[0.2, 0.8]], "classes": ["No", "Yes"]}


class Client:
    """A Lambda client that fails with ``errors`` in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def invoke(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(ANSWER).encode())}


def test_the_budget_fits_the_gateway_with_the_measured_cold_starts() -> None:
    # the inference function's cold start, its wait for the fallback and its answer: within 29 s
    assert (
        serving.INFERENCE_BEFORE_INVOKE_S + INVOKE_READ_TIMEOUT_S + serving.ANSWER_MARGIN_S
        <= serving.API_GATEWAY_TIMEOUT_S
    )
    # Lambda ends a slow fallback (reported as a function error) before the inference function stops waiting
    assert serving.FALLBACK_TIMEOUT_S < INVOKE_READ_TIMEOUT_S
    # and the slowest fallback cold start measured fits, with the margin docs/inference.md states
    margin = serving.FALLBACK_TIMEOUT_S - serving.FALLBACK_COLD_START_WORST_S
    assert margin == pytest.approx(4.95)
    # one full vCPU (1,769 MB) at least: the cold start is single threaded
    assert serving.FALLBACK_MEMORY_MB >= 1769


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke"),
        EndpointConnectionError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
    ],
)
def test_an_invoke_that_never_reached_the_function_is_tried_once_more(error: Exception) -> None:
    client = Client(error)
    prediction = LambdaInvoker("fallback", client=client).predict("m", 1, [{"x": 1}], "req")
    assert prediction.predictions == ["Yes"] and client.calls == 2 and retried(error)


def test_a_read_timeout_is_not_retried_and_answers_a_503_to_retry() -> None:
    # a second attempt after a read timeout could not end inside the gateway's 29 s
    client = Client(ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"))
    with pytest.raises(ServingUnavailableError) as refused:
        LambdaInvoker("fallback", client=client).predict("m", 1, [{"x": 1}], "req")
    assert client.calls == 1
    assert refused.value.http_status == 503 and refused.value.code == "fallback_busy"
    assert "model 'm' version 1" in refused.value.message and "retry" in refused.value.message
    assert f"did not answer within {INVOKE_READ_TIMEOUT_S:g} s" in refused.value.message


def test_another_error_is_not_retried_and_stays_the_platforms_failure() -> None:
    error = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no function"}}, "Invoke")
    client = Client(error)
    with pytest.raises(ClientError):
        LambdaInvoker("fallback", client=client).predict("m", 1, [{"x": 1}], "req")
    assert client.calls == 1 and not retried(error)


def test_twice_throttled_answers_a_503_to_retry() -> None:
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke")
    client = Client(throttled, throttled)
    with pytest.raises(ServingUnavailableError, match="stayed throttled") as refused:
        LambdaInvoker("fallback", client=client).predict("m", 1, [{"x": 1}], "req")
    assert client.calls == 2 and refused.value.http_status == 503


class FailingClient:
    """A Lambda client whose function ended in an error payload, as Lambda reports one."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def invoke(self, **_: Any) -> dict[str, Any]:
        body = io.BytesIO(json.dumps(self.payload).encode())
        return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body}


def test_a_fallback_that_ran_out_of_time_answers_a_503_and_a_crash_a_500() -> None:
    timed_out = {"errorMessage": "2026-12-06T17:00:00Z abc Task timed out after 24.02 seconds"}
    with pytest.raises(ServingUnavailableError, match=f"did not answer within {serving.FALLBACK_TIMEOUT_S} s"):
        LambdaInvoker("fallback", client=FailingClient(timed_out)).predict("m", 1, [{"x": 1}], "req")
    crashed = {"errorMessage": "boom", "errorType": "RuntimeError"}
    with pytest.raises(FallbackFailedError, match="the fallback function failed"):
        LambdaInvoker("fallback", client=FailingClient(crashed)).predict("m", 1, [{"x": 1}], "req")


def test_the_sdk_itself_retries_nothing() -> None:
    # standard mode would retry read timeouts: the client is made with one attempt and this read timeout
    invoker = LambdaInvoker("fallback")
    config = invoker.client.meta.config
    assert config.retries["total_max_attempts"] == 1 and config.read_timeout == INVOKE_READ_TIMEOUT_S
