"""Chi-square on categories too rare for it: pooled, so one row cannot make a feature drift.

Seen on ISLP's Bikeshare data (conformance suite): ``weathersit`` = ``heavy rain/snow`` occurs in
one hour of the year. A 500-row window that held that hour, against a reference that did not,
gave chi-square 18.1 (p = 0.0004) from one row: ``weathersit`` drifted on 1 row in 500.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sst

from mlops.drift import drift_report, stats
from mlops.spec.model import load_spec
from tests.conformance.datasets import SPECS


def test_pooling_leaves_a_table_that_meets_cochrans_rule() -> None:
    # GIVEN counts where two categories are far too rare for the approximation
    ref = np.array([400.0, 300.0, 200.0, 1.0, 0.0])
    cur = np.array([200.0, 150.0, 110.0, 0.0, 1.0])
    # WHEN they are pooled
    p, q, pooled = stats.pool_sparse_categories(ref, cur)
    # THEN the rare ones share one bucket (merged with the smallest common one), nothing is lost
    assert pooled == 2
    assert p.sum() == ref.sum() and q.sum() == cur.sum()
    expected = sst.contingency.expected_freq(np.vstack([p, q]))
    assert expected.min() >= 1 and (expected < 5).sum() <= 0.2 * expected.size


def test_many_cells_below_5_pool_every_category_below_5() -> None:
    ref = np.array([60.0, 3.0, 3.0, 3.0, 2.0])
    cur = np.array([30.0, 2.0, 2.0, 1.0, 2.0])
    p, q, pooled = stats.pool_sparse_categories(ref, cur)
    assert pooled == 4
    expected = sst.contingency.expected_freq(np.vstack([p, q]))
    assert expected.min() >= 5


def test_pooling_changes_nothing_where_the_approximation_holds() -> None:
    ref = np.array([40.0, 30.0, 20.0])
    cur = np.array([20.0, 15.0, 11.0])
    p, q, pooled = stats.pool_sparse_categories(ref, cur)
    assert pooled == 0
    np.testing.assert_array_equal(p, ref)
    np.testing.assert_array_equal(q, cur)


def test_a_new_category_in_volume_is_still_drift() -> None:
    # A category absent from the reference that makes up a fifth of the window is not sparse.
    ref = np.array([500.0, 500.0, 0.0])
    cur = np.array([200.0, 200.0, 100.0])
    p, q, pooled = stats.pool_sparse_categories(ref, cur)
    assert pooled == 0
    assert stats.chi2_homogeneity(p, q)[1] < 1e-6


@pytest.fixture(scope="module")
def bikeshare() -> pd.DataFrame:
    raw = resources.files("ISLP").joinpath("data/Bikeshare.csv").read_bytes()
    return pd.read_csv(io.BytesIO(raw), index_col=0 if raw.startswith(b'"",') or raw.startswith(b",") else None)


def test_one_hour_of_heavy_rain_is_not_weathersit_drift(bikeshare: pd.DataFrame) -> None:
    # GIVEN the Bikeshare hour of heavy rain in a 500-row window drawn from the same year,
    # and the reference holding the rest of the year
    spec = load_spec(SPECS / "islp-bikeshare.yaml")
    rare = bikeshare.index[bikeshare["weathersit"] == "heavy rain/snow"]
    assert len(rare) == 1
    others = bikeshare.drop(index=rare)
    window_rows = others.sample(n=499, random_state=3)
    window = pd.concat([bikeshare.loc[rare], window_rows])
    reference = others.drop(index=window_rows.index)
    # WHEN drift compares them
    report = drift_report(reference, window, spec)
    weathersit = next(f for f in report.features if f.name == "weathersit")
    # THEN the one row does not make weathersit drift, and the report says what was pooled
    assert not weathersit.drifted
    assert any("pooled" in note for note in weathersit.notes)
