"""The copy of state data the local cloud's Step Functions interpreter uses (mlops_local.patches.json_copy)."""

from __future__ import annotations

import copy
from collections import OrderedDict
from datetime import UTC, datetime

from mlops_local.patches import _JsonCopy, json_copy


def test_a_copy_equals_its_original_and_shares_no_container_with_it() -> None:
    # GIVEN state data as a batch's child execution gets it
    original = {
        "Items": [{"row": i, "values": {"balance": "1.5", "student": "No"}} for i in range(3)],
        "BatchInput": {"job": {"batch_size": 2000, "ratio": 0.5, "gzip": False, "version_id": None}},
    }
    # WHEN copied
    copied = json_copy(original)
    # THEN it is equal, and changing the copy leaves the original as it was
    assert copied == original == copy.deepcopy(original)
    copied["Items"][0]["values"]["balance"] = "changed"
    copied["BatchInput"]["job"]["batch_size"] = 1
    copied["Items"].append({})
    assert original["Items"][0]["values"]["balance"] == "1.5"
    assert original["BatchInput"]["job"]["batch_size"] == 2000
    assert len(original["Items"]) == 3


def test_what_is_not_json_is_deep_copied_as_copy_does() -> None:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    ordered = OrderedDict(a=[1, 2])
    original = {"when": when, "pair": ([1], 2), "ordered": ordered}
    copied = json_copy(original)
    assert copied == original
    assert type(copied["ordered"]) is OrderedDict and copied["ordered"] is not ordered
    assert copied["pair"][0] is not original["pair"][0]


def test_the_stand_in_module_forwards_everything_but_deepcopy_to_copy() -> None:
    stand_in = _JsonCopy()
    assert stand_in.copy is copy.copy
    data = {"a": [1, {"b": None}]}
    assert stand_in.deepcopy(data) == data and stand_in.deepcopy(data)["a"] is not data["a"]
