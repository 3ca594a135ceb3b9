"""Imported models on real data (palmerpenguins): checked against the spec, scored like a candidate.

A model trained "elsewhere" is a plain scikit-learn pipeline fitted on the penguins as a data
scientist would; its ONNX export (skl2onnx) and its restricted-format pickle are what an import
stores. The ONNX import is scored by onnx's reference evaluator and must agree with scikit-learn
and with onnxruntime (what serving runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from mlops.errors import CheckFailedError, InputError
from mlops.training.artifacts import dump_artifact
from mlops.training.evaluation import evaluate
from mlops.training.frames import model_input
from mlops.training.imported import (
    ONNX_FORMAT,
    SKLEARN_FORMAT,
    ColumnsByName,
    check_onnx_import,
    check_sklearn_import,
    export_imported_onnx,
    load_imported,
)
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import NUMBERS, notebook_pipeline, penguins_frame


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return penguins_frame()


def test_sklearn_import_is_scored_on_its_own_columns_in_any_order(penguins: pd.DataFrame) -> None:
    # GIVEN a pipeline fitted on four of the spec's columns, in an order of its own
    columns = ["island", "flipper_length_mm", "bill_length_mm", "bill_depth_mm"]
    data, sha256 = dump_artifact(notebook_pipeline(penguins, columns))
    # WHEN it is loaded as an import and evaluated on the spec's model input (every column, spec order)
    model = load_imported(data, sha256, SKLEARN_FORMAT, PENGUINS.spec)
    metrics = evaluate(model, penguins, PENGUINS.spec).finite_metrics()
    # THEN it is scored on its own columns and is a good penguin classifier
    assert isinstance(model, ColumnsByName) and model.columns == columns
    assert metrics["accuracy"] > 0.95


def test_onnx_import_scored_by_the_reference_evaluator_agrees_with_sklearn_and_onnxruntime(
    penguins: pd.DataFrame,
) -> None:
    # GIVEN a notebook pipeline and its ONNX export with the platform's inputs and outputs
    pipeline = notebook_pipeline(penguins, ["bill_length_mm", "island", "flipper_length_mm", "bill_depth_mm"])
    data = export_imported_onnx(pipeline, PENGUINS.spec)
    from mlops.training.artifacts import sha256_hex

    # WHEN the import is loaded (onnx.reference) and serving's predictor (onnxruntime) runs it
    model = load_imported(data, sha256_hex(data), ONNX_FORMAT, PENGUINS.spec)
    x = model_input(penguins, PENGUINS.spec)
    reference = model.predict_proba(x)
    served = OnnxPredictor(data, PENGUINS.spec).predict(records_from_frame(penguins, PENGUINS.spec))
    # THEN all three agree (float32 inside the graph)
    expected = pipeline.predict_proba(x[list(pipeline.feature_names_in_)])
    assert np.abs(reference - expected).max() < 1e-4
    assert np.abs(np.asarray(served.probabilities) - expected).max() < 1e-4
    assert list(model.predict(x)) == list(pipeline.predict(x[list(pipeline.feature_names_in_)]))
    assert served.predictions == list(model.predict(x))
    assert evaluate(model, penguins, PENGUINS.spec).finite_metrics()["accuracy"] > 0.95


def test_column_order_changes_nothing(penguins: pd.DataFrame) -> None:
    # GIVEN the same model fitted on the same columns in two orders (metamorphic)
    one = notebook_pipeline(penguins, ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "island"])
    two = notebook_pipeline(penguins, ["island", "flipper_length_mm", "bill_depth_mm", "bill_length_mm"])
    # WHEN both are imported and scored
    scores = []
    for pipeline in (one, two):
        data, sha256 = dump_artifact(pipeline)
        scores.append(evaluate(load_imported(data, sha256, SKLEARN_FORMAT, PENGUINS.spec), penguins, PENGUINS.spec))
    # THEN the metrics are the same
    assert scores[0].finite_metrics() == pytest.approx(scores[1].finite_metrics(), abs=1e-9)


def test_a_model_fitted_on_a_column_the_spec_lacks_is_refused_by_name(penguins: pd.DataFrame) -> None:
    frame = model_input(penguins, PENGUINS.spec).assign(beak_colour=1.0)
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=300)).fit(
        frame[["bill_length_mm", "beak_colour"]], penguins["species"].astype(str)
    )
    with pytest.raises(InputError, match=r"fitted on column\(s\) beak_colour that spec palmer-penguins"):
        check_sklearn_import(model, PENGUINS.spec, source="model.pkl")


def test_a_regressor_for_a_classification_spec_is_refused(penguins: pd.DataFrame) -> None:
    x = model_input(penguins, PENGUINS.spec)[NUMBERS].fillna(0)
    model = LinearRegression().fit(x, penguins["year"])
    with pytest.raises(InputError, match="spec palmer-penguins is a classification"):
        check_sklearn_import(model, PENGUINS.spec)


def test_a_model_fitted_on_a_bare_array_is_refused(penguins: pd.DataFrame) -> None:
    x = model_input(penguins, PENGUINS.spec)[NUMBERS].fillna(0).to_numpy()
    model = LogisticRegression(max_iter=300).fit(x, penguins["species"].astype(str))
    with pytest.raises(InputError, match="fitted without column names"):
        check_sklearn_import(model, PENGUINS.spec)


def test_unknown_classes_are_refused(penguins: pd.DataFrame) -> None:
    x = model_input(penguins, PENGUINS.spec)[NUMBERS].fillna(0)
    labels = penguins["species"].astype(str).replace({"Gentoo": "Emperor"})
    model = LogisticRegression(max_iter=300).fit(x, labels)
    with pytest.raises(InputError, match="class\\(es\\) Emperor"):
        check_sklearn_import(model, PENGUINS.spec)


def _onnx_graph(inputs: list[tuple[str, int]], outputs: list[str]) -> bytes:
    """A small valid ONNX graph with these inputs ([N, 1], element type) and outputs (Identity of the first input)."""
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", [inputs[0][0]], [name]) for name in outputs],
        "wrong",
        [helper.make_tensor_value_info(name, kind, [None, 1]) for name, kind in inputs],
        [helper.make_tensor_value_info(name, inputs[0][1], [None, 1]) for name in outputs],
    )
    return bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())


def test_a_wrong_shaped_onnx_model_is_refused_naming_each_problem() -> None:
    from onnx import TensorProto

    # GIVEN an ONNX model with one input named after no feature, one of the wrong type, and skl2onnx's output names
    data = _onnx_graph(
        [("wingspan", TensorProto.FLOAT), ("year", TensorProto.INT64)], ["output_label", "output_probability"]
    )
    # THEN the check names every problem
    with pytest.raises(InputError) as refused:
        check_onnx_import(data, PENGUINS.spec, source="model.onnx")
    message = str(refused.value)
    assert "input 'wingspan' is not a feature of spec palmer-penguins" in message
    assert "input 'year' is INT64" in message and "needs FLOAT" in message
    assert "must answer outputs label, probabilities" in message


def test_bytes_that_are_not_onnx_are_refused() -> None:
    with pytest.raises(InputError, match=r"model\.onnx: not a valid ONNX model"):
        check_onnx_import(b"species,island\nAdelie,Dream\n", PENGUINS.spec, source="model.onnx")


def test_a_tampered_import_is_not_loaded(penguins: pd.DataFrame) -> None:
    data, sha256 = dump_artifact(notebook_pipeline(penguins, NUMBERS))
    with pytest.raises(CheckFailedError, match="sha256 mismatch"):
        load_imported(data + b"x", sha256, SKLEARN_FORMAT, PENGUINS.spec)


def test_a_pickle_that_names_code_is_refused_by_the_restricted_unpickler() -> None:
    import pickle

    class Shell:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, ("true",))

    data = pickle.dumps(Shell(), protocol=5)
    from mlops.training.artifacts import sha256_hex

    with pytest.raises(CheckFailedError, match="may not use"):
        load_imported(data, sha256_hex(data), SKLEARN_FORMAT, PENGUINS.spec)
