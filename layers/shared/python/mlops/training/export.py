"""Export a fitted pipeline to ONNX at registration, so inference runs without scikit-learn.

The inference function serves the ONNX file with onnxruntime (a slim layer: numpy and
onnxruntime, no pandas, scipy or scikit-learn), which keeps the cold start small. The export is
checked against scikit-learn on the holdout before it is registered: Evaluate writes the check's
input (:func:`check_document`: holdout rows as request records, scikit-learn's answers) and the
CheckOnnx state runs the graph on it with onnxruntime (:func:`mlops.training.onnx_check.compare_onnx`).
:func:`check_onnx` does both in one process (where scikit-learn and onnxruntime are both installed).

Input of the exported graph: one ``[N, 1]`` tensor per :func:`mlops.training.frames.model_input` column,
named like the column: ``float32`` for numbers, booleans and datetime parts (missing as NaN),
``string`` for categories (missing as ``"(missing)"``, the value training imputes). Outputs:
``label`` and ``probabilities`` for classifiers (no ZipMap), ``variable`` for regressors.

Two adjustments to skl2onnx 1.20 (both checked by the tests against scikit-learn):

- ``SimpleImputer(add_indicator=True)``: skl2onnx drops the indicator columns, so a converter
  that adds them is registered here;
- a category imputer replaces NaN with ``"(missing)"``; skl2onnx cannot test strings for NaN, so
  the exported copy treats ``"(missing)"`` as missing (the same value in, the same value out) and
  the server feeds ``"(missing)"`` for a null category.

LightGBM and XGBoost models convert with onnxmltools' converters (``convert_lightgbm``,
``convert_xgboost``), registered with skl2onnx for their scikit-learn classes
(:func:`_register_booster_converters`) so the pipeline, preprocessing and all, converts in one
graph, checked against the library's own ``predict_proba`` / ``predict`` with the same tolerance.

Tolerance: see :mod:`mlops.training.onnx_check` (probabilities ``1e-4`` absolute, regression
``1e-3`` relative, no label may differ).

Examples
--------
>>> data = export_onnx(result.pipeline, spec)  # doctest: +SKIP
>>> document = check_document(result.pipeline, result.holdout, spec, limit=CHECK_ROWS)  # doctest: +SKIP
>>> check_onnx(data, result.pipeline, result.holdout, spec)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import numpy as np

from mlops.errors import MlopsError
from mlops.spec.model import FeatureType, ModelSpec
from mlops.training.frames import model_input
from mlops.training.onnx_check import compare_onnx
from mlops.training.onnx_model import MISSING_CATEGORY, ONNX_TAG_SHA256, ONNX_TAG_URI, records_from_frame
from mlops.training.threshold import DecisionThreshold, threshold_labels

__all__ = [
    "ONNX_FILE_NAME",
    "ONNX_TAG_SHA256",
    "ONNX_TAG_URI",
    "OnnxExportError",
    "check_document",
    "check_onnx",
    "export_onnx",
]

ONNX_FILE_NAME = "model.onnx"
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


class OnnxExportError(MlopsError):
    """The pipeline cannot be exported to ONNX (the version is then served from its pickle)."""


def category_columns(spec: ModelSpec) -> frozenset[str]:
    """Model-input columns fed as strings (category features); every other column is float32."""
    return frozenset(f.name for f in spec.features if f.type is FeatureType.CATEGORY)


@functools.cache
def _register_converters() -> None:
    """Teach skl2onnx the two things our pipelines need (once per process)."""
    import skl2onnx.common.tree_ensemble as tree_ensemble
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def indicator_features(imputer: Any) -> list[int]:
        indicator = getattr(imputer, "indicator_", None) if imputer.add_indicator else None
        return [] if indicator is None else [int(i) for i in indicator.features_]

    def shape(operator: Any) -> None:
        calculate_sklearn_imputer_output_shapes(operator)
        extra = indicator_features(operator.raw_operator)
        if extra:
            kind = operator.outputs[0].type
            width = operator.raw_operator.statistics_.size + len(extra)
            operator.outputs[0].type = kind.__class__([kind.shape[0], width])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        imputer = operator.raw_operator
        extra = indicator_features(imputer)
        if isinstance(operator.inputs[0].type, StringTensorType) or not extra:
            convert_sklearn_imputer(scope, operator, container)
            return
        x = concatenate_variables(scope, operator.inputs, container)
        imputed = scope.get_unique_variable_name("imputed")
        container.add_node(
            "Imputer",
            [x],
            [imputed],
            op_domain="ai.onnx.ml",
            name=scope.get_unique_operator_name("Imputer"),
            imputed_value_floats=imputer.statistics_.astype(np.float32),
            replaced_value_float=float("nan"),
        )
        index = scope.get_unique_variable_name("indicator_index")
        container.add_initializer(index, onnx_proto.TensorProto.INT64, [len(extra)], extra)
        picked = scope.get_unique_variable_name("indicator_columns")
        container.add_node("Gather", [x, index], [picked], axis=1)
        missing = scope.get_unique_variable_name("indicator_isnan")
        container.add_node("IsNaN", [picked], [missing])
        flags = scope.get_unique_variable_name("indicator_flags")
        container.add_node("Cast", [missing], [flags], to=onnx_proto.TensorProto.FLOAT)
        container.add_node("Concat", [imputed, flags], [operator.outputs[0].full_name], axis=1)

    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", shape, convert, overwrite=True)

    # skl2onnx 1.20 passes numpy booleans for histogram gradient boosting's missing-value
    # direction; protobuf 7 refuses booleans in an int list.
    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node


# The scikit-learn classes of the gradient-boosting libraries and their onnxmltools converters.
BOOSTER_CONVERTERS = {
    "lightgbm.LGBMClassifier": ("onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm"),
    "lightgbm.LGBMRegressor": ("onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm"),
    "xgboost.XGBClassifier": ("onnxmltools.convert.xgboost.operator_converters.XGBoost", "convert_xgboost"),
    "xgboost.XGBRegressor": ("onnxmltools.convert.xgboost.operator_converters.XGBoost", "convert_xgboost"),
}


@functools.cache
def _register_booster_converters(estimator: str) -> None:
    """Register onnxmltools' converter for a LightGBM or XGBoost estimator with skl2onnx (once).

    The library and onnxmltools are imported only for a spec that uses them: the scikit-learn
    estimators export without either.
    """
    import importlib

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    module_name, function = BOOSTER_CONVERTERS[estimator]
    convert = getattr(importlib.import_module(module_name), function)
    library, _, class_name = estimator.rpartition(".")
    model_class = getattr(importlib.import_module(library), class_name)
    alias = f"{library.capitalize()}{class_name}"
    if class_name.endswith("Classifier"):
        update_registered_converter(
            model_class,
            alias,
            calculate_linear_classifier_output_shapes,
            convert,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
    else:
        update_registered_converter(model_class, alias, calculate_linear_regressor_output_shapes, convert)


def _exportable_copy(pipeline: Any) -> Any:
    from sklearn.pipeline import Pipeline

    exported = copy.deepcopy(pipeline)
    for _name, transformer, _columns in exported.named_steps["preprocess"].transformers_:
        if isinstance(transformer, Pipeline) and "onehot" in transformer.named_steps:
            transformer.named_steps["impute"].missing_values = MISSING_CATEGORY
    return exported


def export_onnx(pipeline: Any, spec: ModelSpec) -> bytes:
    """Convert a fitted training pipeline to an ONNX model.

    Parameters
    ----------
    pipeline
        The fitted pipeline from :func:`mlops.training.fit.train` (``preprocess`` then ``model``).
    spec
        The spec it was trained under (gives the input columns and their types).

    Returns
    -------
    bytes
        The serialized ONNX model (record its sha256 with the version; bytes may differ between exports).

    Raises
    ------
    OnnxExportError
        skl2onnx cannot convert a part of the pipeline (named in the message).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from mlops.training.frames import _input_columns

    _register_converters()
    if spec.training.estimator in BOOSTER_CONVERTERS:
        _register_booster_converters(spec.training.estimator)
    strings = category_columns(spec)
    # the platform's pipeline names its input at "preprocess"; a user's (training.entry_point) at its start
    steps = getattr(pipeline, "named_steps", {})
    used = list(getattr(steps.get("preprocess", pipeline), "feature_names_in_", []))
    if not used:
        raise OnnxExportError(
            f"cannot export {spec.training.entry_point or spec.training.estimator} to ONNX: the fitted pipeline does"
            " not record its input columns (feature_names_in_)"
        )
    known = {c for f in spec.features if f.type is not FeatureType.STRING for c in _input_columns(spec, f.name)}
    unknown = [c for c in used if c not in known]
    if unknown:
        raise OnnxExportError(f"pipeline input column(s) {', '.join(unknown)} are not in spec {spec.name}")
    inputs = [(c, StringTensorType([None, 1]) if c in strings else FloatTensorType([None, 1])) for c in used]
    options = {"zipmap": False} if spec.task == "classification" else None
    try:
        model = convert_sklearn(
            _exportable_copy(pipeline), initial_types=inputs, target_opset=TARGET_OPSET, options=options
        )
    except Exception as exc:  # skl2onnx raises many kinds; the message names the part
        what = spec.training.estimator or spec.training.entry_point
        raise OnnxExportError(f"cannot export {what} to ONNX: {type(exc).__name__}: {exc}") from None
    model.doc_string = f"mlops model {spec.name}"
    from onnx import helper

    # skl2onnx turns column names into identifiers ("mean radius" -> "mean_radius", a clash gets a
    # suffix); the graph's inputs keep the order given, so the columns are recorded in that order.
    props = {"columns": json.dumps(used)}
    if spec.task == "classification":
        from mlops.training.frames import _plain

        props["classes"] = json.dumps([_plain(c) for c in pipeline.classes_])
    helper.set_model_props(model, props)
    return bytes(model.SerializeToString())


def check_document(
    pipeline: Any, frame: Any, spec: ModelSpec, *, limit: int | None = None, threshold: DecisionThreshold | None = None
) -> dict[str, Any]:
    """The ONNX check's input: rows of ``frame`` as request records and what ``pipeline`` answers.

    Parameters
    ----------
    pipeline
        The fitted pipeline the export was made from.
    frame
        Typed rows (the holdout); the first ``limit`` are taken (all with ``None``).
    spec
        The spec it was trained under (stored in the document, as serving reads it).
    threshold
        The candidate's decision threshold: the expected labels are the ones it gives (what is
        served), and the document carries it for the comparison.

    Returns
    -------
    dict
        JSON-ready: ``spec`` (its canonical document) and ``spec_fingerprint``, ``records``,
        ``expected`` (``labels`` as text and ``probabilities`` for a classifier, ``values`` for a
        regressor) and ``holdout_rows`` (how many rows ``frame`` had). Read by
        :func:`mlops.training.onnx_check.compare_onnx`.
    """
    rows = frame if limit is None else frame.iloc[:limit]
    x = model_input(rows, spec)
    expected: dict[str, Any]
    if spec.task == "classification":
        probabilities = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
        labels = (
            pipeline.predict(x) if threshold is None else threshold_labels(probabilities, pipeline.classes_, threshold)
        )
        expected = {"labels": [str(v) for v in labels], "probabilities": probabilities.tolist()}
    else:
        expected = {"values": np.asarray(pipeline.predict(x), dtype=np.float64).tolist()}
    return {
        "spec": json.loads(spec.canonical_json()),
        "spec_fingerprint": spec.fingerprint(),
        "records": records_from_frame(rows, spec),
        "expected": expected,
        "holdout_rows": len(frame),
        **({"threshold": threshold.to_dict()} if threshold is not None and spec.task == "classification" else {}),
    }


def check_onnx(
    data: bytes, pipeline: Any, frame: Any, spec: ModelSpec, threshold: DecisionThreshold | None = None
) -> dict[str, float]:
    """Compare the ONNX model with scikit-learn on every row of ``frame`` (the holdout), in one process.

    The check's input goes through JSON as the pipeline stores it, so this runs what the CheckOnnx
    state runs. Needs onnxruntime beside scikit-learn (tests and tools; no Lambda function has both).

    Raises
    ------
    CheckFailedError
        As :func:`mlops.training.onnx_check.compare_onnx`: a probability, a value or a label differs
        beyond the stated tolerance.
    """
    document = check_document(pipeline, frame, spec, threshold=threshold)
    return compare_onnx(data, json.loads(json.dumps(document)))
