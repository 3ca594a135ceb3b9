"""Who started a batch job: ``mlops batch start`` over real signed HTTP, the starter AWS verified.

The CLI signs ``POST /models/{model}/batch-jobs`` with the caller's own credentials; a loopback
server checks the SigV4 signature as API Gateway does (the local cloud's verifier) and hands the
request, with the identity it verified, to the batch API's real handler (functions/batch_api). The
state machine is ``statemachines/batch.asl.json`` run by moto's interpreter with the local cloud's
Distributed Map emulation, its Lambda steps the batch room's code in process
(tests/integration/test_batch_redrive.py), on moto's S3 and DynamoDB. Data: real rows of ISLP's
Default, resampled.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from mlops.batch.runs import list_jobs, object_job_id, upload_job
from mlops.batch.services import BatchServices
from mlops.training.runs import execution_arn
from mlops_cli.main import cli
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE
from tests.integration.signed_gateway import USERS, signed_gateway, signed_post, user_arn
from tests.integration.test_batch_jobs import (  # noqa: F401 - pytest fixtures, used by name
    BUCKET,
    MODEL,
    csv_bytes,
    default_rows,
    onnx_model,
    output_lines,
    sample,
    services,
)
from tests.integration.test_batch_redrive import _wait, machine  # noqa: F401 - a fixture, used by name


@pytest.fixture
def api(machine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """The batch API's handler behind a loopback server that verifies SigV4 like API Gateway; the
    platform's SSM parameters name it, the data bucket and the batch machine (as a deployment does)."""
    _, _, state_machine = machine
    for name, value in (
        ("DATA_BUCKET", BUCKET),
        ("BATCH_STATE_MACHINE_ARN", state_machine),
        ("MLOPS_ENVIRONMENT", "dev"),
        ("POWERTOOLS_TRACE_DISABLED", "1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    # concurrent starts reach separate execution environments, as on Lambda (a race the tests start)
    with signed_gateway({"/models/{model}/batch-jobs": "batch_api"}, environments=4) as url:
        ssm = boto3.client("ssm", region_name="us-east-1")
        for name, value in (
            ("data-bucket", BUCKET),
            ("registry-table", REGISTRY_TABLE),
            ("audit-table", AUDIT_TABLE),
            ("api-url", url),
            ("batch-state-machine-arn", state_machine),
        ):
            ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
        yield url


def _as(monkeypatch: pytest.MonkeyPatch, access_key: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", USERS[access_key][0])


def _post(url: str, access_key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A request signed by hand as ``access_key`` (what the CLI sends), answered status and JSON."""
    return signed_post(url + f"models/{MODEL}/batch-jobs", json.dumps(body).encode(), access_key)


def _put_input(services: BatchServices, default_rows: Any, key: str, n: int, seed: int) -> str:  # noqa: F811
    names, rows = sample(default_rows, n, seed=seed)
    return str(services.s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(names, rows))["VersionId"])


def test_the_cli_starts_a_job_as_the_identity_aws_verified(
    api: str,
    machine: Any,  # noqa: F811
    services: BatchServices,  # noqa: F811
    default_rows: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, sfn, state_machine = machine
    key = f"batch/{MODEL}/nightly.csv"
    object_version = _put_input(services, default_rows, key, 250, seed=5)
    # GIVEN the scientist's own credentials
    _as(monkeypatch, "AKIDSCIENTIST")
    # WHEN `mlops batch start --wait` scores the file
    result = CliRunner().invoke(cli, ["batch", "start", MODEL, f"s3://{BUCKET}/{key}", "--wait", "--json"])
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    # THEN the job is the object version's one job, started by the scientist as AWS verified
    assert job["status"] == "SUCCEEDED"
    assert job["job_id"] == object_job_id(MODEL, key, object_version)
    assert (job["input"]["started_by"], job["input"]["trigger"]) == (user_arn("scientist"), "cli")
    manifest = job["manifest"]
    assert (manifest["started_by"], manifest["actor"], manifest["rows"]) == (
        user_arn("scientist"),
        user_arn("scientist"),
        250,
    )
    # AND the job's audit event names the scientist as its actor
    events, _ = services.registry.audit.list_events(MODEL, limit=50)
    scored = [e for e in events if e.action == "batch.score"]
    assert [e.actor for e in scored] == [user_arn("scientist")]
    # AND `mlops batch show` prints who started it
    shown = CliRunner().invoke(cli, ["batch", "show", job["job_id"]])
    assert shown.exit_code == 0, shown.output
    assert f"started by {user_arn('scientist')} (trigger cli)" in shown.stdout
    # AND carol starting the same object version joins the scientist's job (nothing runs twice)
    _as(monkeypatch, "AKIDCAROL")
    again = CliRunner().invoke(cli, ["batch", "start", MODEL, f"s3://{BUCKET}/{key}"])
    assert again.exit_code == 0, again.output
    assert f"already started by {user_arn('scientist')}: {job['job_id']}" in again.stdout
    assert [j["job_id"] for j in list_jobs(sfn, state_machine, MODEL)] == [job["job_id"]]


def test_concurrent_starts_by_two_identities_make_one_job_with_the_first_starter(
    api: str,
    machine: Any,  # noqa: F811
    services: BatchServices,  # noqa: F811
    default_rows: Any,  # noqa: F811
) -> None:
    _, sfn, state_machine = machine
    for round_ in range(3):
        key = f"batch/{MODEL}/race-{round_}.csv"
        object_version = _put_input(services, default_rows, key, 120, seed=round_)
        body = {"uri": f"s3://{BUCKET}/{key}"}
        barrier = threading.Barrier(4)
        answers: dict[str, list[tuple[int, dict[str, Any]]]] = {"AKIDSCIENTIST": [], "AKIDCAROL": []}

        def start(
            access_key: str,
            barrier: threading.Barrier,
            body: dict[str, Any],
            answers: dict[str, list[tuple[int, dict[str, Any]]]],
        ) -> None:
            barrier.wait()
            answers[access_key].append(_post(api, access_key, body))

        threads = [
            threading.Thread(target=start, args=(k, barrier, body, answers)) for k in ("AKIDSCIENTIST", "AKIDCAROL") * 2
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        every = [a for pair in answers.values() for a in pair]
        job_id = object_job_id(MODEL, key, object_version)
        # exactly one start began the job; the others joined it and name its first starter
        assert sorted(status for status, _ in every) == [200, 200, 200, 201], every
        ((winner, first),) = [(k, a) for k, pair in answers.items() for status, a in pair if status == 201]
        assert first["started_by"] == user_arn(USERS[winner][1])
        for status, answer in every:
            assert (answer["job_id"], answer["started_by"]) == (job_id, first["started_by"]), answer
            assert answer["started"] is (status == 201)
        done = _wait(sfn, execution_arn(state_machine, job_id))
        assert done["status"] == "SUCCEEDED", done
        assert json.loads(done["input"])["started_by"] == first["started_by"]
        assert json.loads(done["output"])["manifest"]["actor"] == first["started_by"]
    assert len(list_jobs(sfn, state_machine, MODEL)) == 3


def test_the_body_cannot_name_the_starter_and_bad_requests_are_named(
    api: str,
    machine: Any,  # noqa: F811
    services: BatchServices,  # noqa: F811
    default_rows: Any,  # noqa: F811
) -> None:
    _, sfn, state_machine = machine
    key = f"batch/{MODEL}/claims.csv"
    _put_input(services, default_rows, key, 10, seed=1)
    uri = f"s3://{BUCKET}/{key}"
    cases = [
        ({"uri": uri, "started_by": user_arn("mallory")}, 400, "body field 'started_by' is not accepted"),
        ({"uri": uri, "version": "two"}, 400, "body field 'version' must be a model version number"),
        ({"uri": f"s3://other/{key}"}, 400, "batch inputs are read from the data bucket s3://data/ only"),
        ({"uri": f"s3://{BUCKET}/datasets/x.csv"}, 400, "batch inputs are read under batch/"),
        ({"uri": f"s3://{BUCKET}/batch/{MODEL}/missing.csv"}, 404, "no such object"),
        ({"uri": f"s3://{BUCKET}/batch/other-team/input.csv"}, 400, "is in model 'other-team''s folder"),
        # an object version the bucket does not hold is refused here, not started to fail later
        ({"uri": uri, "object_version": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"}, 404, "no object version"),
        ({"uri": "not-a-uri"}, 400, "is not an object's URI"),
    ]
    for body, status, message in cases:
        got, answer = _post(api, "AKIDSCIENTIST", body)
        assert (got, message in answer.get("error", "")) == (status, True), (body, got, answer)
    assert list_jobs(sfn, state_machine, MODEL) == []


def test_an_upload_and_a_schedule_name_their_trigger() -> None:
    event = {"detail": {"bucket": {"name": BUCKET}, "object": {"key": f"batch/{MODEL}/a+b.csv", "version-id": "v9"}}}
    request = upload_job(event)
    assert (request.trigger, request.started_by) == ("upload", f"upload:batch/{MODEL}/a b.csv@v9")
