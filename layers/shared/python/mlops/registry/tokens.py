"""Paging tokens: a DynamoDB key as an opaque string, and back, refusing anything else.

Every listing of the registry (models, versions, specs, dataset versions, audit events) returns
``next_token`` made by :func:`encode_token`; :func:`decode_token` accepts only a key of the
shape the tables have, whose partition is the one being listed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from mlops.errors import InputError
from mlops.registry.chain import canonical_json
from mlops.registry.keys import (
    GSI1_PK,
    GSI1_SK,
    PK,
    SEQ,
    SK,
)


def encode_token(key: Mapping[str, Any]) -> str:
    """An opaque pagination token for a DynamoDB key."""
    return base64.urlsafe_b64encode(canonical_json(dict(key)).encode()).decode().rstrip("=")


# The key attributes a token may hold, as the tables' keys have them (table key, or table and
# index keys of a gsi1 query). A token is caller input: anything else would reach DynamoDB as an
# invalid ExclusiveStartKey (a 500), and a long one could nest deep enough to crash the parser.
TOKEN_KEY_SHAPES = (frozenset({PK, SK}), frozenset({PK, SEQ}), frozenset({PK, SK, GSI1_PK, GSI1_SK}))
MAX_TOKEN_CHARS = 4096


def decode_token(token: str, expected: Mapping[str, Any]) -> dict[str, Any]:
    """Read a token made by :func:`encode_token`; its key must match ``expected`` attributes."""
    key: Any = None
    if len(token) <= MAX_TOKEN_CHARS:  # a real token is a few hundred characters
        try:
            raw = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode())
            # A key is one flat object: more brackets than that is no token (and must not reach the parser).
            if raw.count(b"{") + raw.count(b"[") <= 1:
                key = json.loads(raw)
        except (ValueError, binascii.Error):
            key = None
    if (
        not isinstance(key, dict)
        or frozenset(key) not in TOKEN_KEY_SHAPES
        or not all(type(v) is str or (type(v) is int and k == SEQ) for k, v in key.items())
        or any(key.get(k) != v for k, v in expected.items())
    ):
        raise InputError("next token: not a token this listing returned (pass the value printed as next_token)")
    return key
