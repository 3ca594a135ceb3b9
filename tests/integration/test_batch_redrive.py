"""A failed batch job redriven (Step Functions ``RedriveExecution``) on moto, in process.

moto's own interpreter runs ``statemachines/batch.asl.json`` (made runnable by the local cloud's
Distributed Map emulation, :mod:`mlops_local.distributed_map`) with the local cloud's redrive
(:mod:`mlops_local.redrive`). Each Lambda invoke of the state machine runs the batch room's step
(``jobs.start``, ``scoring.score``, ``jobs.finish``) in this process on moto's S3 and DynamoDB, as
the functions' handlers do; only the Lambda runtime (a child process per function in the local
cloud) is left out. Two batches fail permanently (an error no Retry matches), so the Map and the
job fail; the fault cleared, a redrive resumes the job at the Map, runs only the two failed batches
(the Score invocations are counted) and the output holds rows 0..N-1 once each, equal to a clean
run's. Data: real rows of ISLP's Default, resampled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from mlops.batch import jobs, scoring
from mlops.batch.runs import job_prefix, redrive_job
from mlops.batch.services import BatchServices
from mlops.contracts.batch import FinishRequest, ScoreRequest, StartRequest
from mlops.errors import InputError, NotFoundError
from mlops_local import patches
from mlops_local.distributed_map import rewrite
from tests.integration.test_batch_jobs import (  # noqa: F401 - pytest fixtures, used by name
    BUCKET,
    MODEL,
    csv_bytes,
    default_rows,
    onnx_model,
    output_lines,
    run_job,
    sample,
    services,
)

ROWS = 600  # batches of 97 (the services fixture's batch_size): 7 batches, first rows 0, 97, ..., 582
FAILING = {194, 485}


class InjectedFault(Exception):
    pass


class InProcessLambdas:
    """What :func:`mlops_local.patches.activate` asks of a cloud: Lambda invokes and time scaling."""

    def __init__(self, batch_services: BatchServices) -> None:
        self.services = batch_services
        self.failing: set[int] = set()
        self.calls: Counter[str] = Counter()
        self.scored: list[int] = []
        self.lock = threading.Lock()

    def scale_seconds(self, seconds: float) -> float:
        return 0.0  # Retry back-off compressed, as the local cloud does

    def invoke(self, function: str, payload: bytes) -> tuple[bytes, str | None]:
        name = function.rsplit(":", 1)[-1]
        event = json.loads(payload)
        with self.lock:
            self.calls[name] += 1
        try:
            if name == "batch-start":
                answer: Any = jobs.start(StartRequest.model_validate(event), self.services).model_dump(mode="json")
            elif name == "batch-score":
                request = ScoreRequest.model_validate(event)
                first = request.items[0].row
                if first in self.failing:
                    raise InjectedFault(f"batch at row {first}: injected permanent failure")
                answer = scoring.score(request, self.services).model_dump(mode="json")
                with self.lock:
                    self.scored.append(first)
            else:
                finished = jobs.finish(FinishRequest.model_validate(event), self.services, request_id="r-1")
                answer = finished.model_dump(mode="json")
        except Exception as exc:  # what a Lambda answers for an unhandled error
            body = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return json.dumps(body).encode(), "Unhandled"
        return json.dumps(answer).encode(), None


def _wait(sfn: Any, arn: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        assert time.monotonic() < deadline, f"{arn} still RUNNING after {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def machine(services: BatchServices) -> Any:  # noqa: F811 - the fixture imported above
    lambdas = InProcessLambdas(services)
    patches.activate(lambdas)  # installs the redrive too (mlops_local.redrive)
    try:
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        aws_lambda = boto3.client("lambda", region_name="us-east-1")
        arns = {}
        for logical, name in (("Start", "batch-start"), ("Score", "batch-score"), ("Finish", "batch-finish")):
            created = aws_lambda.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.main", Code={"ZipFile": b"x"}
            )
            arns[f"${{{logical}FunctionArn}}"] = created["FunctionArn"]
        definition = open("statemachines/batch.asl.json").read()  # noqa: SIM115 - read once
        for placeholder, arn in arns.items():
            definition = definition.replace(placeholder, arn)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        created_machine = sfn.create_state_machine(name="batch", definition=rewrite(definition), roleArn=role)
        yield lambdas, sfn, created_machine["stateMachineArn"]
    finally:
        patches.deactivate(lambdas)


def test_a_failed_job_redriven_scores_each_row_once_as_a_clean_run(
    machine: Any,
    services: BatchServices,  # noqa: F811
    default_rows: Any,  # noqa: F811
) -> None:
    lambdas, sfn, state_machine = machine
    names, rows = sample(default_rows, ROWS, seed=19)
    key = f"batch/{MODEL}/redrive.csv"
    services.s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(names, rows))
    job_id = f"{MODEL}.redrive-1"
    document = {"model": MODEL, "bucket": BUCKET, "key": key, "job_id": job_id}
    lambdas.failing = set(FAILING)

    arn = sfn.start_execution(stateMachineArn=state_machine, name=job_id, input=json.dumps(document))["executionArn"]
    failed = _wait(sfn, arn)
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "States.ExceedToleratedFailureThreshold", failed
    assert lambdas.calls["batch-finish"] == 0
    assert sorted(lambdas.scored) == [0, 97, 291, 388, 582]  # every other batch ran (and wrote its part)

    lambdas.failing, lambdas.scored = set(), []
    redriven = sfn.redrive_execution(executionArn=arn)
    assert redriven["redriveDate"]
    done = _wait(sfn, arn)
    assert done["status"] == "SUCCEEDED", done
    assert done["redriveCount"] == 1
    assert lambdas.calls["batch-start"] == 1  # Start succeeded the first time: kept, not run again
    assert lambdas.calls["batch-finish"] == 1
    # the redrive runs only the Map's children that failed, as Step Functions' redrive does
    assert sorted(lambdas.scored) == sorted(FAILING)
    assert lambdas.calls["batch-score"] == 7 + len(FAILING)  # 7 batches the first time, 2 redriven

    redriven_output = output_lines(services, f"{job_prefix(job_id)}/output.jsonl")
    assert [line["row"] for line in redriven_output] == list(range(ROWS))
    manifest = json.loads(done["output"])["manifest"]
    assert (manifest["rows"], manifest["scored"] + manifest["refused"]) == (ROWS, ROWS)

    clean_job, clean_manifest = run_job(services, key, seed=3)
    assert output_lines(services, f"{job_prefix(clean_job.job_id)}/output.jsonl") == redriven_output
    assert clean_manifest.output["sha256"] == manifest["output"]["sha256"]

    history = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in history].count("ExecutionRedriven") == 1

    with pytest.raises(InputError, match=r"cannot be redriven: .* is SUCCEEDED, not FAILED"):
        redrive_job(sfn, state_machine, job_id)  # what `mlops batch redrive JOB` calls (exit 2)
    with pytest.raises(NotFoundError, match=r"default\.nope"):
        redrive_job(sfn, state_machine, f"{MODEL}.nope")
