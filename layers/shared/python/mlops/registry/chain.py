"""An audit chain's events and how a stored chain is checked: the part of the audit trail that
needs no table.

Each event holds the sha256 of the previous event of its chain and its own sha256 over the
canonical JSON of all its fields and its position (``seq``); :func:`verify_items` reads a chain's
stored items in any order and names every place where an event was modified, moved, inserted,
deleted or cut off the end (with the chain's anchor). :mod:`mlops.registry.audit` writes and reads
the chains; :mod:`mlops.registry.digest` checks them against signed digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops.errors import InputError
from mlops.registry.keys import (
    PK,
    audit_event_key,
)

GENESIS = "0" * 64
EVENT_FORMAT = 1
# Hashes tried per chain when working out where a moved event came from (see verify).
_SEARCH_BUDGET = 200_000


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no spaces, UTF-8 kept, NaN refused."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"audit event value cannot be recorded as JSON: {exc}") from None


@dataclass(frozen=True)
class AuditEvent:
    """One event of a chain. ``before``/``after`` are kept as canonical JSON text."""

    chain: str
    seq: int
    event_id: str
    time: str
    actor: str
    action: str
    subject: str
    before_json: str
    after_json: str
    request_id: str
    prev_hash: str
    hash: str

    @property
    def before(self) -> Any:
        return json.loads(self.before_json)

    @property
    def after(self) -> Any:
        return json.loads(self.after_json)

    def hashed_fields(self, seq: int | float | None = None) -> dict[str, Any]:
        """Everything the hash covers (all fields but the hash itself)."""
        return {
            "v": EVENT_FORMAT,
            "chain": self.chain,
            "seq": self.seq if seq is None else seq,
            "event_id": self.event_id,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "before": self.before_json,
            "after": self.after_json,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self, seq: int | float | None = None) -> str:
        return hashlib.sha256(canonical_json(self.hashed_fields(seq)).encode()).hexdigest()

    def to_item(self) -> dict[str, Any]:
        item = asdict(self)
        item.update(audit_event_key(item.pop("chain"), item.pop("seq")))
        item["before"] = item.pop("before_json")
        item["after"] = item.pop("after_json")
        item["v"] = EVENT_FORMAT
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AuditEvent:
        """Read a stored item; raise ``ValueError`` naming what is missing or malformed."""
        names = {"chain": PK, "before_json": "before", "after_json": "after"}
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            attribute = names.get(name, name)
            if attribute not in item:
                raise ValueError(f"attribute {attribute!r} is missing")
            value = item[attribute]
            expected: type | tuple[type, ...] = (int, float) if name == "seq" else str
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"attribute {attribute!r} has the wrong type ({type(value).__name__})")
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["before"] = _loads_or_text(data.pop("before_json"))
        data["after"] = _loads_or_text(data.pop("after_json"))
        return data


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


Kind = Literal["modified", "inserted", "deleted", "reordered", "broken"]


@dataclass(frozen=True)
class Finding:
    """One problem in a chain. ``position`` is the ``seq`` where it was found (or is missing)."""

    kind: Kind
    position: int | float
    message: str
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    """What :meth:`AuditTrail.verify` found in one chain."""

    chain: str
    events: int
    head_seq: int | None
    head_hash: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> list[str]:
        if self.ok:
            return [f"{self.chain}: ok ({self.events} events, head seq {self.head_seq})"]
        return [f"{self.chain}: {f.kind} at seq {_number(f.position)}: {f.message}" for f in self.findings]


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class _Entry:
    stored_seq: int | float
    event: AuditEvent | None
    event_id: str | None
    stored_hash: str | None
    prev_hash: str | None
    state: str = "ok"  # ok | modified | moved | inserted
    claimed: int | float = 0


def _find_original_seq(event: AuditEvent, candidates: Sequence[int]) -> int | None:
    for seq in candidates:
        if seq != event.seq and event.computed_hash(seq) == event.hash:
            return seq
    return None


def verify_items(
    chain: str, items: list[dict[str, Any]], anchor: Mapping[str, Any] | None = None, *, anchored: bool = False
) -> VerifyReport:
    """Check a chain's stored items (in any order); see :meth:`AuditTrail.verify`.

    Each event is bound to its position (``seq`` is hashed) and to its predecessor (its
    ``prev_hash``). An event whose hash does not match its content was *modified*; one whose hash
    matches only under another ``seq`` was *moved* (reported as *reordered*, at the position
    where it sits and the one where it was written); a position no event claims was *deleted*;
    a second event claiming a taken position, an unusual ``seq``, or a link that skips an event
    marks that event as *inserted*.
    """
    entries: list[_Entry] = []
    findings: list[Finding] = []
    for item in items:
        seq = item.get("seq")
        stored_seq = seq if isinstance(seq, int | float) and not isinstance(seq, bool) else -1
        try:
            event: AuditEvent | None = AuditEvent.from_item(item)
        except ValueError as exc:
            event = None
            findings.append(
                Finding("modified", stored_seq, f"the stored item is malformed: {exc}", _text(item.get("event_id")))
            )
        entries.append(
            _Entry(
                stored_seq=stored_seq,
                event=event,
                event_id=_text(item.get("event_id")),
                stored_hash=_text(item.get("hash")),
                prev_hash=_text(item.get("prev_hash")),
                state="modified" if event is None else "ok",
                claimed=stored_seq,
            )
        )
    entries.sort(key=lambda e: e.stored_seq)
    by_hash = {e.stored_hash: e for e in entries if e.stored_hash}
    integer_seqs = [int(e.stored_seq) for e in entries if float(e.stored_seq).is_integer() and e.stored_seq >= 1]
    top = max(integer_seqs, default=0)
    budget = _SEARCH_BUDGET

    # 1. Each event on its own: does its hash match its content and its position?
    for entry in entries:
        event = entry.event
        if event is None:
            continue
        if not float(entry.stored_seq).is_integer() or entry.stored_seq < 1:
            entry.state = "inserted"
            findings.append(
                Finding(
                    "inserted",
                    entry.stored_seq,
                    "no writer uses this position (seq is not 1, 2, 3, ...)",
                    entry.event_id,
                )
            )
            continue
        if event.computed_hash() == event.hash:
            continue
        # Where could it have been written? Right after its predecessor first, then anywhere.
        candidates: list[int] = []
        predecessor = by_hash.get(event.prev_hash)
        if event.prev_hash == GENESIS:
            candidates.append(1)
        if predecessor is not None:
            candidates += [int(p) + 1 for p in (predecessor.stored_seq, predecessor.claimed) if float(p).is_integer()]
        if budget > top:
            budget -= top + 1
            candidates += range(1, top + 2)
        original = _find_original_seq(event, candidates)
        if original is None:
            entry.state = "modified"
            findings.append(
                Finding("modified", entry.stored_seq, "its content does not match its hash", entry.event_id)
            )
        else:
            entry.state, entry.claimed = "moved", original
            findings.append(
                Finding("reordered", entry.stored_seq, f"this event was written as seq {original}", entry.event_id)
            )

    # 2. Two events claiming one position: the one its successor links to is genuine.
    claims: dict[int | float, list[_Entry]] = {}
    for entry in entries:
        if entry.state != "inserted":
            claims.setdefault(entry.claimed, []).append(entry)
    genuine: dict[int | float, _Entry] = {}
    for position, claimants in sorted(claims.items()):
        if len(claimants) == 1:
            genuine[position] = claimants[0]
            continue
        successors = claims.get(position + 1, [])
        linked = [c for c in claimants if any(s.prev_hash == c.stored_hash for s in successors)]
        keep = linked[0] if linked else claimants[0]
        genuine[position] = keep
        for other in claimants:
            if other is keep:
                continue
            other.state = "inserted"
            findings = [f for f in findings if not (f.event_id == other.event_id and f.position == other.stored_seq)]
            findings.append(
                Finding(
                    "inserted",
                    other.stored_seq,
                    f"a second event for position {_number(position)}; the chain does not link through it",
                    other.event_id,
                )
            )

    # 3. Positions nobody claims were deleted (the anchor knows where the end is).
    anchor_seq = anchor.get("seq") if anchor else None
    last = max(genuine, default=0)
    end = max(last, anchor_seq) if isinstance(anchor_seq, int) else last
    for position in range(1, int(end) + 1):
        if position not in genuine:
            where = "from the end of the chain" if position > last else "from the middle of the chain"
            findings.append(Finding("deleted", position, f"the event at this position was deleted {where}"))

    # 4. Links between neighbours that are both present and unexplained so far.
    for position, entry in sorted(genuine.items()):
        if entry.state not in ("ok", "moved"):
            continue
        if position == 1:
            if entry.prev_hash != GENESIS:
                findings.append(
                    Finding("broken", entry.stored_seq, "the first event does not start the chain", entry.event_id)
                )
            continue
        previous = genuine.get(position - 1)
        if previous is None or previous.state == "modified" or entry.prev_hash == previous.stored_hash:
            continue
        skipped = genuine.get(position - 2)
        if skipped is not None and entry.prev_hash == skipped.stored_hash:
            previous.state = "inserted"
            findings.append(
                Finding(
                    "inserted",
                    previous.stored_seq,
                    f"seq {_number(position)} links past this event to seq {_number(position - 2)}",
                    previous.event_id,
                )
            )
        else:
            previous.state = "modified"
            findings.append(
                Finding(
                    "modified",
                    previous.stored_seq,
                    f"it is not the event seq {_number(position)} was chained to (replaced, hash recomputed)",
                    previous.event_id,
                )
            )

    # 5. The anchor: the newest event the writer knows it wrote.
    if anchor is not None and isinstance(anchor_seq, int):
        head = genuine.get(anchor_seq)
        if head is not None and head.stored_hash != anchor.get("hash") and head.state == "ok":
            findings.append(
                Finding(
                    "modified", head.stored_seq, "it does not match the hash the chain's anchor holds", head.event_id
                )
            )
        for position, entry in sorted(genuine.items()):
            if position > anchor_seq and entry.state == "ok":
                entry.state = "inserted"
                findings.append(
                    Finding(
                        "inserted",
                        entry.stored_seq,
                        "written after the chain's anchor (not by the writer)",
                        entry.event_id,
                    )
                )
    elif anchor is not None:
        findings.append(Finding("broken", 0, "the chain's anchor is malformed (its seq is not a number)"))
    elif anchored and entries:
        findings.append(Finding("broken", 0, "the chain's anchor is missing (deleted from the registry table)"))

    findings.sort(key=lambda f: (float(f.position), f.kind))
    head_entry = genuine.get(last)
    return VerifyReport(
        chain=chain,
        events=len(entries),
        head_seq=int(last) if last else None,
        head_hash=head_entry.stored_hash if head_entry else None,
        findings=findings,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
