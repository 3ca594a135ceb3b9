"""One function construct that carries every Lambda default, so no function drifts from the others."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import get_args

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops.contracts.names import service_name as platform_service_name
from stacks.config import EnvironmentConfig, FunctionKind
from stacks.nag import acknowledge, skip_checkov
from stacks.observability import NAMESPACE as METRICS_NAMESPACE

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


# Every function's settings, besides its own. The POWERTOOLS_* ones configure mlops.observability's
# logger, tracer and metrics (with POWERTOOLS_SERVICE_NAME, set per function below).
# PYDANTIC_DISABLE_PLUGINS: pydantic otherwise scans the entry points of every installed
# distribution (each layer's) when it builds its first model, on the cold start of every function;
# the platform uses no pydantic plugin. benchmarks/bench_inference.py runs its cold start under the
# same settings.
RUNTIME_ENVIRONMENT: dict[str, str] = {
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}


class MlopsFunction(Construct):
    """A Python Lambda from ``functions/<name>/handler.py`` with the platform's defaults.

    Defaults: Python 3.12, the configured architecture (arm64 unless configured otherwise), JSON
    logs into a log group with the environment's retention, X-Ray tracing, Powertools settings,
    and the shared layers. The log group and the environment variables are encrypted with the
    environment's customer-managed ``key``. Grants are made by the caller where the function is wired.

    ``kind`` says how the function is invoked, which sets two things: its reserved concurrency
    (``reserved_concurrency.<kind>`` in cdk.json; unset means the account's shared pool) and
    whether it needs a dead-letter queue: a ``trigger`` (invoked asynchronously by an event)
    must be given ``dead_letter_queue``; the other kinds are invoked synchronously (API Gateway,
    Step Functions tasks), so their caller receives every failure and a DLQ would stay empty.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        config: EnvironmentConfig,
        key: kms.IKey,
        kind: FunctionKind,
        layers: Sequence[lambda_.ILayerVersion],
        description: str,
        dead_letter_queue: sqs.IQueue | None = None,
        environment: Mapping[str, str] | None = None,
        memory_size: int = 512,
        timeout: Duration | None = None,
        ephemeral_storage_mib: int = 512,
        handler: str = "handler",
        service: str | None = None,
    ) -> None:
        # ``handler``: the function in ``functions/<name>/handler.py`` (one code asset may serve several
        # functions, one per state); ``service``: its Powertools service when not ``name``.
        super().__init__(scope, construct_id)
        source = FUNCTIONS_DIR / name
        if not (source / "handler.py").is_file():
            raise FileNotFoundError(f"{source}/handler.py does not exist")
        if kind not in get_args(FunctionKind):
            raise ValueError(f"function {name}: kind {kind!r} is not one of {get_args(FunctionKind)}")
        if (kind == "trigger") != (dead_letter_queue is not None):
            raise ValueError(
                f"function {name}: a trigger (asynchronously invoked) function needs a dead_letter_queue, "
                "and only a trigger has one"
            )
        reserved = getattr(config.reserved_concurrency, kind)
        # The ``service`` dimension of its metrics: one per environment, so alarms never mix two.
        self.service_name = service_name(config, service or name)
        removal = RemovalPolicy.DESTROY if config.is_dev else RemovalPolicy.RETAIN
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(config), removal_policy=removal, encryption_key=key
        )
        # An explicit role instead of AWSLambdaBasicExecutionRole: it may write to its own log group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"mlops {name} function ({config.name})",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            role=self.role,
            runtime=RUNTIME,
            architecture=ARCHITECTURES[config.lambda_architecture],
            handler=f"handler.{handler}",
            code=lambda_.Code.from_asset(str(source), exclude=["__pycache__", "*.pyc"]),
            layers=list(layers),
            description=description,
            memory_size=memory_size,
            timeout=timeout or Duration.seconds(60),
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mib),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            environment_encryption=key,
            dead_letter_queue=dead_letter_queue,
            reserved_concurrent_executions=reserved,
            environment={
                "POWERTOOLS_SERVICE_NAME": self.service_name,
                **RUNTIME_ENVIRONMENT,
                "MLOPS_ENVIRONMENT": config.name,
                "CODE_REVISION": code_revision(),
                **(environment or {}),
            },
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
        )
        skip_checkov(self.function, "CKV_AWS_117", NO_VPC_REASON, types=[FUNCTION_TYPE])
        if dead_letter_queue is None:
            skip_checkov(self.function, "CKV_AWS_116", SYNCHRONOUS_REASON, types=[FUNCTION_TYPE])
        if reserved is None:
            skip_checkov(
                self.function,
                "CKV_AWS_115",
                f"reserved_concurrency.{kind} is not set for this environment in cdk.json: the function "
                "draws on the account's unreserved pool. Reserving by default would fail deployment on "
                "accounts at the default concurrency quota (AWS keeps 100 unreserved).",
                types=[FUNCTION_TYPE],
            )


FUNCTION_TYPE = "AWS::Lambda::Function"
NO_VPC_REASON = (
    "The function reaches only AWS service endpoints (S3, DynamoDB, KMS, Step Functions) with IAM "
    "authorization and no resource inside a VPC; a VPC would add NAT gateway or endpoint costs and "
    "cold-start latency without protecting any private resource."
)
SYNCHRONOUS_REASON = (
    "Invoked only synchronously (API Gateway or a Step Functions task): the caller receives every "
    "failure and answers, retries or records it; a dead-letter queue receives only asynchronous invocations."
)


def service_name(config: EnvironmentConfig, name: str) -> str:
    """``mlops-<env>-<function>``: Powertools' service name, the default dimension of its metrics."""
    return platform_service_name(config.name, name)


@functools.cache
def code_revision() -> str:
    """The commit the functions are built from (recorded in every model version's lineage)."""
    if os.environ.get("MLOPS_CODE_REVISION"):
        return os.environ["MLOPS_CODE_REVISION"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH, fixed arguments
            cwd=FUNCTIONS_DIR.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def log_retention(config: EnvironmentConfig) -> logs.RetentionDays:
    """The environment's retention as CDK's enum (config already checked the value is valid)."""
    return logs.RetentionDays[_RETENTION[config.log_retention_days]]
