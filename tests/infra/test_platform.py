"""Intent of the platform stack: function defaults, pipeline wiring, API auth, discovery."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match

from mlops.contracts.names import PARAMETERS
from stacks import nag
from tests.infra.conftest import Synthesized


def _functions(synthesized: Synthesized, env: str = "dev") -> dict:
    return synthesized.template(env, "platform").find_resources("AWS::Lambda::Function")


def test_every_function_carries_the_defaults(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    assert len(functions) >= 3
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12", logical_id
        assert props["Architectures"] == ["arm64"], logical_id
        # functions/<name>/handler.py, one function of it per state (see test_training_pipeline)
        assert props["Handler"].startswith("handler."), logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        assert props["LoggingConfig"]["LogFormat"] == "JSON", logical_id
        assert props["Environment"]["Variables"]["MLOPS_ENVIRONMENT"] == "dev", logical_id
        assert "POWERTOOLS_SERVICE_NAME" in props["Environment"]["Variables"], logical_id
        # No pydantic plugin scan on any cold start (see stacks.function.RUNTIME_ENVIRONMENT).
        assert props["Environment"]["Variables"]["PYDANTIC_DISABLE_PLUGINS"] == "__all__", logical_id
        assert len(props["Layers"]) >= 2, logical_id


def test_log_groups_keep_the_configured_retention(synthesized: Synthesized) -> None:
    for env, days in (("dev", 14), ("prod", 365)):
        groups = synthesized.template(env, "platform").find_resources("AWS::Logs::LogGroup")
        assert groups
        assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {days}


def test_functions_use_no_managed_policies(synthesized: Synthesized) -> None:
    roles = synthesized.template("dev", "platform").find_resources(
        "AWS::IAM::Role",
        {
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})]
                }
            }
        },
    )
    assert roles
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_no_policy_grants_every_action_or_unscoped_resources(synthesized: Synthesized) -> None:
    for env in ("dev", "prod"):
        for stack in ("stateful", "platform"):
            policies = synthesized.template(env, stack).find_resources("AWS::IAM::Policy")
            for name, policy in policies.items():
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    assert "*" not in actions and not any(a.endswith(":*") for a in actions), name
                    if statement.get("Resource") == "*":
                        assert set(actions) <= nag.RESOURCE_STAR_ACTIONS, (name, actions)


def test_audit_table_is_append_only_for_every_function(synthesized: Synthesized) -> None:
    # GIVEN every policy in the platform stack
    template = synthesized.template_json("dev", "platform")
    audit_export = "ExportsOutputFnGetAttTablesAudit"
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    granted = writers = 0
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if audit_export in json.dumps(statement.get("Resource")):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                granted += 1
                # THEN no statement on the audit table allows changing or deleting an event
                forbidden = {
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PartiQLUpdate",
                    "dynamodb:PartiQLDelete",
                    "dynamodb:*",
                }
                assert not forbidden & set(actions), actions
                writers += "dynamodb:PutItem" in actions  # the digest function only reads
    assert granted >= 2 and writers >= 2


def test_validate_function_reads_only_datasets_and_writes_only_reports(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    validate_role = next(
        k
        for k in template["Resources"]
        if k.startswith("TrainingValidateRole") and template["Resources"][k]["Type"] == "AWS::IAM::Role"
    )
    policy = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": validate_role} in r["Properties"]["Roles"]
    )
    s3_statements = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("s3:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    ]
    text = json.dumps(s3_statements)
    assert "/datasets/*" in text and "/reports/*" in text
    for statement in s3_statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.startswith("s3:Put") for a in actions):
            assert "/reports/*" in json.dumps(statement["Resource"]) and "/datasets/" not in json.dumps(
                statement["Resource"]
            )
        assert "s3:DeleteObject*" not in actions


def _training_machine(template: dict) -> dict:
    return next(
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("TrainingStateMachine")
    )


def test_training_state_machine_logs_all_and_traces(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
            "TracingConfiguration": {"Enabled": True},
        },
    )
    machine = _training_machine(synthesized.template_json("dev", "platform"))
    # The ASL file ships as an asset; its ${Placeholders} are filled by DefinitionSubstitutions.
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert substitutions["ValidateFunctionArn"]["Fn::GetAtt"][0].startswith("TrainingValidateFunction")
    key = machine["Properties"]["DefinitionS3Location"]["Key"]
    asl = (synthesized.outdir / f"asset.{key}").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl))
    assert placeholders == set(substitutions)  # every placeholder is filled, none left dangling


def test_upload_rule_matches_dataset_prefix_of_the_data_bucket(synthesized: Synthesized) -> None:
    synthesized.template("dev", "platform").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                # datasets start a training run; imported models (docs/import-a-model.md) go through the same pipeline
                "detail": {
                    "bucket": {"name": [Match.any_value()]},
                    "object": {"key": [{"prefix": "datasets/"}, {"prefix": "imports/"}]},
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 21600},
                    }
                )
            ],
        },
    )


def test_api_methods_require_sigv4_by_default(synthesized: Synthesized) -> None:
    methods = synthesized.template("dev", "platform").find_resources("AWS::ApiGateway::Method")
    assert methods
    assert {m["Properties"]["AuthorizationType"] for m in methods.values()} == {"AWS_IAM"}
    synthesized.template("dev", "platform").has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100})]
            ),
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
        },
    )


def test_api_key_mode_requires_keys_and_a_usage_plan(synthesized: Synthesized) -> None:
    template = synthesized.template("keyed", "platform")
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert {m["Properties"]["ApiKeyRequired"] for m in methods.values()} == {True}
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 50, "BurstLimit": 100},
        },
    )


def test_discovery_parameters_cover_what_the_cli_reads(synthesized: Synthesized) -> None:
    parameters = synthesized.template("dev", "platform").find_resources("AWS::SSM::Parameter")
    names = {p["Properties"]["Name"] for p in parameters.values()}
    required = {"data-bucket", "registry-table", "audit-table"}
    assert {f"/mlops/dev/{leaf}" for leaf in required} <= names
    assert names <= {f"/mlops/dev/{leaf}" for leaf in PARAMETERS}


def _statements(template: dict, role_prefix: str) -> list[dict]:
    role = next(
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role" and k.startswith(role_prefix)
    )
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_sagemaker_backend_is_wired_with_narrow_permissions(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    machine = _training_machine(template)
    subs = machine["Properties"]["DefinitionSubstitutions"]
    assert subs["SageMakerRoleArn"]["Fn::GetAtt"][0].startswith("TrainingSageMakerTrainingRole")
    # the state machine may create and watch training jobs named mlops-dev-*, and pass only the training role
    statements = json.dumps(_statements(template, "TrainingStateMachineRole"))
    assert "sagemaker:CreateTrainingJob" in statements and "training-job/mlops-dev-*" in statements
    assert "iam:PassRole" in statements and "TrainingSageMakerTrainingRole" in statements
    assert "StepFunctionsGetEventsForSageMakerTrainingJobsRule" in statements
    # the training role reads and writes artifacts/ only; no image configured in dev: no ECR access
    role_statements = _statements(template, "TrainingSageMakerTrainingRole")
    assert "/datasets/" not in json.dumps(role_statements)
    assert "ecr:BatchGetImage" not in json.dumps(role_statements)


def test_a_configured_training_image_reaches_the_plan_and_the_role(synthesized: Synthesized) -> None:
    template = synthesized.template_json("keyed", "platform")
    train = next(
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("TrainingPlanTrainingFunction")
    )
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:1"
    assert train["Properties"]["Environment"]["Variables"]["SAGEMAKER_TRAINING_IMAGE"] == image
    role_statements = json.dumps(_statements(template, "TrainingSageMakerTrainingRole"))
    assert "ecr:BatchGetImage" in role_statements
    assert ":repository/mlops-train" in role_statements
