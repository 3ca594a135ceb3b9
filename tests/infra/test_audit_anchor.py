"""The audit anchor outside the tables: Object Lock bucket, asymmetric signing key, the one digest writer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized

SIGN_OR_WRITE = {"kms:Sign", "s3:PutObject", "s3:*", "kms:*", "s3:Put*", "s3:PutObject*"}


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("env", "mode", "days"), [("dev", "GOVERNANCE", 1), ("prod", "COMPLIANCE", 365)])
def test_digest_bucket_is_locked_versioned_private_encrypted_and_logged(
    synthesized: Synthesized, env: str, mode: str, days: int
) -> None:
    synthesized.template(env, "stateful").has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "ObjectLockEnabled": True,
                    "ObjectLockConfiguration": {
                        "ObjectLockEnabled": "Enabled",
                        "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": Match.any_value(),
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LoggingConfiguration": Match.object_like({"LogFilePrefix": "audit-digests/"}),
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_signing_key_is_asymmetric_and_its_policy_lets_only_the_digest_role_sign(
    synthesized: Synthesized, env: str
) -> None:
    keys = _resources(synthesized.template_json(env, "stateful"), "AWS::KMS::Key")
    (key,) = [k for k in keys.values() if k["Properties"].get("KeyUsage") == "SIGN_VERIFY"]
    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    (deny,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "kms:Sign" and deny["Principal"] == {"AWS": "*"}
    assert f":role/mlops-{env}-audit-digest" in json.dumps(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_digest_bucket_policy_denies_puts_by_anyone_but_the_digest_role(synthesized: Synthesized, env: str) -> None:
    template = synthesized.template_json(env, "stateful")
    (bucket_id,) = [
        k for k, r in _resources(template, "AWS::S3::Bucket").items() if "ObjectLockEnabled" in r["Properties"]
    ]
    (policy,) = [
        p
        for p in _resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyTheDigestFunctionWrites"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:PutObject"
    assert f":role/mlops-{env}-audit-digest" in json.dumps(deny["Condition"])


@pytest.mark.parametrize("env", ["dev", "prod", "keyed"])
def test_only_the_digest_function_may_sign_or_write_digests(synthesized: Synthesized, env: str) -> None:
    # GIVEN every identity policy of both stacks
    holders = []
    roles = {}
    for stack in ("stateful", "platform"):
        template = synthesized.template_json(env, stack)
        roles.update(_resources(template, "AWS::IAM::Role"))
        for name, policy in _resources(template, "AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                resources = json.dumps(statement.get("Resource"))
                actions = set(_list(statement["Action"]))
                # THEN a statement that may sign or put objects on the anchor's key or bucket...
                if ("AuditAnchorSigningKey" in resources or "AuditAnchorDigests" in resources) and (
                    actions & SIGN_OR_WRITE
                ):
                    holders.append((name, sorted(actions & SIGN_OR_WRITE)))
                # (and no statement grants those actions on every resource)
                if statement.get("Resource") == "*":
                    assert not actions & SIGN_OR_WRITE, (name, actions)
    # ...belongs to the digest function's policy, which holds exactly kms:Sign and s3:PutObject
    assert sorted(holders) == [
        ("AuditDigestsFunctionRoleDefaultPolicy996E15AA", ["kms:Sign"]),
        ("AuditDigestsFunctionRoleDefaultPolicy996E15AA", ["s3:PutObject"]),
    ]
    (role,) = [r for k, r in roles.items() if k.startswith("AuditDigestsFunctionRole")]
    assert role["Properties"]["RoleName"] == f"mlops-{env}-audit-digest"


def test_digest_function_reads_the_tables_only_and_runs_on_its_schedule(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    policy = template["Resources"]["AuditDigestsFunctionRoleDefaultPolicy996E15AA"]
    table_actions = {
        action
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Tables" in json.dumps(s["Resource"])
        for action in _list(s["Action"])
    }
    assert table_actions and all(a.startswith("dynamodb:") for a in table_actions)
    assert (
        not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
        & table_actions
    )
    synthesized.template("dev", "platform").has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(15 minutes)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [Match.string_like_regexp("^AuditDigestsFunction"), "Arn"]},
                        "DeadLetterConfig": Match.any_value(),
                    }
                )
            ],
        },
    )
