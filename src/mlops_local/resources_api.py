"""Local creators of the REST API's resources, methods, deployments and stages (API Gateway)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_local.creators import (
    Context,
    Created,
    handles,
    json_text,
)

if TYPE_CHECKING:
    from mlops_local.materialize import Materializer


# ---------------------------------------------------------------------------------------------
# API Gateway (REST)
@handles(
    "AWS::ApiGateway::RestApi",
    "Name",
    "Description",
    "EndpointConfiguration",
    "BinaryMediaTypes",
    "Policy",
    "MinimumCompressionSize",
    "ApiKeySourceType",
    "DisableExecuteApiEndpoint",
    "Tags",
    "CloneFrom",
)
def _rest_api(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    api = m.client("apigateway")
    args: dict[str, Any] = {"name": p.get("Name") or ctx.logical_id}
    if "Description" in p:
        args["description"] = p["Description"]
    if "EndpointConfiguration" in p:
        args["endpointConfiguration"] = {"types": p["EndpointConfiguration"].get("Types", ["EDGE"])}
    if "BinaryMediaTypes" in p:
        args["binaryMediaTypes"] = p["BinaryMediaTypes"]
    if "Policy" in p:
        args["policy"] = json_text(p["Policy"])
    if "ApiKeySourceType" in p:
        args["apiKeySource"] = p["ApiKeySourceType"]
    created = api.create_rest_api(**args)
    root = next(r["id"] for r in api.get_resources(restApiId=created["id"])["items"] if r["path"] == "/")
    return Created(created["id"], {"RootResourceId": root, "RestApiId": created["id"]})


@handles("AWS::ApiGateway::Resource", "RestApiId", "ParentId", "PathPart")
def _api_resource(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    out = m.client("apigateway").create_resource(
        restApiId=p["RestApiId"], parentId=p["ParentId"], pathPart=p["PathPart"]
    )
    return Created(out["id"], {"ResourceId": out["id"]})


@handles(
    "AWS::ApiGateway::Method",
    "RestApiId",
    "ResourceId",
    "HttpMethod",
    "AuthorizationType",
    "AuthorizerId",
    "ApiKeyRequired",
    "OperationName",
    "RequestParameters",
    "Integration",
    "MethodResponses",
    "AuthorizationScopes",
    "RequestModels",
    "RequestValidatorId",
)
def _api_method(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    api = m.client("apigateway")
    key = {"restApiId": p["RestApiId"], "resourceId": p["ResourceId"], "httpMethod": p["HttpMethod"]}
    args: dict[str, Any] = {**key, "authorizationType": p.get("AuthorizationType", "NONE")}
    for cfn, boto in (
        ("AuthorizerId", "authorizerId"),
        ("ApiKeyRequired", "apiKeyRequired"),
        ("OperationName", "operationName"),
        ("RequestParameters", "requestParameters"),
        ("AuthorizationScopes", "authorizationScopes"),
    ):
        if cfn in p:
            args[boto] = p[cfn]
    api.put_method(**args)
    integration = p.get("Integration")
    if integration:
        i_args: dict[str, Any] = {**key, "type": integration["Type"]}
        for cfn, boto in (
            ("IntegrationHttpMethod", "integrationHttpMethod"),
            ("Uri", "uri"),
            ("PassthroughBehavior", "passthroughBehavior"),
            ("RequestTemplates", "requestTemplates"),
            ("RequestParameters", "requestParameters"),
            ("TimeoutInMillis", "timeoutInMillis"),
            ("Credentials", "credentials"),
            ("ContentHandling", "contentHandling"),
        ):
            if cfn in integration:
                i_args[boto] = integration[cfn]
        api.put_integration(**i_args)
        for response in integration.get("IntegrationResponses", []):
            r_args: dict[str, Any] = {**key, "statusCode": str(response["StatusCode"])}
            if "ResponseParameters" in response:
                r_args["responseParameters"] = response["ResponseParameters"]
            if "ResponseTemplates" in response:
                r_args["responseTemplates"] = response["ResponseTemplates"]
            api.put_integration_response(**r_args)
    for response in p.get("MethodResponses", []):
        mr: dict[str, Any] = {**key, "statusCode": str(response["StatusCode"])}
        if "ResponseParameters" in response:
            mr["responseParameters"] = {k: bool(v) for k, v in response["ResponseParameters"].items()}
        api.put_method_response(**mr)
    return Created(f"{p['RestApiId']}-{p['ResourceId']}-{p['HttpMethod']}")


@handles("AWS::ApiGateway::RequestValidator", "RestApiId", "Name", "ValidateRequestBody", "ValidateRequestParameters")
def _api_validator(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    out = m.client("apigateway").create_request_validator(
        restApiId=p["RestApiId"],
        name=p.get("Name") or ctx.logical_id,
        validateRequestBody=bool(p.get("ValidateRequestBody", False)),
        validateRequestParameters=bool(p.get("ValidateRequestParameters", False)),
    )
    return Created(
        out["id"],
        {"RequestValidatorId": out["id"]},
        detail={"note": "request validation is recorded, not enforced, locally"},
    )


@handles("AWS::ApiGateway::Deployment", "RestApiId", "Description", "StageName", "StageDescription")
def _api_deployment(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {"restApiId": p["RestApiId"]}
    if "Description" in p:
        args["description"] = p["Description"]
    if "StageName" in p:
        args["stageName"] = p["StageName"]
    out = m.client("apigateway").create_deployment(**args)
    return Created(out["id"], {"DeploymentId": out["id"]})


@handles(
    "AWS::ApiGateway::Stage",
    "RestApiId",
    "StageName",
    "DeploymentId",
    "Description",
    "Variables",
    "TracingEnabled",
    "MethodSettings",
    "AccessLogSetting",
    "Tags",
)
def _api_stage(m: Materializer, ctx: Context, p: dict[str, Any]) -> Created:
    args: dict[str, Any] = {"restApiId": p["RestApiId"], "stageName": p["StageName"], "deploymentId": p["DeploymentId"]}
    if "Description" in p:
        args["description"] = p["Description"]
    if "Variables" in p:
        args["variables"] = p["Variables"]
    if "TracingEnabled" in p:
        args["tracingEnabled"] = bool(p["TracingEnabled"])
    m.client("apigateway").create_stage(**args)
    return Created(p["StageName"])
