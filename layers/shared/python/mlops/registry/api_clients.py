"""The clients an upload-grant API function needs (dataset uploads, code uploads, imports, notebook
runs): the registry, a SigV4 S3 client for presigned URLs and the data bucket, made once per
execution environment on its first request -- never before the request's body has been parsed, so
a bad body is refused without touching AWS -- and safe to ask for from several threads at once
(the local cloud and the tests serve requests on threads).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from mlops.registry.versions import Registry
from mlops.settings import Platform


@dataclass(frozen=True)
class ApiClients:
    registry: Registry
    s3: Any  # SigV4: presigned URLs for a KMS-encrypted bucket must be SigV4
    bucket: str


class ApiClientsOnce:
    """``clients()``: this environment's clients, made on the first call (under a lock: all or nothing,
    once). A handler module holds one at module level, so each execution environment (and each fresh
    load of the module, as tests do) makes its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: ApiClients | None = None

    def __call__(self) -> ApiClients:
        with self._lock:
            if self._made is None:
                platform = Platform.from_env()
                self._made = ApiClients(
                    registry=Registry.for_platform(boto3.client("dynamodb"), platform),
                    s3=boto3.client("s3", config=Config(signature_version="s3v4")),
                    bucket=platform.data_bucket,
                )
            return self._made
