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

This module writes and reads the chains (:class:`AuditTrail`); the events themselves, their
hashing and the check of a stored chain are in :mod:`mlops.registry.chain`, the paging tokens in
:mod:`mlops.registry.tokens`.

Examples
--------
>>> trail = AuditTrail.in_memory()
>>> event = trail.append("churn", actor="alice", action="spec.put", subject="model/churn/spec/1")
>>> (event.seq, trail.verify("churn").ok)
(1, True)
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from mlops.errors import CheckFailedError, ConflictError, InputError
from mlops.registry.chain import (
    GENESIS,
    AuditEvent,
    VerifyReport,
    canonical_json,
    verify_items,
)
from mlops.registry.dynamo import DynamoStore
from mlops.registry.keys import (
    GSI1,
    GSI1_SK,
    anchor_key,
    anchors_index,
    anchors_index_entry,
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
from mlops.registry.tokens import decode_token, encode_token

# The chain of the events that belong to no model.
PLATFORM_CHAIN = "_platform"


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds (``2026-11-03T10:15:42.123Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
