"""The local Lambda runtime on a slow machine: an init past the init phase limit is not an error.

On a busy 2-core machine (load about 9) the pipeline functions' imports (pandas, scikit-learn)
took 11-26 s, longer than Lambda's 10 s init phase; the runtime refused them with
``Runtime.InitError`` and the state machine caught that as ``PipelineFailed`` (one run of four
concurrent uploads failed so in its cold validate step; a refused init kills the worker, so the
next invocation starts cold again: all 20 runs of twenty concurrent uploads failed).
Lambda itself goes on with such an init inside the first invocation, under the function's timeout.
The slowness is injected here (a handler module that sleeps while it is imported) against a short
init limit, so the tests do not depend on how busy the machine is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_local.runtime import FunctionSpec, LambdaRuntime

REGION, ACCOUNT = "us-east-1", "123456789012"
INIT_LIMIT_S = 0.3


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    running = LambdaRuntime(
        endpoint_url="http://127.0.0.1:1", region=REGION, account=ACCOUNT, log_dir=tmp_path, init_timeout_s=INIT_LIMIT_S
    )
    try:
        yield running
    finally:
        running.stop()


def slow_function(runtime: LambdaRuntime, tmp_path: Path, name: str, *, import_s: float, timeout: int) -> None:
    """A function whose module takes ``import_s`` seconds to import (the injected slowness)."""
    code = tmp_path / name
    code.mkdir()
    (code / "handler.py").write_text(
        f"import time\ntime.sleep({import_s})\n"
        "def handler(event, context):\n"
        "    return {'echo': event, 'remaining_ms': context.get_remaining_time_in_millis()}\n"
    )
    runtime.register(
        FunctionSpec(
            name=name,
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            handler="handler.handler",
            code_dir=code,
            timeout=timeout,
        )
    )


def test_an_init_longer_than_the_init_limit_finishes_inside_the_first_invocation(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # GIVEN a function whose imports take five times the init limit, well inside its timeout
    slow_function(runtime, tmp_path, "slow", import_s=5 * INIT_LIMIT_S, timeout=30)
    # WHEN it is invoked cold, and again warm
    cold = runtime.invoke("slow", b'{"n": 1}')
    warm = runtime.invoke("slow", b'{"n": 2}')
    # THEN both answer (no Runtime.InitError), and the init's overrun counted against the first
    # invocation's timeout only
    assert cold.function_error is None, cold.json()
    assert warm.function_error is None, warm.json()
    assert cold.json()["echo"] == {"n": 1} and warm.json()["echo"] == {"n": 2}
    assert cold.json()["remaining_ms"] < warm.json()["remaining_ms"] <= 30_000
    assert "Init Duration" in (tmp_path / "slow.log").read_text()


def test_an_init_longer_than_the_function_timeout_times_the_invocation_out(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # GIVEN a function whose imports outlast its whole timeout
    slow_function(runtime, tmp_path, "stuck", import_s=30, timeout=1)
    # WHEN it is invoked
    result = runtime.invoke("stuck", b"{}")
    # THEN it times out the way Lambda reports it (a Task error a state machine can Retry or Catch)
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result.json()["errorMessage"]
