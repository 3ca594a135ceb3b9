"""IAM scoping: PassRole only to the service that needs the role, SageMaker jobs per environment, key use by
AWS services only under their documented conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synthesized


def _statements(template: dict[str, Any], types: tuple[str, ...]) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and "AWS::IAM::Policy" in types:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::KMS::Key" and "AWS::KMS::Key" in types:
            found += resource["Properties"]["KeyPolicy"]["Statement"]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("env", ["dev", "prod", "keyed"])
def test_every_pass_role_names_the_service_it_passes_to(synthesized: Synthesized, env: str) -> None:
    passes = [
        s
        for s in _statements(synthesized.template_json(env, "platform"), ("AWS::IAM::Policy",))
        if "iam:PassRole" in _actions(s)
    ]
    # the training machine (SageMaker role), the monitor and the deployment steps (scheduler role)
    assert len(passes) >= 3
    services = set()
    for statement in passes:
        assert _actions(statement) == ["iam:PassRole"], statement
        service = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        assert service in ("sagemaker.amazonaws.com", "scheduler.amazonaws.com"), statement
        assert statement["Resource"] != "*"
        services.add(service)
    assert services == {"sagemaker.amazonaws.com", "scheduler.amazonaws.com"}


def test_training_jobs_are_scoped_to_the_environment(synthesized: Synthesized) -> None:
    for env in ("dev", "prod"):
        text = json.dumps(
            [
                s
                for s in _statements(synthesized.template_json(env, "platform"), ("AWS::IAM::Policy",))
                if "sagemaker:CreateTrainingJob" in _actions(s)
            ]
        )
        assert f"training-job/mlops-{env}-*" in text
        assert "training-job/mlops-*" not in text


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_key_policy_lets_services_use_the_key_only_under_their_conditions(synthesized: Synthesized, env: str) -> None:
    statements = _statements(synthesized.template_json(env, "stateful"), ("AWS::KMS::Key",))
    by_service = {}
    for statement in statements:
        service = statement.get("Principal", {}).get("Service")
        if service is not None:
            by_service[json.dumps(service)] = statement
    # CloudWatch Logs: this region's service, for this environment's log groups of this account only
    logs = by_service['"logs.us-east-1.amazonaws.com"']
    arn = json.dumps(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert f"log-group:mlops-{env}-*" in arn and "AWS::AccountId" in arn
    # CloudWatch alarms (to the encrypted topic): on behalf of this account only
    cloudwatch = by_service['"cloudwatch.amazonaws.com"']
    assert cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # no other service principal may use the key
    assert set(by_service) == {'"logs.us-east-1.amazonaws.com"', '"cloudwatch.amazonaws.com"'}


def test_every_platform_log_group_and_function_uses_the_customer_key(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(groups) >= 18 and len(functions) >= 14
    assert all("KmsKeyId" in g["Properties"] for g in groups)
    assert all("KmsKeyArn" in f["Properties"] for f in functions)
    # the asynchronously invoked functions (the two upload starters, the batch schedule, the scheduled
    # audit digest) send failed events to a queue
    with_dlq = sorted(f["Properties"]["Description"] for f in functions if "DeadLetterConfig" in f["Properties"])
    assert len(with_dlq) == 4
    assert "scheduled batch job" in with_dlq[0] and "batch job" in with_dlq[1]
    assert "training pipeline" in with_dlq[2] and "signed digest" in with_dlq[3]
