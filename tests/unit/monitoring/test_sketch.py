"""Shard sketches merge to the single-pass result: counts exactly, distributions within tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.data.profile import profile_frame
from mlops.drift import drift_report
from mlops.monitoring.captures import records_frame
from mlops.monitoring.sketch import CategoricalSketch, NumericSketch, WindowSketch, sketch_records
from mlops.spec.model import ModelSpec
from tests.unit.monitoring.conftest import as_records, window

# Stated tolerance of the distributed path against reading every record in one function, for
# windows larger than the sample capacity: per feature, the deciding statistic within 0.02
# absolute (Wasserstein / reference std, Jensen-Shannon, PSI), the same verdict.
TOLERANCE = 0.02


def _shards(records: list[dict], parts: int) -> list[list[dict]]:
    return [records[i::parts] for i in range(parts)]


def test_merge_is_exact_for_counts_moments_and_categories(spec: ModelSpec) -> None:
    # GIVEN 3,000 records cut into 4 shards
    records = as_records(window(3000, 1), spec)
    whole = sketch_records(records, spec, champion=1, seed=0)
    # WHEN each shard is sketched apart and the sketches are merged
    merged = sketch_records(records[:0], spec, champion=1)
    for index, shard in enumerate(_shards(records, 4)):
        merged.merge(WindowSketch.from_json(sketch_records(shard, spec, champion=1, seed=index).to_json()))
    # THEN rows, missing values, categories and moments equal the single pass
    assert merged.rows == whole.rows == 3000
    for name, sketch in whole.columns.items():
        other = merged.columns[name]
        if isinstance(sketch, CategoricalSketch):
            assert isinstance(other, CategoricalSketch)
            assert (other.counts, other.nulls, other.rows) == (sketch.counts, sketch.nulls, sketch.rows)
        else:
            assert isinstance(other, NumericSketch)
            assert (other.count, other.rows, other.min, other.max) == (
                sketch.count,
                sketch.rows,
                sketch.min,
                sketch.max,
            )
            assert other.mean == pytest.approx(sketch.mean, rel=1e-12)
            assert other.m2 == pytest.approx(sketch.m2, rel=1e-9)
            # below the capacity the sample is the whole column
            assert sorted(other.values.tolist()) == sorted(sketch.values.tolist())


def test_small_window_through_sketches_equals_reading_it(spec: ModelSpec) -> None:
    # GIVEN a reference profile and a drifted window of 2,000 records in 3 shards
    reference = profile_frame(window(4000, 2), spec)
    records = as_records(window(2000, 3, drift=True), spec)
    merged = sketch_records(records[:0], spec, champion=1)
    for index, shard in enumerate(_shards(records, 3)):
        merged.merge(sketch_records(shard, spec, champion=1, seed=index))
    # WHEN the engine reads the records directly, and the frame the merged sketch stands for
    direct = drift_report(reference, records_frame(records, spec), spec)
    frame, _, exact = merged.frame()
    sketched = drift_report(reference, frame, spec)
    # THEN it is the exact window: every statistic and the verdict are identical
    assert exact
    assert sketched.verdict == direct.verdict == "drifted"
    assert sketched.drifted_features == direct.drifted_features
    for a, b in zip(direct.features, sketched.features, strict=True):
        assert a.name == b.name and a.status == b.status
        assert a.statistic == pytest.approx(b.statistic, abs=1e-12) if a.statistic is not None else b.statistic is None


def test_large_window_through_sketches_is_within_tolerance(spec: ModelSpec) -> None:
    # GIVEN 60,000 records (more than the 20,000-value capacity used here) in 6 shards
    reference = profile_frame(window(5000, 4), spec)
    frame_all = window(60_000, 5, drift=True)
    records = as_records(frame_all, spec)
    merged = WindowSketch.for_spec(spec, capacity=20_000)
    for index, shard in enumerate(_shards(records, 6)):
        merged.merge(sketch_records(shard, spec, champion=1, capacity=20_000, seed=index))
    # WHEN compared single pass and through the merged sketches
    direct = drift_report(reference, records_frame(records, spec), spec)
    frame, predictions, exact = merged.frame()
    sketched = drift_report(reference, frame, spec)
    # THEN the approximation is flagged and every deciding statistic is within the stated tolerance
    assert not exact and len(frame) == 20_000
    assert predictions is not None and len(predictions) == 20_000
    assert sketched.verdict == direct.verdict
    assert set(sketched.drifted_features) == set(direct.drifted_features)
    by_name = {f.name: f for f in sketched.features}
    for feature in direct.features:
        other = by_name[feature.name]
        if feature.judged_by == "threshold" and feature.statistic is not None:
            assert other.statistic == pytest.approx(feature.statistic, abs=TOLERANCE), feature.name
        assert other.missing is None or abs(other.missing.current - feature.missing.current) < 1e-3  # type: ignore[union-attr]


def test_numeric_sample_is_uniform_over_shards(spec: ModelSpec) -> None:
    # GIVEN two shards of very different sizes (1,000 values of 0 and 9,000 values of 1)
    rng = np.random.default_rng(0)
    small, big = NumericSketch(), NumericSketch()
    small.add(np.zeros(1000), 1000, rng.random(1000), 500)
    big.add(np.ones(9000), 9000, rng.random(9000), 500)
    # WHEN merged into a 500-value sample
    small.merge(big, 500)
    # THEN the sample keeps the 10%/90% proportion (bottom-k of uniform keys), within 4 sigma
    share = float((small.values == 0).mean())
    assert len(small.values) == 500
    assert abs(share - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 500)
    assert small.count == 10_000 and small.mean == pytest.approx(0.9)


def test_sketch_round_trips_through_json(spec: ModelSpec) -> None:
    # GIVEN a sketch with missing values and categories WHEN written and read THEN nothing changes
    sketch = sketch_records(as_records(window(300, 6), spec), spec, champion=1, seed=3)
    again = WindowSketch.from_json(sketch.to_json())
    assert again.to_json() == sketch.to_json()
    assert again.rows == 300


def test_predictions_of_other_versions_are_left_out(spec: ModelSpec) -> None:
    # GIVEN 100 records answered by the champion (v2) and 50 by a canary (v3)
    records = as_records(window(100, 7), spec, version=2) + as_records(window(50, 8), spec, version=3)
    # WHEN sketched for champion 2
    sketch = sketch_records(records, spec, champion=2)
    # THEN all 150 inputs count, but only the champion's 100 predictions
    _, predictions, _ = sketch.frame()
    assert sketch.rows == 150
    assert predictions is not None and len(predictions) == 100
