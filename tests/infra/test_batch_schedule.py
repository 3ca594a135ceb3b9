"""The batch schedule: one rule every 15 minutes, whose function may only start and describe batch jobs."""

from __future__ import annotations

import json

from tests.infra.conftest import Synthesized


def test_one_rule_every_fifteen_minutes_starts_due_batch_jobs(synthesized: Synthesized) -> None:
    resources = synthesized.template_json("dev", "platform")["Resources"]
    rules = {k: r for k, r in resources.items() if r["Type"] == "AWS::Events::Rule" and "BatchSchedule" in k}
    (rule,) = rules.values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    (target,) = rule["Properties"]["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    assert "ScheduleStarter" in function_id and "DeadLetterConfig" in target
    function = resources[function_id]["Properties"]
    assert function["Environment"]["Variables"]["BATCH_STATE_MACHINE_ARN"]
    role = function["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "states:StartExecution" in actions and "states:DescribeExecution" in actions
    assert not {a for a in actions if a.startswith(("s3:Put", "s3:Delete", "dynamodb:Put", "scheduler:"))}
    start = next(s for s in statements if "states:StartExecution" in json.dumps(s["Action"]))
    assert json.dumps(start["Resource"]).count("BatchStateMachine") == 1  # the batch machine only


def test_batch_start_is_its_own_iam_route_whose_function_may_only_start_batch_jobs(synthesized: Synthesized) -> None:
    resources = synthesized.template_json("dev", "platform")["Resources"]
    # GIVEN the API resource /models/{model}/batch-jobs
    (route,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"]["PathPart"] == "batch-jobs"
    ]
    (method,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["ResourceId"] == {"Ref": route}
    ]
    # THEN it is a POST behind IAM (its own execute-api ARN: .../POST/models/*/batch-jobs)
    assert (method["HttpMethod"], method["AuthorizationType"]) == ("POST", "AWS_IAM")
    # AND its function is the batch API's, whose role may start and describe batch jobs and read
    # batch/* (the inputs' VersionIds), nothing else: no registry, no writes, no other machine
    function_id = json.dumps(method["Integration"]["Uri"]).split('"Fn::GetAtt": ["', 1)[1].split('"', 1)[0]
    function = resources[function_id]["Properties"]
    assert "BatchApiFunction" in function_id and function["Environment"]["Variables"]["BATCH_STATE_MACHINE_ARN"]
    role = function["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"states:StartExecution", "states:DescribeExecution"} <= actions
    assert not {a for a in actions if a.startswith(("s3:Put", "s3:Delete", "dynamodb:", "states:Redrive"))}, actions
    start = next(s for s in statements if "states:StartExecution" in json.dumps(s["Action"]))
    assert json.dumps(start["Resource"]).count("BatchStateMachine") == 1  # the batch machine only
    s3_resources = [json.dumps(s["Resource"]) for s in statements if "s3:" in json.dumps(s["Action"])]
    assert s3_resources and all("/batch/*" in r for r in s3_resources), s3_resources
