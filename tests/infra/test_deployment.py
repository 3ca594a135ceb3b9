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


# One function per Lambda state of the deployment machine: its handler, and what its role may do.
STATES = {
    "prepare": "PrepareFunctionArn",
    "skip_approval": "SkipApprovalFunctionArn",
    "expire_approval": "ExpireApprovalFunctionArn",
    "deploy": "DeployFunctionArn",
    "check_canary": "CheckCanaryFunctionArn",
    "finish_canary": "FinishCanaryFunctionArn",
    "record_failure": "RecordFailureFunctionArn",
    "notification_failed": "NotificationFailedFunctionArn",
}


def _state_functions(template: dict) -> dict[str, tuple[str, dict]]:
    """Handler name -> (logical id, properties) of the deployment state functions."""
    found = {}
    for key, resource in _resources(template, "AWS::Lambda::Function", "Deployment").items():
        props = resource["Properties"]
        if props["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "mlops-dev-deployment-steps":
            found[props["Handler"].removeprefix("handler.")] = (key, props)
    return found


def _role_actions(template: dict, props: dict) -> set[str]:
    role = props["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"].get("Roles", []):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                action = statement.get("Action", [])
                actions |= set(action if isinstance(action, list) else [action])
    return actions


def test_each_deployment_state_has_its_own_function(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    functions = _state_functions(template)
    # THEN one function per Lambda state, each with its own handler of the same code ...
    assert set(functions) == set(STATES)
    machine = next(iter(_resources(template, "AWS::StepFunctions::StateMachine", "DeploymentStateMachine").values()))
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    # ... and the state machine invokes each state's own function
    for handler, substitution in STATES.items():
        key, _ = functions[handler]
        assert substitutions[substitution] == {"Fn::GetAtt": [key, "Arn"]}, (handler, substitutions[substitution])
    assert "DeploymentStepsFunctionArn" not in substitutions


def test_each_deployment_state_may_do_only_what_it_does(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    actions = {handler: _role_actions(template, props) for handler, (_, props) in _state_functions(template).items()}
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    alarms = {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"}
    schedules = {"scheduler:CreateSchedule", "iam:PassRole"}
    # the plan reads the registry and the reports; it writes nothing
    assert "dynamodb:GetItem" in actions["prepare"] and any(a.startswith("s3:GetObject") for a in actions["prepare"])
    assert not actions["prepare"] & (writes | alarms | schedules)
    # the canary check reads its alarms, nothing else of the platform
    assert "cloudwatch:DescribeAlarms" in actions["check_canary"]
    assert not actions["check_canary"] & (writes | schedules | {"cloudwatch:PutMetricAlarm", "dynamodb:GetItem"})
    # the deploy creates the canary's alarms; the deploy and the finish set champions (schedules)
    assert {"cloudwatch:PutMetricAlarm", "dynamodb:PutItem"} | schedules <= actions["deploy"]
    assert "cloudwatch:DescribeAlarms" not in actions["deploy"]
    assert {"dynamodb:PutItem"} | schedules <= actions["finish_canary"]
    assert not actions["finish_canary"] & alarms
    # the approval and failure records write the registry and the audit trail only
    for handler in ("skip_approval", "expire_approval", "record_failure", "notification_failed"):
        assert "dynamodb:PutItem" in actions[handler], handler
        assert not actions[handler] & (alarms | schedules), handler
        assert not any(a.startswith("s3:") for a in actions[handler]), handler
