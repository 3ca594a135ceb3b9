"""Find a deployment's resources at run time, from what the deployment itself wrote.

The stacks write one SSM parameter per resource under ``/mlops/<environment>/``; the CLI and the
local cloud read them here. Nothing in the CLI hard-codes a resource name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from mlops.contracts.names import PARAMETER_PREFIX, PARAMETERS
from mlops.errors import ConfigError, NotFoundError

if TYPE_CHECKING:  # boto3 is imported by discover() only: Platform.from_env() runs on cold starts
    import boto3


def parameter_path(environment: str) -> str:
    return f"{PARAMETER_PREFIX}/{environment}/"


@dataclass(frozen=True)
class Platform:
    """Names and ARNs of one deployed environment (``None`` where not deployed yet)."""

    environment: str
    data_bucket: str
    registry_table: str
    audit_table: str
    kms_key_arn: str | None = None
    training_state_machine_arn: str | None = None
    deployment_state_machine_arn: str | None = None
    notifications_topic_arn: str | None = None
    api_url: str | None = None
    monitor_state_machine_arn: str | None = None
    # The audit trail's anchor outside the tables (mlops.registry.digest).
    audit_digest_bucket: str | None = None
    audit_signing_key_arn: str | None = None
    audit_digest_function: str | None = None
    batch_state_machine_arn: str | None = None

    @classmethod
    def from_parameters(cls, environment: str, values: dict[str, str]) -> Platform:
        known = {PARAMETERS[k]: v for k, v in values.items() if k in PARAMETERS}
        missing = [
            k
            for k, attr in PARAMETERS.items()
            if attr in ("data_bucket", "registry_table", "audit_table") and attr not in known
        ]
        if missing:
            raise NotFoundError(
                f"environment {environment!r} is not deployed here: SSM parameters "
                f"{', '.join(parameter_path(environment) + m for m in missing)} are missing"
            )
        return cls(environment=environment, **known)

    @classmethod
    def from_env(cls) -> Platform:
        """Inside a Lambda function: the stacks pass names as environment variables."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = os.environ.get(field.name.upper())
            if value:
                values[field.name] = value
        if "environment" not in values:
            values["environment"] = os.environ.get("MLOPS_ENVIRONMENT", "dev")
        for required in ("data_bucket", "registry_table", "audit_table"):
            if required not in values:
                raise ConfigError(f"environment variable {required.upper()} is not set")
        return cls(**values)


def discover(environment: str, session: boto3.session.Session | None = None) -> Platform:
    """Read ``/mlops/<environment>/*`` from SSM (endpoint per standard boto3 configuration)."""
    import boto3

    client = (session or boto3.session.Session()).client("ssm")
    values: dict[str, str] = {}
    for page in client.get_paginator("get_parameters_by_path").paginate(Path=parameter_path(environment)):
        for parameter in page["Parameters"]:
            values[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
    return Platform.from_parameters(environment, values)
