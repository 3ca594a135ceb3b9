"""Two-sample statistics on sorted arrays and count tables: vectorized numpy, no per-row Python.

Every function here computes the same number as its scipy counterpart on the same inputs
(``ks_2samp``, ``wasserstein_distance``, ``chi2_contingency(correction=False)``,
``jensenshannon(base=2)``, ``false_discovery_control``); the unit tests check it to 1e-9.
The numeric functions take *sorted* finite arrays: the sort is the dominant cost, and a
reference column is sorted once and reused across windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# PSI floors every bin proportion at this value, so an empty bin on either side gives a large
# but finite term instead of an infinite one (the usual convention, also Evidently's).
PSI_EPSILON = 1e-4
# scipy's ks_2samp computes exact p-values up to this sample size, asymptotic ones above.
KS_EXACT_MAX_N = 10_000
# Above this effective size n1 * n2 / (n1 + n2), p-values come from Kolmogorov's limiting law.
KS_KSTWO_MAX_N = 10_000


@dataclass(frozen=True)
class NumericComparison:
    """KS statistic and 1-Wasserstein distance of two samples, from one merge of their sorted values."""

    ks_statistic: float
    wasserstein: float


def compare_sorted(reference: np.ndarray, current: np.ndarray) -> NumericComparison:
    """KS statistic and Wasserstein distance of two sorted, non-empty, finite float arrays.

    One merge (a ``searchsorted`` of the current values into the reference) yields both
    empirical CDFs at every pooled value; ties are resolved the way scipy does (CDFs are
    right-continuous, evaluated after the last of equal values).
    """
    n1, n2 = len(reference), len(current)
    total = n1 + n2
    positions = np.searchsorted(reference, current, side="right") + np.arange(n2)
    is_current = np.zeros(total, dtype=bool)
    is_current[positions] = True
    merged = np.empty(total, dtype=np.float64)
    merged[positions] = current
    merged[~is_current] = reference
    current_below = np.cumsum(is_current)
    reference_below = np.arange(1, total + 1) - current_below
    difference = reference_below / n1 - current_below / n2
    run_end = np.empty(total, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=run_end[:-1])
    run_end[-1] = True
    ks = float(np.max(np.abs(difference[run_end])))
    wasserstein = float(np.sum(np.abs(difference[:-1]) * np.diff(merged)))
    return NumericComparison(ks_statistic=ks, wasserstein=wasserstein)


def ks_p_value(statistic: float, n1: int, n2: int) -> float:
    """Two-sided two-sample KS p-value, as ``scipy.stats.ks_2samp(method="auto")`` computes it.

    Exact (scipy's own routine) when both samples have at most 10,000 values, else Smirnov's
    asymptotic distribution (``kstwo.sf`` at the effective size ``n1 * n2 / (n1 + n2)``), and
    beyond an effective size of 10,000 its limit, Kolmogorov's distribution (scipy's ``kstwo``
    is very slow out there; the two differ by under 1% relative).
    """
    if max(n1, n2) <= KS_EXACT_MAX_N:
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            success, _, probability = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), statistic, "two-sided")
            if success:
                return float(min(max(probability, 0.0), 1.0))
        except (ImportError, TypeError):  # a scipy without the private routine: asymptotic below
            pass
    from scipy.stats import distributions

    m, n = sorted([float(n1), float(n2)], reverse=True)
    effective = m * n / (m + n)
    if effective > KS_KSTWO_MAX_N:
        # kstwo.sf takes up to a second per call out there; its limit (Kolmogorov's distribution)
        # differs from it by under 1% relative at these sizes, far below any decision's precision.
        from scipy.special import kolmogorov

        return float(np.clip(kolmogorov(math.sqrt(round(effective)) * statistic), 0.0, 1.0))
    return float(np.clip(distributions.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


def bin_cuts(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """PSI cut points from a sorted reference: its quantile edges, plus one just above its maximum.

    The bins (``searchsorted(cuts, x, side="right")``) are: below the reference minimum,
    ``bins`` quantile bins (fewer when quantiles coincide), the reference maximum itself, and
    above the maximum. A zero-variance reference gets three bins (below, equal, above), a
    binary column one bin per value, and values outside the reference range a bin of their own.
    """
    edges = np.unique(sorted_quantiles(reference, np.linspace(0.0, 1.0, bins + 1)))
    return np.append(edges, np.nextafter(edges[-1], np.inf))


def sorted_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of a sorted array by linear interpolation (numpy's default), without re-partitioning it."""
    position = np.asarray(levels, dtype=np.float64) * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    fraction = position - low
    return values[low] + fraction * (values[high] - values[low])


def sorted_counts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts of a sorted array in the bins defined by ``cuts`` (``len(cuts) + 1`` bins)."""
    boundaries = np.searchsorted(values, cuts, side="left")
    return np.diff(np.concatenate(([0], boundaries, [len(values)]))).astype(np.int64)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` with proportions floored at ``epsilon``."""
    p = np.maximum(reference_counts / max(reference_counts.sum(), 1), epsilon)
    q = np.maximum(current_counts / max(current_counts.sum(), 1), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def chi2_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-square test on the 2 x K contingency table (no Yates correction).

    Categories absent from both sides are dropped. Returns ``(statistic, p_value, dof)``; with
    fewer than two categories left the table says nothing: ``(0.0, 1.0, 0)``.
    """
    from scipy.special import chdtrc

    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(chdtrc(dof, statistic)), dof


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors over the same categories."""
    from scipy.special import rel_entr

    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / math.log(2.0)
    return float(np.sqrt(max(divergence, 0.0) / 2.0))


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (reject at level alpha where adjusted <= alpha)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out
