"""Confidence intervals and variances the performance judgement uses: Wilson, Newcombe, DeLong,
Hanley-McNeil and Fieller (see :mod:`mlops.drift.performance` for which metric takes which).
"""

from __future__ import annotations

import math

import numpy as np


def wilson(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion (each end a one-sided bound at ``Phi(z)``)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(p1: float, n1: float, p2: float, n2: float, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for ``p1 - p2``, independent samples.

    Each end is a one-sided bound at ``Phi(z)``. Newcombe (1998), Statistics in Medicine 17:873.
    """
    low1, high1 = wilson(p1 * n1, n1, z)
    low2, high2 = wilson(p2 * n2, n2, z)
    diff = p1 - p2
    return (
        diff - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2),
        diff + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2),
    )


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given the mean of their ranks (as ``scipy.stats.rankdata(method='average')``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse].astype(np.float64)


def delong_components(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(auc, V10, V01)``: DeLong's structural components (fast midrank form, Sun and Xu 2014).

    ``V10[i]`` is the share of negatives positive ``i`` outranks (ties count half), ``V01[j]``
    the share of positives that outrank negative ``j``; the AUC is the mean of either.
    """
    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    combined = midranks(scores)
    v10 = (combined[positive] - midranks(pos)) / n
    v01 = 1.0 - (combined[~positive] - midranks(neg)) / m
    return float(v10.mean()), v10, v01


def delong_variance(scores: np.ndarray, positive: np.ndarray) -> float:
    """DeLong, DeLong and Clarke-Pearson (1988): the variance of the empirical ROC AUC."""
    _, v10, v01 = delong_components(scores, positive)
    return float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def ovr_macro_auc_variance(proba: np.ndarray, codes: np.ndarray) -> float:
    """Variance of the one-vs-rest macro ROC AUC (the mean of each class's AUC against the rest).

    Each row's influence on the mean is the mean of its DeLong components over the classes
    (``(V10 - A) / m`` as a positive, ``(V01 - A) / n`` as a negative); the variance is the sum of
    their squares, rescaled by ``N / (N - 1)``. For two classes this is DeLong's variance.
    """
    rows, classes = proba.shape
    influence = np.zeros(rows)
    for k in range(classes):
        positive = codes == k
        auc, v10, v01 = delong_components(proba[:, k], positive)
        influence[positive] += (v10 - auc) / len(v10)
        influence[~positive] += (v01 - auc) / len(v01)
    influence /= classes
    return float(np.sum(influence**2) * rows / (rows - 1))


def hanley_mcneil_variance(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil (1982): the variance of an AUC from its value and the class counts alone."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / max(
        positives * negatives, 1.0
    )


def fieller(
    current: float, registered: float, se_current: float, se_registered: float, z: float
) -> tuple[float, float | None]:
    """Fieller's interval for ``current / registered`` (independent estimates), as ``ratio - 1``.

    The ratios ``r`` with ``(current - r * registered)^2 <= z^2 (se_c^2 + r^2 se_r^2)``; each end a
    one-sided bound at ``Phi(z)``. When the registered value is not itself clearly above zero the
    set is unbounded: ``(-1, None)``, nothing can be shown.
    """
    a = registered**2 - (z * se_registered) ** 2
    if a <= 0:
        return -1.0, None
    root = current**2 * se_registered**2 + registered**2 * se_current**2 - (z * se_current * se_registered) ** 2
    spread = z * math.sqrt(max(root, 0.0))
    low, high = (current * registered - spread) / a, (current * registered + spread) / a
    return max(low, 0.0) - 1.0, high - 1.0
