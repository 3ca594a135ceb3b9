"""Synthetic reference and window data with drift injected in known columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.spec.model import ModelSpec, parse_spec

NUMERIC = ["normal", "lognormal", "counts", "shifted", "scaled", "tailed"]
CATEGORICAL = ["color", "swapped", "newcat"]
COLORS = ["red", "green", "blue", "black"]
COLOR_P = [0.5, 0.25, 0.15, 0.10]


def make_spec(**monitoring: Any) -> ModelSpec:
    features: list[dict[str, Any]] = [{"name": n, "type": "float", "nullable": True} for n in NUMERIC]
    features[2]["type"] = "int"
    features += [{"name": n, "type": "category", "nullable": True} for n in CATEGORICAL]
    return parse_spec(
        {
            "name": "synthetic",
            "task": "regression",
            "target": {"name": "y"},
            "features": features,
            "training": {"estimator": "sklearn.linear_model.Ridge"},
            "monitoring": monitoring,
        }
    )


def make_frame(rows: int, seed: int, drift: bool = False) -> pd.DataFrame:
    """Clean columns never drift; with ``drift`` the five named columns do, each in its own way."""
    rng = np.random.default_rng(seed)
    shifted = rng.normal(0, 1, rows) + (0.3 if drift else 0.0)  # location shift
    scaled = rng.normal(0, 1.5 if drift else 1.0, rows)  # scale change
    tailed = rng.normal(0, 1, rows)
    if drift:  # tail mixture: 5% of the values from far in the right tail
        tail = rng.random(rows) < 0.05
        tailed[tail] = rng.normal(6, 1, int(tail.sum()))
    swapped_p = [0.25, 0.5, 0.15, 0.10] if drift else COLOR_P  # category swap
    newcat = rng.choice(COLORS, rows, p=COLOR_P).astype(object)
    if drift:  # a new category in 5% of the rows
        newcat[rng.random(rows) < 0.05] = "purple"
    return pd.DataFrame(
        {
            "normal": rng.normal(10, 2, rows),
            "lognormal": rng.lognormal(3, 0.8, rows),
            "counts": rng.poisson(3, rows).astype(np.float64),
            "shifted": shifted,
            "scaled": scaled,
            "tailed": tailed,
            "color": rng.choice(COLORS, rows, p=COLOR_P),
            "swapped": rng.choice(COLORS, rows, p=swapped_p),
            "newcat": newcat,
            "y": rng.normal(0, 1, rows),
        }
    )


DRIFTED = {"shifted", "scaled", "tailed", "swapped", "newcat"}
CLEAN = {"normal", "lognormal", "counts", "color"}


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return make_spec()


@pytest.fixture(scope="session")
def reference_frame() -> pd.DataFrame:
    return make_frame(20_000, seed=1)
