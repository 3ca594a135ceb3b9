"""Permuting a training file's columns changes no trained artifact and no evaluation.

Trained with the same spec and seed from the file in its own column order and from the file
with its columns permuted, the fitted pipelines give identical predictions (and probabilities)
on the same rows, serialize to the same bytes, hold out the same rows and evaluate to the same
metrics; for every split method: the hash of each row's content (all columns, or a key), the
time split on a datetime feature, and a fixed holdout file whose own columns are permuted too.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.artifacts import dump_artifact
from mlops.training.evaluation import evaluate
from mlops.training.fit import TrainResult, train
from mlops.training.frames import load_training_frame, model_input
from mlops.training.split import HoldoutFile
from tests.unit.metamorphic.tables import Dataset, Table, breast_cancer, churn, diabetes, wine

# (dataset, training.split, changes to training.params)
CASES: dict[str, tuple[Any, dict[str, Any], dict[str, Any]]] = {
    "breast_cancer-hash": (breast_cancer, {"method": "hash"}, {}),
    "wine-hash": (wine, {"method": "hash"}, {}),
    "diabetes-hash_key": (diabetes, {"method": "hash", "key": ["age", "sex", "bmi", "bp"]}, {}),
    "churn-hash_key": (churn, {"method": "hash", "key": ["customer_id"]}, {"max_iter": 20}),
    "churn-time": (churn, {"method": "time", "time_column": "signup_date"}, {"max_iter": 20}),
    "diabetes-holdout_dataset": (diabetes, {"method": "holdout_dataset", "holdout": "holdout.csv"}, {}),
}
HOLDOUT_ROWS = 120  # holdout_dataset: the file's last rows are the fixed holdout
FEWER = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def case(name: str) -> tuple[Table, Table | None, ModelSpec]:
    """(training file, fixed holdout file or None, spec) for one case."""
    make, split, params = CASES[name]
    dataset: Dataset = make()
    document = dataset.spec.model_dump(mode="json")
    training = document["training"]
    document["training"] = {**training, "split": split, "params": {**training["params"], **params}}
    document.pop("search", None)
    document["training"].pop("search", None)
    spec = parse_spec(document)
    table = dataset.table
    if split["method"] != "holdout_dataset":
        return table, None, spec
    n = len(table.rows) - HOLDOUT_ROWS
    return table.with_rows(range(n)), table.with_rows(range(n, len(table.rows))), spec


def fit(table: Table, holdout: Table | None, spec: ModelSpec) -> TrainResult:
    frame = load_training_frame(io.BytesIO(table.to_bytes()), spec, "train.csv")
    fixed = None if holdout is None else HoldoutFile.from_bytes(holdout.to_bytes(), spec, "holdout.csv")
    return train(frame, spec, code_revision="test", holdout=fixed)


@cache
def trained(name: str) -> TrainResult:
    table, holdout, spec = case(name)
    return fit(table, holdout, spec)


@cache
def scoring_rows(name: str) -> pd.DataFrame:
    """Every row of the dataset as model input: the rows both models are asked about."""
    table, holdout, spec = case(name)
    everything = table if holdout is None else Table(table.header, table.rows + holdout.rows)
    return model_input(load_training_frame(io.BytesIO(everything.to_bytes()), spec, "all.csv"), spec)


def _summary(result: TrainResult) -> dict[str, Any]:
    summary = result.summary()
    summary.pop("fit_seconds")
    held = summary.get("split", {}).get("holdout_file")
    if held:
        held.pop("sha256")  # of the holdout file's bytes, which the permutation changes
    return summary


@pytest.mark.parametrize("name", list(CASES))
@FEWER
@given(data=st.data())
def test_permuting_columns_changes_no_trained_model(name: str, data: st.DataObject) -> None:
    # One thread, as training uses: OpenMP threads spin on a shared machine and gain nothing here.
    with threadpool_limits(limits=1):
        _check_permuted_training(name, data)


def _check_permuted_training(name: str, data: st.DataObject) -> None:
    # GIVEN the training file (and the fixed holdout file) with columns permuted, each its own way
    table, holdout, spec = case(name)
    permuted = table.with_columns(data.draw(st.permutations(table.header), label="training file order"))
    permuted_holdout = None
    if holdout is not None:
        permuted_holdout = holdout.with_columns(data.draw(st.permutations(holdout.header), label="holdout order"))
    # WHEN a model is trained from them with the same spec and seed
    result = fit(permuted, permuted_holdout, spec)
    # THEN it is the model trained from the files in their own order: same split, same artifact
    # bytes, identical predictions (and probabilities) on every row
    original = trained(name)
    assert _summary(result) == _summary(original)
    assert result.holdout_index == original.holdout_index
    pd.testing.assert_frame_equal(result.holdout, original.holdout)
    assert dump_artifact(result.pipeline)[1] == dump_artifact(original.pipeline)[1]
    rows = scoring_rows(name)
    assert np.array_equal(result.pipeline.predict(rows), original.pipeline.predict(rows))
    if spec.task == "classification":
        assert np.array_equal(result.pipeline.predict_proba(rows), original.pipeline.predict_proba(rows))
    # AND the holdout, its columns in any order, evaluates to the same metrics
    shuffled = original.holdout[list(data.draw(st.permutations(list(original.holdout.columns)), label="holdout"))]
    evaluation = evaluate(result.pipeline, shuffled, spec).to_dict()
    expected = evaluate(original.pipeline, original.holdout, spec).to_dict()
    evaluation.pop("predict_seconds", None)
    expected.pop("predict_seconds", None)
    assert evaluation == expected


def test_the_splits_compared_above_are_the_ones_asked_for() -> None:
    # GIVEN the trained cases
    # THEN each used its split method, and the holdouts are neither empty nor everything
    with threadpool_limits(limits=1):
        results = {name: trained(name) for name in CASES}
    for name, (_, split, _) in CASES.items():
        result = results[name]
        assert result.split is not None and result.split.method == split["method"], name
        assert 0 < result.holdout_rows < result.train_rows + result.holdout_rows, name
    assert results["diabetes-holdout_dataset"].holdout_rows == HOLDOUT_ROWS
