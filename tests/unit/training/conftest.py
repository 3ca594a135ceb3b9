"""Fixtures: the example specs and one training of each (shared: a training costs a second)."""

from __future__ import annotations

import pytest

from mlops.spec.model import ModelSpec
from mlops.training.fit import TrainResult, train
from tests.unit.training.helpers import example_frame, example_spec


@pytest.fixture(scope="session")
def churn_spec() -> ModelSpec:
    return example_spec("churn")


@pytest.fixture(scope="session")
def house_spec() -> ModelSpec:
    return example_spec("house-prices")


@pytest.fixture(scope="session")
def churn_trained(churn_spec: ModelSpec) -> TrainResult:
    return train(example_frame("churn"), churn_spec, code_revision="test-rev")


@pytest.fixture(scope="session")
def house_trained(house_spec: ModelSpec) -> TrainResult:
    return train(example_frame("house-prices"), house_spec, code_revision="test-rev")
