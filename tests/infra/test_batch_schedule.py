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
