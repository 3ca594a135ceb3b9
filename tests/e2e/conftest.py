"""The local cloud for end-to-end tests: synthesized once, started once per session in a child process.

Fixtures
--------
local_cloud
    A running :class:`mlops_local.testing.LocalCloudProcess` of the freshly synthesized dev stage
    (``.endpoint_url``, ``.api_url``, ``.client(service)``, ``.fire(rule)``, ``.status()``).
aws
    ``aws("s3")`` returns a boto3 client pointed at the local cloud.
local_env
    Environment variables that point the SDK and the ``mlops`` CLI at the local cloud.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_local.testing import LocalCloudProcess, synthesize_once

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[LocalCloudProcess]:
    assembly = synthesize_once("dev", ROOT)
    cloud = LocalCloudProcess(assembly, "--no-schedules")
    cloud.start()
    try:
        yield cloud
        # MLOPS_INVOCATIONS=FILE: where the suite's Lambda time went (one JSON line per invocation)
        if os.environ.get("MLOPS_INVOCATIONS"):
            with open(os.environ["MLOPS_INVOCATIONS"], "a") as out:
                for invocation in cloud.status().get("invocations", []):
                    out.write(json.dumps(invocation) + "\n")
    finally:
        cloud.stop()


@pytest.fixture(scope="session")
def aws(local_cloud: LocalCloudProcess) -> Callable[[str], Any]:
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = local_cloud.client(service)
        return clients[service]

    return client


@pytest.fixture
def local_env(local_cloud: LocalCloudProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = local_cloud.environ()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
