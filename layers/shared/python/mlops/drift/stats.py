"""Two-sample statistics on sorted arrays and count tables: vectorized numpy, no per-row Python.

Every function here computes the same number as its scipy counterpart on the same inputs
(``ks_2samp``, ``wasserstein_distance``, ``chi2_contingency(correction=False)``,
``jensenshannon(base=2)``, ``false_discovery_control``); the unit tests check it to 1e-9.
The numeric functions take *sorted* finite arrays: the sort is the dominant cost, and a
reference column is sorted once and reused across windows.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

# PSI floors every bin proportion at this value, so an empty bin on either side gives a large
# but finite term instead of an infinite one (the usual convention, also Evidently's).
PSI_EPSILON = 1e-4
# scipy's ks_2samp computes exact p-values up to this sample size, asymptotic ones above.
KS_EXACT_MAX_N = 10_000
# Above this effective size n1 * n2 / (n1 + n2), p-values come from Kolmogorov's limiting law.
KS_KSTWO_MAX_N = 10_000
# compare_sorted merges up to this many values (both sides) directly; above, it works block by block
# (a block starts at every 32nd value; above ONE_PASS_MAX values, first every 256th, then every 32nd).
DIRECT_MERGE_MAX = 12_000
ONE_PASS_MAX = 400_000


@dataclass(frozen=True)
class NumericComparison:
    """KS statistic and 1-Wasserstein distance of two samples, from one merge of their sorted values."""

    ks_statistic: float
    wasserstein: float


def compare_sorted(
    reference: np.ndarray, current: np.ndarray, *, steps: tuple[int, ...] | None = None
) -> NumericComparison:
    """KS statistic and Wasserstein distance of two sorted, non-empty, finite float arrays.

    Exact, and equal to scipy's ``ks_2samp`` statistic and ``wasserstein_distance``: ties are
    resolved the way scipy does (CDFs are right-continuous, evaluated after the last of equal
    values). Large inputs are not merged value by value. The pooled range is cut into blocks at
    every ``step``-th value of either side (a few thousand binary searches); within a block each
    empirical CDF moves between its counts at the block's ends, so:

    * KS: a block whose bound on ``|F1 - F2|`` cannot beat a difference already seen at some
      block's end is skipped;
    * Wasserstein: where ``F1 - F2`` keeps one sign over a block, ``∫|F1 - F2| = |∫F1 - ∫F2|``,
      and ``∫F`` over a block is a closed form of its count and the sum of its values.

    The blocks left (near the KS maximum, and where the CDFs cross) are cut again with the next,
    smaller step, and what remains after the last one is merged value by value. ``steps`` sets
    the block sizes (tests use small ones); by default up to ``DIRECT_MERGE_MAX`` values in all
    are merged directly, which is faster there.
    """
    n1, n2 = len(reference), len(current)
    blocks = _Blocks(
        a=reference,
        b=current,
        start_a=np.array([0]),
        stop_a=np.array([n1]),
        start_b=np.array([0]),
        stop_b=np.array([n2]),
        base_a=np.array([0]),
        base_b=np.array([0]),
        end=np.array([max(reference[-1], current[-1])]),
    )
    if steps is None:
        total = n1 + n2
        steps = () if total <= DIRECT_MERGE_MAX else (32,) if total <= ONE_PASS_MAX else (256, 32)
    ks, wasserstein = 0.0, 0.0
    for step in steps:
        if blocks.size <= 4 * step:
            break
        ks, resolved, blocks = _split(blocks, step, n1, n2, ks)
        wasserstein += resolved
    if blocks.count:
        merged_ks, merged_w = _merge(blocks, n1, n2)
        ks, wasserstein = max(ks, merged_ks), wasserstein + merged_w
    return NumericComparison(ks_statistic=ks, wasserstein=wasserstein)


@dataclass(frozen=True)
class _Blocks:
    """Blocks of the pooled range still to resolve: slices of ``a`` and ``b`` (sorted; blocks in
    order of value), how many values of the full samples lie below each block (``base``), and
    where each block ends on the value axis (``end``: the next pooled value of the full samples).
    """

    a: np.ndarray
    b: np.ndarray
    start_a: np.ndarray
    stop_a: np.ndarray
    start_b: np.ndarray
    stop_b: np.ndarray
    base_a: np.ndarray
    base_b: np.ndarray
    end: np.ndarray

    @property
    def count(self) -> int:
        return len(self.end)

    @property
    def size(self) -> int:
        return int((self.stop_a - self.start_a).sum() + (self.stop_b - self.start_b).sum())


def _split(blocks: _Blocks, step: int, n1: int, n2: int, ks_seen: float) -> tuple[float, float, _Blocks]:
    """Cut every block at each ``step``-th value; resolve the sub-blocks that bounds settle.

    Returns the largest ``|F1 - F2|`` seen at sub-block ends, ``∫|F1 - F2|`` over the sub-blocks
    where it keeps one sign, and the sub-blocks left (compacted), for the next step or a merge.
    """
    a, b = blocks.a, blocks.b
    first = np.minimum(
        _value_at(a, blocks.start_a, blocks.stop_a > blocks.start_a, np.inf),
        _value_at(b, blocks.start_b, blocks.stop_b > blocks.start_b, np.inf),
    )
    grid = np.unique(np.concatenate([a[::step], b[::step], first]))
    owner = np.searchsorted(first, grid, side="right") - 1
    ia = np.append(np.searchsorted(a, grid, side="left"), len(a))
    ib = np.append(np.searchsorted(b, grid, side="left"), len(b))
    count_a, count_b = np.diff(ia), np.diff(ib)
    # Counts of the full samples below each sub-block's start and end (the block's offset added back).
    shift_a = (blocks.base_a - blocks.start_a)[owner]
    shift_b = (blocks.base_b - blocks.start_b)[owner]
    a0, a1 = ia[:-1] + shift_a, ia[1:] + shift_a
    b0, b1 = ib[:-1] + shift_b, ib[1:] + shift_b
    x0 = grid
    x1 = np.minimum(np.append(grid[1:], np.inf), blocks.end[owner])
    # F1 - F2 just left of each sub-block's start and end: values it takes (after a pooled value).
    at_start, at_end = a0 / n1 - b0 / n2, a1 / n1 - b1 / n2
    low, high = a0 / n1 - b1 / n2, a1 / n1 - b0 / n2
    # A sub-block holding one value only is one step: F1 - F2 is its end value throughout.
    last_a = _value_at(a, ia[1:] - 1, count_a > 0, -np.inf)
    last_b = _value_at(b, ib[1:] - 1, count_b > 0, -np.inf)
    single = np.maximum(last_a, last_b) <= x0
    low[single] = high[single] = at_end[single]
    ks = max(ks_seen, float(np.max(np.abs(at_start))), float(np.max(np.abs(at_end))))
    crossing = (low < 0) & (high > 0)
    left = crossing | (np.maximum(np.abs(low), np.abs(high)) > ks)
    # ∫F1 over [x0, x1) = (a0 (x1 - x0) + count x1 - sum of the sub-block's values) / n1.
    width = x1 - x0
    integral = (a0 * width + count_a * x1 - _block_sums(a, ia[:-1], count_a)) / n1
    integral -= (b0 * width + count_b * x1 - _block_sums(b, ib[:-1], count_b)) / n2
    resolved = float(np.sum(np.abs(integral[~left])))
    keep = np.flatnonzero(left)
    taken_a, start_a, stop_a = _compact(a, ia[keep], ia[keep + 1])
    taken_b, start_b, stop_b = _compact(b, ib[keep], ib[keep + 1])
    remaining = _Blocks(taken_a, taken_b, start_a, stop_a, start_b, stop_b, a0[keep], b0[keep], x1[keep])
    return ks, resolved, remaining


def _value_at(values: np.ndarray, index: np.ndarray, valid: np.ndarray, fill: float) -> np.ndarray:
    """``values[index]`` where ``valid``, else ``fill`` (``values`` may be empty: one side of the
    blocks left can run out of values)."""
    if not len(values):
        return np.full(len(index), fill)
    return np.where(valid, values[np.clip(index, 0, len(values) - 1)], fill)


def _block_sums(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of ``values[start:start + count]`` per block (blocks contiguous and in order)."""
    sums = np.zeros(len(starts))
    filled = counts > 0
    if filled.any():
        # Empty blocks sit between filled ones without a gap, so reduceat over the filled starts is exact.
        sums[filled] = np.add.reduceat(values, starts[filled])
    return sums


def _compact(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values[starts[i]:stops[i]]`` concatenated, and each slice's start and stop in the result."""
    sizes = stops - starts
    new_stops = np.cumsum(sizes)
    new_starts = new_stops - sizes
    total = int(new_stops[-1]) if len(sizes) else 0
    if total == len(values):
        return values, starts, stops
    index = np.arange(total) + np.repeat(starts - new_starts, sizes)
    return values[index], new_starts, new_stops


def _merge(blocks: _Blocks, n1: int, n2: int) -> tuple[float, float]:
    """Merge the blocks' values exactly: max ``|F1 - F2|`` at their pooled values, ``∫|F1 - F2|``."""
    a, b, count = blocks.a, blocks.b, blocks.count
    taken_a, start_a, _ = _compact(a, blocks.start_a, blocks.stop_a)
    taken_b, start_b, _ = _compact(b, blocks.start_b, blocks.stop_b)
    size_a, size_b = blocks.stop_a - blocks.start_a, blocks.stop_b - blocks.start_b
    label = np.concatenate([np.repeat(np.arange(count), size_a), np.repeat(np.arange(count), size_b)])
    pooled = np.concatenate([taken_a, taken_b])
    if not len(pooled):
        return 0.0, 0.0
    # Stable: on equal values the reference's come first; CDFs are read at the end of each run.
    order = np.argsort(pooled, kind="stable")
    merged, label = pooled[order], label[order]
    below_a = np.cumsum(order < len(taken_a))
    below_b = np.arange(1, len(order) + 1) - below_a
    difference = (below_a + (blocks.base_a - start_a)[label]) / n1 - (below_b + (blocks.base_b - start_b)[label]) / n2
    run_end = np.empty(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=run_end[:-1])
    run_end[-1] = True
    following = np.empty(len(merged))
    following[:-1] = merged[1:]
    block_last = np.empty(len(merged), dtype=bool)
    np.not_equal(label[1:], label[:-1], out=block_last[:-1])
    block_last[-1] = True
    following[block_last] = blocks.end[label[block_last]]
    ks = float(np.max(np.abs(difference[run_end])))
    return ks, float(np.sum(np.abs(difference) * (following - merged)))


def std(values: np.ndarray, chunk: int = 65_536) -> float:
    """Sample standard deviation (``ddof=1``), as ``np.std``, chunk by chunk.

    ``np.std`` of a large array allocates a temporary as large as it (page faults cost more than
    the arithmetic); here the deviations go through one cache-sized buffer (pairwise sums per
    chunk, as numpy's own).
    """
    n = len(values)
    if n < 2:
        return 0.0
    if n <= chunk:
        return float(np.std(values, ddof=1))
    mean = float(np.mean(values))
    buffer = np.empty(chunk)
    total = 0.0
    for start in range(0, n, chunk):
        part = values[start : start + chunk]
        deviations = np.subtract(part, mean, out=buffer[: len(part)])
        # Not np.dot: a threaded BLAS call per chunk stalls badly when the CPUs are busy.
        total += float(np.square(deviations, out=deviations).sum())
    return math.sqrt(total / (n - 1))


def ks_p_value(statistic: float, n1: int, n2: int) -> float:
    """Two-sided two-sample KS p-value, as ``scipy.stats.ks_2samp(method="auto")`` computes it.

    Exact when both samples have at most 10,000 values (see :func:`_exact_ks_p_value`), else
    Smirnov's asymptotic distribution (``kstwo.sf`` at the effective size ``n1 * n2 / (n1 + n2)``),
    and beyond an effective size of 10,000 its limit, Kolmogorov's distribution (scipy's
    ``kstwo`` is very slow out there; the two differ by under 1% relative).
    """
    if max(n1, n2) <= KS_EXACT_MAX_N:
        return _exact_ks_p_value(statistic, n1, n2)
    # Lazy: scipy.stats takes over a second to import; the drift package is imported by the
    # monitoring functions, which load it only when a report computes a p-value.
    from scipy.stats import distributions

    m, n = sorted([float(n1), float(n2)], reverse=True)
    effective = m * n / (m + n)
    if effective > KS_KSTWO_MAX_N:
        # kstwo.sf takes up to a second per call out there; its limit (Kolmogorov's distribution)
        # differs from it by under 1% relative at these sizes, far below any decision's precision.
        from scipy.special import kolmogorov

        return float(np.clip(kolmogorov(math.sqrt(round(effective)) * statistic), 0.0, 1.0))
    return float(np.clip(distributions.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


def _exact_ks_p_value(statistic: float, n1: int, n2: int) -> float:
    """scipy's exact two-sided p-value for a KS statistic of samples of sizes ``n1`` and ``n2``.

    scipy exposes its exact two-sample distribution only through ``ks_2samp``, which wants the
    samples; we have only the statistic (the samples were compared block by block, or one side
    is a profile). The exact p-value depends on ``(n1, n2, D)`` alone, so this builds two
    samples of those sizes whose statistic is ``D`` and asks ``ks_2samp(method="exact")``: the
    same number, and the same fallback to the asymptotic law where scipy's exact computation
    fails, as ``ks_2samp`` gives on the real data, through public API only. Writing the
    distribution ourselves instead would be a second copy of scipy's path counting, its
    floating-point behaviour included; building the samples costs a fraction of a millisecond
    and ``ks_2samp`` reads them in about a millisecond more at 10,000 + 10,000 values
    (``benchmarks/bench_drift.py --ks``; docs/drift.md, "Speed").

    The samples are distinct integers, so the two empirical CDFs walk a lattice path from
    ``(0, 0)`` to ``(n1, n2)``; in units of ``1 / lcm(n1, n2)``, a step of the first sample
    moves ``F1 - F2`` up by ``b = n2 / g``, one of the second down by ``a = n1 / g`` (``g`` the
    gcd). scipy rounds ``D`` to ``h`` such units. Then:

    * A path holds ``|F1 - F2| <= h`` throughout only if ``2h + 1 >= a + b``: after ``t`` steps
      ``F1 - F2`` is ``t * b`` modulo ``a + b``, so over ``a + b`` steps it takes every residue,
      which a band narrower than ``a + b`` cannot hold. Below that, every pair of samples of
      these sizes without ties has a larger statistic, so ``P(D_stat >= D) = 1`` (only ties, as
      in discrete data, give such small statistics).
    * Otherwise the band is wide enough that the "first sample whenever the band allows" path
      (:func:`_highest_path`) reaches any point of the band from the origin. The samples follow
      it to a point where ``|F1 - F2|`` is ``h`` (the nearest value at or above ``h`` that a
      point of the lattice has: ``h`` itself for a statistic computed from data; a statistic
      from a profile's approximate reference may fall between), and from there, by the mirror
      path walked backwards, to ``(n1, n2)``.
    """
    # Lazy: see ks_p_value.
    from scipy.stats import ks_2samp

    g = math.gcd(n1, n2)
    a, b = n1 // g, n2 // g
    lcm = a * n2
    h = min(int(np.round(statistic * lcm)), lcm)
    if 2 * h + 1 < a + b:
        return 1.0
    level, i, j, first_ahead = _nearest_lattice_level(h, n1, n2)
    if first_ahead:
        x, y = _samples_through(n1, n2, i, j, level)
    else:
        y, x = _samples_through(n2, n1, j, i, level)
    # Where scipy's exact computation fails it falls back to the asymptotic law with a
    # RuntimeWarning, exactly as ks_2samp does on the real data; the value is what we return.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ks_2samp(x, y, method="exact")
    return float(min(max(float(result.pvalue), 0.0), 1.0))


def _nearest_lattice_level(h: int, n1: int, n2: int) -> tuple[int, int, int, bool]:
    """The smallest ``|i * b - j * a| >= h`` over ``0 <= i <= n1, 0 <= j <= n2`` (units of
    ``1 / lcm``), a point ``(i, j)`` that has it, and whether the first sample is ahead there."""
    g = math.gcd(n1, n2)
    a, b = n1 // g, n2 // g
    never = np.iinfo(np.int64).max
    i = np.arange(n1 + 1, dtype=np.int64)
    j_for_i = np.minimum((i * b - h) // a, n2)  # the most second-sample steps leaving F1 ahead by >= h
    ahead = np.where(i * b >= h, i * b - j_for_i * a, never)
    j = np.arange(n2 + 1, dtype=np.int64)
    i_for_j = np.minimum((j * a - h) // b, n1)
    behind = np.where(j * a >= h, j * a - i_for_j * b, never)
    best_i, best_j = int(np.argmin(ahead)), int(np.argmin(behind))
    if ahead[best_i] <= behind[best_j]:
        return int(ahead[best_i]), best_i, int(j_for_i[best_i]), True
    return int(behind[best_j]), int(i_for_j[best_j]), best_j, False


def _samples_through(n1: int, n2: int, i: int, j: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of sizes ``n1`` and ``n2`` whose CDFs pass ``(i, j)``, where the first leads by
    ``level`` (``i * b - j * a``), and never differ by more: the highest path in the band up to
    there, then the mirror one walked back from ``(n1, n2)``."""
    g = math.gcd(n1, n2)
    a, b = n1 // g, n2 // g
    to_point = _highest_path(b, a, level, i + j)
    # Walked back from (n1, n2), a second-sample step raises F1 - F2 by a, a first-sample one lowers it by b.
    from_end = _highest_path(a, b, level, (n1 - i) + (n2 - j))
    first = np.concatenate([to_point, ~from_end[::-1]])
    # Integer positions: ks_2samp searches int64 arrays faster than floats.
    return np.flatnonzero(first), np.flatnonzero(~first)


def _highest_path(up: int, down: int, level: int, steps: int) -> np.ndarray:
    """Steps (True: up) of the walk from 0 that goes up whenever that stays at or below ``level``.

    It climbs to ``(level - up, level]``, then stays in the window ``[level - up - down + 1,
    level]`` (within ``[-level, level]`` when ``2 level + 1 >= up + down``), where each step adds
    ``up`` modulo ``up + down``: a closed form, no loop.
    """
    climb = min(level // up, steps)
    window = up + down
    low = level - window + 1
    offsets = np.arange(steps - climb + 1, dtype=np.int64) * up
    walk = low + (climb * up - low + offsets) % window
    return np.concatenate([np.ones(climb, dtype=bool), np.diff(walk) > 0])


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


def pool_sparse_categories(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pool the categories too rare for the chi-square approximation (Cochran's rule).

    Pearson's chi-square holds where no expected count is below 1 and at most a fifth are below
    5. A category seen once in a 500-row window and never in the reference breaks the first
    condition and gives a statistic of ~18 (p ~ 4e-4) from one row. So categories with an expected
    count below 1 are merged into one bucket; if more than a fifth of the cells are then still
    below 5, the categories below 5 join it too; and if the bucket itself is below the bound, the
    smallest remaining category joins it. A category new in the window that holds a few percent of
    its rows is not pooled (its expected counts are well above 1). Returns the pooled
    ``(reference, current)`` counts and how many categories were pooled (0: the counts come back
    as they were, categories absent from both sides dropped).
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if table.shape[1] < 3 or total == 0:
        return table[0], table[1], 0
    sides = table.sum(axis=1, keepdims=True)
    expected = sides * table.sum(axis=0, keepdims=True) / total
    bound = 1.0
    sparse = (expected < bound).any(axis=0)
    rest = expected[:, ~sparse]
    if rest.size and (rest < 5.0).sum() > 0.2 * rest.size:
        bound = 5.0
        sparse = (expected < bound).any(axis=0)
    if not sparse.any():
        return table[0], table[1], 0
    kept = table[:, ~sparse]
    pooled = table[:, sparse].sum(axis=1, keepdims=True)
    if kept.shape[1] > 1 and (sides * pooled.sum() / total < bound).any():
        smallest = int(np.argmin(kept.sum(axis=0)))
        pooled = pooled + kept[:, [smallest]]
        kept = np.delete(kept, smallest, axis=1)
    out = np.hstack([kept, pooled])
    return out[0], out[1], int(sparse.sum())


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
