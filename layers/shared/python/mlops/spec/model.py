"""The model spec: one YAML or JSON document per model, validated by pydantic.

A model is data, not a stack: everything the pipelines need to know about a model (its features,
how to train it, which gates a candidate must pass, how it is approved, rolled out and monitored)
lives in its spec. Unknown keys, wrong types and estimators outside the allow-list are refused
with a message that names the field path.

Kept as one module (about 630 lines): it is one document's schema, section by section, and the
whole-spec checks (``ModelSpec._consistent``) read across every section; split, each section
would import the others to check itself.

Examples
--------
>>> spec = parse_spec({
...     "name": "churn", "task": "classification",
...     "target": {"name": "churned", "classes": [0, 1]},
...     "features": [{"name": "tenure", "type": "int", "min": 0}],
...     "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
... })
>>> spec.feature("tenure").type
<FeatureType.INT: 'int'>
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.contracts.names import BATCH_INPUT_PREFIX, BATCH_JOB_PREFIX
from mlops.errors import SpecError
from mlops.spec.params import ParamValue as ParamValue
from mlops.spec.params import param_value
from mlops.spec.schedule import BATCH_TICK, ScheduleError, parse_schedule

# Defined without pydantic (the registry and serving need them on a cold start); read from here too.
from mlops.spec.view import MODEL_NAME as MODEL_NAME
from mlops.spec.view import NUMERIC_TYPES as NUMERIC_TYPES
from mlops.spec.view import FeatureType as FeatureType

Scalar = str | int | float | bool

# Import paths a spec may name. Training imports nothing else: a spec is user data, and an
# arbitrary import path would be arbitrary code execution inside the training function.
ESTIMATORS: dict[str, Literal["classification", "regression"]] = {
    "sklearn.linear_model.LogisticRegression": "classification",
    "sklearn.ensemble.RandomForestClassifier": "classification",
    "sklearn.ensemble.GradientBoostingClassifier": "classification",
    "sklearn.ensemble.HistGradientBoostingClassifier": "classification",
    "sklearn.tree.DecisionTreeClassifier": "classification",
    "sklearn.linear_model.LinearRegression": "regression",
    "sklearn.linear_model.Ridge": "regression",
    "sklearn.ensemble.RandomForestRegressor": "regression",
    "sklearn.ensemble.GradientBoostingRegressor": "regression",
    "sklearn.ensemble.HistGradientBoostingRegressor": "regression",
    "sklearn.tree.DecisionTreeRegressor": "regression",
    # Gradient-boosting libraries (their scikit-learn interfaces), exported to ONNX by onnxmltools'
    # converters registered with skl2onnx (mlops.training.export).
    "lightgbm.LGBMClassifier": "classification",
    "lightgbm.LGBMRegressor": "regression",
    "xgboost.XGBClassifier": "classification",
    "xgboost.XGBRegressor": "regression",
}
# Estimators whose library is not in the science layer: with it, a training function would pass
# Lambda's 250 MiB unzipped limit (docs/training-pipeline.md gives the measured sizes). They train
# only with ``training.backend: sagemaker`` (the training image installs them).
SAGEMAKER_ONLY_ESTIMATORS: dict[str, str] = {
    "xgboost.XGBClassifier": "xgboost",
    "xgboost.XGBRegressor": "xgboost",
}
# Estimators a pipeline run cannot take through to a registered version yet, and why (none today).
# XGBoost runs the whole pipeline: its SageMaker training job exports it to ONNX with the library's
# answers on the holdout, and Evaluate, CheckOnnx and serving use that export
# (mlops.training.steps.evaluate). `mlops spec put` and the pipeline's plan refuse an estimator
# listed here (:func:`pipeline_problems`).
NOT_YET_IN_PIPELINE: dict[str, str] = {}

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
# Metrics where smaller is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})

DRIFT_METHODS = ("auto", "ks", "wasserstein", "psi", "chi2", "jensen_shannon")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Feature(_Strict):
    """One input column and the constraints every dataset and request must meet."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    type: FeatureType
    description: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[Scalar] | None = Field(default=None, min_length=1)
    regex: str | None = None
    unique: bool = False
    drift_method: Literal["auto", "ks", "wasserstein", "psi", "chi2", "jensen_shannon"] = "auto"

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> Feature:
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC_TYPES:
            raise ValueError(f"min/max apply to float and int features, not {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.allowed is not None and self.type in (FeatureType.FLOAT, FeatureType.DATETIME, FeatureType.BOOL):
            raise ValueError(f"allowed values apply to category, string and int features, not {self.type.value}")
        if self.regex is not None and self.type not in (FeatureType.STRING, FeatureType.CATEGORY):
            raise ValueError(f"regex applies to string and category features, not {self.type.value}")
        # Drift compares datetime features as numbers (seconds since the epoch): numeric methods apply.
        compared_as_numbers = (*NUMERIC_TYPES, FeatureType.DATETIME)
        if self.drift_method in {"ks", "wasserstein"} and self.type not in compared_as_numbers:
            raise ValueError(
                f"drift_method {self.drift_method} needs a numeric or datetime feature, not {self.type.value}"
            )
        if self.drift_method in {"chi2", "jensen_shannon"} and self.type in compared_as_numbers:
            raise ValueError(f"drift_method {self.drift_method} needs a categorical feature, not {self.type.value}")
        return self


class Target(_Strict):
    """The column the model predicts. Classification targets list their classes."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    classes: list[Scalar] | None = Field(default=None, min_length=2)
    positive_class: Scalar | None = None
    # Class balance bounds: every class must make up at least this share of the rows.
    min_class_fraction: float | None = Field(default=None, gt=0, lt=1)
    min: float | None = None
    max: float | None = None


class RowCount(_Strict):
    min: int = Field(default=1, ge=0)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RowCount:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Search(_Strict):
    """Optional hyperparameter search: candidates train in parallel, the best goes on."""

    strategy: Literal["grid", "random"] = "grid"
    space: dict[str, list[ParamValue]] = Field(min_length=1)
    max_candidates: int = Field(default=8, ge=1, le=40)
    metric: str | None = None

    @field_validator("space", mode="before")
    @classmethod
    def _json_like(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            name: [param_value(v, f"{name}.{i}") for i, v in enumerate(values)] if isinstance(values, list) else values
            for name, values in value.items()
        }


class Split(_Strict):
    """How a dataset version is split into training and holdout rows (docs/training-pipeline.md).

    ``hash`` (the default): a row's side is a stable function of its content (the values of
    ``key``, or of every feature and the target) and ``training.seed``, so a row never moves from
    training to holdout between dataset versions: appending rows never puts the champion's
    training rows in the next holdout. ``time``: the newest ``training.test_size`` share of rows by
    ``time_column`` (a datetime feature) is held out. ``holdout_dataset``: every row of the
    dataset trains, and the fixed file ``holdout`` (a key in the data bucket, or a local path for
    offline runs) is the holdout.
    """

    method: Literal["hash", "time", "holdout_dataset"] = "hash"
    key: list[str] | None = Field(default=None, min_length=1)
    time_column: str | None = None
    holdout: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _method_fields(self) -> Split:
        if self.method == "time" and not self.time_column:
            raise ValueError("method time needs time_column (a datetime feature)")
        if self.method == "holdout_dataset" and not self.holdout:
            raise ValueError("method holdout_dataset needs holdout (the holdout file's key in the data bucket)")
        if self.method != "time" and self.time_column is not None:
            raise ValueError(f"time_column applies to method time, not {self.method}")
        if self.method != "holdout_dataset" and self.holdout is not None:
            raise ValueError(f"holdout applies to method holdout_dataset, not {self.method}")
        if self.method != "hash" and self.key is not None:
            raise ValueError(f"key applies to method hash, not {self.method}")
        return self


class ThresholdObjective(_Strict):
    """A decision threshold chosen on the training rows for a stated objective (docs/spec-format.md).

    ``max_f1``: the threshold with the highest F1. ``min_precision``: the highest recall among
    thresholds whose precision is at least ``value``. ``min_recall``: the highest precision among
    thresholds whose recall is at least ``value``. Chosen on out-of-fold predictions of the
    training rows (``folds`` stratified folds), never on the holdout the gate scores.
    """

    objective: Literal["max_f1", "min_precision", "min_recall"]
    value: float | None = Field(default=None, gt=0, le=1)
    folds: int = Field(default=5, ge=2, le=20)

    @model_validator(mode="after")
    def _value_fits_objective(self) -> ThresholdObjective:
        if self.objective == "max_f1" and self.value is not None:
            raise ValueError("objective max_f1 takes no value (it is the threshold with the highest F1)")
        if self.objective != "max_f1" and self.value is None:
            kind = self.objective.removeprefix("min_")
            raise ValueError(f"objective {self.objective} needs value: the lowest {kind} accepted, for example 0.9")
        return self


# The two shapes of training.threshold; the tags are left out of error paths (format_validation_error).
_FIXED, _CHOSEN = "threshold:number", "threshold:objective"


def _threshold_kind(value: Any) -> str:
    """A mapping is an objective to choose the threshold by; anything else is read as the threshold itself."""
    return _CHOSEN if isinstance(value, dict | ThresholdObjective) else _FIXED


# ``package.module:function`` of a code package (mlops.training.code parses it the same way).
ENTRY_POINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class Training(_Strict):
    """How the model is trained: an allow-listed ``estimator`` (the default path), or the
    ``entry_point`` of the model's own code package (``mlops code upload``), pinned to
    ``code_version`` or, when omitted, the latest version when the run starts (docs/bring-your-own-code.md).
    """

    estimator: str | None = None
    entry_point: str | None = None
    code_version: int | None = Field(default=None, ge=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    split: Split = Field(default_factory=Split)
    backend: Literal["lambda", "sagemaker"] = "lambda"
    instance_type: str = "ml.m5.large"
    search: Search | None = None
    # Binary classification: the probability of the positive class at or above which it is
    # predicted (a number), or how to choose it (an objective). None: the class with the highest
    # probability, as the estimator predicts.
    threshold: (
        Annotated[
            Annotated[Annotated[float, Field(gt=0, lt=1)], Tag(_FIXED)] | Annotated[ThresholdObjective, Tag(_CHOSEN)],
            Discriminator(_threshold_kind),
        ]
        | None
    ) = None

    @field_validator("estimator")
    @classmethod
    def _allow_listed(cls, value: str | None) -> str | None:
        if value is not None and value not in ESTIMATORS:
            allowed = ", ".join(sorted(ESTIMATORS))
            raise ValueError(f"estimator {value!r} is not in the allow-list ({allowed})")
        return value

    @field_validator("entry_point")
    @classmethod
    def _entry_point_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(ENTRY_POINT_PATTERN, value):
            raise ValueError(
                f"entry_point {value!r} is not package.module:function (for example churnfeatures.model:build)"
            )
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _json_like(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {name: param_value(v, str(name)) for name, v in value.items()}


class MetricGate(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> MetricGate:
        if self.min is None and self.max is None:
            raise ValueError("a metric gate needs min, max or both")
        return self


class Gates(_Strict):
    metrics: dict[str, MetricGate] = Field(default_factory=dict)
    must_beat_champion: bool = True
    # The candidate's primary metric must beat the champion's by at least this much.
    min_improvement: float = Field(default=0.0, ge=0)
    primary_metric: str | None = None


class Approval(_Strict):
    required: bool = True
    timeout_hours: float = Field(default=72, gt=0, le=24 * 365)
    # Four-eyes rule: whoever uploaded the dataset may not approve the candidate trained on it.
    four_eyes: bool = True


class Deployment(_Strict):
    strategy: Literal["all_at_once", "canary", "shadow"] = "all_at_once"
    canary_percent: int = Field(default=10, ge=1, le=99)
    bake_minutes: int = Field(default=30, ge=0, le=24 * 60)


class PerformanceMonitoring(_Strict):
    """How a labelled window's metrics are judged against the champion's holdout metrics.

    A metric is degraded only when it is worse than its tolerance with ``confidence`` (a one-sided
    interval that counts the uncertainty of both the window and the holdout), and only when the
    window has the support to tell: ``min_labelled_rows`` labelled rows, and ``min_support`` rows
    behind a rate (predicted positives for precision, actual positives for recall).
    """

    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    min_labelled_rows: int = Field(default=100, ge=1)
    min_support: int = Field(default=30, ge=1)
    # Bounded metrics (accuracy, precision, recall, F1, ROC AUC, R²): an absolute drop.
    max_metric_drop: float = Field(default=0.05, gt=0)
    # Error metrics (RMSE, MAE, log loss): a relative increase.
    max_error_increase: float = Field(default=0.10, gt=0)
    # Per-metric tolerances, overriding the two above (same units).
    tolerances: dict[str, float] = Field(default_factory=dict)
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)

    @field_validator("tolerances")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, tolerance in value.items():
            if not tolerance > 0:
                raise ValueError(f"{name}: a tolerance must be greater than 0 (got {tolerance})")
        return value


class Monitoring(_Strict):
    enabled: bool = True
    schedule: str = "rate(1 day)"
    # Windows smaller than this are reported as too small, never as drift.
    min_rows: int = Field(default=30, ge=1)
    # Above this many rows a feature is judged by effect size (PSI, distances), not p-values.
    large_window_rows: int = Field(default=5000, ge=1)
    p_value: float = Field(default=0.05, gt=0, lt=1)
    psi_threshold: float = Field(default=0.2, gt=0)
    distance_threshold: float = Field(default=0.1, gt=0)
    retrain_on_drift: bool = False
    cooldown_hours: float = Field(default=24, ge=0)
    performance: PerformanceMonitoring = Field(default_factory=PerformanceMonitoring)

    @field_validator("schedule")
    @classmethod
    def _schedule_expression(cls, value: str) -> str:
        if not re.fullmatch(r"(rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)|cron\([^)]+\))", value):
            raise ValueError(f"{value!r} is not an EventBridge schedule expression (rate(...) or cron(...))")
        return value


class Batch(_Strict):
    """Scheduled batch scoring: ``input`` (a key under ``batch/<model>/``) scored at each ``schedule`` time.

    The platform's one periodic trigger starts each due time's job once, on the input's current
    object version (docs/batch.md); ``output`` is a prefix under ``batch-jobs/<model>/`` (each job
    writes under ``<output>/<job id>/``), by default ``batch-jobs/<model>/``.
    """

    schedule: str | None = None
    input: str | None = None
    output: str | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule_expression(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            schedule = parse_schedule(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        if schedule.period is not None and schedule.period < BATCH_TICK:
            raise ValueError(
                f"{value!r}: the batch trigger runs every {int(BATCH_TICK.total_seconds() // 60)} minutes;"
                " a batch schedule may not be more frequent"
            )
        return value


class Fairness(_Strict):
    protected_attributes: list[str] = Field(default_factory=list)
    # Disparate impact: the lowest group positive rate over the highest must be at least this.
    min_disparate_impact: float = Field(default=0.8, gt=0, le=1)
    # gate: a candidate whose predictions fall below min_disparate_impact is not registered.
    # report: the figures are computed and shown, nothing is refused. The dataset's own labels are
    # always reported, never refused: base rates are a fact about the world, not a data defect.
    mode: Literal["gate", "report"] = "gate"
    # Groups with fewer rows are listed but take no part in disparate impact.
    min_group_size: int = Field(default=30, ge=1)
    # The gate refuses only when the predictions' disparate impact is below the minimum with this
    # confidence (its upper confidence bound is below it): a ratio of two rates measured on a
    # holdout moves by tenths from noise alone, and a point estimate would refuse fair models.
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class ValidationSettings(_Strict):
    """Per-model data validation policy (docs/validation.md)."""

    # Rows that repeat an earlier row exactly: a failed check, a warning, or not checked.
    duplicate_rows: Literal["error", "warning", "off"] = "error"


class ModelSpec(_Strict):
    """A model's whole contract with the platform."""

    name: str
    description: str = ""
    owner: str = ""
    task: Literal["classification", "regression"]
    target: Target
    features: list[Feature] = Field(min_length=1)
    allow_extra_columns: bool = False
    row_count: RowCount = Field(default_factory=RowCount)
    training: Training
    gates: Gates = Field(default_factory=Gates)
    approval: Approval = Field(default_factory=Approval)
    deployment: Deployment = Field(default_factory=Deployment)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    fairness: Fairness = Field(default_factory=Fairness)
    batch: Batch = Field(default_factory=Batch)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError(
                f"{value!r} must start with a lowercase letter and hold only lowercase letters, digits and '-'"
                " (at most 63 characters)"
            )
        return value

    def _check_batch(self) -> None:
        batch, inputs, outputs = self.batch, f"{BATCH_INPUT_PREFIX}/{self.name}/", f"{BATCH_JOB_PREFIX}/{self.name}"
        if batch.input is not None and (not batch.input.startswith(inputs) or batch.input.endswith("/")):
            raise ValueError(
                f"batch.input: {batch.input!r} must be an object key under {inputs} (e.g. {inputs}nightly.csv);"
                " batch jobs read only the data bucket's batch/<model>/"
            )
        if (
            batch.output is not None
            and batch.output.strip("/") != outputs
            and not batch.output.startswith(f"{outputs}/")
        ):
            raise ValueError(f"batch.output: {batch.output!r} must be a prefix under {outputs}/ (or omitted)")
        if batch.schedule is not None and batch.input is None:
            raise ValueError("batch.input: a batch.schedule needs the input it scores (a key under " + inputs + ")")
        if batch.schedule is None and (batch.input is not None or batch.output is not None):
            raise ValueError("batch.schedule: batch.input and batch.output are used only by a schedule; add one")

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"features: duplicate feature names {duplicates}")
        if self.target.name in names:
            raise ValueError(f"target.name: {self.target.name!r} is also listed as a feature")
        training = self.training
        if training.estimator is None and training.entry_point is None:
            raise ValueError(
                "training.estimator: required field is missing (an allow-listed scikit-learn class), unless "
                "training.entry_point names your code package's build function"
            )
        if training.estimator is not None and training.entry_point is not None:
            raise ValueError(
                "training.entry_point: give estimator or entry_point, not both; your build(spec, params) "
                "returns the estimator"
            )
        if training.entry_point is not None and training.backend == "sagemaker":
            raise ValueError(
                "training.entry_point: the SageMaker backend does not run a code package yet; "
                "train it with backend lambda (the default)"
            )
        if training.code_version is not None and training.entry_point is None:
            raise ValueError("training.code_version: pins the code of an entry_point; this spec has no entry_point")
        estimator_task = ESTIMATORS[self.training.estimator] if self.training.estimator is not None else self.task
        if estimator_task != self.task:
            raise ValueError(
                f"training.estimator: {self.training.estimator} is a {estimator_task} estimator but task is {self.task}"
            )
        library = SAGEMAKER_ONLY_ESTIMATORS.get(self.training.estimator or "")
        if library is not None and self.training.backend != "sagemaker":
            raise ValueError(
                f"training.backend: {self.training.estimator} trains only on backend sagemaker ({library} does not"
                " fit in a Lambda function beside the science layer, 250 MiB unzipped); set training.backend: sagemaker"
            )
        if self.task == "classification":
            if self.target.classes is None:
                raise ValueError("target.classes: a classification target must list its classes")
            if self.target.positive_class is not None and self.target.positive_class not in self.target.classes:
                raise ValueError(f"target.positive_class: {self.target.positive_class!r} is not one of target.classes")
        elif self.target.classes is not None or self.target.min_class_fraction is not None:
            raise ValueError("target.classes: a regression target has no classes")
        if self.training.threshold is not None:
            if self.task != "classification":
                raise ValueError(
                    "training.threshold: a decision threshold applies to binary classification, and task is"
                    f" {self.task} (a regression model predicts a number, not a class)"
                )
            if len(self.target.classes or []) != 2:
                raise ValueError(
                    "training.threshold: a decision threshold applies to binary classification, and"
                    f" target.classes lists {len(self.target.classes or [])} classes (a multiclass model"
                    " predicts the class with the highest probability)"
                )
        if self.training.estimator == "xgboost.XGBClassifier" and self.target.classes is not None:
            expected = list(range(len(self.target.classes)))
            if [c if isinstance(c, int) and not isinstance(c, bool) else None for c in self.target.classes] != expected:
                raise ValueError(
                    f"target.classes: xgboost.XGBClassifier needs the classes 0 to {len(expected) - 1}, integers in"
                    f" order (got {self.target.classes}); encode the labels as integers or use lightgbm.LGBMClassifier"
                )
        valid_metrics = METRICS[self.task]
        for metric in [*self.gates.metrics, self.gates.primary_metric]:
            if metric is not None and metric not in valid_metrics:
                raise ValueError(f"gates.metrics: {metric!r} is not a {self.task} metric ({', '.join(valid_metrics)})")
        search = self.training.search
        if search is not None and search.metric is not None and search.metric not in valid_metrics:
            raise ValueError(f"training.search.metric: {search.metric!r} is not a {self.task} metric")
        self._check_batch()
        for attribute in self.fairness.protected_attributes:
            if attribute not in names:
                raise ValueError(f"fairness.protected_attributes: {attribute!r} is not a feature")
        split = self.training.split
        for column in split.key or []:
            if column not in names and column != self.target.name:
                raise ValueError(f"training.split.key: {column!r} is not a feature or the target")
        if split.time_column is not None:
            if split.time_column not in names:
                raise ValueError(f"training.split.time_column: {split.time_column!r} is not a feature")
            if self.feature(split.time_column).type != FeatureType.DATETIME:
                raise ValueError(f"training.split.time_column: {split.time_column!r} is not a datetime feature")
        for metric in self.monitoring.performance.tolerances:
            if metric not in valid_metrics:
                raise ValueError(
                    f"monitoring.performance.tolerances: {metric!r} is not a {self.task} metric"
                    f" ({', '.join(valid_metrics)})"
                )
        return self

    # ----------------------------------------------------------------------------------------
    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def primary_metric(self) -> str:
        """The metric candidates are ranked by: the spec's choice, else a sensible default."""
        if self.gates.primary_metric:
            return self.gates.primary_metric
        return "roc_auc" if self.task == "classification" else "rmse"

    @property
    def positive_class(self) -> Scalar | None:
        if self.task != "classification" or not self.target.classes:
            return None
        return self.target.positive_class if self.target.positive_class is not None else self.target.classes[-1]

    def canonical_json(self) -> str:
        """A stable serialization: equal specs give equal text, whatever the input order."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """sha256 of the spec's settings that differ from their defaults (sorted keys, compact JSON).

        Fields left at their defaults are not hashed: a spec keeps its fingerprint when a later
        release of the platform adds an optional field (a new field is absent from every spec
        written before it), and writing a default out changes nothing, as it changes no behaviour.
        The stored document (:meth:`canonical_json`) still has every default filled in.
        """
        settings = self.model_dump(mode="json", exclude_defaults=True)
        return hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def pipeline_problems(spec: ModelSpec) -> list[str]:
    """Why a pipeline run could not take this spec through to a registered version (empty: it can)."""
    reason = NOT_YET_IN_PIPELINE.get(spec.training.estimator or "")
    return [f"training.estimator: {spec.training.estimator} cannot run in the pipeline yet: {reason}"] if reason else []


def format_validation_error(exc: ValidationError, source: str = "spec") -> str:
    """One line per problem, each naming the field path (``features.2.type``)."""
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"] if part not in (_FIXED, _CHOSEN)) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        # Whole-spec checks name their own field ("gates.metrics: ..."): use it as the path.
        field_named = re.match(r"^([A-Za-z_][\w.]*): (.*)$", message, re.DOTALL)
        if not error["loc"] and field_named:
            path, message = field_named.group(1), field_named.group(2)
        if error["type"] == "param_value":
            # A parameter value's own path (training.params.monotone_constraints.2).
            path = ".".join(part for part in (path, str(error["ctx"]["path"])) if part)
            message = str(error["ctx"]["reason"])
        elif error["type"] == "extra_forbidden":
            message = "unknown field (not part of the spec format)"
        elif error["type"] == "missing":
            message = "required field is missing"
        got = error.get("input")
        detail = (
            f" (got {got!r})"
            if error["type"] not in ("missing", "param_value") and not isinstance(got, dict | list)
            else ""
        )
        lines.append(f"{source}: {path}: {message}{detail}")
    return "\n".join(lines)


def parse_spec(document: Any, source: str = "spec") -> ModelSpec:
    """Validate a parsed document; raise :class:`SpecError` naming every bad field."""
    if not isinstance(document, dict):
        raise SpecError(f"{source}: a spec must be a mapping of fields, got {type(document).__name__}")
    try:
        return ModelSpec.model_validate(document)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source)) from None


def parse_spec_text(text: str, source: str = "spec") -> ModelSpec:
    """Parse YAML or JSON text (JSON is YAML) into a validated spec."""
    import yaml  # here, not at the top: the inference function parses specs from JSON and never needs it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{source}: not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_spec(document, source)


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_spec_text(text, str(path))
