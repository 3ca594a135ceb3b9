"""Helpers: the example specs and their generated data, and spec variants."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.spec.model import ModelSpec, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SEEDS = {"churn": 7, "house-prices": 11}


def _load_generate() -> Callable[..., pd.DataFrame]:
    # examples/ is not a package: load the script as a module
    module_spec = importlib.util.spec_from_file_location("example_generate", EXAMPLES / "generate.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.generate  # type: ignore[no-any-return]


generate = _load_generate()


def example_spec(model: str) -> ModelSpec:
    return load_spec(EXAMPLES / "specs" / f"{model}.yaml")


def example_frame(model: str, rows: int = 2000) -> pd.DataFrame:
    return generate(model, rows=rows, seed=SEEDS[model])


def spec_with(base: ModelSpec, **changes: Any) -> ModelSpec:
    """A copy of a spec with top-level sections replaced or merged (dicts merge one level deep)."""
    document = base.model_dump(mode="json")
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return parse_spec(document)
