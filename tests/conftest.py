"""Suite-wide settings: offline, fake credentials, no real AWS reachable by accident."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (its own hook names them)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Which tests share an xdist worker (``--dist loadgroup``).

    Synthesizing the app costs seconds: every test that needs it runs on one worker ("synth").
    An integration, conformance or end-to-end module without a group of its own keeps its tests
    on one worker (its module-scoped fixtures, a trained model or a started cloud, are then made
    once, not once per worker). Unit tests spread one by one.
    """
    for item in items:
        path = str(item.fspath)
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if "/tests/infra/" in path:
            item.add_marker(pytest.mark.xdist_group("synth"))
        elif any(f"/tests/{kind}/" in path for kind in ("integration", "conformance", "e2e")):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
