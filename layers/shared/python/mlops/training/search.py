"""Hyperparameter search: which parameter sets to train, and which result wins.

``candidates`` turns ``spec.training.search`` into parameter sets, each the spec's
``training.params`` with some values replaced. A grid is the cartesian product of the space
(parameter names in sorted order, values in the order the spec lists them); when it has more
points than ``max_candidates``, points spread over it are kept (a stride coprime to its size). A random search draws
``max_candidates`` distinct points of the same grid with a generator seeded by
``spec.training.seed``. Both are deterministic: the same spec always gives the same list in the
same order, whatever order its keys were written in.

Examples
--------
>>> params = candidates(spec)  # doctest: +SKIP
>>> winner = best([{"params": p, "metrics": evaluate(...).metrics} for p in params], "roc_auc", False)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.errors import CheckFailedError
from mlops.spec.model import LOWER_IS_BETTER, ModelSpec, ParamValue
from mlops.values import finite_number


def candidates(spec: ModelSpec) -> list[dict[str, ParamValue]]:
    """The parameter sets to train, in a deterministic order.

    Parameters
    ----------
    spec
        The model spec; without ``training.search`` the only candidate is ``training.params``.

    Returns
    -------
    list of dict
        Full estimator parameter sets (the spec's params with the searched ones replaced),
        at most ``search.max_candidates`` of them, without duplicates.
    """
    base: dict[str, ParamValue] = dict(spec.training.params)
    search = spec.training.search
    if search is None:
        return [base]
    names = sorted(search.space)
    axes = [list(search.space[name]) for name in names]
    total = math.prod(len(axis) for axis in axes)
    limit = min(search.max_candidates, total)
    if search.strategy == "grid":
        # Walk the grid with a stride coprime to its size: distinct points spread over every axis,
        # where the first points of the product would only vary the last parameter.
        stride = max(1, round(total / limit))
        while math.gcd(stride, total) != 1:
            stride += 1
        picks = sorted((i * stride) % total for i in range(limit))
    else:
        rng = np.random.default_rng(spec.training.seed)
        picks = sorted(int(i) for i in rng.choice(total, size=limit, replace=False))
    out: list[dict[str, ParamValue]] = []
    seen: set[str] = set()
    for index in picks:
        point = _grid_point(axes, index)
        params = {**base, **dict(zip(names, point, strict=True))}
        key = _canonical(params)
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


def grid_size(spec: ModelSpec) -> int:
    """Points in the search space's full grid (1 without a search)."""
    search = spec.training.search
    return 1 if search is None else math.prod(len(values) for values in search.space.values())


def search_metric(spec: ModelSpec) -> tuple[str, bool]:
    """The metric candidates are ranked by and whether lower is better."""
    search = spec.training.search
    metric = (search.metric if search is not None else None) or spec.primary_metric
    return metric, metric in LOWER_IS_BETTER


def _grid_point(axes: list[list[Any]], index: int) -> tuple[Any, ...]:
    """The ``index``-th point of ``itertools.product(*axes)`` without building the product."""
    point = []
    for axis in reversed(axes):
        index, position = divmod(index, len(axis))
        point.append(axis[position])
    return tuple(reversed(point))


def ranked(results: Sequence[Mapping[str, Any]], metric: str, lower_is_better: bool) -> list[Mapping[str, Any]]:
    """``results`` best first by ``metric``; ties go to the smallest parameter set in canonical JSON.

    Results without a finite value of ``metric`` come last, in the order given. The order depends
    only on the metrics and parameters, never on the order results arrive in (a Map state's
    branches finish in any order).
    """
    scored = []
    unscored = []
    for result in results:
        value = finite_number((result.get("metrics") or {}).get(metric))
        if value is None:
            unscored.append(result)
        else:
            scored.append((value if lower_is_better else -value, _canonical(result.get("params") or {}), result))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in scored] + unscored


def best(results: Sequence[Mapping[str, Any]], metric: str, lower_is_better: bool) -> Mapping[str, Any]:
    """The winning result: the first of :func:`ranked`.

    Parameters
    ----------
    results
        Mappings with ``metrics`` (metric name to value or ``None``) and ``params``.
    metric
        The metric to rank by.
    lower_is_better
        True for losses and errors (``log_loss``, ``rmse``, ``mae``).

    Returns
    -------
    Mapping
        The winning element of ``results`` itself.

    Raises
    ------
    CheckFailedError
        No result has a finite value of ``metric``.
    """
    order = ranked(results, metric, lower_is_better)
    if not order or finite_number((order[0].get("metrics") or {}).get(metric)) is None:
        raise CheckFailedError(f"no candidate has a value for {metric} (of {len(results)} candidates)")
    return order[0]


def leaderboard(
    results: Sequence[Mapping[str, Any]], metric: str, lower_is_better: bool, chosen: int | None = None
) -> list[dict[str, Any]]:
    """Every search candidate, best first: ``rank``, ``index``, ``params``, ``score`` and ``chosen``.

    What a run records next to its evaluation (``candidates`` in ``evaluation.json``), so the
    losing candidates' scores are kept with the version they lost to. ``chosen`` is the index of
    the candidate the run went on with (the first one when not given).
    """
    order = ranked(results, metric, lower_is_better)
    if chosen is None and order:
        chosen = order[0].get("index")
    return [
        {
            "rank": rank,
            "index": result.get("index"),
            "params": dict(result.get("params") or {}),
            "score": finite_number((result.get("metrics") or {}).get(metric)),
            "metrics": dict(result.get("metrics") or {}),
            "chosen": result.get("index") == chosen,
        }
        for rank, result in enumerate(order, start=1)
    ]


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


__all__ = ["LOWER_IS_BETTER", "best", "candidates", "grid_size", "leaderboard", "ranked", "search_metric"]
