"""Intent of the monitoring pipeline as synthesized in the platform stack."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized


def _statements(template: dict, action: str) -> list[dict]:
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if action in json.dumps(s.get("Action"))
    ]


def test_monitor_state_machine_is_named_logged_traced_and_distributed(synthesized: Synthesized) -> None:
    # GIVEN the dev platform stack
    template = synthesized.template("dev", "platform")
    # THEN the machine has its fixed name (functions and schedules find it by ARN), full logs and tracing
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "mlops-dev-monitoring",
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
            "TracingConfiguration": {"Enabled": True},
        },
    )
    machine = next(
        r
        for r in synthesized.template_json("dev", "platform")["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
        and r["Properties"].get("StateMachineName") == "mlops-dev-monitoring"
    )
    # AND its definition (an S3 asset) gets one function per Lambda state, the topic and the bucket of
    # the shard lists
    assert set(machine["Properties"]["DefinitionSubstitutions"]) == {
        "PlanFunctionArn",
        "SketchFunctionArn",
        "AnalyzeFunctionArn",
        "RecordFailureFunctionArn",
        "NotificationsTopicArn",
        "DataBucket",
    }


def test_schedule_group_and_scheduler_role_start_only_the_monitor(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": "mlops-dev-monitoring"})
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "scheduler.amazonaws.com"}})]}
            )
        },
    )
    starts = _statements(synthesized.template_json("dev", "platform"), "states:StartExecution")
    monitor_starts = [s for s in starts if "stateMachine:mlops-dev-monitoring" in json.dumps(s["Resource"])]
    assert monitor_starts, "someone may start the monitor state machine"
    for statement in monitor_starts:
        assert "*" not in json.dumps(statement["Resource"]).replace("mlops-dev-monitoring:*", "")


def test_schedule_permissions_are_scoped_to_this_environments_group(synthesized: Synthesized) -> None:
    # GIVEN every statement that manages schedules
    statements = _statements(synthesized.template_json("dev", "platform"), "scheduler:CreateSchedule")
    # THEN there are three holders (the monitor function and the two deployment states that set a
    # champion: Deploy and FinishCanary), all on the group only
    assert len(statements) == 3
    for statement in statements:
        assert "schedule/mlops-dev-monitoring/*" in json.dumps(statement["Resource"])
    passes = _statements(synthesized.template_json("dev", "platform"), "iam:PassRole")
    scheduler_passes = [s for s in passes if "SchedulerRole" in json.dumps(s["Resource"])]
    assert len(scheduler_passes) == 3
    for statement in scheduler_passes:
        assert "*" not in json.dumps(statement["Resource"])


def test_monitor_functions_know_their_schedules_training_and_topic(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    # THEN Plan (which heals the model's schedule) knows where schedules go
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.plan",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "mlops-dev-monitor-plan",
                        "MONITOR_SCHEDULE_GROUP": "mlops-dev-monitoring",
                        "MONITOR_STATE_MACHINE_ARN": Match.any_value(),
                        "MONITOR_SCHEDULER_ROLE_ARN": Match.any_value(),
                    }
                )
            },
        },
    )
    # AND Analyze (the ``monitor`` service of the drift metrics) knows the training machine and the topic
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.analyze",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "mlops-dev-monitor",
                        "TRAINING_STATE_MACHINE_ARN": Match.any_value(),
                        "NOTIFICATIONS_TOPIC_ARN": Match.any_value(),
                    }
                )
            },
            "MemorySize": 3008,
        },
    )


def _role_actions(template: dict, service: str) -> set[str]:
    """Every action the policies attached to the role of the function with this service allow."""
    resources = template["Resources"]
    function = next(
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == service
    )
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for r in resources.values():
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"].get("Roles", []):
            for statement in r["Properties"]["PolicyDocument"]["Statement"]:
                listed = statement["Action"]
                actions.update(listed if isinstance(listed, list) else [listed])
    return actions


def test_each_monitor_state_has_only_its_own_permissions(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    plan, sketch = (
        _role_actions(template, "mlops-dev-monitor-plan"),
        _role_actions(template, "mlops-dev-monitor-sketch"),
    )
    analyze, failure = (
        _role_actions(template, "mlops-dev-monitor"),
        _role_actions(template, "mlops-dev-monitor-record-failure"),
    )
    # THEN only Plan manages schedules; only Analyze publishes, starts training and writes the registry
    # besides RecordFailure, which writes its run item and audit event and does nothing else
    assert "scheduler:CreateSchedule" in plan and "iam:PassRole" in plan
    assert not {"scheduler:CreateSchedule", "iam:PassRole"} & (sketch | analyze | failure)
    assert {"sns:Publish", "states:StartExecution"} <= analyze
    assert not {"sns:Publish", "states:StartExecution"} & (plan | sketch | failure)
    assert "dynamodb:PutItem" in analyze and "dynamodb:PutItem" in failure
    assert "dynamodb:PutItem" not in plan | sketch
    assert not any(a.startswith("s3:") for a in failure)


def test_deployment_steps_can_sync_schedules(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "mlops-dev-deployment-steps",
                        "MONITOR_SCHEDULE_GROUP": "mlops-dev-monitoring",
                    }
                )
            }
        },
    )


def test_monitor_state_machine_is_discoverable(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties("AWS::SSM::Parameter", {"Name": "/mlops/dev/monitor-state-machine-arn"})
