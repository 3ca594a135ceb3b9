"""Row identity: content hashes of typed rows, which decide a row's side of the hash split and
identify the training rows a registered version saw (its stored fingerprints)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.errors import CheckFailedError, InputError
from mlops.spec.model import FeatureType, ModelSpec

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
