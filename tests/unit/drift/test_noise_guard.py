"""An effect-size method forced on a small window: a distance noise explains is not drift."""

from __future__ import annotations

import sys
from pathlib import Path

from mlops.drift import FeatureDrift, drift_report
from mlops.spec.model import load_spec

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

SPEC = load_spec(ROOT / "examples" / "specs" / "churn.yaml")


def _monthly(reference_seed: int, current_seed: int, *, drift: bool = False, rows: int = 400) -> FeatureDrift:
    reference = generate("churn", 2000, reference_seed)
    current = generate("churn", rows, current_seed, drift=drift)
    report = drift_report(reference, current, SPEC.model_copy(deep=True))
    return next(f for f in report.features if f.name == "monthly_charges")


def test_a_small_clean_window_at_the_threshold_is_not_drift() -> None:
    # GIVEN the example spec (monthly_charges judged by normalized Wasserstein, threshold 0.1) and
    # a 400-row window drawn like the training data whose distance still reaches the threshold
    feature = _monthly(7, 11)
    assert feature.method == "wasserstein" and (feature.statistic or 0.0) >= 0.1
    # THEN KS finds no difference, so it is not drift, and the note says why
    assert not feature.drifted and feature.status == "ok"
    assert feature.score < 1
    assert any("sampling noise" in note for note in feature.notes)


def test_a_small_shifted_window_is_still_drift() -> None:
    # GIVEN 400 rows with higher prices THEN the distance and the test agree: drifted
    feature = _monthly(7, 12, drift=True)
    assert feature.drifted and (feature.methods["ks"].p_value or 1.0) < 0.01


def test_large_windows_are_judged_by_the_distance_alone() -> None:
    # GIVEN 6,000 rows (above large_window_rows): the threshold decides, as documented
    feature = _monthly(7, 13, rows=6000, drift=True)
    assert feature.drifted and not any("sampling noise" in n for n in feature.notes)
