"""Suite-wide settings: offline, fake credentials, no real AWS reachable by accident."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Synthesizing the app costs seconds: keep every test that needs it on one xdist worker.
    for item in items:
        if "/tests/infra/" in str(item.fspath):
            item.add_marker(pytest.mark.xdist_group("synth"))
