"""The synthesized app on the local cloud: every resource type with its key properties, the
upload-to-pipeline path with the real handlers, and the API's 404/403."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from mlops_local import distributed_map
from mlops_local.testing import LocalCloudProcess


def created(local_cloud: LocalCloudProcess, type_: str) -> list[dict[str, Any]]:
    return [r for r in local_cloud.status()["resources"] if r["type"] == type_ and r["status"] == "created"]


def test_every_type_is_emulated_or_listed(local_cloud: LocalCloudProcess) -> None:
    # GIVEN the synthesized dev stage
    status = local_cloud.status()
    types = {r["type"] for r in status["resources"]}
    # THEN every type in the templates is either emulated or listed as not emulated, by name
    assert types == set(status["emulated"]) | set(status["not_emulated"])
    assert status["stacks"] == ["mlops-dev-stateful", "mlops-dev-platform"]
    # Listed, not emulated: metadata, the account-level logging role, and the REST API's request
    # models and gateway responses (the inference function validates bodies itself, with the same
    # models, so a local request gets the same 4xx either way).
    assert set(status["not_emulated"]) <= {
        "AWS::CDK::Metadata",
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::Model",
        "AWS::ApiGateway::GatewayResponse",
    }


def test_buckets_tables_and_parameters_match_the_template(
    local_cloud: LocalCloudProcess, aws: Callable[[str], Any]
) -> None:
    # THEN each bucket's versioning and encryption are as synthesized
    for record in created(local_cloud, "AWS::S3::Bucket"):
        props = record["properties"]
        if "VersioningConfiguration" in props:
            assert (
                aws("s3").get_bucket_versioning(Bucket=record["physical_id"])["Status"]
                == props["VersioningConfiguration"]["Status"]
            )
        if "BucketEncryption" in props:
            rules = aws("s3").get_bucket_encryption(Bucket=record["physical_id"])
            wanted = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            got = rules["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
            assert got["SSEAlgorithm"] == wanted["SSEAlgorithm"]
    # AND each table's key schema and point-in-time recovery
    for record in created(local_cloud, "AWS::DynamoDB::Table") + created(local_cloud, "AWS::DynamoDB::GlobalTable"):
        table = aws("dynamodb").describe_table(TableName=record["physical_id"])["Table"]
        assert table["KeySchema"] == record["properties"]["KeySchema"]
        pitr = record["properties"].get("PointInTimeRecoverySpecification") or next(
            (r.get("PointInTimeRecoverySpecification") for r in record["properties"].get("Replicas", [])), None
        )
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            backups = aws("dynamodb").describe_continuous_backups(TableName=record["physical_id"])
            assert (
                backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
                == "ENABLED"
            )
    # AND every SSM parameter holds its resolved value (API URLs point at the local API)
    for record in created(local_cloud, "AWS::SSM::Parameter"):
        value = aws("ssm").get_parameter(Name=record["physical_id"])["Parameter"]["Value"]
        assert value == record["properties"]["Value"]
        assert "execute-api" not in value


def test_functions_state_machines_rules_and_queues(local_cloud: LocalCloudProcess, aws: Callable[[str], Any]) -> None:
    # THEN functions have the template's handler, runtime and environment
    for record in created(local_cloud, "AWS::Lambda::Function"):
        config = aws("lambda").get_function_configuration(FunctionName=record["physical_id"])
        props = record["properties"]
        assert (config["Handler"], config["Runtime"]) == (props["Handler"], props["Runtime"])
        assert config.get("Environment", {}).get("Variables", {}) == props.get("Environment", {}).get("Variables", {})
    # AND state machines run exactly the synthesized definition after substitution, and after the
    # documented rewrite of the Distributed Map parts moto lacks (ItemBatcher, JSON Lines), which
    # touches the batch machine alone
    rewritten = []
    for record in created(local_cloud, "AWS::StepFunctions::StateMachine"):
        described = aws("stepfunctions").describe_state_machine(stateMachineArn=record["physical_id"])
        synthesized = record["detail"]["definition"]
        assert json.loads(described["definition"]) == json.loads(distributed_map.rewrite(synthesized))
        assert "${" not in described["definition"]
        if json.loads(distributed_map.rewrite(synthesized)) != json.loads(synthesized):
            rewritten.append(record["logical_id"])
    assert len(rewritten) == 1 and "Batch" in rewritten[0], rewritten
    # AND rules carry their event pattern or schedule
    for record in created(local_cloud, "AWS::Events::Rule"):
        rule = aws("events").describe_rule(Name=record["physical_id"])
        if "EventPattern" in record["properties"]:
            assert json.loads(rule["EventPattern"]) == record["properties"]["EventPattern"]
        else:
            assert rule["ScheduleExpression"] == record["properties"]["ScheduleExpression"]
    # AND topics and queues exist
    for record in created(local_cloud, "AWS::SNS::Topic"):
        assert aws("sns").get_topic_attributes(TopicArn=record["physical_id"])["Attributes"]["TopicArn"]
    for record in created(local_cloud, "AWS::SQS::Queue"):
        assert aws("sqs").get_queue_attributes(QueueUrl=record["physical_id"], AttributeNames=["QueueArn"])


def _wait(sfn: Any, arn: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    found: list[dict[str, Any]] = []
    while time.time() < deadline:
        found = sfn.list_executions(stateMachineArn=arn)["executions"]
        if len(found) >= count and all(e["status"] != "RUNNING" for e in found):
            break
        time.sleep(0.2)
    return found


def test_upload_under_datasets_starts_one_training_execution(
    local_cloud: LocalCloudProcess, aws: Callable[[str], Any]
) -> None:
    # GIVEN the data bucket and training state machine the deployment registered in SSM
    params = {
        p["Name"].rsplit("/", 1)[-1]: p["Value"]
        for p in aws("ssm").get_parameters_by_path(Path="/mlops/dev/")["Parameters"]
    }
    bucket, machine = params["data-bucket"], params["training-state-machine-arn"]
    sfn = aws("stepfunctions")
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    # WHEN a file is uploaded outside datasets/, and one under datasets/<model>/
    aws("s3").put_object(Bucket=bucket, Key="notes/readme.txt", Body=b"not a dataset")
    aws("s3").put_object(Bucket=bucket, Key="datasets/e2e-model/data.csv", Body=b"a,b\n1,2\n")
    executions = _wait(sfn, machine, before + 1)
    time.sleep(1.0)
    # THEN exactly one execution started, and its first state ran the real validate handler
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == before + 1
    history = sfn.get_execution_history(executionArn=executions[0]["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered[0] == "Validate"
    invoked = {i["function"] for i in local_cloud.status()["invocations"]}
    assert any("Validate" in name for name in invoked)


def _status(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_api_unknown_route_404_and_unsigned_iam_route_403(local_cloud: LocalCloudProcess) -> None:
    # GIVEN the synthesized REST API's first IAM-authorized route
    iam_routes = [
        r
        for r in created(local_cloud, "AWS::ApiGateway::Method")
        if r["properties"].get("AuthorizationType") == "AWS_IAM"
    ]
    resources = {r["physical_id"]: r for r in created(local_cloud, "AWS::ApiGateway::Resource")}
    # THEN an unknown route is a 404
    assert _status(f"{local_cloud.api_url}no/such/route") == 404
    # AND an unsigned request to an IAM route is a 403
    assert iam_routes, "the dev stage should have AWS_IAM routes"
    route = iam_routes[0]["properties"]
    path_part = resources[route["ResourceId"]]["properties"]["PathPart"]
    path = path_part.replace("{proxy+}", "x").replace("{", "").replace("}", "")
    parent = resources.get(resources[route["ResourceId"]]["properties"]["ParentId"])
    if parent is not None:
        path = parent["properties"]["PathPart"].replace("{", "").replace("}", "") + "/" + path
    method = "POST" if route["HttpMethod"] in ("POST", "ANY") else route["HttpMethod"]
    assert _status(f"{local_cloud.api_url}{path}", method) == 403
