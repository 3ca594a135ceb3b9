"""Training: read a dataset the way validation reads it, split it, build and fit the spec's pipeline.

A fitted model is a scikit-learn ``Pipeline`` of plain scikit-learn parts (a ``ColumnTransformer``
then the spec's allow-listed estimator), so an artifact needs nothing but the scientific stack to
load. Its input is :func:`model_input` of a frame: the spec's features typed (numbers as float64,
booleans as 0/1, categories as canonical text, missing as NaN), each datetime feature replaced by
numeric columns (``<name>__days`` since 1970-01-01 and ``<name>__month``), and ``string``
features (identifiers) dropped. Training, evaluation and inference all go through
:func:`model_input`, so a value means the same thing in each.

Determinism: the split and the estimator are seeded from ``spec.training.seed``; the same rows
(in the same order), spec and code give the same fitted model, and :mod:`mlops.training.artifacts` turns it
into the same bytes.

No leakage between dataset versions: by default a row's side of the split is a function of its
content and the seed alone (:func:`split_frame`, method ``hash``), so appending rows to a
dataset never moves a row the champion trained on into the next holdout; :func:`row_fingerprints`
identify the training rows a registered version saw, so a later evaluation can leave them out
whatever split made them (docs/training-pipeline.md, "How the holdout is chosen").

Examples
--------
>>> frame = load_training_frame("churn.csv", spec)  # doctest: +SKIP
>>> result = train(frame, spec, code_revision="3f2a9c1")  # doctest: +SKIP
>>> result.pipeline.predict(model_input(result.holdout, spec))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import platform
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.errors import CheckFailedError, InputError, SpecError
from mlops.spec.estimators import check_estimator_params, estimator_class, estimator_param_names, param_path
from mlops.spec.model import FeatureType, ModelSpec, Scalar
from mlops.training.onnx_model import MISSING_CATEGORY  # the value the ONNX graph takes for a null category

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
    }
)
# One-hot columns per category feature; rarer categories share one "infrequent" column.
MAX_ONE_HOT = 50
DATETIME_PARTS = ("days", "month")
# Threads a fit may use. Fixed, because the result must not depend on the machine's core count.
FIT_THREADS = 1
_NS_PER_DAY = 86_400 * 10**9


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
        }


# ---------------------------------------------------------------------------------------- reading
def load_training_frame(
    source: str | Path | IO[bytes], spec: ModelSpec, source_name: str | None = None
) -> pd.DataFrame:
    """Read a CSV or gzip CSV into a typed frame: the spec's features and target, nothing else.

    The bytes are read exactly as validation reads them (same parser, same missing-value
    strings), then typed by :func:`coerce_frame`. Rows the reader cannot parse are skipped, as
    validation reports them.

    Parameters
    ----------
    source
        A file path, or a binary stream with ``read(n)`` (an S3 ``StreamingBody``).
    spec
        The model spec (feature types, target).
    source_name
        Named in messages; defaults to the path.

    Returns
    -------
    pandas.DataFrame
        One column per feature and the target, typed; index 0..n-1 in file order.

    Raises
    ------
    InputError
        The data cannot be read, or a feature or the target column is missing from the header.
    """
    from mlops.data.validation.engine import read_as_text
    from mlops.data.validation.reader import CsvReader

    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                return load_training_frame(handle, spec, source_name or str(path))
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    name = source_name or "<stream>"
    wanted = [*spec.feature_names, spec.target.name]
    reader = CsvReader(source, name, wanted, read_as_text(spec))
    frames = [chunk.frame for chunk in reader.chunks()]
    if reader.fatal or reader.header is None:
        problems = "; ".join(f.message for f in reader.findings() if f.status == "failed") or "no header"
        raise InputError(f"{name}: cannot be read for training: {problems}")
    missing = [column for column in wanted if column not in reader.used]
    if missing:
        raise InputError(f"{name}: column(s) {', '.join(missing)} named in the spec are missing from the header")
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=wanted)
    return coerce_frame(raw, spec)


def coerce_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Type a frame's spec columns (features, and the target when present); others are left out.

    Idempotent: a typed frame comes back unchanged in value. Values that are not valid for their
    type become missing (validation is where they are reported).

    Parameters
    ----------
    frame
        Columns by name, as read from CSV (text or numbers) or built from JSON records.
    spec
        The model spec.

    Returns
    -------
    pandas.DataFrame
        float/int features as float64, bool as float64 0/1, category and string as canonical
        text (object, NaN when missing), datetime as ``datetime64[ns]`` (UTC, naive); a
        classification target as the spec's class values (object, NaN when not a class), a
        regression target as float64. The index is kept.
    """
    columns: dict[str, Any] = {}
    for feature in spec.features:
        if feature.name in frame.columns:
            columns[feature.name] = _coerce_feature(frame[feature.name], feature.type)
    target = spec.target.name
    if target in frame.columns:
        columns[target] = _coerce_target(frame[target], spec)
    return _frame(columns, frame.index)


def _frame(columns: Mapping[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """A frame that keeps object columns as object (pandas 3 would infer its string dtype)."""
    series = {name: pd.Series(values, index=index, dtype=values.dtype) for name, values in columns.items()}
    return pd.DataFrame(series, index=index)


def _coerce_feature(series: pd.Series, kind: FeatureType) -> np.ndarray:
    if kind in (FeatureType.FLOAT, FeatureType.INT):
        parsed = coerce.numeric(series)
        values = parsed.values.astype(np.float64, copy=True)
        if parsed.bad is not None:
            values[parsed.bad] = np.nan
        return values
    if kind is FeatureType.DATETIME:
        if series.dtype.kind == "M":
            stamps = series.dt.tz_convert(None) if getattr(series.dt, "tz", None) is not None else series
            return np.asarray(stamps, dtype="datetime64[ns]")
        codes, uniques, _ = coerce.factorized(series)
        stamps_by_code = coerce.datetimes(uniques)
        out = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]")
        present = codes >= 0
        out[present] = stamps_by_code[codes[present]]
        return out
    codes, uniques, _ = coerce.factorized(series)
    present = codes >= 0
    if kind is FeatureType.BOOL:
        if series.dtype.kind == "b":
            return series.to_numpy().astype(np.float64)
        ok, truth = coerce.booleans(uniques)
        lookup = np.where(ok, truth.astype(np.float64), np.nan)
        values = np.full(len(series), np.nan)
        values[present] = lookup[codes[present]]
        return values
    # Identifiers are often all distinct and never used by the model: kept as read, not canonicalized.
    labels = uniques if kind is FeatureType.STRING else np.asarray([coerce.label(u) for u in uniques], dtype=object)
    text = np.full(len(series), np.nan, dtype=object)
    text[present] = labels[codes[present]]
    return text


def _coerce_target(series: pd.Series, spec: ModelSpec) -> np.ndarray:
    if spec.task == "regression":
        return _coerce_feature(series, FeatureType.FLOAT)
    classes = list(spec.target.classes or [])
    by_label = {coerce.label(c): c for c in classes}
    codes, uniques, _ = coerce.factorized(series)
    lookup = np.asarray([by_label.get(coerce.label(u), np.nan) for u in uniques], dtype=object)
    out = np.full(len(series), np.nan, dtype=object)
    present = codes >= 0
    out[present] = lookup[codes[present]]
    return out


def model_input(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The columns a fitted pipeline takes, from raw or typed rows (training, evaluation, inference).

    Parameters
    ----------
    frame
        Rows with the spec's features by name (other columns are ignored).
    spec
        The model spec.

    Returns
    -------
    pandas.DataFrame
        Typed features in spec order; each datetime feature as ``<name>__days`` and
        ``<name>__month``; string features left out.

    Raises
    ------
    InputError
        A feature the model uses is missing from ``frame``.
    """
    missing = [f.name for f in spec.features if f.type is not FeatureType.STRING and f.name not in frame.columns]
    if missing:
        raise InputError(f"model input: feature(s) {', '.join(missing)} missing")
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        if feature.type is FeatureType.STRING:
            continue
        values = _coerce_feature(frame[feature.name], feature.type)
        if feature.type is FeatureType.DATETIME:
            columns.update(_datetime_parts(feature.name, values))
        else:
            columns[feature.name] = values
    return _frame(columns, frame.index)


def _input_columns(spec: ModelSpec, name: str) -> list[str]:
    if spec.feature(name).type is FeatureType.DATETIME:
        return [f"{name}__{part}" for part in DATETIME_PARTS]
    return [name]


def _datetime_parts(name: str, stamps: np.ndarray) -> dict[str, np.ndarray]:
    missing = np.isnat(stamps)
    ns = stamps.astype("int64").astype(np.float64)
    days = np.where(missing, np.nan, ns / _NS_PER_DAY)
    months = stamps.astype("datetime64[M]").astype("int64") % 12 + 1
    return {f"{name}__days": days, f"{name}__month": np.where(missing, np.nan, months.astype(np.float64))}


# ----------------------------------------------------------------------------------- row identity
# The encoding of row hashes. Registered versions store their training rows' fingerprints, and a
# later run compares them with its holdout, so the encoding must never change silently: a test
# pins known values. Change it only with a new version number (old fingerprints then read as
# "unknown", never as "not seen").
ROW_HASH_ENCODING = 1
# Numbers are hashed to this many significant bits (about 9.6 decimal digits).
NUMBER_BITS = 32
_FINGERPRINT_SALT = "mlops.row-fingerprint"
_SPLIT_SALT = "mlops.split"
# The value code of a missing cell (any fixed 64-bit constant; this one is 2^64 / golden ratio).
_MISSING_CODE = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer (Steele, Lea and Flood 2014): every input bit moves every output bit."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def _salt(*parts: str) -> np.uint64:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "big"))


def hash_kinds(spec: ModelSpec, columns: list[str] | None = None) -> dict[str, str]:
    """How each column's values are encoded for row hashing: ``number``, ``datetime`` or ``text``.

    Parameters
    ----------
    spec
        The model spec (feature types, task).
    columns
        Features and/or the target; by default every feature and the target.

    Returns
    -------
    dict
        Column name to kind, sorted by name (the order rows are hashed in).
    """
    names = columns if columns is not None else [*spec.feature_names, spec.target.name]
    kinds: dict[str, str] = {}
    for name in sorted(names):
        if name == spec.target.name:
            kinds[name] = "number" if spec.task == "regression" else "text"
        else:
            kind = spec.feature(name).type
            if kind in (FeatureType.FLOAT, FeatureType.INT, FeatureType.BOOL):
                kinds[name] = "number"
            elif kind is FeatureType.DATETIME:
                kinds[name] = "datetime"
            else:
                kinds[name] = "text"
    return kinds


def _value_codes(series: pd.Series, kind: str, canonical: bool) -> np.ndarray:
    """One uint64 per cell that depends only on the typed value (missing cells share one code)."""
    if kind == "number":
        values = series.to_numpy(dtype=np.float64, copy=True)
        missing = np.isnan(values)
        # Rounded to NUMBER_BITS significant bits, so that text parsers that differ in the last
        # digits (pandas' fast string parser is off by up to ~2000 ulps) give one identity.
        mantissa, exponent = np.frexp(np.where(missing, 0.0, values))
        values = np.ldexp(np.round(mantissa * 2.0**NUMBER_BITS), exponent - NUMBER_BITS)
        values[values == 0] = 0.0  # -0.0 and 0.0 are the same number
        codes = values.view(np.uint64).copy()
        codes[missing] = _MISSING_CODE
        return codes
    if kind == "datetime":
        # NaT is the smallest int64, a code no real timestamp has.
        return np.asarray(series.to_numpy(dtype="datetime64[ns]")).view(np.int64).view(np.uint64).copy()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = [coerce.label(u) if canonical else str(u) for u in uniques]
    table = np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "big") for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )
    out = np.full(len(series), _MISSING_CODE, dtype=np.uint64)
    present = codes >= 0
    out[present] = table[codes[present]]
    return out


def row_hashes(typed: pd.DataFrame, spec: ModelSpec, kinds: Mapping[str, str], salt: str) -> np.ndarray:
    """A 64-bit hash of each row's values in ``kinds``' columns, taken by name (column order is irrelevant).

    Each cell's value code is mixed with its column's name and ``salt``, and the row's hash folds
    the cells in sorted name order. Equal typed values give equal hashes whatever the CSV
    spelling (``1``, ``1.0``; ISO dates with or without a zone), row position or column order.

    Raises
    ------
    InputError
        A column is not in ``typed``.
    """
    missing = [name for name in kinds if name not in typed.columns]
    if missing:
        raise InputError(f"{spec.name}: column(s) {', '.join(missing)} needed to hash rows are missing")
    out = np.full(len(typed), _salt(salt), dtype=np.uint64)
    for name in sorted(kinds):
        cells = _value_codes(typed[name], kinds[name], canonical=name == spec.target.name)
        out = _mix64(out ^ _mix64(cells ^ _salt(salt, name)))
    return out


def row_fingerprints(typed: pd.DataFrame, spec: ModelSpec, kinds: Mapping[str, str] | None = None) -> np.ndarray:
    """Content identity of each typed row: a hash of every feature and the target (not seeded).

    What a registered version stores of its training rows, so that a later holdout can leave out
    the rows the champion trained on, whatever split made either of them.

    Parameters
    ----------
    typed
        Typed rows (:func:`coerce_frame`).
    spec
        The model spec.
    kinds
        Columns and their encodings (:func:`hash_kinds`); by default every feature and the target.

    Returns
    -------
    numpy.ndarray
        uint64, one per row, in row order.
    """
    return row_hashes(typed, spec, kinds if kinds is not None else hash_kinds(spec), _FINGERPRINT_SALT)


def fingerprint_bytes(fingerprints: np.ndarray) -> bytes:
    """The distinct fingerprints, sorted, as ``.npy`` bytes (loads without pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.unique(np.asarray(fingerprints, dtype=np.uint64)), allow_pickle=False)
    return buffer.getvalue()


def load_fingerprints(data: bytes, source: str = "fingerprints") -> np.ndarray:
    """Read :func:`fingerprint_bytes` back (a sorted uint64 array).

    Raises
    ------
    CheckFailedError
        The bytes are not a one-dimensional uint64 ``.npy`` array.
    """
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CheckFailedError(f"{source}: not a readable .npy array ({exc})") from None
    if values.dtype != np.uint64 or values.ndim != 1:
        raise CheckFailedError(f"{source}: expected a 1-D uint64 array, got {values.dtype} {values.shape}")
    return np.asarray(values)


# ------------------------------------------------------------------------------------- splitting
@dataclass(frozen=True)
class HoldoutFile:
    """A fixed holdout file (``training.split.method: holdout_dataset``) and where it came from.

    Attributes
    ----------
    frame
        Its rows as :func:`load_training_frame` reads them.
    source
        ``uri``, ``sha256`` and ``rows``; from S3 also ``bucket``, ``key`` and ``version_id``.
    """

    frame: pd.DataFrame
    source: dict[str, Any]

    @classmethod
    def from_bytes(cls, data: bytes, spec: ModelSpec, uri: str, **source: Any) -> HoldoutFile:
        """Read a holdout file's bytes (CSV or gzip CSV); ``source`` adds e.g. ``version_id``."""
        frame = load_training_frame(io.BytesIO(data), spec, source_name=uri)
        sha256 = hashlib.sha256(data).hexdigest()
        return cls(frame=frame, source={"uri": uri, **source, "sha256": sha256, "rows": len(frame)})

    @classmethod
    def from_path(cls, path: str | Path, spec: ModelSpec) -> HoldoutFile:
        """Read a local holdout file (offline runs)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(
                f"training.split.holdout: {path} cannot be read ({exc.strerror or exc}); offline it is a local"
                " path, in the pipeline a key in the data bucket"
            ) from None
        return cls.from_bytes(data, spec, str(path))


@dataclass
class SplitInfo:
    """How one dataset was split: what a run's evaluation and a model card show.

    Attributes
    ----------
    method
        ``hash``, ``time`` or ``holdout_dataset``.
    seed, test_size
        ``training.seed`` (the hash's salt) and ``training.test_size``.
    key
        Hash split: the columns hashed (every feature and the target unless ``split.key``).
    time_column, cutoff
        Time split: the datetime feature, and the oldest held-out time (ISO 8601).
    holdout_file
        Fixed holdout: ``uri``, ``sha256``, ``rows`` (and ``version_id`` from S3).
    train_rows, holdout_rows
        Rows on each side.
    notes
        What a reader of the metrics should know (a class absent from one side, rows left out).
    """

    method: str
    seed: int
    test_size: float
    key: list[str] | None = None
    time_column: str | None = None
    cutoff: str | None = None
    holdout_file: dict[str, Any] | None = None
    train_rows: int = 0
    holdout_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def split(
    frame: pd.DataFrame, spec: ModelSpec, holdout: HoldoutFile | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/holdout split of typed rows by ``spec.training.split`` (see :func:`split_frame`).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(train, holdout)``, each in the original row order.
    """
    train_df, holdout_df, _ = split_frame(frame, spec, holdout)
    return train_df, holdout_df


def split_frame(
    frame: pd.DataFrame, spec: ModelSpec, holdout: HoldoutFile | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, SplitInfo]:
    """Split typed rows into training and holdout rows, by ``spec.training.split.method``.

    ``hash`` (default): a row is held out when the 64-bit hash of its ``split.key`` values (every
    feature and the target by default; by column name) salted with ``training.seed``, read as a
    fraction of 2^64, is below ``training.test_size``. A row's side depends on nothing but its
    content and the seed: appending, removing or reordering rows or columns never moves another
    row, and identical rows share a side. The holdout's share is ``test_size`` on average, not
    exactly; classes are not stratified, because per-class quantiles would move rows between
    dataset versions (a class missing from one side is noted).

    ``time``: rows at or after the cutoff, the newest ``ceil(test_size * n)``-th time of
    ``split.time_column``, are held out (ties at the cutoff too); rows without a time train.

    ``holdout_dataset``: every row trains and ``holdout`` (the fixed file; offline, read from
    ``split.holdout`` as a local path when not given) is the holdout. Dataset rows identical to
    a holdout row are left out of training.

    Parameters
    ----------
    frame
        Typed rows (:func:`coerce_frame`); the index is kept in both parts.
    spec
        The model spec (``training.split``, ``test_size``, ``seed``).
    holdout
        The fixed holdout file (``holdout_dataset`` only).

    Returns
    -------
    tuple
        ``(train, holdout, info)``, rows in their original order.

    Raises
    ------
    InputError
        Fewer than two rows, or a split that leaves either side empty (the message says why).
    """
    settings = spec.training.split
    test_size = spec.training.test_size
    info = SplitInfo(method=settings.method, seed=spec.training.seed, test_size=test_size)
    rows = len(frame)
    if settings.method == "holdout_dataset":
        train_df, holdout_df = _fixed_holdout(frame, spec, holdout, info)
    else:
        if rows < 2:
            raise InputError(
                f"{spec.name}: {rows} row(s) cannot be split into training and holdout (test_size {test_size})"
            )
        if settings.method == "time":
            held = _time_holdout(frame, spec, info)
        else:
            kinds = hash_kinds(spec, settings.key)
            info.key = list(kinds)
            hashes = row_hashes(frame, spec, kinds, f"{_SPLIT_SALT}:{spec.training.seed}")
            held = hashes < _threshold(test_size)
            where = "hash split"
            fix = "use more rows, a larger training.test_size, or training.split.method holdout_dataset"
            if not held.any():
                raise InputError(
                    f"{spec.name}: the {where} put none of the {rows} rows in the holdout (each row is held out"
                    f" with probability {test_size}): {fix}"
                )
            if held.all():
                raise InputError(
                    f"{spec.name}: the {where} put all {rows} rows in the holdout, none to train on: {fix}"
                )
        train_df, holdout_df = frame.loc[~held], frame.loc[held]
    info.train_rows, info.holdout_rows = len(train_df), len(holdout_df)
    info.notes.extend(_class_notes(train_df, holdout_df, spec))
    return train_df, holdout_df, info


def _threshold(test_size: float) -> np.uint64:
    return np.uint64(min(int(test_size * 2.0**64), 2**64 - 1))


def _time_holdout(frame: pd.DataFrame, spec: ModelSpec, info: SplitInfo) -> np.ndarray:
    column = spec.training.split.time_column
    assert column is not None  # the spec requires it for method time
    info.time_column = column
    if column not in frame.columns:
        raise InputError(f"{spec.name}: training.split.time_column {column!r} is not in the dataset")
    stamps = np.asarray(frame[column].to_numpy(dtype="datetime64[ns]"))
    present = ~np.isnat(stamps)
    timed = int(present.sum())
    if timed == 0:
        raise InputError(f"{spec.name}: no row has a value for training.split.time_column {column!r}")
    newest = np.sort(stamps[present])[::-1]
    cutoff = newest[min(int(np.ceil(timed * spec.training.test_size)), timed) - 1]
    held = present & (stamps >= cutoff)
    info.cutoff = pd.Timestamp(cutoff).isoformat()
    if held.all():
        raise InputError(
            f"{spec.name}: every row is at or after the time split's cutoff {info.cutoff} ({column}), none"
            " is older to train on: the dataset needs rows from more than one time"
        )
    untimed = len(frame) - timed
    if untimed:
        info.notes.append(f"{untimed} row(s) without a {column} value are in training (a time split cannot place them)")
    return held


def _fixed_holdout(
    frame: pd.DataFrame, spec: ModelSpec, holdout: HoldoutFile | None, info: SplitInfo
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if holdout is None:
        path = spec.training.split.holdout
        assert path is not None  # the spec requires it for method holdout_dataset
        holdout = HoldoutFile.from_path(path, spec)
    info.holdout_file = dict(holdout.source)
    held = coerce_frame(holdout.frame.reset_index(drop=True), spec)
    if spec.target.name not in held.columns:
        raise InputError(f"{holdout.source.get('uri')}: the holdout file has no target column {spec.target.name!r}")
    valid = held[spec.target.name].notna().to_numpy()
    if not valid.all():
        info.notes.append(f"{int((~valid).sum())} holdout row(s) without a valid target are not scored")
        held = held.loc[valid]
    if held.empty:
        raise InputError(f"{holdout.source.get('uri')}: the holdout file has no row with a valid target")
    # A dataset row that is also a holdout row would be scored on after training on it.
    overlap = np.isin(row_fingerprints(frame, spec), row_fingerprints(held, spec))
    if overlap.any():
        info.notes.append(f"{int(overlap.sum())} dataset row(s) identical to a holdout row are left out of training")
    train_df = frame.loc[~overlap]
    if train_df.empty:
        raise InputError(f"{spec.name}: every dataset row is also in the holdout file; none is left to train on")
    return train_df, held


def _class_notes(train_df: pd.DataFrame, holdout_df: pd.DataFrame, spec: ModelSpec) -> list[str]:
    target = spec.target.name
    if spec.task != "classification" or target not in train_df.columns:
        return []

    def counts(part: pd.DataFrame) -> dict[str, int]:
        out: dict[str, int] = {}
        for value, count in part[target].value_counts(dropna=True).items():  # count first: few distinct
            label = coerce.label(value)
            out[label] = out.get(label, 0) + int(count)
        return out

    trained, held = counts(train_df), counts(holdout_df)
    notes: list[str] = []
    for label in sorted(set(trained) | set(held)):
        if label not in held:
            notes.append(
                f"class `{label}` has no holdout row ({trained[label]} in training): the holdout metrics say"
                " nothing about it"
            )
        elif label not in trained:
            notes.append(
                f"class `{label}` has no training row ({held[label]} in the holdout): the model cannot predict it"
            )
    return notes


def split_for_training(
    frame: pd.DataFrame, spec: ModelSpec, holdout: HoldoutFile | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exactly the split :func:`train` makes: typed rows with a valid target, then :func:`split`.

    Use it to get a candidate's holdout again from the same dataset (to score the champion on
    the same rows, or a candidate from its artifact).

    Parameters
    ----------
    frame
        The dataset as given to :func:`train` (raw or typed).
    spec
        The model spec.
    holdout
        The fixed holdout file, for ``training.split.method: holdout_dataset``.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(train, holdout)`` typed, indexed by row position in ``frame`` (in the holdout file
        for ``holdout_dataset``).

    Raises
    ------
    InputError
        No target column, or too few rows to split.
    """
    train_df, holdout_df, _, _ = prepare_split(frame, spec, holdout)
    return train_df, holdout_df


def prepare_split(
    frame: pd.DataFrame, spec: ModelSpec, holdout: HoldoutFile | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], SplitInfo]:
    """Type the rows, leave out those without a valid target, then :func:`split_frame` them.

    Returns
    -------
    tuple
        ``(train, holdout, rows_dropped, info)``: typed frames indexed by row position,
        the rows left out before the split by reason, and how the split was made.
    """
    target = spec.target.name
    if target not in frame.columns:
        raise InputError(f"{spec.name}: the dataset has no target column {target!r}")
    typed = coerce_frame(frame.reset_index(drop=True), spec)
    valid_target = typed[target].notna().to_numpy()
    rows_dropped: dict[str, int] = {}
    if not valid_target.all():
        reason = "target missing or not a number" if spec.task == "regression" else "target missing or not a class"
        rows_dropped[reason] = int((~valid_target).sum())
        typed = typed.loc[valid_target]
    train_df, holdout_df, info = split_frame(typed, spec, holdout)
    return train_df, holdout_df, rows_dropped, info


# -------------------------------------------------------------------------------------- pipeline
def estimator_params(spec: ModelSpec, params_override: Mapping[str, Scalar | None] | None = None) -> dict[str, Any]:
    """The estimator's parameters: the spec's, then the override, then ``random_state`` from the seed.

    Raises
    ------
    SpecError
        A parameter the estimator does not take, named by its path in the spec with the valid
        names (:func:`mlops.spec.estimators.check_estimator_params`, the check ``spec put`` makes).
    """
    check_estimator_params(spec, params_override)
    params: dict[str, Any] = {**spec.training.params, **(params_override or {})}
    if "random_state" in estimator_param_names(spec.training.estimator) and params.get("random_state") is None:
        params["random_state"] = spec.training.seed
    return dict(sorted(params.items()))


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
    params_override: Mapping[str, Scalar | None] | None = None,
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


def library_versions(code_revision: str | None = None) -> dict[str, str]:
    """Versions of everything that shapes a fitted model (recorded as lineage)."""
    import joblib
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "code_revision": code_revision or "unknown",
    }


# -------------------------------------------------------------------------------------- training
def train(
    frame: pd.DataFrame,
    spec: ModelSpec,
    params_override: Mapping[str, Scalar | None] | None = None,
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
    from sklearn.utils._param_validation import InvalidParameterError
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
        except InvalidParameterError as exc:
            # "The 'max_depth' parameter of ... Got -3 instead.": name the field the value came from.
            named = re.match(r"The '(\w+)' parameter", str(exc))
            where = param_path(spec, named.group(1), params_override) if named else "training.params"
            raise SpecError(f"{where}: {exc}") from None
    fit_seconds = time.perf_counter() - started
    for record in records:
        message = f"{record.category.__name__}: {str(record.message).splitlines()[0][:200]}"
        if message not in caught:
            caught.append(message)

    feature_columns = [column for name in features for column in _input_columns(spec, name)]
    model = pipeline.named_steps["model"]
    classes = [_plain(c) for c in model.classes_] if hasattr(model, "classes_") else None
    return TrainResult(
        pipeline=pipeline,
        estimator=spec.training.estimator,
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
        library_versions=library_versions(code_revision),
        warnings=caught,
        fit_seconds=fit_seconds,
        split=split_info,
    )


def _target_array(series: pd.Series, spec: ModelSpec) -> np.ndarray:
    """Labels as a homogeneous array (ints stay ints), so class order and dtype are stable."""
    if spec.task == "regression":
        return series.to_numpy(dtype=np.float64)
    values = series.tolist()
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, int | float | np.number) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values], dtype=object)


def target_array(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target column of a typed frame as the array the model was fitted on."""
    return _target_array(frame[spec.target.name], spec)


def class_labels(spec: ModelSpec) -> list[Any]:
    """The spec's classes as the model sees them (same types as :func:`target_array`)."""
    return [_plain(v) for v in _target_array(pd.Series(list(spec.target.classes or []), dtype=object), spec)]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON can hold it)."""
    return value.item() if isinstance(value, np.generic) else value
