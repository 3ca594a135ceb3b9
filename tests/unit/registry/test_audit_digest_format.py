"""The audit digest's format on its own: keys that list newest first, bodies that round-trip, refusals."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.registry.digest import (
    GENESIS,
    ChainHead,
    Digest,
    DigestFormatError,
    Refusal,
    digest_key,
    number_of_key,
)

hashes = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
heads = st.lists(
    st.builds(ChainHead, st.text(min_size=1, max_size=20), st.integers(1, 10**9), hashes),
    max_size=5,
).map(tuple)


@given(st.integers(1, 10**12 - 1), st.integers(1, 10**12 - 1))
def test_a_newer_digest_lists_before_an_older_one_and_its_key_names_its_number(a: int, b: int) -> None:
    # S3 lists keys in ascending order: the newest digest must come first
    assert (digest_key(a) < digest_key(b)) == (a > b)
    assert number_of_key(digest_key(a)) == a


@pytest.mark.parametrize("key", ["digests/latest.json", "digests/1.json", "other/999999999999.json", "digests/x"])
def test_a_key_that_is_not_a_digests_names_no_number(key: str) -> None:
    assert number_of_key(key) is None


@given(st.integers(1, 10**6), hashes, heads)
def test_a_digest_body_round_trips_and_its_sha256_is_the_bodys(number: int, previous: str, chain_heads: tuple) -> None:
    digest = Digest(number, "2026-12-06T04:15:00.000Z", previous, chain_heads, (Refusal("x", "why"),))
    assert Digest.from_body(digest.body()) == digest
    assert digest.sha256 == hashlib.sha256(digest.body()).hexdigest()


def test_any_change_to_a_digest_changes_its_sha256() -> None:
    base = Digest(3, "2026-12-06T04:15:00.000Z", GENESIS, (ChainHead("churn", 4, "a" * 64),))
    variants = [
        Digest(4, base.time, base.previous_sha256, base.heads),
        Digest(3, "2026-12-06T04:15:00.001Z", base.previous_sha256, base.heads),
        Digest(3, base.time, "b" * 64, base.heads),
        Digest(3, base.time, base.previous_sha256, (ChainHead("churn", 5, "a" * 64),)),
        Digest(3, base.time, base.previous_sha256, (ChainHead("churn", 4, "c" * 64),)),
        Digest(3, base.time, base.previous_sha256, base.heads, (Refusal("churn", "no"),)),
    ]
    assert len({base.sha256, *(v.sha256 for v in variants)}) == len(variants) + 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"format": 2}', "format-1"),
        (b'{"format": 1, "number": 1, "time": "t", "previous_sha256": "' + b"0" * 64 + b'"}', "lacks"),
        (b'{"format": 1, "number": "1", "time": "t", "previous_sha256": "x", "chains": []}', "wrong type"),
        (
            b'{"format": 1, "number": 1, "time": "t", "previous_sha256": "'
            + b"0" * 64
            + b'", "chains": [{"chain": "c", "seq": 1.5, "hash": "x"}]}',
            "wrong type",
        ),
    ],
)
def test_a_malformed_body_is_refused_naming_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(DigestFormatError, match=message):
        Digest.from_body(body)
