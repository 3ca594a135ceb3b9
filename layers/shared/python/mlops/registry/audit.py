"""The audit trail: append-only, hash-chained events, one chain per model.

Every change the registry, the spec store and the dataset catalog make appends one event:
who (``actor``), what (``action``, ``subject``, ``before``, ``after``), when, and the request
that did it. Each event holds the sha256 of the previous event of its chain and its own sha256
over the canonical JSON of all its fields (previous hash included), so changing, inserting,
deleting or reordering stored events breaks the chain where it happened.

Storage (the audit table): partition key ``pk`` = the chain (a model name, or ``_platform`` for
events about no model), sort key ``seq`` (number, 1, 2, 3, ...). Events are only ever written
with ``PutItem`` under ``attribute_not_exists``: nothing is overwritten, and the writer needs no
update or delete permission. Concurrent writers race for the next ``seq``; the loser re-reads the
head and tries again.

The event is written in the same DynamoDB transaction as the change it records (the caller passes
its writes in ``with_ops``), so a change is never left without its event or the other way round.
That transaction also moves the chain's *anchor*, an item in the registry table holding the
chain's newest ``seq`` and hash: it reveals events cut off the end of a chain, which a hash chain
alone cannot, and lists every chain without a scan.

The chain and its anchor are both in the tables, so a role that may append could also rewrite an
event, re-hash the chain and move the anchor. :mod:`mlops.registry.digest` anchors every chain's
head outside the tables too (signed digests in an S3 bucket under Object Lock) and checks the
chains against them.

Examples
--------
>>> trail = AuditTrail.in_memory()
>>> event = trail.append("churn", actor="alice", action="spec.put", subject="model/churn/spec/1")
>>> (event.seq, trail.verify("churn").ok)
(1, True)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mlops.errors import CheckFailedError, ConflictError, InputError
from mlops.registry.dynamo import DynamoStore
from mlops.registry.keys import (
    GSI1,
    GSI1_PK,
    GSI1_SK,
    PK,
    SEQ,
    SK,
    anchor_key,
    anchors_index,
    anchors_index_entry,
    audit_event_key,
    audit_events,
    audit_partition,
    audit_schema,
    registry_schema,
)
from mlops.registry.memory import MemoryStore
from mlops.registry.tables import (
    ABSENT,
    Condition,
    ConditionFailedError,
    Operation,
    Put,
    Store,
    Update,
)

GENESIS = "0" * 64
PLATFORM_CHAIN = "_platform"
EVENT_FORMAT = 1
# Hashes tried per chain when working out where a moved event came from (see verify).
_SEARCH_BUDGET = 200_000


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds (``2026-11-03T10:15:42.123Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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


class AuditTrail:
    """Appends, lists and verifies hash-chained audit events.

    Parameters
    ----------
    store
        Where the tables live (:class:`~mlops.registry.dynamo.DynamoStore` or the in-memory fake).
    table
        The audit table's name.
    anchor_table
        The registry table, where each chain's anchor item lives (None: no anchors).
    clock
        Returns the current time as text; tests pass a fixed clock.
    max_attempts
        How often to retry when concurrent writers race for the same position.
    """

    def __init__(
        self,
        store: Store,
        table: str,
        *,
        anchor_table: str | None = None,
        clock: Callable[[], str] = utc_now,
        max_attempts: int = 100,
    ) -> None:
        self.store = store
        self.table = table
        self.anchor_table = anchor_table
        self.clock = clock
        self.max_attempts = max_attempts

    @classmethod
    def in_memory(cls, *, clock: Callable[[], str] = utc_now) -> AuditTrail:
        """A trail on the in-memory fake, with anchors in a fake registry table."""
        store = MemoryStore([audit_schema("audit"), registry_schema("registry")])
        return cls(store, "audit", anchor_table="registry", clock=clock)

    @classmethod
    def for_dynamodb(cls, client: Any, *, audit_table: str, registry_table: str | None = None) -> AuditTrail:
        """A trail on DynamoDB; ``registry_table`` holds the anchors."""
        schemas = [audit_schema(audit_table)]
        if registry_table:
            schemas.append(registry_schema(registry_table))
        return cls(DynamoStore(client, schemas), audit_table, anchor_table=registry_table)

    # -----------------------------------------------------------------------------------------
    def head(self, chain: str) -> AuditEvent | None:
        """The newest event of a chain (None for an empty chain)."""
        page = self.store.query(self.table, audit_events(chain), forward=False, limit=1)
        if not page.items:
            return None
        return AuditEvent.from_item(page.items[0])

    def append(
        self,
        chain: str,
        *,
        actor: str,
        action: str,
        subject: str,
        before: Any = None,
        after: Any = None,
        request_id: str | None = None,
        with_ops: Sequence[Operation] = (),
    ) -> AuditEvent:
        """Append one event, in one transaction with ``with_ops`` (the change it records).

        Parameters
        ----------
        chain
            A model name, or :data:`PLATFORM_CHAIN`.
        actor
            Who made the change (an IAM ARN, a user name, ``pipeline:<execution>``).
        action, subject
            What happened (``version.register``) and to what (``model/churn/version/3``).
        before, after
            JSON-serializable state before and after the change.
        request_id
            The request that made the change (a Lambda request id); a new UUID if omitted.
        with_ops
            Writes to commit atomically with the event.

        Returns
        -------
        AuditEvent
            The event as stored.

        Raises
        ------
        ConditionFailedError
            A condition of ``with_ops`` failed; ``failed`` holds their positions. Nothing was written.
        ConflictError
            The chain stayed busy for ``max_attempts`` tries.
        CheckFailedError
            The chain's anchor does not match its newest event (the chain was tampered with).
        """
        if not isinstance(actor, str) or not actor.strip():
            raise InputError("actor: every change needs the identity of who made it")
        foreign = [op for op in with_ops if op.table == self.table]
        if foreign:
            # The event's own Put (under attribute_not_exists) is the only write the audit table ever gets.
            raise ValueError(f"with_ops may not write the audit table {self.table!r}: events are appended only here")
        before_json, after_json = canonical_json(before), canonical_json(after)
        request_id = request_id or str(uuid.uuid4())
        n_ops = len(with_ops)
        for attempt in range(self.max_attempts):
            head = self.head(chain)
            head_seq = int(head.seq) if head else 0
            fields: dict[str, Any] = {
                "chain": chain,
                "seq": head_seq + 1,
                "event_id": str(uuid.uuid4()),
                "time": self.clock(),
                "actor": actor,
                "action": action,
                "subject": subject,
                "before_json": before_json,
                "after_json": after_json,
                "request_id": request_id,
                "prev_hash": head.hash if head else GENESIS,
            }
            unsigned = AuditEvent(**fields, hash="")
            event = AuditEvent(**fields, hash=unsigned.computed_hash())
            ops: list[Operation] = [*with_ops, Put(self.table, event.to_item(), Condition(item_exists=False))]
            if self.anchor_table is not None:
                ops.append(
                    Update(
                        self.anchor_table,
                        anchor_key(chain),
                        set={"seq": event.seq, "hash": event.hash, "time": event.time},
                        set_if_absent=anchors_index_entry(chain),
                        condition=Condition(equals={"seq": head_seq if head else ABSENT}),
                    )
                )
            try:
                self.store.transact(ops)
                return event
            except ConditionFailedError as exc:
                mine = tuple(i for i in exc.failed if i < n_ops)
                if mine:
                    raise ConditionFailedError(str(exc), mine) from None
                if n_ops + 1 in exc.failed and n_ops not in exc.failed:
                    self._check_anchor(chain, head)
                # Someone else took this position: back off a little and try the next one.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
        raise ConflictError(
            f"audit chain {chain!r} stayed busy: gave up after {self.max_attempts} attempts; nothing was changed"
        )

    def _check_anchor(self, chain: str, head: AuditEvent | None) -> None:
        """The anchor refused our write: a race, unless it disagrees with an unchanged head."""
        if self.anchor_table is None:
            return
        anchor = self.store.get(self.anchor_table, anchor_key(chain))
        current = self.head(chain)
        if current == head:
            seq = anchor.get("seq") if anchor else None
            raise CheckFailedError(
                f"audit chain {chain!r}: its anchor says the newest event is seq {seq}, the table says "
                f"{head.seq if head else 'none'}; refusing to write (run `mlops audit verify --model {chain}`)"
            )

    # -----------------------------------------------------------------------------------------
    def items(self, chain: str, *, newest_first: bool = False, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every stored item of a chain, in ``seq`` order, one page at a time."""
        start: dict[str, Any] | None = None
        while True:
            page = self.store.query(
                self.table, audit_events(chain), forward=not newest_first, limit=page_size, start=start
            )
            yield from page.items
            if page.last_key is None:
                return
            start = page.last_key

    def list_events(
        self, chain: str, *, limit: int = 50, next_token: str | None = None
    ) -> tuple[list[AuditEvent], str | None]:
        """Events of one chain, newest first, ``limit`` at a time.

        Returns
        -------
        tuple
            The events and a token for the next page (None on the last page).
        """
        start = decode_token(next_token, audit_partition(chain)) if next_token else None
        page = self.store.query(self.table, audit_events(chain), forward=False, limit=limit, start=start)
        events = []
        for item in page.items:
            try:
                events.append(AuditEvent.from_item(item))
            except ValueError:
                continue  # listing shows what it can read; verify reports the rest
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        return events, token

    def chains(self) -> list[str]:
        """Every chain that has an anchor (that is, every chain this writer ever wrote to)."""
        if self.anchor_table is None:
            raise InputError("listing chains needs the registry table (where the anchors are)")
        names: list[str] = []
        start: dict[str, Any] | None = None
        while True:
            page = self.store.query(self.anchor_table, anchors_index(), index=GSI1, start=start)
            names += [str(item[GSI1_SK]) for item in page.items]
            if page.last_key is None:
                return names
            start = page.last_key

    # -----------------------------------------------------------------------------------------
    def verify(self, chain: str, items: list[dict[str, Any]] | None = None) -> VerifyReport:
        """Walk a chain and report every modified, inserted, deleted or reordered event.

        ``items``: the chain's stored items, if the caller has read them already (else read here).
        The chain and its anchor are both in the tables: someone who may write both can rewrite an
        event and re-chain it undetected here; :mod:`mlops.registry.digest` checks against the signed
        digests outside the tables.

        Returns
        -------
        VerifyReport
            ``ok`` when the chain is intact; otherwise one finding per problem, with its position.
        """
        anchor = self.store.get(self.anchor_table, anchor_key(chain)) if self.anchor_table else None
        stored = list(self.items(chain)) if items is None else items
        return verify_items(chain, stored, anchor, anchored=self.anchor_table is not None)


# ---------------------------------------------------------------------------------------------
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
