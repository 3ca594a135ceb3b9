"""The local cloud on a small hand-written assembly: functions, events, Step Functions, API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_local.testing import LocalCloudProcess

FIXTURE = Path(__file__).resolve().parents[2] / "unit" / "local" / "fixtures" / "assembly"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloudProcess]:
    with LocalCloudProcess(FIXTURE, "--no-schedules") as running:
        yield running


def physical(cloud: LocalCloudProcess, logical_id: str) -> str:
    return str(cloud.resource(logical_id)["physical_id"])


def invoke(cloud: LocalCloudProcess, logical_id: str, payload: dict[str, Any]) -> tuple[str | None, Any]:
    out = cloud.client("lambda").invoke(FunctionName=physical(cloud, logical_id), Payload=json.dumps(payload).encode())
    return out.get("FunctionError"), json.loads(out["Payload"].read())


def wait_executions(cloud: LocalCloudProcess, arn: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    sfn = cloud.client("stepfunctions")
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sfn.list_executions(stateMachineArn=arn)["executions"]
        if len(found) >= count and all(e["status"] != "RUNNING" for e in found):
            return list(found)
        time.sleep(0.1)
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


def test_ready_line_lists_emulated_and_not_emulated_types(cloud: LocalCloudProcess) -> None:
    # THEN the ready line names both stacks and every type, unsupported ones included
    assert cloud.info["stacks"] == ["fixture-stateful", "fixture-platform"]
    assert "AWS::Lambda::Function" in cloud.info["emulated"]
    assert "Custom::S3BucketNotifications" in cloud.info["emulated"]
    assert cloud.info["not_emulated"] == ["AWS::ApiGateway::Account", "AWS::CDK::Metadata"]


def test_fidelity_of_stateful_resources(cloud: LocalCloudProcess) -> None:
    s3, ddb, ssm = cloud.client("s3"), cloud.client("dynamodb"), cloud.client("ssm")
    bucket = physical(cloud, "DataBucket")
    # THEN the bucket has versioning, KMS encryption and EventBridge notifications as in the template
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # (the S3 API renders an empty EventBridgeConfiguration as nothing; delivery is tested below)
    notifications = cloud.resource("DataBucketNotifications")
    assert notifications["status"] == "created"
    assert notifications["properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}
    # AND the table has its key schema, GSI and PITR
    table = ddb.describe_table(TableName=physical(cloud, "Registry"))["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
    backups = ddb.describe_continuous_backups(TableName=physical(cloud, "Registry"))
    assert (
        backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        == "ENABLED"
    )
    # AND the parameter holds the bucket name; the API URL parameter points at the local API
    assert ssm.get_parameter(Name="/mlops/fixture/data-bucket")["Parameter"]["Value"] == bucket
    assert ssm.get_parameter(Name="/mlops/fixture/api-url")["Parameter"]["Value"].startswith("http://127.0.0.1:")
    # AND the condition-false queue was not created
    assert cloud.resource("ProdOnlyQueue")["status"] == "skipped"


def test_function_configuration_and_isolated_environments(cloud: LocalCloudProcess) -> None:
    config = cloud.client("lambda").get_function_configuration(FunctionName=physical(cloud, "EchoFunction"))
    assert (config["Handler"], config["Runtime"], config["Timeout"], config["MemorySize"]) == (
        "handler.handler",
        "python3.12",
        2,
        256,
    )
    # WHEN both functions run
    error, echo = invoke(cloud, "EchoFunction", {"x": 1})
    _, other = invoke(cloud, "OtherFunction", {"x": 1})
    # THEN each sees its own variables only, its layer, a Lambda context and the local endpoint
    assert error is None
    assert echo["env"] == {"FIXTURE_VAR": "echo", "FIXTURE_BUCKET": physical(cloud, "DataBucket")}
    assert other["env"] == {"SECRET_OTHER": "only-mine"}
    assert echo["layer"] == "fixture-layer"
    assert echo["table"] == physical(cloud, "Registry")
    assert 0 < echo["remaining_ms"] <= 2000
    assert echo["endpoint"] == cloud.endpoint_url


def test_errors_timeouts_and_crashes_have_lambda_payloads(cloud: LocalCloudProcess) -> None:
    # WHEN the handler raises
    error, payload = invoke(cloud, "EchoFunction", {"action": "fail"})
    # THEN the payload is Lambda's error shape with FunctionError Unhandled
    assert error == "Unhandled"
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "asked to fail")
    assert any("handler.py" in frame for frame in payload["stackTrace"])
    # WHEN it runs past its 2 s timeout
    started = time.time()
    error, payload = invoke(cloud, "EchoFunction", {"action": "sleep", "seconds": 30})
    # THEN it is stopped at the timeout
    assert error == "Unhandled" and "Task timed out after 2.00 seconds" in payload["errorMessage"]
    assert time.time() - started < 10
    # WHEN the process dies THEN that is a runtime exit error, and the next call gets a fresh environment
    error, payload = invoke(cloud, "EchoFunction", {"action": "exit"})
    assert payload["errorType"] == "Runtime.ExitError"
    error, payload = invoke(cloud, "EchoFunction", {"x": 2})
    assert error is None and payload["calls"] == 1


def test_upload_under_prefix_starts_exactly_one_execution(cloud: LocalCloudProcess) -> None:
    s3 = cloud.client("s3")
    machine = cloud.resource("Pipeline")["physical_id"]
    before = len(cloud.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"])
    # WHEN one object lands under datasets/ and one elsewhere
    s3.put_object(Bucket=physical(cloud, "DataBucket"), Key="datasets/churn/one.csv", Body=b"a\n1\n")
    s3.put_object(Bucket=physical(cloud, "DataBucket"), Key="elsewhere/churn/one.csv", Body=b"a\n1\n")
    executions = wait_executions(cloud, machine, before + 1)
    time.sleep(0.5)
    # THEN exactly one execution started, with the transformed input, and it ran the real handler
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == before + 1
    done = cloud.client("stepfunctions").describe_execution(executionArn=executions[0]["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["input"])["note"] == "uploaded datasets/churn/one.csv"
    assert json.loads(done["output"])["echo"]["key"] == "datasets/churn/one.csv"


def test_raising_lambda_is_retried_then_caught(cloud: LocalCloudProcess) -> None:
    sfn = cloud.client("stepfunctions")
    machine = cloud.resource("Pipeline")["physical_id"]
    # WHEN the task's function raises ValueError every time
    started = time.time()
    arn = sfn.start_execution(stateMachineArn=machine, name="raises", input='{"action": "fail"}')["executionArn"]
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.05)
    events = [e["type"] for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]
    # THEN the Retry ran it 1 + 2 times (back-off compressed), then the Catch led to the Fail state
    assert events.count("TaskFailed") == 3
    assert "PassStateEntered" in events and events[-1] == "ExecutionFailed"
    assert time.time() - started < 5  # 5 s + 10 s of real back-off, compressed


def test_schedule_rule_fires_on_demand_by_logical_id(cloud: LocalCloudProcess) -> None:
    # WHEN the scheduled rule is fired by its logical id
    deliveries = cloud.fire("NightlyRule")
    # THEN its Lambda target ran with the target's Input
    assert len(deliveries) == 1 and deliveries[0]["error"] is None
    attempt = deliveries[0]["result"]["attempts"][0]
    assert attempt["error"] is None and json.loads(attempt["payload"])["echo"] == {"scheduled": True}


def test_a_schedule_rule_gets_no_bus_events(cloud: LocalCloudProcess) -> None:
    # GIVEN a schedule rule (no event pattern) on the default bus
    rules = {physical(cloud, "NightlyRule"), "NightlyRule"}

    def scheduled() -> int:
        return sum(1 for d in cloud.status()["deliveries"] if d["rule"] in rules)

    before = scheduled()
    # WHEN events are put on the bus
    events = cloud.client("events")
    for i in range(3):
        events.put_events(Entries=[{"Source": "test", "DetailType": f"bus-event-{i}", "Detail": "{}"}])
    time.sleep(1.5)
    # THEN none is delivered to the schedule rule's target, as on AWS (moto's empty pattern matches all)
    assert scheduled() == before


def _request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_api_routes_auth_and_unknown_paths(cloud: LocalCloudProcess) -> None:
    base = cloud.api_url
    # THEN an open route answers with the function's response and path parameters
    status, body = _request(f"{base}public/churn")
    assert status == 200 and body["params"] == {"model": "churn"}
    # AND an unknown route is a 404, an unsigned IAM route a 403
    assert _request(f"{base}nothing/here")[0] == 404
    assert _request(f"{base}items/a/b", "POST", body=b"{}")[0] == 403
    # WHEN the IAM route is SigV4-signed with the local credentials THEN it reaches the function
    request = AWSRequest(
        method="POST", url=f"{base}items/a/b", data=b"{}", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", cloud.region).add_auth(request)
    status, body = _request(f"{base}items/a/b", "POST", dict(request.headers.items()), b"{}")
    assert status == 200 and body["params"] == {"proxy": "a/b"} and body["user"] == "testing"
    # AND a wrong secret is refused
    bad = AWSRequest(method="POST", url=f"{base}items/a/b", data=b"{}")
    SigV4Auth(Credentials("testing", "wrong"), "execute-api", cloud.region).add_auth(bad)
    assert _request(f"{base}items/a/b", "POST", dict(bad.headers.items()), b"{}")[0] == 403
