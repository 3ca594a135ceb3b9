"""The fast paths give the numbers of the plain ones: block-wise KS/Wasserstein, chunked std,
category columns counted by their distinct values like every row read as text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from mlops.data.validation import coerce
from mlops.drift import stats
from mlops.drift.sides import _category_counts, categorical_side
from mlops.spec.model import FeatureType


def _samples(kind: str, n1: int, n2: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "same":
        return rng.normal(0, 1, n1), rng.normal(0, 1, n2)
    if kind == "shifted":
        return rng.normal(0, 1, n1), rng.normal(0.3, 1.2, n2)
    if kind == "discrete":
        return np.round(rng.normal(3, 1.3, n1) * 4), np.round(rng.normal(3.1, 1.3, n2) * 4)
    if kind == "constant":
        return np.full(n1, 2.5), np.where(rng.random(n2) < 0.2, 3.0, 2.5)
    if kind == "disjoint":
        return rng.normal(0, 1, n1), rng.normal(50, 1, n2)
    if kind == "heavy tail":
        return rng.standard_cauchy(n1), rng.standard_cauchy(n2) * 1.1
    raise AssertionError(kind)


KINDS = ["same", "shifted", "discrete", "constant", "disjoint", "heavy tail"]
STEPS = [(1,), (2,), (3,), (7,), (5, 2), (16, 3, 1), (64, 8)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", STEPS, ids=[str(s) for s in STEPS])
def test_block_wise_comparison_equals_scipy_for_any_block_sizes(kind: str, steps: tuple[int, ...]) -> None:
    # GIVEN two samples of unequal sizes (ties, constants, disjoint ranges, heavy tails)
    a, b = _samples(kind, 1_500, 2_300, seed=len(kind))
    # WHEN compared block by block with small blocks (every bound and merge path is exercised)
    ours = stats.compare_sorted(np.sort(a), np.sort(b), steps=steps)
    # THEN the KS statistic and the Wasserstein distance are scipy's
    assert ours.ks_statistic == pytest.approx(sst.ks_2samp(a, b).statistic, abs=1e-12)
    assert ours.wasserstein == pytest.approx(sst.wasserstein_distance(a, b), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kind", ["same", "shifted", "discrete", "heavy tail"])
@pytest.mark.parametrize(("n1", "n2"), [(150_000, 150_000), (20_000, 300_000), (500_000, 3_000)])
def test_default_blocks_on_large_samples_equal_scipy(kind: str, n1: int, n2: int) -> None:
    # GIVEN samples large enough for the default block passes (one and two passes)
    a, b = _samples(kind, n1, n2, seed=n1 + n2)
    # WHEN compared with the defaults
    ours = stats.compare_sorted(np.sort(a), np.sort(b))
    # THEN they are scipy's numbers
    assert ours.ks_statistic == pytest.approx(sst.ks_2samp(a, b).statistic, abs=1e-12)
    assert ours.wasserstein == pytest.approx(sst.wasserstein_distance(a, b), rel=1e-10, abs=1e-12)


def test_one_value_on_either_side() -> None:
    # GIVEN single-value samples (the smallest input)
    ours = stats.compare_sorted(np.array([1.0]), np.array([3.0]), steps=(1,))
    # THEN KS is 1 and the distance is the gap
    assert ours.ks_statistic == 1.0 and ours.wasserstein == pytest.approx(2.0)


@pytest.mark.parametrize("n", [1, 2, 1_000, 65_537, 400_001])
def test_chunked_std_equals_numpy(n: int) -> None:
    # GIVEN values with a large mean (cancellation would show) and sizes around the chunk size
    values = np.random.default_rng(n).normal(1.7e9, 1e4, n)
    # THEN the sample standard deviation is numpy's (0 for a single value)
    expected = float(np.std(values, ddof=1)) if n > 1 else 0.0
    assert stats.std(values) == pytest.approx(expected, rel=1e-12)


def _expected_counts(values: list[object]) -> dict[str, int]:
    text = pd.Series(values, dtype=object).dropna().map(lambda v: str(int(v)) if isinstance(v, float) else str(v))
    return {str(k): int(v) for k, v in text.value_counts().items()}


@pytest.mark.parametrize("dtype", [object, "str"])
def test_long_text_columns_are_counted_like_short_ones(dtype: object) -> None:
    # GIVEN a long column repeating a few string objects, plus equal strings built apart
    # (different objects, same text), missing values, and a number
    rng = np.random.default_rng(0)
    labels = np.array(["red", "green", "blue"], dtype=object)
    values: list[object] = list(labels[rng.integers(0, 3, 30_000)])
    values += ["".join(["re", "d"]) for _ in range(500)] + [None] * 40 + [float("nan")] * 60 + ["teal"] * 7
    series = pd.Series(values, dtype=dtype)
    # WHEN counted
    side = categorical_side(series, FeatureType.CATEGORY)
    # THEN counts, missing values and rows are what a plain count gives
    assert dict(side.counts.items()) == _expected_counts(values)
    assert side.nulls == 100 and side.rows == len(values)
    # AND the same column cut short gives the same counts
    short = categorical_side(series.iloc[:5_000], FeatureType.CATEGORY)
    assert dict(short.counts.items()) == _expected_counts(values[:5_000])


def test_long_column_of_distinct_objects_and_booleans() -> None:
    # GIVEN every value its own object (a parser that shares nothing), and a boolean column
    words = [f"id-{i % 13}" for i in range(20_000)]
    flags = pd.Series(["yes", "no", "True", "0", "maybe"] * 4_000, dtype=object)
    # WHEN counted
    side = categorical_side(pd.Series(words, dtype=object), FeatureType.CATEGORY)
    booleans = categorical_side(flags, FeatureType.BOOL)
    # THEN equal texts are one category, and booleans are read as validation reads them
    assert dict(side.counts.items()) == _expected_counts(list(words))
    assert dict(booleans.counts.items()) == {"true": 8_000, "false": 8_000}
    assert booleans.nulls == 4_000  # "maybe" is not a boolean: invalid, counted with the missing


@pytest.mark.parametrize(("n1", "n2"), [(40, 30_000), (30_000, 40), (3_000, 600_000)])
def test_blocks_left_with_values_of_one_side_only(n1: int, n2: int) -> None:
    # GIVEN a sample far smaller than the other, interleaved with it (after the first pass the
    # blocks left can hold values of one side only)
    rng = np.random.default_rng(n1 * n2)
    a, b = rng.normal(0, 1, n1), rng.normal(0.05, 1, n2)
    # WHEN compared with several passes
    for steps in [(64, 8), (256, 32, 4), None]:
        ours = stats.compare_sorted(np.sort(a), np.sort(b), steps=steps)
        # THEN the numbers are still scipy's
        assert ours.ks_statistic == pytest.approx(sst.ks_2samp(a, b).statistic, abs=1e-12)
        assert ours.wasserstein == pytest.approx(sst.wasserstein_distance(a, b), rel=1e-10, abs=1e-12)


def test_blocks_left_with_no_reference_value() -> None:
    # GIVEN a reference with two point masses (below and inside the gap of the window), so that
    # after the first pass the only block left is where F1 - F2 crosses zero among window values
    rng = np.random.default_rng(0)
    a = np.array([-1.0] * 50 + [2.0] * 50)
    b = np.concatenate([rng.uniform(0, 1, 120_000), rng.uniform(3, 4, 80_000)])
    # WHEN compared with two passes
    ours = stats.compare_sorted(np.sort(a), np.sort(b), steps=(64, 8))
    # THEN the numbers are scipy's
    assert ours.ks_statistic == pytest.approx(sst.ks_2samp(a, b).statistic, abs=1e-12)
    assert ours.wasserstein == pytest.approx(sst.wasserstein_distance(a, b), rel=1e-10)


def _factorized_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """The plain count: every row through ``coerce.factorized`` (what validation reads)."""
    codes, uniques, null = coerce.factorized(series)
    table: dict[str, int] = {}
    for code in codes[codes >= 0]:
        table[str(uniques[code])] = table.get(str(uniques[code]), 0) + 1
    return table, int(null.sum())


@pytest.mark.parametrize(
    "series",
    [
        pd.Series(["a", "b", None, "a", float("nan"), "c", "a"] * 300, dtype=object),
        pd.Series(["a", "b", None, "a", "c"] * 300, dtype="str"),
        pd.Series([1, 2, 2, 3, 1, 1] * 200, dtype=np.int64),
        pd.Series([1.0, 2.5, np.nan, 2.5, 1.0] * 200, dtype=np.float64),
        pd.Series([True, False, True] * 200, dtype=bool),
        pd.Series([1, "1", 2.0, "x", None, pd.NA] * 200, dtype=object),
        pd.Series(pd.Categorical(["lo", "hi", None, "lo"] * 200, categories=["lo", "mid", "hi"])),
        pd.Series([], dtype=object),
    ],
    ids=["object", "str", "int", "float", "bool", "mixed", "categorical", "empty"],
)
def test_category_counts_equal_the_plain_factorized_count(series: pd.Series) -> None:
    # GIVEN a column of any dtype a category feature may arrive as
    # WHEN counted the engine's way (distinct values first, then read as text)
    uniques, counts, missing = _category_counts(series)
    table: dict[str, int] = {}
    for label, count in zip(uniques.tolist(), counts.tolist(), strict=True):
        if count:
            table[str(label)] = table.get(str(label), 0) + int(count)
    # THEN texts, counts and missing values are those of reading every row through coerce.factorized
    assert (table, missing) == _factorized_counts(series)
