"""Datasets enter only through the upload API (or the platform's retrain): the bucket policy's Deny,
and the upload route and function as synthesized."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from tests.infra.conftest import Synthesized

ACCOUNT = "123456789012"


def _resolve(value: Any, account: str) -> Any:
    """A template value with ``Fn::Join`` / ``Ref AWS::AccountId`` / ``AWS::Partition`` made concrete."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(_resolve(p, account)) for p in parts)
        if value.get("Ref") == "AWS::AccountId":
            return account
        if value.get("Ref") == "AWS::Partition":
            return "aws"
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            return "arn:aws:s3:::data-bucket"
        return {k: _resolve(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, account) for v in value]
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _denied(statements: list[dict[str, Any]], principal: str, action: str, key: str) -> bool:
    """Whether a Deny statement of the bucket policy matches ``principal`` doing ``action`` on ``key``."""
    for statement in statements:
        if statement["Effect"] != "Deny" or action not in _as_list(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(f"arn:aws:s3:::data-bucket/{key}", r) for r in _as_list(statement["Resource"])):
            continue
        condition = statement.get("Condition", {})
        if set(condition) - {"ArnNotLike", "Bool"}:
            raise AssertionError(f"unexpected condition operator in {statement}")
        if "Bool" in condition:
            continue  # the TLS-only statement: these requests use TLS
        patterns = _as_list(condition["ArnNotLike"]["aws:PrincipalArn"])
        if not any(fnmatch.fnmatchcase(principal, p) for p in patterns):
            return True
    return False


def _bucket_policy(synthesized: Synthesized, env: str) -> list[dict[str, Any]]:
    template = synthesized.template_json(env, "stateful")
    (policy,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and "Data" in json.dumps(r["Properties"]["Bucket"])
    ]
    return list(_resolve(policy["Properties"]["PolicyDocument"]["Statement"], ACCOUNT))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_dataset_writers_may_put_under_datasets(synthesized: Synthesized, env: str) -> None:
    statements = _bucket_policy(synthesized, env)
    role = f"arn:aws:iam::{ACCOUNT}:role"
    # THEN a person, an operator's role, another function's role or another environment's writer is denied
    for principal in [
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"{role}/Admin",
        f"{role}/mlops-{env}-platform-TrainingValidateRole",
        f"{role}/mlops-{'prod' if env == 'dev' else 'dev'}-upload-datasets",
        f"arn:aws:iam::999999999999:role/mlops-{env}-upload-datasets",
    ]:
        assert _denied(statements, principal, "s3:PutObject", "datasets/churn/train.csv"), principal
    # AND the upload API's role and the monitor's (retraining) are not
    for writer in ("upload", "retrain"):
        assert not _denied(statements, f"{role}/mlops-{env}-{writer}-datasets", "s3:PutObject", "datasets/churn/x.csv")
    # AND the Deny covers datasets/ only: reports and artifacts are left to identity policies
    assert not _denied(statements, f"arn:aws:iam::{ACCOUNT}:user/alice", "s3:PutObject", "reports/churn/x.json")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_roles_the_bucket_lets_write_datasets_are_exactly_the_roles_granted_it(
    synthesized: Synthesized, env: str
) -> None:
    # GIVEN the platform template's roles and the policies attached to them
    resources = synthesized.template_json(env, "platform")["Resources"]
    writers = set()
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _as_list(statement["Action"])
            puts = statement["Effect"] == "Allow" and any(a.startswith("s3:PutObject") for a in actions)
            if puts and "/datasets/*" in json.dumps(statement["Resource"]):
                writers.update(resources[r["Ref"]]["Properties"].get("RoleName") for r in policy["Properties"]["Roles"])
    # THEN every role granted PutObject on datasets/* has a fixed name the bucket policy lets through
    assert writers == {f"mlops-{env}-upload-datasets", f"mlops-{env}-retrain-datasets"}


def test_the_upload_route_is_iam_authorized_and_its_function_puts_datasets_only(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "platform")
    resources = template.to_json()["Resources"]
    (uploads,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"]["PathPart"] == "uploads"
    ]
    (method,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["ResourceId"] == {"Ref": uploads}
    ]
    assert method["Properties"]["HttpMethod"] == "POST" and method["Properties"]["AuthorizationType"] == "AWS_IAM"
    role = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == "mlops-dev-upload-datasets"
    )
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3_resources = [
        json.dumps(s["Resource"]) for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))
    ]
    assert s3_resources and all("/datasets/*" in r for r in s3_resources)
    assert not any(a.startswith("s3:Delete") or a == "s3:*" for s in statements for a in _as_list(s["Action"]))
