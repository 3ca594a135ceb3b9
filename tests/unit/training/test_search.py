"""Search: deterministic grids and random draws, capped, and an order-independent winner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.errors import CheckFailedError
from mlops.spec.model import ModelSpec
from mlops.training.search import best, candidates, grid_size, search_metric
from tests.unit.training.helpers import spec_with

SPACE = {"max_depth": [2, 3, 4, 5], "learning_rate": [0.01, 0.1, 0.3], "l2_regularization": [0.0, 1.0]}


def test_no_search_gives_the_spec_params(house_spec: ModelSpec) -> None:
    # GIVEN a spec without a search
    # WHEN / THEN the only candidate is training.params
    assert candidates(house_spec) == [{"n_estimators": 100, "max_depth": 14, "min_samples_leaf": 2}]
    assert grid_size(house_spec) == 1


def test_full_grid_is_the_product_over_sorted_names(churn_spec: ModelSpec) -> None:
    # GIVEN the churn example's 2x2 grid (max_candidates 4)
    # WHEN candidates are listed
    params = candidates(churn_spec)
    # THEN all four combinations come, over sorted names, on top of the base params
    assert [(p["learning_rate"], p["max_depth"]) for p in params] == [(0.05, 3), (0.05, 4), (0.1, 3), (0.1, 4)]
    assert all(p["max_iter"] == 150 for p in params)
    assert search_metric(churn_spec) == ("roc_auc", False)


def test_capped_grid_spreads_over_the_space_and_ignores_key_order(churn_spec: ModelSpec) -> None:
    # GIVEN a 24-point grid capped at 6, written in two different key orders
    spec = spec_with(churn_spec, training={"search": {"strategy": "grid", "space": SPACE, "max_candidates": 6}})
    reordered = spec_with(
        churn_spec,
        training={"search": {"strategy": "grid", "space": dict(reversed(SPACE.items())), "max_candidates": 6}},
    )
    # WHEN candidates are listed
    params = candidates(spec)
    # THEN six distinct sets, covering more than the first value of the first parameter, same for both orders
    assert len(params) == 6 and len({tuple(sorted(p.items())) for p in params}) == 6
    assert len({p["l2_regularization"] for p in params}) == 2
    assert len({p["max_depth"] for p in params}) > 1
    assert params == candidates(reordered)
    assert grid_size(spec) == 24


def test_random_search_is_seeded(churn_spec: ModelSpec) -> None:
    # GIVEN a random search of 5 over the 24-point space
    spec = spec_with(churn_spec, training={"search": {"strategy": "random", "space": SPACE, "max_candidates": 5}})
    other_seed = spec_with(
        churn_spec, training={"seed": 99, "search": {"strategy": "random", "space": SPACE, "max_candidates": 5}}
    )
    # WHEN listed twice, and with another seed
    first, again, other = candidates(spec), candidates(spec), candidates(other_seed)
    # THEN the same seed gives the same five, another seed another draw
    assert first == again and len(first) == 5
    assert first != other
    # AND a space smaller than the cap gives all of it
    small = spec_with(churn_spec, training={"search": {"strategy": "random", "space": {"max_depth": [2, 3]}}})
    assert [p["max_depth"] for p in candidates(small)] == [2, 3]


def test_best_is_order_independent_and_respects_direction() -> None:
    # GIVEN results with a tie on the best score, in two orders
    results = [
        {"params": {"max_depth": 4}, "metrics": {"roc_auc": 0.81, "rmse": 10.0}},
        {"params": {"max_depth": 3}, "metrics": {"roc_auc": 0.83, "rmse": 12.0}},
        {"params": {"max_depth": 2}, "metrics": {"roc_auc": 0.83, "rmse": None}},
        {"params": {"max_depth": 5}, "metrics": {"roc_auc": None, "rmse": 9.0}},
    ]
    # WHEN the best is picked
    forward = best(results, "roc_auc", lower_is_better=False)
    backward = best(list(reversed(results)), "roc_auc", lower_is_better=False)
    lowest = best(results, "rmse", lower_is_better=True)
    # THEN ties go to the same (canonically smallest) params whatever the order, and direction is respected
    assert forward is backward or forward == backward
    assert forward["params"] == {"max_depth": 2}
    assert lowest["params"] == {"max_depth": 5}
    # AND with no usable value at all, it says so
    with pytest.raises(CheckFailedError, match="no candidate has a value for log_loss"):
        best(results, "log_loss", lower_is_better=True)


def _results(scores: list[float | None]) -> list[dict[str, object]]:
    return [
        {"index": i, "params": {"max_depth": i + 2}, "metrics": {} if s is None else {"roc_auc": s}}
        for i, s in enumerate(scores)
    ]


def test_leaderboard_lists_every_candidate_best_first_marking_the_chosen() -> None:
    from mlops.training.search import leaderboard

    board = leaderboard(_results([0.71, 0.83, None, 0.79]), "roc_auc", False)
    assert [(row["rank"], row["index"], row["score"]) for row in board] == [
        (1, 1, 0.83),
        (2, 3, 0.79),
        (3, 0, 0.71),
        (4, 2, None),
    ]
    assert [row["chosen"] for row in board] == [True, False, False, False]
    assert board[0]["params"] == {"max_depth": 3}
    # lower is better for a loss; an explicit choice is marked even if it is not first
    losses = leaderboard(_results([0.4, 0.2]), "roc_auc", True, chosen=0)
    assert [row["index"] for row in losses] == [1, 0] and [row["chosen"] for row in losses] == [False, True]


@given(st.permutations(range(6)))
def test_leaderboard_order_does_not_depend_on_arrival_order(order: list[int]) -> None:
    # GIVEN six candidates with ties, arriving in any order (a Map's branches finish in any order)
    from mlops.training.search import leaderboard

    results = _results([0.8, 0.9, 0.8, None, 0.9, 0.7])
    shuffled = [results[i] for i in order]
    # THEN the ranking is the same
    assert [r["index"] for r in leaderboard(shuffled, "roc_auc", False)] == [
        r["index"] for r in leaderboard(results, "roc_auc", False)
    ]
