"""Intent of the approval and deployment pipeline as synthesized in the platform stack."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized


def _resources(template: dict, type_: str, prefix: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_ and k.startswith(prefix)}


def test_deployment_state_machine_logs_all_and_traces(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    machines = _resources(template, "AWS::StepFunctions::StateMachine", "DeploymentStateMachine")
    assert len(machines) == 1
    machine = next(iter(machines.values()))["Properties"]
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_approval_routes_are_iam_authorized_posts(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    paths = {
        k: r["Properties"]["PathPart"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }
    decisions = {k for k, part in paths.items() if part in ("approve", "reject")}
    assert len(decisions) == 2
    methods = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"].get("ResourceId", {}).get("Ref") in decisions
    ]
    assert len(methods) == 2
    assert {m["HttpMethod"] for m in methods} == {"POST"}
    assert {m["AuthorizationType"] for m in methods} == {"AWS_IAM"}


def test_canary_alarm_permissions_are_scoped_to_this_environment(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if "cloudwatch:PutMetricAlarm" in json.dumps(s.get("Action"))
    ]
    assert statements
    for statement in statements:
        assert "alarm:mlops-dev-canary-" in json.dumps(statement["Resource"])


def test_the_training_pipeline_hands_candidates_over(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "DefinitionSubstitutions": Match.object_like({"StartDeploymentFunctionArn": Match.any_value()}),
        },
    )
    parameters = synthesized.template("dev", "platform").find_resources("AWS::SSM::Parameter")
    assert "/mlops/dev/deployment-state-machine-arn" in {p["Properties"]["Name"] for p in parameters.values()}
