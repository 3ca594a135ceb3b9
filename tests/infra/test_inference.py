"""The inference endpoint construct: function, grants, routes, validator (CDK assertions of intent)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mlops.contracts.serving import FALLBACK_MEMORY_MB, FALLBACK_TIMEOUT_S, INFERENCE_TIMEOUT_S
from stacks.api import PlatformApi
from stacks.config import load_environments
from stacks.inference import InferenceEndpoint
from stacks.layers import PlatformLayers
from stacks.stateful import DataStorage, RegistryTables
from tests.infra.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    config = load_environments(context["mlops:environments"], only="dev")[0]
    app = cdk.App(context=context)
    stack = cdk.Stack(app, "InferenceTest")
    storage = DataStorage(stack, "Storage", config=config)
    tables = RegistryTables(stack, "Tables", config=config, key=storage.key)
    layers = PlatformLayers(stack, architecture=config.lambda_architecture)
    api = PlatformApi(stack, "Api", config=config, layers=layers, bucket=storage.bucket, tables=tables)
    InferenceEndpoint(stack, "Inference", config=config, layers=layers, bucket=storage.bucket, tables=tables, api=api)
    return Template.from_stack(stack)


def test_function_gets_serving_settings(template: Template) -> None:
    # GIVEN the synthesized construct WHEN looking for the inference function
    # THEN it has 1024 MiB and the serving settings in its environment
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "MemorySize": 1024,
            "Environment": {
                "Variables": Match.object_like(
                    {"MAX_BATCH_SIZE": "1000", "ALIAS_TTL_SECONDS": "30", "CAPTURE_SAMPLE_RATE": "1.0"}
                )
            },
        },
    )


def test_predict_route_is_iam_authorized_and_validated(template: Template) -> None:
    # GIVEN the construct WHEN reading the API methods
    # THEN POST .../predict requires SigV4 and has a request validator and body model
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "AuthorizationType": "AWS_IAM",
            "RequestValidatorId": Match.any_value(),
            "RequestModels": {"application/json": Match.any_value()},
        },
    )
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "predict"})
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "openapi.json"})
    template.has_resource_properties(
        "AWS::ApiGateway::Model",
        {
            "Schema": Match.object_like(
                {"properties": Match.object_like({"records": Match.object_like({"maxItems": 1000})})}
            )
        },
    )


def test_grants_are_narrow(template: Template) -> None:
    # GIVEN the construct WHEN reading the policies
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    # THEN the function may put captures and read artifacts by prefix, and read the registry
    assert "captures/*" in policies
    assert "artifacts/*" in policies
    assert "dynamodb:GetItem" in policies


@pytest.mark.parametrize(("env", "batch", "body"), [("dev", 1000, 5 * 1024 * 1024), ("keyed", 250, 1024 * 1024)])
def test_the_configured_request_limits_reach_the_function_and_the_api(
    synthesized: Synthesized, env: str, batch: int, body: int
) -> None:
    # GIVEN an environment's max_batch_size and max_request_bytes in cdk.json (keyed sets its own)
    template = synthesized.template(env, "platform")
    # THEN the inference function enforces them
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"MAX_BATCH_SIZE": str(batch), "MAX_BODY_BYTES": str(body)})}},
    )
    # AND API Gateway's request model refuses a longer batch before the function is invoked
    models = template.find_resources("AWS::ApiGateway::Model")
    (predict,) = [m for m in models.values() if m["Properties"]["Schema"].get("title") == "PredictRequest"]
    assert predict["Properties"]["Schema"]["properties"]["records"]["maxItems"] == batch


def _functions_by_handler_dir(template: Template) -> dict[str, tuple[str, dict]]:
    """Each function's logical id and properties, by its description's first word (inference or fallback)."""
    found = {}
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        description = resource["Properties"].get("Description", "")
        if description.startswith("Inference fallback"):
            found["fallback"] = (logical_id, resource["Properties"])
        elif description.startswith("Inference:"):
            found["inference"] = (logical_id, resource["Properties"])
    return found


def test_the_fallback_function_carries_the_scientific_stack_and_is_named_to_the_inference_function(
    template: Template,
) -> None:
    # GIVEN the construct WHEN reading its two functions
    functions = _functions_by_handler_dir(template)
    (fallback_id, fallback), (_, inference) = functions["fallback"], functions["inference"]
    # THEN the fallback has three layers (shared, runtime, science), below the inference function's timeout
    assert len(fallback["Layers"]) == 3 and fallback["Timeout"] < inference["Timeout"]
    # AND the timeouts and memory of the measured budget (mlops.contracts.serving)
    assert (fallback["Timeout"], fallback["MemorySize"]) == (FALLBACK_TIMEOUT_S, FALLBACK_MEMORY_MB) == (24, 2048)
    assert inference["Timeout"] == INFERENCE_TIMEOUT_S == 29
    # AND the inference function is told which function it is
    assert inference["Environment"]["Variables"]["FALLBACK_FUNCTION"] == {"Ref": fallback_id}
    # AND both count in the same serving service (one set of inference alarms)
    service = inference["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert fallback["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service


def test_only_the_inference_function_may_invoke_the_fallback_and_the_fallback_reads_only(template: Template) -> None:
    # GIVEN the construct's policies
    functions = _functions_by_handler_dir(template)
    fallback_id = functions["fallback"][0]
    invokers = []
    fallback_actions: set[str] = set()
    for resource in template.find_resources("AWS::IAM::Policy").values():
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        roles = json.dumps(resource["Properties"]["Roles"])
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "lambda:InvokeFunction" in actions:
                assert fallback_id in json.dumps(statement["Resource"]), statement
                invokers.append(roles)
            if "InferenceFallback" in roles:
                fallback_actions.update(actions)
    # THEN exactly one role may invoke it: the inference function's
    assert len(invokers) == 1 and "InferenceFunction" in invokers[0] and "Fallback" not in invokers[0]
    # AND the fallback reads the registry and artifacts, and writes nothing but its logs and traces
    writes = {a for a in fallback_actions if a.startswith(("s3:Put", "s3:Delete", "dynamodb:Put", "dynamodb:Update"))}
    assert writes == set() and "s3:GetObject*" in fallback_actions and "dynamodb:GetItem" in fallback_actions
