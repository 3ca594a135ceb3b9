"""Shared inputs of the monitoring unit tests: the example churn spec and generated windows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.spec.model import ModelSpec, load_spec

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return load_spec(ROOT / "examples" / "specs" / "churn.yaml")


def window(rows: int, seed: int, *, drift: bool = False) -> pd.DataFrame:
    return generate("churn", rows, seed, drift=drift)


def as_records(
    frame: pd.DataFrame, spec: ModelSpec, *, version: int = 1, at: str = "2026-11-22T10:00:00+00:00"
) -> list[dict[str, Any]]:
    """Capture records as serving writes them (input, prediction, version)."""
    records = []
    for index, row in enumerate(frame[spec.feature_names].to_dict(orient="records")):
        clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        records.append(
            {
                "request_id": f"r-{index}",
                "at": at,
                "model": spec.name,
                "version": version,
                "role": "champion",
                "index": 0,
                "input": clean,
                "prediction": int(frame[spec.target.name].iloc[index]),
            }
        )
    return records
