"""The hash-chained audit trail: appends, concurrency, and tamper detection. Fake and moto alike."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from mlops.errors import CheckFailedError, InputError
from mlops.registry.chain import GENESIS, AuditEvent, verify_items
from mlops.registry.keys import anchor_key
from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry
from tests.unit.registry.helpers import audit_items, raw_delete, raw_put

CHAIN = "churn"


def write_events(registry: Registry, n: int, chain: str = CHAIN) -> list[AuditEvent]:
    return [
        registry.audit.append(
            chain,
            actor=f"user-{i}",
            action="test.event",
            subject=f"thing/{i}",
            before={"n": i - 1},
            after={"n": i, "score": 0.5 + i / 100},
        )
        for i in range(1, n + 1)
    ]


def kinds(registry: Registry, chain: str = CHAIN) -> list[tuple[str, float]]:
    return [(f.kind, f.position) for f in registry.audit.verify(chain).findings]


def forge(chain: str, seq: int, prev_hash: str, **overrides: Any) -> dict[str, Any]:
    """An event someone with table access computed by hand: a valid hash for its content."""
    fields = {
        "chain": chain,
        "seq": seq,
        "event_id": f"forged-{seq}",
        "time": "2026-11-01T00:00:00.000Z",
        "actor": "mallory",
        "action": "version.approved",
        "subject": "model/churn/version/1",
        "before_json": "null",
        "after_json": '{"status":"APPROVED"}',
        "request_id": "forged",
        "prev_hash": prev_hash,
        **overrides,
    }
    unsigned = AuditEvent(**fields, hash="")
    return AuditEvent(**fields, hash=unsigned.computed_hash()).to_item()


def test_events_chain_from_genesis_and_an_untouched_chain_verifies(registry: Registry) -> None:
    # GIVEN five appended events
    events = write_events(registry, 5)
    # WHEN the chain is verified
    report = registry.audit.verify(CHAIN)
    # THEN each event links to the previous one, and the chain is ok
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert report.ok and report.events == 5 and report.head_seq == 5 and report.head_hash == events[-1].hash
    assert report.lines() == ["churn: ok (5 events, head seq 5)"]


def test_modifying_one_event_is_named_with_its_position(registry: Registry) -> None:
    # GIVEN a chain of six events
    write_events(registry, 6)
    item = audit_items(registry, CHAIN)[2]
    # WHEN someone rewrites the actor of seq 3 in place
    raw_put(registry, registry.audit.table, {**item, "actor": "someone-else"})
    # THEN verify reports exactly that event as modified
    assert kinds(registry) == [("modified", 3)]
    assert registry.audit.verify(CHAIN).findings[0].event_id == item["event_id"]


def test_modifying_one_event_and_recomputing_its_hash_is_still_caught(registry: Registry) -> None:
    # GIVEN a chain of five events
    write_events(registry, 5)
    item = audit_items(registry, CHAIN)[1]
    # WHEN seq 2 is replaced by a forged event with a correct hash of its own
    raw_put(registry, registry.audit.table, forge(CHAIN, 2, item["prev_hash"]))
    # THEN seq 3 no longer links to it: seq 2 is reported as modified
    assert kinds(registry) == [("modified", 2)]


def test_deleting_one_event_is_named_with_its_position(registry: Registry) -> None:
    # GIVEN a chain of six events
    write_events(registry, 6)
    # WHEN seq 4 is deleted
    raw_delete(registry, registry.audit.table, {"pk": CHAIN, "seq": 4})
    # THEN verify reports position 4 as deleted, and nothing else
    assert kinds(registry) == [("deleted", 4)]


def test_deleting_the_newest_event_is_caught_by_the_anchor(registry: Registry) -> None:
    # GIVEN a chain of four events
    write_events(registry, 4)
    # WHEN the newest one is deleted (a hash chain alone cannot see this)
    raw_delete(registry, registry.audit.table, {"pk": CHAIN, "seq": 4})
    # THEN the anchor reveals it, and further appends refuse to build on the cut chain
    assert kinds(registry) == [("deleted", 4)]
    with pytest.raises(CheckFailedError, match="anchor says the newest event is seq 4"):
        registry.audit.append(CHAIN, actor="a", action="x", subject="y")


def test_deleting_one_event_and_renumbering_the_rest_is_caught(registry: Registry) -> None:
    # GIVEN a chain of five events
    write_events(registry, 5)
    items = audit_items(registry, CHAIN)
    # WHEN seq 2 is deleted and 3..5 are moved down to close the gap
    for item in items[2:]:
        raw_put(registry, registry.audit.table, {**item, "seq": item["seq"] - 1})
    raw_delete(registry, registry.audit.table, {"pk": CHAIN, "seq": 5})
    # THEN position 2 is reported deleted and the moved events as reordered
    found = kinds(registry)
    assert ("deleted", 2) in found
    assert {("reordered", 2), ("reordered", 3), ("reordered", 4)} <= set(found)


def test_inserting_one_event_with_renumbering_is_named(registry: Registry) -> None:
    # GIVEN a chain of five events
    write_events(registry, 5)
    items = audit_items(registry, CHAIN)
    # WHEN a forged event is slipped in at seq 3 and 3..5 are moved up (newest first, no overwrite)
    for item in reversed(items[2:]):
        raw_put(registry, registry.audit.table, {**item, "seq": item["seq"] + 1})
    raw_put(registry, registry.audit.table, forge(CHAIN, 3, items[1]["hash"]))
    # THEN the forged event is reported as inserted at position 3
    report = registry.audit.verify(CHAIN)
    inserted = [f for f in report.findings if f.kind == "inserted"]
    assert [(f.position, f.event_id) for f in inserted] == [(3, "forged-3")]
    assert not report.ok


def test_inserting_one_event_between_two_is_named(registry: Registry) -> None:
    # GIVEN a chain of four events
    write_events(registry, 4)
    items = audit_items(registry, CHAIN)
    # WHEN a forged event is written between seq 2 and 3 (seq 2.5)
    raw_put(registry, registry.audit.table, forge(CHAIN, 2.5, items[1]["hash"]))  # type: ignore[arg-type]
    # THEN it is the only finding
    assert kinds(registry) == [("inserted", 2.5)]


def test_appending_a_forged_event_at_the_end_is_caught_by_the_anchor(registry: Registry) -> None:
    # GIVEN a chain of three events
    write_events(registry, 3)
    head = audit_items(registry, CHAIN)[-1]
    # WHEN someone appends a perfectly chained event outside the writer
    raw_put(registry, registry.audit.table, forge(CHAIN, 4, head["hash"]))
    # THEN it is reported as inserted
    assert kinds(registry) == [("inserted", 4)]


@pytest.mark.parametrize(("i", "j"), [(2, 5), (3, 4)])
def test_reordering_two_events_names_both(registry: Registry, i: int, j: int) -> None:
    # GIVEN a chain of six events
    write_events(registry, 6)
    items = {item["seq"]: item for item in audit_items(registry, CHAIN)}
    # WHEN the events at seq i and j swap places
    raw_put(registry, registry.audit.table, {**items[i], "seq": j})
    raw_put(registry, registry.audit.table, {**items[j], "seq": i})
    # THEN both are reported as reordered, each with the position it was written at
    report = registry.audit.verify(CHAIN)
    assert [(f.kind, f.position) for f in report.findings] == [("reordered", i), ("reordered", j)]
    assert f"written as seq {j}" in report.findings[0].message
    assert f"written as seq {i}" in report.findings[1].message


def test_a_malformed_item_is_reported_not_crashed_on(registry: Registry) -> None:
    # GIVEN a chain whose seq 2 lost its hash attribute
    write_events(registry, 3)
    item = audit_items(registry, CHAIN)[1]
    del item["hash"]
    raw_put(registry, registry.audit.table, item)
    # WHEN verified, THEN seq 2 is reported as modified (malformed), naming the attribute
    report = registry.audit.verify(CHAIN)
    assert [(f.kind, f.position) for f in report.findings] == [("modified", 2)]
    assert "'hash' is missing" in report.findings[0].message


def test_a_deleted_anchor_is_reported(registry: Registry) -> None:
    # GIVEN a chain whose anchor was removed from the registry table
    write_events(registry, 2)
    raw_delete(registry, registry.table, anchor_key(CHAIN))
    # WHEN verified, THEN the missing anchor is a finding
    assert kinds(registry) == [("broken", 0)]


def test_concurrent_appends_get_consecutive_positions_and_a_valid_chain(registry: Registry) -> None:
    # GIVEN 16 writers appending to one chain at once
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            registry.audit.append(CHAIN, actor=f"w{i}", action="test.concurrent", subject=str(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN every append landed once, at positions 1..16, and the chain verifies
    assert errors == []
    items = audit_items(registry, CHAIN)
    assert [i["seq"] for i in items] == list(range(1, 17))
    assert sorted(i["subject"] for i in items) == sorted(str(i) for i in range(16))
    assert registry.audit.verify(CHAIN).ok


def test_a_failed_condition_of_the_change_writes_no_event(registry: Registry) -> None:
    # GIVEN an item that exists
    registry.store.write(Put(registry.table, {"pk": "X", "sk": "1"}))
    # WHEN an event is appended together with a write whose condition fails
    with pytest.raises(ConditionFailedError) as caught:
        registry.audit.append(
            CHAIN,
            actor="a",
            action="x",
            subject="y",
            with_ops=[Put(registry.table, {"pk": "X", "sk": "1"}, Condition(item_exists=False))],
        )
    # THEN the failure names the caller's operation and no event was written
    assert caught.value.failed == (0,)
    assert audit_items(registry, CHAIN) == []


def test_events_list_newest_first_in_pages_and_chains_are_listed(registry: Registry) -> None:
    # GIVEN five events on one chain and one on the platform chain
    write_events(registry, 5)
    registry.audit.append("_platform", actor="ops", action="stack.deploy", subject="stage/dev")
    # WHEN listed two at a time
    first, token = registry.audit.list_events(CHAIN, limit=2)
    second, _ = registry.audit.list_events(CHAIN, limit=2, next_token=token)
    # THEN newest first, and both chains are known
    assert [e.seq for e in first + second] == [5, 4, 3, 2]
    assert first[0].after == {"n": 5, "score": 0.55}
    assert registry.audit.chains() == ["_platform", "churn"]


def test_blank_actor_and_unserializable_values_are_refused(registry: Registry) -> None:
    # GIVEN an audit trail
    # WHEN / THEN an event without an actor, or with a NaN, is refused
    with pytest.raises(InputError, match="actor"):
        registry.audit.append(CHAIN, actor="", action="x", subject="y")
    with pytest.raises(InputError, match="cannot be recorded as JSON"):
        registry.audit.append(CHAIN, actor="a", action="x", subject="y", after={"score": float("nan")})
    assert audit_items(registry, CHAIN) == []


def test_verify_items_copes_with_an_empty_chain() -> None:
    # GIVEN no items and no anchor, WHEN verified, THEN it is ok and empty
    report = verify_items("nothing", [], None, anchored=True)
    assert report.ok and report.events == 0 and report.head_seq is None
