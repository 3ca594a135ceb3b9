"""Estimator parameter values in a spec: JSON-like data, never code, refused by their own path.

``training.params`` and ``training.search.space`` take text, numbers, booleans and null, and lists
and mappings of them (``monotone_constraints: [1, 0, -1]``, ``class_weight: {yes: 2}``), at most
``MAX_PARAM_DEPTH`` levels deep. A mapping's keys are text: a YAML number or boolean key is read as
its canonical text (``{1: 2}`` is ``{"1": 2}``, as labels compare), so a spec stored as JSON means
the same after the round trip. A refused value names its path inside the parameter
(``training.params.monotone_constraints.2: nan is not a finite number``): :func:`param_value`
raises a pydantic error of type ``param_value`` that ``mlops.spec.model.format_validation_error``
appends to the field's location.

Examples
--------
>>> param_value({1: [1, 0, -1]}, "class_weight")
{'1': [1, 0, -1]}
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import JsonValue
from pydantic_core import PydanticCustomError

# What a parameter's value may be (pydantic's JSON value: text, numbers, booleans, null, lists and
# mappings with text keys).
ParamValue = JsonValue
# How deep a parameter value may nest (a list of mappings of lists is 3).
MAX_PARAM_DEPTH = 3


def _refuse_param(path: str, reason: str) -> PydanticCustomError:
    # format_validation_error appends ``path`` to the field's own location.
    return PydanticCustomError("param_value", "{path}: {reason}", {"path": path, "reason": reason})


def _key_text(key: str | bool | int | float) -> str:
    """A mapping key as text: ``1`` and ``1.0`` are ``"1"``, ``True`` is ``"true"`` (as labels compare)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return key if isinstance(key, str) else repr(key) if isinstance(key, float) else str(key)


def param_value(value: Any, path: str, depth: int = 0) -> Any:
    """A parameter value checked to be JSON-like data; mapping keys read as text (:func:`_key_text`).

    Raises
    ------
    PydanticCustomError
        Naming the path inside the value (``monotone_constraints.2``) and what is wrong there.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse_param(path, f"{value!r} is not a finite number")
        return value
    if depth >= MAX_PARAM_DEPTH:
        raise _refuse_param(path, f"nested more than {MAX_PARAM_DEPTH} levels deep")
    if isinstance(value, list | tuple):
        return [param_value(item, f"{path}.{i}", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str | bool | int | float):
                raise _refuse_param(path, f"mapping key {key!r} is not text or a number")
            text = _key_text(key)
            if text in out:
                raise _refuse_param(path, f"key {key!r} appears twice (as {text!r})")
            out[text] = param_value(item, f"{path}.{text}", depth + 1)
        return out
    kind = type(value).__name__
    raise _refuse_param(path, f"a value of type {kind} is not JSON (text, number, boolean, list or mapping)")


__all__ = ["MAX_PARAM_DEPTH", "ParamValue", "param_value"]
