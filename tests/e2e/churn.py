"""The example churn spec as the end-to-end tests use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "specs" / "churn.yaml"
# One candidate, trained in a fraction of the example's time: the tests whose subject is not the
# search itself (the grid of four candidates is exercised by the training pipeline's happy path).
QUICK_TRAINING = {"max_iter": 40, "max_depth": 3}


def churn_spec(name: str, *, search: bool = False, **changes: Any) -> dict[str, Any]:
    """The example spec named ``name`` with top-level ``changes``; without ``search``, one quick candidate."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["name"] = name
    if not search:
        spec["training"].pop("search", None)
        spec["training"]["params"] = dict(QUICK_TRAINING)
    spec.update(changes)
    return dict(spec)
