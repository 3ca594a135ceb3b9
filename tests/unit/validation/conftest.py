from __future__ import annotations

from pathlib import Path

import pytest

from mlops.spec.model import ModelSpec, load_spec, parse_spec

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def corpus_spec() -> ModelSpec:
    return load_spec(DATA / "validation_spec.yaml")


@pytest.fixture
def small_spec() -> ModelSpec:
    """A compact classification spec used by the frame-level tests."""
    return parse_spec(
        {
            "name": "churn",
            "task": "classification",
            "target": {"name": "churned", "classes": [0, 1]},
            "features": [
                {"name": "tenure", "type": "int", "min": 0, "max": 100},
                {"name": "spend", "type": "float", "min": 0, "nullable": True},
                {"name": "plan", "type": "category", "allowed": ["a", "b", "c"]},
                {"name": "code", "type": "string", "regex": "[A-Z]{2}\\d+", "unique": True},
            ],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        }
    )
