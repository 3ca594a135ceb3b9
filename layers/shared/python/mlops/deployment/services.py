"""The clients and names the deployment functions use, made once per execution environment."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import boto3

from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.storage import read_uri


@dataclass(frozen=True)
class DeploymentServices:
    """The clients and names the deployment steps use (from the function's environment by default).

    A handler builds one per execution environment (:meth:`from_env`, cached), never one per
    invocation; tests pass in-memory fakes instead.
    """

    platform: Platform
    registry: Registry
    s3: Any = None
    sfn: Any = None
    sns: Any = None
    cloudwatch: Any = None
    four_eyes: bool = True

    @classmethod
    def from_env(cls) -> DeploymentServices:
        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(
            platform=platform,
            registry=registry,
            s3=boto3.client("s3"),
            sfn=boto3.client("stepfunctions"),
            sns=boto3.client("sns"),
            cloudwatch=boto3.client("cloudwatch"),
            four_eyes=os.environ.get("APPROVAL_FOUR_EYES", "true").lower() != "false",
        )

    def read_json(self, uri: str) -> Any:
        return json.loads(read_uri(self.s3, uri))
