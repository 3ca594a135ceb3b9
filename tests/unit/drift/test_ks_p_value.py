"""stats.ks_p_value equals scipy.stats.ks_2samp's p-value on the same data, through public API only.

The exact branch builds two samples of the same sizes and statistic and asks ``ks_2samp`` (see
``stats._exact_ks_p_value``); these tests hold it to ``ks_2samp`` on the real data: small samples
with and without ties (hypothesis), large ones, and the 10,000-value boundary where scipy
switches to the asymptotic law.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from mlops.drift import stats

REL = 1e-9


def _ours(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    statistic = stats.compare_sorted(np.sort(a), np.sort(b)).ks_statistic
    return statistic, stats.ks_p_value(statistic, len(a), len(b))


@st.composite
def samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of 1..300 values: continuous, or on a few levels (many ties), maybe shifted."""
    n1, n2 = draw(st.integers(1, 300)), draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    levels = draw(st.sampled_from([0, 1, 2, 3, 5, 12]))  # 0: continuous
    shift = draw(st.sampled_from([0.0, 0.1, 0.5, 2.0]))
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    if levels:
        a, b = np.floor(a * levels / 2), np.floor(b * levels / 2)
    return a, b


@settings(max_examples=300, deadline=None, derandomize=True)
@given(samples())
def test_p_value_equals_ks_2samp_on_small_samples_with_ties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    statistic, p = _ours(a, b)
    expected = sst.ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=REL, abs=1e-300)


def test_p_value_is_one_where_no_sample_without_ties_has_so_small_a_statistic() -> None:
    # GIVEN 2 and 3 values: without ties, |F1 - F2| reaches at least 1/3 somewhere; with ties
    # the statistic can be 1/6, below anything the exact distribution without ties puts mass on
    a, b = np.array([1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    statistic, p = _ours(a, b)
    assert statistic == pytest.approx(1 / 6)
    # THEN p is 1, as ks_2samp says
    assert p == 1.0
    assert sst.ks_2samp(a, b).pvalue == pytest.approx(1.0, abs=1e-12)


LARGE = [
    ("2000 x 3000 continuous", 2_000, 3_000, False, 0.08),
    ("2000 x 3000 ties", 2_000, 3_000, True, 0.05),
    ("10000 x 10000 continuous", 10_000, 10_000, False, 0.03),
    ("10000 x 10000 ties", 10_000, 10_000, True, 0.02),
    ("7 x 10000", 7, 10_000, False, 0.5),
    ("9973 x 10000 (coprime)", 9_973, 10_000, False, 0.02),
    ("10000 x 10001 (asymptotic)", 10_000, 10_001, False, 0.02),
    ("10001 x 10001 (asymptotic)", 10_001, 10_001, True, 0.02),
]


@pytest.mark.parametrize(("label", "n1", "n2", "discrete", "shift"), LARGE, ids=[c[0] for c in LARGE])
def test_p_value_equals_ks_2samp_on_large_samples(label: str, n1: int, n2: int, discrete: bool, shift: float) -> None:
    # GIVEN samples up to and just past scipy's 10,000-value limit for exact p-values
    rng = np.random.default_rng(n1 * 7 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    if discrete:
        a, b = np.round(a * 3), np.round(b * 3)
    statistic, p = _ours(a, b)
    expected = sst.ks_2samp(a, b)
    # THEN the p-value is scipy's (and not trivially 0 or 1: the shift is chosen for that)
    assert 1e-12 < expected.pvalue < 0.999
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=REL)


@pytest.mark.parametrize(("n1", "n2"), [(5, 5), (40, 60), (7, 300), (1000, 999)])
def test_any_statistic_gets_the_p_value_of_the_smallest_attainable_one_above(n1: int, n2: int) -> None:
    # GIVEN statistics between the values samples of these sizes can have (a profile's
    # approximate reference gives such), WHEN given a p-value,
    g = math.gcd(n1, n2)
    lcm = n1 * n2 // g
    attainable = np.unique(np.abs(np.subtract.outer(np.arange(n1 + 1) * (n2 // g), np.arange(n2 + 1) * (n1 // g))))
    rng = np.random.default_rng(n1 + n2)
    for d in rng.random(25):
        h = round(d * lcm)
        above = attainable[attainable >= h][0]
        # THEN it is the p-value of the smallest statistic at or above it that data can have
        assert stats.ks_p_value(float(d), n1, n2) == stats.ks_p_value(above / lcm, n1, n2)
    assert stats.ks_p_value(0.0, n1, n2) == 1.0
    assert stats.ks_p_value(1.0, n1, n2) == pytest.approx(sst.ks_2samp(np.zeros(n1), np.ones(n2)).pvalue, rel=REL)


def test_stats_reads_no_private_scipy_module() -> None:
    # The exact p-value once came from scipy.stats._stats_py; only public names are imported now.
    source = Path(stats.__file__).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(alias.name.startswith("_") for alias in node.names), node.module
