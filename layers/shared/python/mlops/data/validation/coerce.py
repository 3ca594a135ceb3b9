"""Turning a column, as read, into the values its feature type means (vectorized, per chunk).

Shared by validation and by the reference profile so both read a value the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.values import FALSE_STRINGS, TRUE_STRINGS
from mlops.values import canonical_label as label  # noqa: F401 - the validation name


@dataclass
class Numeric:
    """A column as float64 ``values``; ``null`` marks missing cells, ``bad`` cells that are not numbers."""

    values: np.ndarray
    null: np.ndarray | None  # None: no missing value
    bad: np.ndarray | None  # None: every present value is a number


def numeric(series: pd.Series) -> Numeric:
    """Numbers of a column read as numbers where possible (``"abc"`` is bad, ``""`` is null)."""
    kind = series.dtype.kind
    if kind in "iu":
        return Numeric(series.to_numpy(), None, None)
    if kind == "f":
        values = series.to_numpy()
        null = np.isnan(values)
        return Numeric(values, null if null.any() else None, None)
    if kind == "b":
        return Numeric(series.to_numpy().astype(np.float64), None, None)
    null = series.isna().to_numpy()
    parsed = pd.to_numeric(series, errors="coerce")
    values = np.asarray(parsed, dtype=np.float64)
    bad = np.isnan(values) & ~null
    return Numeric(values, null if null.any() else None, bad if bad.any() else None)


def factorized(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``codes`` (-1 for missing), ``uniques`` as text, and the ``null`` mask of a column.

    Checks on text columns run on the distinct values and are mapped back through the codes,
    which is what makes regex and type checks cheap on low-cardinality columns.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniques = np.asarray(series.cat.categories.astype(str), dtype=object)
    else:
        codes, raw = pd.factorize(series)
        uniques = np.asarray([_text(v) for v in raw], dtype=object)
    return codes, uniques, codes < 0


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def booleans(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct text: is it a recognised boolean, and its value."""
    lowered = [u.strip().lower() for u in uniques]
    ok = np.fromiter((u in TRUE_STRINGS or u in FALSE_STRINGS for u in lowered), dtype=bool, count=len(lowered))
    value = np.fromiter((u in TRUE_STRINGS for u in lowered), dtype=bool, count=len(lowered))
    return ok, value


def datetimes(uniques: np.ndarray) -> np.ndarray:
    """ISO 8601 parse of distinct texts (UTC); NaT where a text is not a date/time."""
    if len(uniques) == 0:
        return np.empty(0, dtype="datetime64[ns]")
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object), errors="coerce", format="ISO8601", utc=True)
    return np.asarray(parsed.dt.tz_localize(None), dtype="datetime64[ns]")
