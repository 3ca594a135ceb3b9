"""Model imports as synthesized: their own IAM-authorized route, a function that may put imports/ only,
and the upload rule that starts a run for an object under imports/ too."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_import_route_is_its_own_iam_authorized_method_and_its_function_puts_imports_only(
    synthesized: Synthesized,
) -> None:
    resources = synthesized.template_json("dev", "platform")["Resources"]
    # GIVEN the API resource /models/{model}/imports
    (imports,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"]["PathPart"] == "imports"
    ]
    (method,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["ResourceId"] == {"Ref": imports}
    ]
    # THEN it is a POST behind IAM (its own execute-api resource ARN: .../POST/models/*/imports)
    assert method["Properties"]["HttpMethod"] == "POST" and method["Properties"]["AuthorizationType"] == "AWS_IAM"
    # AND the function it calls may put objects under imports/ and nowhere else
    (function,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and str(r["Properties"].get("Description", "")).startswith("Model import API")
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3_resources = [
        json.dumps(s["Resource"]) for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))
    ]
    assert s3_resources and all("/imports/*" in r for r in s3_resources), s3_resources
    assert not any(a.startswith("s3:Delete") or a == "s3:*" for s in statements for a in _as_list(s["Action"]))


def test_an_object_under_imports_raises_the_rule_that_starts_the_pipeline(synthesized: Synthesized) -> None:
    resources = synthesized.template_json("dev", "platform")["Resources"]
    patterns = [
        r["Properties"]["EventPattern"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule" and "Object Created" in json.dumps(r["Properties"].get("EventPattern", {}))
    ]
    keys = [p["detail"]["object"]["key"] for p in patterns if "object" in p.get("detail", {})]
    assert [{"prefix": "datasets/"}, {"prefix": "imports/"}] in keys, keys


def test_notebook_runs_are_their_own_iam_authorized_route_on_the_import_function(synthesized: Synthesized) -> None:
    resources = synthesized.template_json("dev", "platform")["Resources"]
    # GIVEN the API resources /models/{model}/runs and /models/{model}/imports
    methods = {}
    for part in ("runs", "imports"):
        (resource,) = [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"]["PathPart"] == part
        ]
        (methods[part],) = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["ResourceId"] == {"Ref": resource}
        ]
    # THEN recording a run is a POST behind IAM (its own execute-api ARN: .../POST/models/*/runs)
    runs = methods["runs"]["Properties"]
    assert runs["HttpMethod"] == "POST" and runs["AuthorizationType"] == "AWS_IAM"
    # AND it is answered by the import API's function: a run needs exactly its grants (registry write,
    # put imports/* for the presigned PUT of a logged model), so no role of its own would be narrower
    assert runs["Integration"]["Uri"] == methods["imports"]["Properties"]["Integration"]["Uri"]
