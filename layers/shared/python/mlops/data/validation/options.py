"""The validation knobs that are not part of the model spec, and the spec settings a report records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.spec.model import ModelSpec


class ValidationOptions(BaseModel):
    """Knobs that are not part of the model spec (defaults are the platform's policy).

    The per-model settings come from the spec, never from here: ``validation.duplicate_rows``
    (error, warning or off) and ``fairness.min_group_size`` (see :func:`settings_in_force`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_examples: int = Field(default=5, ge=0, le=1000)
    # Reference checks: shift of the mean in reference standard deviations, ratio of standard
    # deviations, absolute change of the missing rate, share of rows holding unseen categories.
    reference_severity: Literal["error", "warning"] = "error"
    max_mean_shift: float = Field(default=0.5, gt=0)
    std_ratio_bounds: tuple[float, float] = (0.5, 2.0)
    max_missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    max_new_category_fraction: float = Field(default=0.0, ge=0, le=1)


def settings_in_force(spec: ModelSpec) -> dict[str, Any]:
    """The spec's validation settings a report was made with (its ``settings`` block)."""
    fairness = spec.fairness
    return {
        "duplicate_rows": spec.validation.duplicate_rows,
        "fairness": {
            "mode": fairness.mode,
            "min_group_size": fairness.min_group_size,
            "min_disparate_impact": fairness.min_disparate_impact,
            "protected_attributes": list(fairness.protected_attributes),
        },
    }
