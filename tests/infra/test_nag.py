"""cdk-nag: the app has no unacknowledged finding; acknowledgements work and need a reason."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from stacks import nag


def _stack_with_unlogged_bucket(acknowledged: bool) -> cdk.App:
    app = cdk.App()
    stack = cdk.Stack(app, "NagProbe")
    bucket = s3.Bucket(
        stack,
        "Bucket",
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
    )
    if acknowledged:
        nag.acknowledge(bucket, "AwsSolutions-S1", "A probe bucket in a test; it never holds data.")
    nag.check(app)
    return app


def test_the_real_stage_fails_synth_on_a_new_finding(tmp_path) -> None:
    # GIVEN the dev stage exactly as app.py builds it (nag checks on), plus one careless bucket
    from stacks.config import load_environments
    from stacks.stage import MlopsStage
    from tests.infra.conftest import cdk_context

    context = cdk_context()
    config = load_environments(context["mlops:environments"], only="dev")[0]
    app = cdk.App(context=context, outdir=str(tmp_path))
    stage = MlopsStage(app, config=config)
    s3.Bucket(stage.stateful, "Careless")
    # WHEN synthesized  THEN the unacknowledged findings fail synth, naming the rule
    with pytest.raises(RuntimeError, match="AwsSolutions-S1"):
        app.synth()
    assert "AwsSolutions-S1" in (tmp_path / "validation-report.json").read_text()


def test_an_unacknowledged_finding_fails_synth() -> None:
    app = _stack_with_unlogged_bucket(acknowledged=False)
    with pytest.raises(RuntimeError, match="AwsSolutions-S1"):
        app.synth()


def test_an_acknowledged_finding_passes() -> None:
    app = _stack_with_unlogged_bucket(acknowledged=True)
    app.synth()  # does not raise


@pytest.mark.parametrize("reason", ["", "   ", "because"])
def test_acknowledgement_requires_a_reason(reason: str) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    with pytest.raises(nag.AcknowledgementError, match="needs a reason"):
        nag.acknowledge(stack, "AwsSolutions-S1", reason)


def test_wildcard_findings_refuse_star_actions() -> None:
    with pytest.raises(nag.LeastPrivilegeError, match="every action"):
        nag.wildcard_findings({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:x"}]}, "p")
    with pytest.raises(nag.LeastPrivilegeError, match="every resource"):
        nag.wildcard_findings({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, "p")
    findings = nag.wildcard_findings(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject*"],
                    "Resource": {"Fn::Join": ["", [{"Fn::ImportValue": "x:y"}, "/datasets/*"]]},
                }
            ]
        },
        "p",
    )
    assert findings == ["Action::s3:GetObject*", "Resource::x:y/datasets/*"]


def test_the_checks_only_read_the_stage() -> None:
    # GIVEN the dev stage as app.py builds it (its cross-stack exports made where the stacks are built)
    from stacks.config import load_environments
    from stacks.stage import MlopsStage
    from tests.infra.conftest import cdk_context

    context = cdk_context()
    config = load_environments(context["mlops:environments"], only="dev")[0]
    stage = MlopsStage(cdk.App(context=context), config=config)
    assert stage.imports, "the platform's policies read the stateful stack's resources"
    assert all(set(i) == {"Fn::ImportValue"} for i in stage.imports.values())
    paths = [c.node.path for c in stage.node.find_all()]
    # WHEN the IAM5 acknowledgements are worked out again  THEN not one construct (an export) is added
    nag.finalize(stage, stage.imports)
    assert [c.node.path for c in stage.node.find_all()] == paths
    # AND a cross-stack reference nobody exported is refused, never exported on the fly
    with pytest.raises(nag.LeastPrivilegeError, match="not exported"):
        nag.finalize(stage, {})
    assert [c.node.path for c in stage.node.find_all()] == paths
