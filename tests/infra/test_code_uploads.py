"""Training code enters only through the code upload API: the bucket policy's Deny on code/, the
route (its own, IAM-authorized), its function's role, and the policy that grants the route alone."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synthesized
from tests.infra.test_dataset_uploads import ACCOUNT, _as_list, _bucket_policy, _denied


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_code_upload_role_may_put_under_code(synthesized: Synthesized, env: str) -> None:
    statements = _bucket_policy(synthesized, env)
    role = f"arn:aws:iam::{ACCOUNT}:role"
    # THEN a person, the dataset upload API's role, the training role and an admin are denied
    for principal in [
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"{role}/Admin",
        f"{role}/mlops-{env}-upload-datasets",
        f"{role}/mlops-{env}-platform-TrainingTrainRole",
    ]:
        assert _denied(statements, principal, "s3:PutObject", "code/credit/000001/x.zip"), principal
    # AND the code upload API's role is not; nor may it write datasets/
    assert not _denied(statements, f"{role}/mlops-{env}-code-upload", "s3:PutObject", "code/credit/000001/x.zip")
    assert _denied(statements, f"{role}/mlops-{env}-code-upload", "s3:PutObject", "datasets/credit/x.csv")


def test_the_code_route_is_its_own_iam_authorized_method_and_its_role_puts_code_only(
    synthesized: Synthesized,
) -> None:
    resources = synthesized.template("dev", "platform").to_json()["Resources"]
    (code,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource" and r["Properties"]["PathPart"] == "code"
    ]
    (method,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["ResourceId"] == {"Ref": code}
    ]
    assert method["Properties"]["HttpMethod"] == "POST" and method["Properties"]["AuthorizationType"] == "AWS_IAM"
    role = next(
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == "mlops-dev-code-upload"
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
    assert s3_resources and all("/code/*" in r for r in s3_resources)
    # AND the policy a platform engineer attaches grants invoking that route and nothing else
    (policy,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and "training code" in r["Properties"].get("Description", "")
    ]
    (grant,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert grant["Action"] == "execute-api:Invoke"
    assert json.dumps(grant["Resource"]).endswith('/*/POST/models/*/code"]]}')
