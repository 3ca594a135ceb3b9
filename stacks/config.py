"""Typed, frozen per-environment configuration read from cdk.json context.

``cdk.json`` holds ``mlops:environments`` (name -> settings). Every key is validated here, so a
bad or missing value fails synth with a message that names the key, before any construct exists.
Constructs receive this one object; environment differences never become ``if env == "prod"``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """cdk.json's ``mlops`` settings are invalid; ``cdk synth`` prints the message and exits 2."""

    exit_code = 2


CONTEXT_KEY = "mlops:environments"

# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# How a function is invoked (stacks/function.py): sets its reserved concurrency and whether it has a DLQ.
FunctionKind = Literal["inference", "api", "pipeline", "trigger"]


class ReservedConcurrency(BaseModel):
    """Reserved concurrency per function kind (each function of the kind reserves this many).

    ``null`` (the default) reserves nothing: the function shares the account's unreserved pool.
    Reserving guarantees capacity and caps it; AWS refuses a deployment that would leave fewer
    than 100 unreserved executions in the account (new accounts may have a quota of 10 in all).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    inference: int | None = Field(default=None, ge=1, le=1000)  # the inference function
    api: int | None = Field(default=None, ge=1, le=1000)  # catalog and approval API (2 functions)
    pipeline: int | None = Field(default=None, ge=1, le=1000)  # Step Functions tasks (10 functions)
    trigger: int | None = Field(default=None, ge=1, le=1000)  # the upload-event starter


class EnvironmentConfig(BaseModel):
    """Everything that differs between environments. Frozen: constructs cannot change it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,15}$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    removal_policy: Literal["destroy", "retain"] = "retain"
    log_retention_days: int = 365
    alarm_email: str | None = None
    api_auth: Literal["iam", "api_key"] = "iam"
    api_rate_limit: float = Field(default=100, gt=0)
    api_burst_limit: int = Field(default=200, gt=0)
    max_batch_size: int = Field(default=1000, ge=1, le=10000)
    # A request body's bytes; at most 5.5 MiB, so the proxy event around it stays within Lambda's
    # 6 MB synchronous payload limit.
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=5_767_168)
    capture_retention_days: int = Field(default=30, ge=1)
    # Batch scoring (stacks/batch.py): rows per batch (the ItemBatcher's MaxItemsPerBatch; a batch
    # also stays under Step Functions' 256 KiB) and batches scored at once (the Map's MaxConcurrency).
    batch_size: int = Field(default=500, ge=1, le=100_000)
    batch_max_concurrency: int = Field(default=10, ge=1, le=10_000)
    # The share of a job's batches whose rows are written to the model's captures (the monitoring
    # windows read them as they read captured requests); drawn per batch, seeded by job and batch.
    batch_capture_rate: float = Field(default=0.1, ge=0, le=1)
    noncurrent_version_days: int = Field(default=90, ge=1)
    lambda_architecture: Literal["arm64", "x86_64"] = "arm64"
    approval_four_eyes: bool = True
    reserved_concurrency: ReservedConcurrency = ReservedConcurrency()
    # Alarms (stacks/observability.py): the API's p99 latency, and 5xx answers per 5 minutes.
    alarm_latency_p99_ms: int = Field(default=1000, ge=1)
    alarm_server_errors: int = Field(default=5, ge=1)
    # The audit trail's signed digests (stacks/audit.py): how often, and how long S3 Object Lock
    # keeps each digest. COMPLIANCE: no one, not even the account root, can delete a digest or
    # shorten its retention before it ends; GOVERNANCE: principals with s3:BypassGovernanceRetention can.
    audit_digest_minutes: int = Field(default=15, ge=1, le=1440)
    audit_digest_retention_days: int = Field(default=365, ge=1, le=36500)
    audit_digest_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "COMPLIANCE"
    # ECR image URI for specs with training.backend: sagemaker (built from containers/sagemaker-training).
    # Principals (ARN patterns, fnmatch) who may upload training code (POST /models/{model}/code): the
    # code runs with the training role, so it is its own permission. Empty: nobody may.
    code_uploaders: list[str] = Field(default_factory=list)
    sagemaker_training_image: str | None = Field(
        default=None,
        pattern=r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _valid_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period (one of {LOG_RETENTION_DAYS})")
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @property
    def is_dev(self) -> bool:
        """Dev environments may be torn down: no deletion protection, resources destroyed."""
        return self.removal_policy == "destroy"

    @property
    def parameter_prefix(self) -> str:
        return f"/mlops/{self.name}"

    @property
    def stage_name(self) -> str:
        return f"mlops-{self.name}"


def load_environments(context: Any, *, only: str | None = None) -> list[EnvironmentConfig]:
    """Validate ``context[CONTEXT_KEY]``; raise :class:`ConfigError` naming the bad key.

    Parameters
    ----------
    context
        The value of the ``mlops:environments`` context key (a mapping name -> settings).
    only
        Return just this environment (``cdk synth -c mlops:env=dev``).
    """
    if not isinstance(context, dict) or not context:
        raise ConfigError(
            f"cdk.json context key {CONTEXT_KEY!r} is missing or empty: it must map environment names to their settings"
        )
    if only is not None and only not in context:
        raise ConfigError(
            f"context key mlops:env={only!r} names no environment in {CONTEXT_KEY} "
            f"(known: {', '.join(sorted(context))})"
        )
    configs = []
    for name, settings in context.items():
        if only is not None and name != only:
            continue
        where = f"{CONTEXT_KEY}.{name}"
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: must be a mapping of settings, got {type(settings).__name__}")
        try:
            configs.append(EnvironmentConfig.model_validate({"name": name, **settings}))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                key = ".".join(str(p) for p in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = "unknown setting"
                problems.append(f"{where}.{key}: {message} (got {error.get('input')!r})")
            raise ConfigError("invalid configuration in cdk.json:\n  " + "\n  ".join(problems)) from None
    return configs
