"""The train/holdout split: by the rows' content hash (default), by time, or a fixed holdout file.

No leakage between dataset versions: by default a row's side of the split is a function of its
content and the seed alone (:func:`split_frame`, method ``hash``), so appending rows to a
dataset never moves a row the champion trained on into the next holdout
(docs/training-pipeline.md, "How the holdout is chosen").
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.errors import InputError
from mlops.spec.model import ModelSpec
from mlops.training.fingerprints import _SPLIT_SALT, hash_kinds, row_fingerprints, row_hashes
from mlops.training.frames import coerce_frame, load_training_frame


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
