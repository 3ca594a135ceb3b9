"""Every documented cdk.json setting reaches what uses it: a function's environment or a resource's property.

One environment, ``custom``, sets every setting to a value no shipped environment (and no default)
has; one synthesis (module-scoped: ~15 s) serves every row of :data:`CASES`. A setting documented in
the README's configuration table without a row here, or a field of ``EnvironmentConfig`` the table
does not document, fails :func:`test_every_documented_setting_has_a_case`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import app as cdk_app
from stacks.config import EnvironmentConfig
from stacks.stage import MlopsStage
from tests.infra.conftest import cdk_context

ROOT = Path(__file__).resolve().parents[2]
ENV = "custom"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-train:7"

# Not one of these is the default (nor, where a setting has more than two values, dev's or prod's).
SETTINGS: dict[str, Any] = {
    "account": "210987654321",
    "region": "eu-west-1",
    "removal_policy": "destroy",  # the default retains
    "log_retention_days": 7,
    "alarm_email": "oncall@example.org",
    "api_auth": "api_key",
    "api_rate_limit": 12,
    "api_burst_limit": 34,
    "max_batch_size": 250,
    "max_request_bytes": 1024 * 1024,
    "capture_retention_days": 11,
    "batch_size": 123,
    "batch_max_concurrency": 17,
    "batch_capture_rate": 0.37,
    "noncurrent_version_days": 22,
    "lambda_architecture": "x86_64",
    "approval_four_eyes": False,
    "reserved_concurrency": {"inference": 7, "api": 3, "pipeline": 2, "trigger": 1},
    "alarm_latency_p99_ms": 777,
    "alarm_server_errors": 9,
    "audit_digest_minutes": 30,
    "audit_digest_retention_days": 3,
    "audit_digest_lock_mode": "GOVERNANCE",
    "sagemaker_training_image": IMAGE,
    "code_uploaders": ["arn:aws:iam::210987654321:role/ml-*"],
}


@dataclass(frozen=True)
class Synth:
    stage: MlopsStage
    platform: dict[str, Any]
    stateful: dict[str, Any]

    def resources(self, kind: str, stack: str = "platform") -> dict[str, dict[str, Any]]:
        template = self.platform if stack == "platform" else self.stateful
        return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}

    def functions(self) -> dict[str, dict[str, Any]]:
        """Each platform function's properties by logical id."""
        return {k: r["Properties"] for k, r in self.resources("AWS::Lambda::Function").items()}

    def service(self, name: str) -> dict[str, dict[str, Any]]:
        """The functions of one service (``mlops-custom-<name>``; one code asset may serve several states)."""
        wanted = f"mlops-{ENV}-{name}"
        found = {
            k: f
            for k, f in self.functions().items()
            if f["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == wanted
        }
        assert found, f"no function {wanted}"
        return found

    def env(self, name: str, variable: str, *, without: str | None = None) -> set[Any]:
        """``variable`` in the environment of each function of service ``name`` (``without``: leave out
        the functions whose logical id contains it)."""
        return {
            f["Environment"]["Variables"].get(variable)
            for k, f in self.service(name).items()
            if without is None or without not in k
        }


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = cdk_context()
    context["mlops:environments"] = {ENV: SETTINGS}
    application = cdk.App(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    (stage,) = cdk_app.build(application)
    assembly = application.synth()
    platform = assembly.get_stack_artifact(stage.platform.artifact_id).template
    stateful = assembly.get_stack_artifact(stage.stateful.artifact_id).template
    return Synth(stage=stage, platform=platform, stateful=stateful)


def _log_retention(s: Synth) -> set[Any]:
    groups = s.resources("AWS::Logs::LogGroup")
    return {
        groups[f["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]["RetentionInDays"] for f in s.functions().values()
    }


def _reserved(s: Synth) -> dict[str, Any]:
    return {
        name: {f.get("ReservedConcurrentExecutions") for f in s.service(name).values()}
        for name in ("inference", "dataset-upload", "deployment-steps", "start-pipeline")
    }


def _data_bucket_rule(s: Synth, rule_id: str) -> dict[str, Any]:
    """A lifecycle rule of the data bucket (stacks/stateful.py names them)."""
    buckets = s.resources("AWS::S3::Bucket", "stateful").values()
    rules = [r for b in buckets for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])]
    [rule] = [r for r in rules if r.get("Id") == rule_id]
    return rule


def _alarm(s: Synth, short: str) -> Any:
    for alarm in s.resources("AWS::CloudWatch::Alarm").values():
        if alarm["Properties"].get("AlarmName") == f"mlops-{ENV}-{short}":
            return alarm["Properties"]["Threshold"]
    raise AssertionError(f"no alarm mlops-{ENV}-{short}")


def _methods(s: Synth) -> set[tuple[Any, Any]]:
    return {
        (m["Properties"]["AuthorizationType"], m["Properties"].get("ApiKeyRequired", False))
        for m in s.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] != "OPTIONS"
    }


def _stage_throttling(s: Synth) -> set[tuple[Any, Any]]:
    return {
        (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"])
        for stage in s.resources("AWS::ApiGateway::Stage").values()
        for setting in stage["Properties"].get("MethodSettings", [])
    }


def _digest_schedule(s: Synth) -> set[Any]:
    [digest] = s.service("audit-digest")
    return {
        rule["Properties"]["ScheduleExpression"]
        for rule in s.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [digest, "Arn"]} for t in rule["Properties"].get("Targets", []))
    }


def _digest_lock(s: Synth) -> list[Any]:
    return [
        b["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
        for b in s.resources("AWS::S3::Bucket", "stateful").values()
        if "ObjectLockConfiguration" in b["Properties"]
    ]


def _image_holders(s: Synth) -> dict[str, str]:
    """The services whose functions are given a training image, and the image."""
    return {
        f["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: f["Environment"]["Variables"][
            "SAGEMAKER_TRAINING_IMAGE"
        ]
        for f in s.functions().values()
        if "SAGEMAKER_TRAINING_IMAGE" in f["Environment"]["Variables"]
    }


@dataclass(frozen=True)
class Case:
    settings: tuple[str, ...]
    where: str  # what uses it, for the failure message
    find: Callable[[Synth], Any]
    expected: Any


CASES = [
    Case(
        ("account", "region"),
        "both stacks' environment",
        lambda s: (s.stage.platform.account, s.stage.stateful.region),
        ("210987654321", "eu-west-1"),
    ),
    Case(
        ("removal_policy",),
        "the registry tables' deletion policy",
        lambda s: {t["DeletionPolicy"] for t in s.resources("AWS::DynamoDB::Table", "stateful").values()},
        {"Delete"},
    ),
    Case(("log_retention_days",), "every function's log group", _log_retention, {7}),
    Case(
        ("alarm_email",),
        "the notifications topic's subscription",
        lambda s: {sub["Properties"]["Endpoint"] for sub in s.resources("AWS::SNS::Subscription").values()},
        {"oncall@example.org"},
    ),
    Case(("api_auth",), "every API method", _methods, {("NONE", True)}),
    Case(("api_rate_limit", "api_burst_limit"), "the API stage's throttling", _stage_throttling, {(12, 34)}),
    # The request limits are checked by the inference function; the fallback it calls (same service, for
    # the alarms) gets records already checked, and has no such setting.
    Case(
        ("max_batch_size",),
        "inference: MAX_BATCH_SIZE",
        lambda s: s.env("inference", "MAX_BATCH_SIZE", without="Fallback"),
        {"250"},
    ),
    Case(("batch_size",), "batch Start: BATCH_SIZE", lambda s: s.env("batch-start", "BATCH_SIZE"), {"123"}),
    Case(
        ("batch_max_concurrency",),
        "batch Start: BATCH_MAX_CONCURRENCY",
        lambda s: s.env("batch-start", "BATCH_MAX_CONCURRENCY"),
        {"17"},
    ),
    Case(
        ("batch_capture_rate",),
        "batch Start: CAPTURE_SAMPLE_RATE",
        lambda s: s.env("batch-start", "CAPTURE_SAMPLE_RATE"),
        {"0.37"},
    ),
    Case(
        ("max_request_bytes",),
        "inference: MAX_BODY_BYTES",
        lambda s: s.env("inference", "MAX_BODY_BYTES", without="Fallback"),
        {str(1024 * 1024)},
    ),
    Case(
        ("capture_retention_days",),
        "the data bucket's capture expiry",
        lambda s: _data_bucket_rule(s, "expire-inference-captures")["ExpirationInDays"],
        11,
    ),
    Case(
        ("noncurrent_version_days",),
        "the data bucket's noncurrent versions",
        lambda s: _data_bucket_rule(s, "expire-noncurrent-versions")["NoncurrentVersionExpiration"]["NoncurrentDays"],
        22,
    ),
    Case(
        ("lambda_architecture",),
        "every function",
        lambda s: {tuple(f["Architectures"]) for f in s.functions().values()},
        {("x86_64",)},
    ),
    Case(
        ("approval_four_eyes",),
        "deployment_steps and approval_api: APPROVAL_FOUR_EYES",
        lambda s: s.env("deployment-steps", "APPROVAL_FOUR_EYES") | s.env("approval-api", "APPROVAL_FOUR_EYES"),
        {"false"},
    ),
    Case(
        ("reserved_concurrency",),
        "one function of each kind",
        _reserved,
        {"inference": {7}, "dataset-upload": {3}, "deployment-steps": {2}, "start-pipeline": {1}},
    ),
    Case(
        ("alarm_latency_p99_ms", "alarm_server_errors"),
        "the API alarms' thresholds",
        lambda s: (_alarm(s, "inference-latency"), _alarm(s, "inference-5xx")),
        (777, 9),
    ),
    Case(("audit_digest_minutes",), "the audit digest function's schedule", _digest_schedule, {"rate(30 minutes)"}),
    Case(
        ("audit_digest_retention_days", "audit_digest_lock_mode"),
        "the digest bucket's Object Lock",
        _digest_lock,
        [{"Days": 3, "Mode": "GOVERNANCE"}],
    ),
    Case(
        ("code_uploaders",),
        "code_upload: CODE_UPLOADERS",
        lambda s: s.env("code-upload", "CODE_UPLOADERS"),
        {'["arn:aws:iam::210987654321:role/ml-*"]'},
    ),
    Case(
        ("sagemaker_training_image",),
        "the training planner: SAGEMAKER_TRAINING_IMAGE",
        _image_holders,
        {f"mlops-{ENV}-plan-training": IMAGE},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[",".join(c.settings) for c in CASES])
def test_a_setting_reaches_what_uses_it(synth: Synth, case: Case) -> None:
    # GIVEN every setting at a value no shipped environment has; THEN each is found where it is used
    assert case.find(synth) == case.expected, case.where


def _documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}


def test_every_documented_setting_has_a_case() -> None:
    documented = _documented()
    fields = set(EnvironmentConfig.model_fields) - {"name"}  # the name is the cdk.json key itself
    assert documented == fields, "the README's configuration table and EnvironmentConfig disagree"
    assert {name for case in CASES for name in case.settings} == documented
    assert set(SETTINGS) == documented
    for name, value in SETTINGS.items():
        default = EnvironmentConfig.model_fields[name].get_default(call_default_factory=True)
        assert value != (default.model_dump() if hasattr(default, "model_dump") else default), name
