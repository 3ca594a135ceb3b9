"""Export a fitted pipeline to ONNX at registration, so inference runs without scikit-learn.

The inference function serves the ONNX file with onnxruntime (a slim layer: numpy and
onnxruntime, no pandas, scipy or scikit-learn), which keeps the cold start small. The export is
checked against scikit-learn on the holdout (:func:`check_onnx`) before it is registered.

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

Tolerance (float32 inside the graph): class probabilities within ``1e-4`` absolute, regression
within ``1e-3`` relative (``max(1, |y|)``); labels are taken as the arg-max of the probabilities,
as scikit-learn does, so ties break the same way.

Examples
--------
>>> data = export_onnx(result.pipeline, spec)  # doctest: +SKIP
>>> check_onnx(data, result.pipeline, result.holdout, spec)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import numpy as np

from mlops.errors import CheckFailedError, MlopsError
from mlops.spec.model import FeatureType, ModelSpec
from mlops.training.onnx_model import MISSING_CATEGORY, ONNX_TAG_SHA256, ONNX_TAG_URI, OnnxPredictor, records_from_frame

__all__ = ["ONNX_FILE_NAME", "ONNX_TAG_SHA256", "ONNX_TAG_URI", "OnnxExportError", "check_onnx", "export_onnx"]

ONNX_FILE_NAME = "model.onnx"
PROBABILITY_TOLERANCE = 1e-4
REGRESSION_RELATIVE_TOLERANCE = 1e-3
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
    strings = category_columns(spec)
    used = list(pipeline.named_steps["preprocess"].feature_names_in_)
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
        raise OnnxExportError(f"cannot export {spec.training.estimator} to ONNX: {type(exc).__name__}: {exc}") from None
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


def check_onnx(data: bytes, pipeline: Any, frame: Any, spec: ModelSpec) -> dict[str, float]:
    """Compare the ONNX model with scikit-learn on some rows (the holdout) and return the deltas.

    Raises
    ------
    CheckFailedError
        A probability differs by more than ``PROBABILITY_TOLERANCE``, a regression prediction by
        more than ``REGRESSION_RELATIVE_TOLERANCE`` (relative), or a label differs.
    """
    from mlops.training.frames import model_input

    predictor = OnnxPredictor(data, spec)
    records = records_from_frame(frame, spec)
    ours = predictor.predict(records)
    x = model_input(frame, spec)
    if spec.task == "classification":
        expected = pipeline.predict_proba(x)
        got = np.asarray(ours.probabilities, dtype=np.float64)
        delta = float(np.abs(got - expected).max()) if len(expected) else 0.0
        labels = [str(v) for v in pipeline.predict(x)]
        mismatched = sum(str(a) != b for a, b in zip(ours.predictions, labels, strict=True))
        if delta > PROBABILITY_TOLERANCE or mismatched:
            raise CheckFailedError(
                f"ONNX export of {spec.name} differs from scikit-learn: max probability delta {delta:.2e}"
                f" (tolerance {PROBABILITY_TOLERANCE}), {mismatched} label(s) differ"
            )
        return {"max_probability_delta": delta, "rows": float(len(expected))}
    expected = np.asarray(pipeline.predict(x), dtype=np.float64)
    got = np.asarray(ours.predictions, dtype=np.float64)
    relative = float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max()) if len(expected) else 0.0
    if relative > REGRESSION_RELATIVE_TOLERANCE:
        raise CheckFailedError(
            f"ONNX export of {spec.name} differs from scikit-learn: max relative delta {relative:.2e}"
            f" (tolerance {REGRESSION_RELATIVE_TOLERANCE})"
        )
    return {"max_relative_delta": relative, "rows": float(len(expected))}
