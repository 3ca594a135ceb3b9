"""Training: build the spec's pipeline and fit it on the training side of the split.

A fitted model is a scikit-learn ``Pipeline`` of plain scikit-learn parts (a ``ColumnTransformer``
then the spec's allow-listed estimator), so an artifact needs nothing but the scientific stack to
load. Its input is :func:`mlops.training.frames.model_input` of a frame. Reading and typing the data
is :mod:`mlops.training.frames`, the split :mod:`mlops.training.split`, row identity
:mod:`mlops.training.fingerprints`.

Determinism: the split and the estimator are seeded from ``spec.training.seed``; the same rows
(in the same order), spec and code give the same fitted model, and :mod:`mlops.training.artifacts` turns it
into the same bytes.

Examples
--------
>>> frame = load_training_frame("churn.csv", spec)  # doctest: +SKIP
>>> result = train(frame, spec, code_revision="3f2a9c1")  # doctest: +SKIP
>>> result.pipeline.predict(model_input(result.holdout, spec))  # doctest: +SKIP
"""

from __future__ import annotations

import platform
import re
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.errors import InputError, SpecError
from mlops.spec.estimators import check_estimator_params, estimator_class, estimator_param_names, param_path
from mlops.spec.model import FeatureType, ModelSpec, ParamValue
from mlops.training.code import build_estimator
from mlops.training.frames import DATETIME_PARTS, _input_columns, _plain, _target_array, class_labels, model_input
from mlops.training.onnx_model import MISSING_CATEGORY  # the value the ONNX graph takes for a null category
from mlops.training.split import HoldoutFile, SplitInfo, prepare_split
from mlops.training.threshold import DecisionThreshold, choose_threshold
from mlops.values import canonical_label

# Estimators that need scaled inputs to converge and to weigh features fairly.
LINEAR_ESTIMATORS = frozenset(
    {
        "sklearn.linear_model.LogisticRegression",
        "sklearn.linear_model.LinearRegression",
        "sklearn.linear_model.Ridge",
    }
)
# Estimators that handle missing values themselves (a missing value is information, not noise).
NATIVE_MISSING_ESTIMATORS = frozenset(
    {
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "lightgbm.LGBMClassifier",
        "lightgbm.LGBMRegressor",
        "xgboost.XGBClassifier",
        "xgboost.XGBRegressor",
    }
)
# Defaults the platform gives a gradient-boosting library unless the spec sets them: one thread
# (the model must not depend on the core count) and no log lines on every fit.
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgbm.LGBMClassifier": {"n_jobs": 1, "verbose": -1},
    "lightgbm.LGBMRegressor": {"n_jobs": 1, "verbose": -1},
    "xgboost.XGBClassifier": {"n_jobs": 1, "verbosity": 0},
    "xgboost.XGBRegressor": {"n_jobs": 1, "verbosity": 0},
}
# One-hot columns per category feature; rarer categories share one "infrequent" column.
MAX_ONE_HOT = 50
# Threads a fit may use. Fixed, because the result must not depend on the machine's core count.
FIT_THREADS = 1


@dataclass
class TrainResult:
    """A fitted pipeline and everything needed to explain and reproduce it.

    Attributes
    ----------
    pipeline
        The fitted ``sklearn.pipeline.Pipeline``; input is :func:`model_input` of a frame.
    estimator
        The allow-listed import path of the estimator.
    params
        The estimator parameters actually used (spec, override, then the seeded ``random_state``).
    features
        Spec features the model uses, in spec order.
    feature_columns
        Columns of the model input (datetime features expanded), in order.
    dropped_features
        Spec features left out, each with the reason.
    train_rows, holdout_rows
        Rows fitted on and held out.
    rows_dropped
        Rows left out before the split, by reason (for example a missing target).
    holdout
        The held-out rows, typed (features and target), with their row numbers as the index
        (positions in the dataset, or in the holdout file for ``holdout_dataset``).
    classes
        Class labels the model knows (classification), in the model's order.
    seed, test_size
        The split and estimator seed and the holdout share.
    library_versions
        python, scikit-learn, numpy, pandas, scipy, joblib and the code revision.
    warnings
        Warnings the fit raised (convergence and the like), deduplicated.
    fit_seconds
        Wall time of the fit alone.
    split
        How the rows were split (:class:`SplitInfo`).
    threshold
        The decision threshold (binary classification with ``training.threshold``): fixed, or
        chosen on out-of-fold predictions of the training rows (:mod:`mlops.training.threshold`).
    """

    pipeline: Any
    estimator: str
    params: dict[str, Any]
    features: list[str]
    feature_columns: list[str]
    dropped_features: dict[str, str]
    train_rows: int
    holdout_rows: int
    rows_dropped: dict[str, int]
    holdout: pd.DataFrame
    classes: list[Any] | None
    seed: int
    test_size: float
    library_versions: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    fit_seconds: float = 0.0
    split: SplitInfo | None = None
    threshold: DecisionThreshold | None = None

    @property
    def holdout_index(self) -> list[int]:
        """Row numbers (0-based positions in the loaded dataset, or holdout file) of the held-out rows."""
        return [int(i) for i in self.holdout.index]

    def summary(self) -> dict[str, Any]:
        """JSON-serializable facts about the training (what a registry version and a card record)."""
        return {
            "estimator": self.estimator,
            "params": dict(self.params),
            "features": list(self.features),
            "feature_columns": list(self.feature_columns),
            "dropped_features": dict(self.dropped_features),
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "rows_dropped": dict(self.rows_dropped),
            "classes": None if self.classes is None else [_plain(c) for c in self.classes],
            "seed": self.seed,
            "test_size": self.test_size,
            "library_versions": dict(self.library_versions),
            "warnings": list(self.warnings),
            "fit_seconds": round(self.fit_seconds, 3),
            **({"split": self.split.to_dict()} if self.split is not None else {}),
            **({"threshold": self.threshold.to_dict()} if self.threshold is not None else {}),
        }


def estimator_params(spec: ModelSpec, params_override: Mapping[str, ParamValue] | None = None) -> dict[str, Any]:
    """The estimator's parameters: the library's platform defaults, the spec's, the override, then
    ``random_state`` from the seed. Values are the spec's JSON-like data (lists and mappings too);
    a ``class_weight`` mapping is keyed by the classes as the model sees them (:func:`class_weight`).

    Raises
    ------
    SpecError
        A parameter the estimator does not take, named by its path in the spec with the valid
        names (:func:`mlops.spec.estimators.check_estimator_params`, the check ``spec put`` makes).
    """
    check_estimator_params(spec, params_override)
    params: dict[str, Any] = {
        **LIBRARY_DEFAULTS.get(spec.training.estimator or "", {}),
        **spec.training.params,
        **(params_override or {}),
    }
    if spec.training.estimator is None:  # an entry point's build(spec, params) reads its own (and the seed)
        return dict(sorted(params.items()))
    if "random_state" in estimator_param_names(spec.training.estimator) and params.get("random_state") is None:
        params["random_state"] = spec.training.seed
    if isinstance(params.get("class_weight"), dict):
        where = param_path(spec, "class_weight", params_override)
        params["class_weight"] = class_weight(spec, params["class_weight"], where)
    return dict(sorted(params.items()))


def class_weight(spec: ModelSpec, weights: Mapping[str, Any], where: str) -> dict[Any, Any]:
    """A spec's ``class_weight`` mapping (keys are text) keyed by the class labels the model is fitted on.

    Raises
    ------
    SpecError
        A key that is not one of ``target.classes`` (named by its path, with the classes).
    """
    labels = class_labels(spec) if spec.task == "classification" else []
    by_text = {canonical_label(label): label for label in labels}
    unknown = [key for key in weights if canonical_label(key) not in by_text]
    if unknown:
        raise SpecError(
            f"{where}.{unknown[0]}: not one of target.classes ({', '.join(canonical_label(c) for c in labels)})"
        )
    return {by_text[canonical_label(key)]: value for key, value in weights.items()}


def feature_plan(spec: ModelSpec) -> tuple[list[str], dict[str, str]]:
    """Which spec features the model uses and which it drops (with the reason), from the spec alone."""
    used: list[str] = []
    dropped: dict[str, str] = {}
    for feature in spec.features:
        if feature.type is FeatureType.STRING:
            dropped[feature.name] = (
                "string feature (free text or identifier): no generalizable signal without feature engineering"
            )
        else:
            used.append(feature.name)
    return used, dropped


def build_pipeline(
    spec: ModelSpec,
    params_override: Mapping[str, ParamValue] | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
    many_valued: set[str] | frozenset[str] = frozenset(),
) -> Any:
    """The unfitted pipeline for a spec: preprocessing by feature type, then the estimator.

    Numeric features (and datetime parts) are median-imputed with a missing indicator and, for
    linear estimators, standardized; booleans are 0/1 (most frequent when missing); categories
    are one-hot encoded (unknown categories encode as all zeros, missing as its own category;
    ``many_valued`` ones keep at most ``MAX_ONE_HOT`` columns, rarer values sharing one).
    Histogram gradient boosting gets numbers as they are, because it handles missing values
    itself. String features are not used.

    Parameters
    ----------
    spec
        The model spec (features, estimator, params, seed).
    params_override
        Parameters that replace the spec's (one search candidate).
    exclude
        Spec features to leave out (for example, ones without any value in the training rows).
    many_valued
        Category features with more than ``MAX_ONE_HOT`` distinct values in the training rows.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``preprocess`` (a ``ColumnTransformer``) and ``model``.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    name = spec.training.estimator
    if name is None:
        raise SpecError("training.estimator: the spec names an entry_point; its build(spec, params) makes the pipeline")
    numeric: list[str] = []
    booleans: list[str] = []
    categories: list[str] = []
    for feature in spec.features:
        if feature.name in exclude or feature.type is FeatureType.STRING:
            continue
        if feature.type is FeatureType.DATETIME:
            numeric.extend(f"{feature.name}__{part}" for part in DATETIME_PARTS)
        elif feature.type is FeatureType.BOOL:
            booleans.append(feature.name)
        elif feature.type is FeatureType.CATEGORY:
            categories.append(feature.name)
        else:
            numeric.append(feature.name)

    native = name in NATIVE_MISSING_ESTIMATORS
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        numeric_steps: Any
        if native:
            numeric_steps = "passthrough"
        else:
            steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
            if name in LINEAR_ESTIMATORS:
                steps.append(("scale", StandardScaler()))
            numeric_steps = Pipeline(steps)
        transformers.append(("numeric", numeric_steps, numeric))
    if booleans:
        transformers.append(("bool", "passthrough" if native else SimpleImputer(strategy="most_frequent"), booleans))
    # Capping categories makes the encoder count values in Python (a third of a 100k-row fit),
    # so only features that need the cap get it.
    for group, columns, cap in (
        ("category", [c for c in categories if c not in many_valued], None),
        ("category_capped", [c for c in categories if c in many_valued], MAX_ONE_HOT),
    ):
        if columns:
            encoder = Pipeline(
                [
                    ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                    (
                        "onehot",
                        OneHotEncoder(
                            handle_unknown="ignore", max_categories=cap, sparse_output=False, dtype=np.float64
                        ),
                    ),
                ]
            )
            transformers.append((group, encoder, columns))
    if not transformers:
        raise SpecError(f"features: {spec.name} has no feature a model can use (string features are not used)")
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    model = estimator_class(name)(**estimator_params(spec, params_override))
    return Pipeline([("preprocess", preprocess), ("model", model)])


def library_versions(code_revision: str | None = None, estimator: str | None = None) -> dict[str, str]:
    """Versions of everything that shapes a fitted model (recorded as lineage), with the estimator's
    own library when it is not scikit-learn (``lightgbm``, ``xgboost``)."""
    import joblib
    import scipy
    import sklearn

    library = (estimator or "sklearn").partition(".")[0]
    # The estimator was built from its library, so the module is loaded already.
    own = {} if library == "sklearn" or library not in sys.modules else {library: sys.modules[library].__version__}
    return {
        **own,
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "code_revision": code_revision or "unknown",
    }


def _refused_value(exc: Exception, spec: ModelSpec, params_override: Mapping[str, ParamValue] | None) -> None:
    """Raise scikit-learn's refusal of a parameter value as a SpecError naming the spec path."""
    # "The 'max_depth' parameter of ... Got -3 instead.": name the field the value came from.
    named = re.match(r"The '(\w+)' parameter", str(exc))
    entry_point = spec.training.entry_point
    if entry_point is not None and (named is None or named.group(1) not in estimator_params(spec, params_override)):
        # the user's build set that value itself, not from the spec's parameters
        raise SpecError(f"training.entry_point: the estimator {entry_point} built refused a value: {exc}") from None
    where = param_path(spec, named.group(1), params_override) if named else "training.params"
    raise SpecError(f"{where}: {exc}") from None


# -------------------------------------------------------------------------------------- training
def train(
    frame: pd.DataFrame,
    spec: ModelSpec,
    params_override: Mapping[str, ParamValue] | None = None,
    code_revision: str | None = None,
    holdout: HoldoutFile | None = None,
) -> TrainResult:
    """Split, build and fit the spec's pipeline on a dataset.

    Rows without a valid target are left out (counted in ``rows_dropped``); features with no
    value at all in the training rows are dropped (with the reason).

    Parameters
    ----------
    frame
        The dataset, raw or typed (:func:`load_training_frame`); row order matters for
        reproducibility.
    spec
        The model spec.
    params_override
        Estimator parameters replacing the spec's (one search candidate).
    code_revision
        The platform code revision, recorded in ``library_versions``.
    holdout
        The fixed holdout file, for ``training.split.method: holdout_dataset`` (offline, read from
        the spec's local path when not given).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        The target column is missing, or too few rows are left to split.
    SpecError
        A parameter the estimator does not take or a value it refuses.
    """
    from threadpoolctl import threadpool_limits

    target = spec.target.name
    train_df, holdout_df, rows_dropped, split_info = prepare_split(frame, spec, holdout)

    features, dropped = feature_plan(spec)
    for name in features:
        if name not in train_df.columns:
            raise InputError(f"{spec.name}: the dataset has no column for feature {name!r}")
        if train_df[name].isna().all():
            dropped[name] = "no value in any training row"
    features = [name for name in features if name not in dropped]

    many_valued = {
        f.name
        for f in spec.features
        if f.type is FeatureType.CATEGORY and f.name in features and train_df[f.name].nunique() > MAX_ONE_HOT
    }
    if spec.training.entry_point is not None:
        # the user's code (activated by the caller: mlops.training.code.activate_code) builds it
        pipeline = build_estimator(
            spec.training.entry_point,
            spec,
            estimator_params(spec, params_override),
            lambda name: param_path(spec, name, params_override),
        )
    else:
        pipeline = build_pipeline(spec, params_override, exclude=set(dropped), many_valued=many_valued)
    x_train = model_input(train_df, spec)
    y_train = _target_array(train_df[target], spec)
    caught: list[str] = []
    started = time.perf_counter()
    # One thread: histogram gradient boosting sums gradients in parallel, and a different thread
    # count (a Lambda's vCPUs follow its memory size) changes the float rounding and the model.
    with threadpool_limits(limits=FIT_THREADS), warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            pipeline.fit(x_train, y_train)
        except ValueError as exc:
            # scikit-learn refuses a parameter value with its InvalidParameterError, defined in a
            # private module (sklearn.utils._param_validation); publicly it is the error that is
            # both a ValueError and a TypeError (documented so, for callers catching either one).
            # Any other ValueError (about the data) goes on as it is.
            if not isinstance(exc, TypeError):
                raise
            _refused_value(exc, spec, params_override)
        except Exception as exc:
            # LightGBM and XGBoost refuse a parameter value with their own error (LightGBMError,
            # XGBoostError) when the fit starts; the message names the parameter.
            library = type(exc).__module__.partition(".")[0]
            if library not in ("lightgbm", "xgboost") or library != (spec.training.estimator or "").partition(".")[0]:
                raise
            first = str(exc).strip().splitlines()[-1][:500] if str(exc).strip() else type(exc).__name__
            raise SpecError(f"training.params: {library} refused the fit: {first}") from None
        fit_seconds = time.perf_counter() - started
        # Fitted copies on folds of the training rows only: the holdout stays the gate's.
        threshold = choose_threshold(pipeline, x_train, y_train, spec)
    for record in records:
        message = f"{record.category.__name__}: {str(record.message).splitlines()[0][:200]}"
        if message not in caught:
            caught.append(message)

    feature_columns = [column for name in features for column in _input_columns(spec, name)]
    # a Pipeline answers classes_ from its last step; a user's estimator may be a Pipeline or not
    classes = [_plain(c) for c in pipeline.classes_] if hasattr(pipeline, "classes_") else None
    return TrainResult(
        pipeline=pipeline,
        estimator=spec.training.estimator or f"entry point {spec.training.entry_point}",
        params=estimator_params(spec, params_override),
        features=features,
        feature_columns=feature_columns,
        dropped_features=dropped,
        train_rows=len(train_df),
        holdout_rows=len(holdout_df),
        rows_dropped=rows_dropped,
        holdout=holdout_df,
        classes=classes,
        seed=spec.training.seed,
        test_size=spec.training.test_size,
        library_versions=library_versions(code_revision, spec.training.estimator),
        warnings=caught,
        fit_seconds=fit_seconds,
        split=split_info,
        threshold=threshold,
    )
