"""Imported models: a model trained elsewhere, checked against its spec and scored like a candidate.

An import arrives in one of two stored formats, both of which load without running code that the
platform did not ship:

- ``onnx``: an ONNX graph that takes the platform's inputs (one ``[N, 1]`` tensor per model-input
  column of the spec, :func:`mlops.training.frames.model_input`: ``float`` for numbers, booleans and
  datetime parts, ``string`` for categories) and answers ``label`` and ``probabilities``
  (classification, no ZipMap) or ``variable`` (regression), like the platform's own exports
  (:mod:`mlops.training.export`);
- ``sklearn-pickle-5``: a fitted scikit-learn estimator or pipeline in the platform's restricted
  artifact format (:mod:`mlops.training.artifacts`), whose ``feature_names_in_`` are model-input
  columns of the spec.

Converting what a user has (an MLflow model directory, a plain pickle) into one of these happens
on the user's machine, in the CLI, never here: the platform never unpickles user-supplied bytes
except through the restricted unpickler.

Scoring an ONNX import in the training functions uses ``onnx.reference.ReferenceEvaluator`` (onnx
is in the science layer; onnxruntime is only in the inference layer): :class:`OnnxReferenceModel`
is a scikit-learn-shaped wrapper (``predict``, ``predict_proba``, ``classes_``) over it, so the
evaluation, the gate and the champion comparison are exactly a trained candidate's.

Examples
--------
>>> check_onnx_import(data, spec)  # doctest: +SKIP
>>> model = load_imported(data, sha256, "onnx", spec)  # doctest: +SKIP
>>> evaluate(model, holdout, spec)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import numpy as np

from mlops.errors import CheckFailedError, InputError
from mlops.registry.origin import IMPORT_FORMATS, ONNX_FORMAT, SKLEARN_FORMAT
from mlops.spec.model import FeatureType, ModelSpec
from mlops.training.artifacts import load_artifact, sha256_hex
from mlops.training.onnx_model import MISSING_CATEGORY
from mlops.values import canonical_label

_ONNX_FLOAT, _ONNX_STRING = 1, 8  # onnx.TensorProto.FLOAT, STRING
__all__ = ["ONNX_FORMAT", "SKLEARN_FORMAT", "ColumnsByName", "OnnxReferenceModel", "load_imported"]
CLASSIFIER_OUTPUTS = ("label", "probabilities")
REGRESSOR_OUTPUT = "variable"


def input_columns(spec: ModelSpec) -> dict[str, str]:
    """The model-input columns an imported model may take, with their kind (``float`` or ``string``)."""
    from mlops.training.frames import _input_columns

    columns: dict[str, str] = {}
    for feature in spec.features:
        if feature.type is FeatureType.STRING:
            continue
        for column in _input_columns(spec, feature.name):
            columns[column] = "string" if feature.type is FeatureType.CATEGORY else "float"
    return columns


def check_format(value: str) -> str:
    if value not in IMPORT_FORMATS:
        raise InputError(f"format {value!r}: an imported model is stored as one of {', '.join(IMPORT_FORMATS)}")
    return value


# ---------------------------------------------------------------------------------------------- ONNX


def check_onnx_import(data: bytes, spec: ModelSpec, *, source: str = "the ONNX model") -> dict[str, Any]:
    """Check an ONNX graph's inputs and outputs against the spec; its columns and classes.

    Raises
    ------
    InputError
        Not an ONNX model; an input that is not a model-input column of the spec, has the wrong
        element type or shape; a missing output for the spec's task. The message names the input
        or output and what the spec expects.
    """
    import onnx

    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...: all mean "not a model"
        raise InputError(f"{source}: not a valid ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
    expected = input_columns(spec)
    props = {p.key: p.value for p in model.metadata_props}
    names = [i.name for i in model.graph.input]
    columns = json.loads(props["columns"]) if "columns" in props else names
    if len(columns) != len(names):
        raise InputError(f"{source}: metadata 'columns' names {len(columns)} columns for {len(names)} graph inputs")
    problems: list[str] = []
    for graph_input, column in zip(model.graph.input, columns, strict=True):
        kind = expected.get(column)
        tensor = graph_input.type.tensor_type
        if kind is None:
            problems.append(
                f"input {column!r} is not a feature of spec {spec.name} (model-input columns: {', '.join(expected)})"
            )
            continue
        want = _ONNX_STRING if kind == "string" else _ONNX_FLOAT
        if tensor.elem_type != want:
            problems.append(
                f"input {column!r} is {onnx.TensorProto.DataType.Name(tensor.elem_type)}, the spec's"
                f" {spec.feature(column.split('__')[0]).type.value} feature needs"
                f" {'STRING' if want == _ONNX_STRING else 'FLOAT'}"
            )
        dims = tensor.shape.dim
        if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != 1):
            problems.append(f"input {column!r} must have shape [N, 1] (one column per input)")
    outputs = [o.name for o in model.graph.output]
    if spec.task == "classification":
        missing = [o for o in CLASSIFIER_OUTPUTS if o not in outputs]
        if missing:
            problems.append(
                f"a classifier must answer outputs {', '.join(CLASSIFIER_OUTPUTS)} (has {', '.join(outputs)});"
                " export with skl2onnx options={'zipmap': False} and name them (mlops models import renames"
                " skl2onnx's output_label and output_probability)"
            )
    elif REGRESSOR_OUTPUT not in outputs:
        problems.append(f"a regressor must answer output {REGRESSOR_OUTPUT!r} (has {', '.join(outputs)})")
    if problems:
        raise InputError(f"{source} does not fit spec {spec.name} ({spec.task}): " + "; ".join(problems))
    classes = json.loads(props["classes"]) if "classes" in props else _graph_classes(model)
    if spec.task == "classification":
        _check_classes(classes, spec, source)
    return {"columns": columns, "classes": classes}


def _graph_classes(model: Any) -> list[Any] | None:
    """The class labels an ai.onnx.ml classifier node declares (the probabilities' column order)."""
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings":
                return [s.decode() for s in attribute.strings]
            if attribute.name in ("classlabels_int64s", "classlabels_ints"):
                return [int(i) for i in attribute.ints]
    return None


def _check_classes(classes: list[Any] | None, spec: ModelSpec, source: str) -> None:
    if classes is None:
        return
    known = {canonical_label(c) for c in spec.target.classes or []}
    unknown = [c for c in classes if known and canonical_label(c) not in known]
    if unknown:
        raise InputError(
            f"{source} predicts class(es) {', '.join(map(str, unknown))} that spec {spec.name}'s target"
            f" {spec.target.name} does not have (classes: {', '.join(map(str, spec.target.classes or []))})"
        )


class OnnxReferenceModel:
    """An ONNX import as scikit-learn's interface, run by ``onnx.reference`` (no onnxruntime needed).

    ``predict``/``predict_proba`` take :func:`mlops.training.frames.model_input`'s frame, feed each
    graph input its column (a null category as ``"(missing)"``, as serving feeds it) and read the
    graph's outputs. Labels are the arg-max of the probabilities, as serving answers.
    """

    def __init__(self, data: bytes, spec: ModelSpec) -> None:
        from onnx import load_model_from_string
        from onnx.reference import ReferenceEvaluator

        shape = check_onnx_import(data, spec)
        model = load_model_from_string(data)
        self.evaluator = ReferenceEvaluator(model)
        self.inputs = [i.name for i in model.graph.input]
        self.columns: list[str] = shape["columns"]
        self.kinds = input_columns(spec)
        self.task = spec.task
        self.spec = spec
        classes = shape["classes"] if shape["classes"] is not None else list(spec.target.classes or [])
        from mlops.training.onnx_model import class_values

        self.classes_ = np.asarray(class_values(classes, spec), dtype=object) if self.task == "classification" else None
        self.feature_names_in_ = np.asarray(self.columns, dtype=object)
        self._last: tuple[tuple[str, str], np.ndarray] | None = None

    def _feeds(self, x: Any) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        for name, column in zip(self.inputs, self.columns, strict=True):
            values = x[column].tolist()
            if self.kinds[column] == "string":
                text = [MISSING_CATEGORY if _is_missing(v) else canonical_label(v) for v in values]
                feeds[name] = np.asarray(text, dtype=object).reshape(-1, 1)
            else:
                feeds[name] = np.asarray(values, dtype=np.float64).astype(np.float32).reshape(-1, 1)
        return feeds

    def _run(self, x: Any, output: str) -> np.ndarray:
        # The last answer is kept: Evaluate asks predict() then predict_proba() of the same rows, and
        # the holdout predictions ask both again (onnx.reference runs a tree ensemble in Python:
        # ~1.5 ms a row for 100 trees, benchmarks/bench_xgboost_evaluate.py), so the holdout is run once.
        feeds = self._feeds(x)
        key = (output, _feeds_digest(feeds))
        if self._last is not None and self._last[0] == key:
            return np.array(self._last[1], copy=True)
        # run() answers a list of the requested outputs (its annotation also allows a dict)
        outputs = cast(list[Any], self.evaluator.run([output], feeds))
        answer = np.asarray(outputs[0])
        self._last = (key, answer)
        return np.array(answer, copy=True)

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba: a regressor has no class probabilities")
        probabilities = self._run(x, "probabilities").astype(np.float64)
        # float32 inside the graph: rows sum to 1 within ~1e-7; scikit-learn's metrics want them exact
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, x: Any) -> np.ndarray:
        if self.task == "classification":
            assert self.classes_ is not None
            return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])
        return self._run(x, REGRESSOR_OUTPUT).astype(np.float64).ravel()


def _feeds_digest(feeds: dict[str, np.ndarray]) -> str:
    """A digest of a graph's inputs: equal digests, equal rows (floats by their bytes, text by its values)."""
    digest = hashlib.sha256()
    for name, values in feeds.items():
        digest.update(name.encode() + b"\x00" + str(values.shape).encode())
        if values.dtype == object:
            digest.update(json.dumps([str(v) for v in values.ravel()]).encode())
        else:
            digest.update(values.tobytes())
    return digest.hexdigest()


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# ------------------------------------------------------------------------------------------- sklearn


def check_sklearn_import(model: Any, spec: ModelSpec, *, source: str = "the scikit-learn model") -> list[str]:
    """Check a fitted estimator against the spec: its input columns and its task. Its columns.

    Raises
    ------
    InputError
        Fitted without column names, on a column that is not a model-input column of the spec, a
        classifier for a regression spec (or the reverse), or classes the target does not have.
    """
    if not hasattr(model, "predict"):
        raise InputError(f"{source}: a {type(model).__name__} has no predict(); not a model")
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise InputError(
            f"{source}: fitted without column names (no feature_names_in_); fit it on a pandas DataFrame whose"
            f" columns are spec {spec.name}'s features, so that each input is matched by name"
        )
    expected = input_columns(spec)
    columns = [str(c) for c in names]
    unknown = [c for c in columns if c not in expected]
    if unknown:
        raise InputError(
            f"{source} was fitted on column(s) {', '.join(unknown)} that spec {spec.name} has no (model-input)"
            f" feature for (features: {', '.join(expected)})"
        )
    is_classifier = hasattr(model, "classes_") and hasattr(model, "predict_proba")
    if spec.task == "classification" and not is_classifier:
        raise InputError(
            f"{source}: spec {spec.name} is a classification, but a {type(model).__name__} has no classes_ and"
            " predict_proba"
        )
    if spec.task == "regression" and hasattr(model, "classes_"):
        raise InputError(f"{source}: spec {spec.name} is a regression, but a {type(model).__name__} is a classifier")
    if is_classifier and spec.task == "classification":
        _check_classes([c.item() if isinstance(c, np.generic) else c for c in model.classes_], spec, source)
    return columns


class ColumnsByName:
    """A fitted estimator given exactly the columns it was fitted on, in its order.

    :func:`mlops.training.frames.model_input` gives every model-input column in spec order; a model
    trained elsewhere may use fewer columns, in another order (scikit-learn refuses both).
    """

    def __init__(self, model: Any, columns: list[str]) -> None:
        self.model = model
        self.columns = columns
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_

    def predict(self, x: Any) -> Any:
        return self.model.predict(x[self.columns])

    def predict_proba(self, x: Any) -> Any:
        return self.model.predict_proba(x[self.columns])


def load_imported(data: bytes, sha256: str, artifact_format: str, spec: ModelSpec) -> Any:
    """An imported artifact, sha256-checked, as something :func:`mlops.training.evaluation.evaluate` scores.

    Raises
    ------
    CheckFailedError
        The bytes do not hash to ``sha256``, or the restricted unpickler refuses them.
    InputError
        The model does not fit the spec (the message names the column, output or class).
    """
    if sha256_hex(data) != (sha256 or "").lower():
        raise CheckFailedError(
            f"imported model sha256 mismatch: expected {sha256}, got {sha256_hex(data)}; refusing to load it"
        )
    if check_format(artifact_format) == ONNX_FORMAT:
        return OnnxReferenceModel(data, spec)
    model = load_artifact(data, sha256)
    return ColumnsByName(model, check_sklearn_import(model, spec))


def export_imported_onnx(model: Any, spec: ModelSpec) -> bytes:
    """An imported scikit-learn model as ONNX with the platform's inputs and outputs (served by onnxruntime).

    Raises
    ------
    mlops.training.export.OnnxExportError
        skl2onnx cannot convert it (the version is then registered without ONNX, the reason recorded).
    """
    from onnx import helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from mlops.training.export import TARGET_OPSET, OnnxExportError, _register_converters

    _register_converters()
    inner = model.model if isinstance(model, ColumnsByName) else model
    columns = [str(c) for c in inner.feature_names_in_]
    kinds = input_columns(spec)
    inputs = [(c, StringTensorType([None, 1]) if kinds[c] == "string" else FloatTensorType([None, 1])) for c in columns]
    classification = spec.task == "classification"
    try:
        onnx_model = convert_sklearn(
            inner,
            initial_types=inputs,
            target_opset=TARGET_OPSET,
            options={id(inner): {"zipmap": False}} if classification else None,
        )
    except Exception as exc:  # skl2onnx raises many kinds; the message names the part
        raise OnnxExportError(f"cannot export the imported {type(inner).__name__} to ONNX: {exc}") from None
    rename = {"output_label": "label", "output_probability": "probabilities"} if classification else {}
    if not classification and onnx_model.graph.output[0].name != REGRESSOR_OUTPUT:
        rename[onnx_model.graph.output[0].name] = REGRESSOR_OUTPUT
    rename_outputs(onnx_model, rename)
    props = {"columns": json.dumps(columns)}
    if classification:
        props["classes"] = json.dumps([c.item() if isinstance(c, np.generic) else c for c in inner.classes_])
    helper.set_model_props(onnx_model, props)
    return bytes(onnx_model.SerializeToString())


def rename_outputs(model: Any, rename: dict[str, str]) -> None:
    """Rename graph outputs (and every node output feeding them) in place."""
    if not rename:
        return
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name in rename:
                node.output[i] = rename[name]
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    for output in model.graph.output:
        if output.name in rename:
            output.name = rename[output.name]
