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
    # AND its definition (an S3 asset) gets the function, the topic and the bucket of the shard lists
    assert set(machine["Properties"]["DefinitionSubstitutions"]) == {
        "MonitorFunctionArn",
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
    # THEN there are two holders (the monitor function and the deployment steps), both on the group only
    assert len(statements) == 2
    for statement in statements:
        assert "schedule/mlops-dev-monitoring/*" in json.dumps(statement["Resource"])
    passes = _statements(synthesized.template_json("dev", "platform"), "iam:PassRole")
    scheduler_passes = [s for s in passes if "SchedulerRole" in json.dumps(s["Resource"])]
    assert len(scheduler_passes) == 2
    for statement in scheduler_passes:
        assert "*" not in json.dumps(statement["Resource"])


def test_monitor_function_knows_its_schedules_training_and_topic(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "mlops-dev-monitor",
                        "MONITOR_SCHEDULE_GROUP": "mlops-dev-monitoring",
                        "MONITOR_STATE_MACHINE_ARN": Match.any_value(),
                        "MONITOR_SCHEDULER_ROLE_ARN": Match.any_value(),
                        "TRAINING_STATE_MACHINE_ARN": Match.any_value(),
                        "NOTIFICATIONS_TOPIC_ARN": Match.any_value(),
                    }
                )
            },
            "MemorySize": 3008,
        },
    )


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
