"""The registry on the in-memory fake; integration tests run the same tests on moto."""

from __future__ import annotations

import pytest

from mlops.registry.versions import Registry


@pytest.fixture
def registry() -> Registry:
    return Registry.in_memory()
