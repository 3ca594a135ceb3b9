"""Small value conversions shared by validation, training, serving and the gates (numpy only, no pandas).

Kept free of pandas so the inference function can use them without importing it.

Examples
--------
>>> canonical_label(1.0), canonical_label(" 1 "), canonical_label(True)
('1', '1', 'true')
>>> finite_number("0.5"), finite_number(float("nan")), finite_number(True)
(0.5, None, None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# How text files write booleans and missing values: the validation reader, the CLI's CSV records
# and batch scoring read them the same way (their one home is here: no pandas).
TRUE_STRINGS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_STRINGS = frozenset({"false", "f", "no", "n", "0"})
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A")


def canonical_label(value: Any) -> str:
    """The canonical text of a label, so spec ``1``, CSV ``"1"`` and ``"1.0"`` compare equal."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer() and text.lstrip("+-").replace(".", "", 1).isdigit():
        return str(int(number))
    return text


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float; ``None`` for missing, booleans, text that is not a number, NaN and ±inf."""
    if value is None or isinstance(value, bool | np.bool_):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
