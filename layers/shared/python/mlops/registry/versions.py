"""The model registry: versions, statuses, aliases and lineage, in one DynamoDB table.

Identity: a model version is a per-model integer that only grows, allocated with DynamoDB's
atomic counter (``ADD``), never by reading the highest number and writing the next. Each version
records its lineage (spec revision, dataset version, code revision, pipeline execution, artifact
URI and sha256, metrics, params, who registered it and when) and grows append-only history lists
that later steps fill in (status changes, approvals, deployments).

Lifecycle: ``PENDING_APPROVAL -> APPROVED | REJECTED``, ``APPROVED -> ARCHIVED``,
``ARCHIVED -> APPROVED`` (restore, e.g. for a rollback). ``REJECTED`` is final, so a rejected
version can never serve. The aliases ``champion`` (serves traffic) and ``challenger`` (canary or
shadow) only ever point at ``APPROVED`` versions, and an aliased version cannot be archived.

Concurrency: status changes and alias moves are conditional writes on the state the caller
saw; whoever loses a race gets a :class:`~mlops.errors.ConflictError` and nothing changes. An
alias move and the version's status are checked in one transaction, so they cannot drift apart.

Audit: every change is written in one transaction with its audit event
(:meth:`mlops.registry.audit.AuditTrail.append`), so no caller can forget it; the actor is always passed in.

Table layout: one partition per model, ``MODEL#<name>``, holding its ``META`` item (counters,
aliases) and one ``VERSION#0000000042`` item per version, beside the other items of the model;
every key is built by :mod:`mlops.registry.keys`, whose docstring has the whole table.

Kept as one module (about 800 lines): it is one class, :class:`Registry`, and the records
it returns. Every method is the same discipline applied to the same two items of a model (read
``META`` and the version, check the lifecycle rule, write both with the audit event in one
conditional transaction, turn a lost race into a :class:`~mlops.errors.ConflictError`), and the
rules cross-reference each other: an alias move checks the version's status, archiving a version
checks the aliases, archiving a model checks both. Split by responsibility, each part would need
the others' guards; its storage, keys, tokens and audit chain already live in their own modules.

Examples
--------
>>> registry = Registry.in_memory()
>>> v = registry.register_version("churn", actor="pipeline", metrics={"roc_auc": 0.91})
>>> registry.transition("churn", v.version, Status.APPROVED, actor="alice").status
<Status.APPROVED: 'APPROVED'>
>>> registry.set_alias("churn", "champion", 1, actor="alice").champion
1
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.settings import Platform

from mlops.errors import ConflictError, InputError, NotFoundError, TransitionError
from mlops.registry.audit import AuditTrail, utc_now
from mlops.registry.dynamo import DynamoStore
from mlops.registry.keys import (
    GSI1,
    VERSION_SK_PREFIX,
    audit_schema,
    meta_key,
    model_items,
    model_partition,
    models_index,
    models_index_entry,
    models_index_partition,
    registry_schema,
    sk_prefix,
    version_key,
)
from mlops.registry.memory import MemoryStore
from mlops.registry.tables import (
    ABSENT,
    Check,
    Condition,
    ConditionFailedError,
    Operation,
    Put,
    Store,
    Update,
)
from mlops.registry.tokens import decode_token, encode_token
from mlops.spec.view import MODEL_NAME

ALIASES = ("champion", "challenger")
HISTORY_FIELDS = ("approvals", "deployments")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Status(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ARCHIVED = "ARCHIVED"


# Allowed status changes. REJECTED is final: a rejected version can never be approved, so it can
# never become champion or challenger.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED}),
    Status.APPROVED: frozenset({Status.ARCHIVED}),
    Status.ARCHIVED: frozenset({Status.APPROVED}),
    Status.REJECTED: frozenset(),
}


def check_model_name(model: str) -> str:
    """Refuse names a spec could not have (they would also break the key layout)."""
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise InputError(
            f"model name {model!r}: must start with a lowercase letter and hold only lowercase letters,"
            " digits and '-' (at most 63 characters)"
        )
    return model


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise InputError("actor: every change needs the identity of who made it")
    return actor


def _alias_attribute(alias: str) -> str:
    if alias not in ALIASES:
        raise InputError(f"alias {alias!r}: must be one of {', '.join(ALIASES)}")
    return f"alias_{alias}"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model and its lineage."""

    model: str
    version: int
    status: Status
    metrics: dict[str, float]
    params: dict[str, Any]
    spec_revision: int | None
    dataset_version: dict[str, Any] | None
    code_revision: str | None
    pipeline_execution: str | None
    artifact_uri: str | None
    artifact_sha256: str | None
    created_by: str
    created_at: str
    updated_at: str
    status_history: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ModelVersion:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["status"] = Status(str(item["status"]))
        for name in ("metrics", "params", "tags"):
            values[name] = dict(item.get(name) or {})
        for name in ("status_history", "approvals", "deployments"):
            values[name] = list(item.get(name) or [])
        return cls(**values)

    def to_item(self) -> dict[str, Any]:
        item = asdict(self)
        item["status"] = self.status.value
        item.update(version_key(self.model, self.version))
        item["kind"] = "version"
        return item

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    def summary(self) -> dict[str, Any]:
        """What an audit event records about a version."""
        return {
            "version": self.version,
            "status": self.status.value,
            "metrics": self.metrics,
            "spec_revision": self.spec_revision,
            "dataset_version_id": (self.dataset_version or {}).get("version_id"),
            "artifact_uri": self.artifact_uri,
            "artifact_sha256": self.artifact_sha256,
        }


@dataclass(frozen=True)
class ModelSummary:
    """A model as the registry knows it: counters and aliases."""

    name: str
    latest_version: int
    latest_spec_revision: int
    champion: int | None
    challenger: int | None
    created_at: str | None
    created_by: str | None
    updated_at: str | None
    archived: dict[str, Any] | None = None  # {"at", "by", "reason"} while archived

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ModelSummary:
        return cls(
            name=str(item["name"]),
            latest_version=int(item.get("version_counter", 0)),
            latest_spec_revision=int(item.get("spec_counter", 0)),
            champion=item.get("alias_champion"),
            challenger=item.get("alias_challenger"),
            created_at=item.get("created_at"),
            created_by=item.get("created_by"),
            updated_at=item.get("updated_at"),
            archived=(
                {"at": item["archived_at"], "by": item.get("archived_by"), "reason": item.get("archived_reason")}
                if item.get("archived_at")
                else None
            ),
        )

    def alias(self, alias: str) -> int | None:
        _alias_attribute(alias)
        return self.champion if alias == "champion" else self.challenger

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ResultPage:
    """One page of a listing; pass ``next_token`` back to get the next one."""

    items: list[Any]
    next_token: str | None


class _Unset:
    pass


UNSET: Any = _Unset()


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"metrics.{name}: {value!r} is not a finite number")
        checked[str(name)] = value
    return checked


class Registry:
    """Model versions, statuses and aliases, audited.

    Parameters
    ----------
    store
        Where the tables live (:class:`~mlops.registry.dynamo.DynamoStore` or the in-memory fake).
    table
        The registry table's name.
    audit
        The audit trail every change is written to (in the same transaction).
    clock
        Returns the current time as text; tests pass a fixed clock.
    """

    def __init__(self, store: Store, table: str, audit: AuditTrail, *, clock: Callable[[], str] = utc_now) -> None:
        self.store = store
        self.table = table
        self.audit = audit
        self.clock = clock

    @classmethod
    def for_dynamodb(cls, client: Any, *, registry_table: str, audit_table: str) -> Registry:
        """The registry on DynamoDB, given a boto3 ``dynamodb`` client and the table names."""
        store = DynamoStore(client, [registry_schema(registry_table), audit_schema(audit_table)])
        return cls(store, registry_table, AuditTrail(store, audit_table, anchor_table=registry_table))

    @classmethod
    def for_platform(cls, client: Any, platform: Platform) -> Registry:
        """The deployment's registry: :meth:`for_dynamodb` on the tables ``platform`` names."""
        return cls.for_dynamodb(client, registry_table=platform.registry_table, audit_table=platform.audit_table)

    @classmethod
    def in_memory(cls, *, clock: Callable[[], str] = utc_now) -> Registry:
        """The registry on the in-memory fake (unit tests, examples)."""
        store = MemoryStore([registry_schema("registry"), audit_schema("audit")])
        return cls(store, "registry", AuditTrail(store, "audit", anchor_table="registry", clock=clock), clock=clock)

    # ----------------------------------------------------------------------------------------- models
    def touch_model(self, model: str, actor: str, now: str) -> Update:
        """The write that creates a model's META item if needed (for use inside a transaction)."""
        return Update(
            self.table,
            meta_key(model),
            set={"updated_at": now},
            set_if_absent={
                "kind": "model",
                "name": model,
                "created_at": now,
                "created_by": actor,
                **models_index_entry(model),
            },
        )

    def allocate(self, model: str, counter: str, *, actor: str) -> int:
        """Atomically add one to a per-model counter (creating the model) and return the new value."""
        now = self.clock()
        touch = self.touch_model(model, actor, now)
        item = self.store.write(
            Update(self.table, touch.key, set=touch.set, set_if_absent=touch.set_if_absent, add={counter: 1})
        )
        return int(item[counter])

    def get_model(self, model: str) -> ModelSummary:
        """A model's counters and aliases.

        Raises
        ------
        NotFoundError
            The registry does not know the model.
        """
        check_model_name(model)
        item = self.store.get(self.table, meta_key(model))
        if item is None:
            raise NotFoundError(f"model {model!r} is not in the registry (no spec, dataset or version yet)")
        return ModelSummary.from_item(item)

    def list_models(
        self, *, limit: int = 50, next_token: str | None = None, include_archived: bool = True
    ) -> ResultPage:
        """Models by name, ``limit`` at a time (a query on ``gsi1``, never a scan).

        With ``include_archived=False`` archived models are left out of the page (it may then
        hold fewer than ``limit`` models while ``next_token`` still says there are more).
        """
        start = decode_token(next_token, models_index_partition()) if next_token else None
        page = self.store.query(self.table, models_index(), index=GSI1, limit=limit, start=start)
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        models = [ModelSummary.from_item(item) for item in page.items]
        return ResultPage([m for m in models if include_archived or m.archived is None], token)

    def archive_model(
        self, model: str, *, actor: str, reason: str | None = None, request_id: str | None = None
    ) -> ModelSummary:
        """Archive a whole model (audited ``model.archived``): hidden from listings, refused by serving,
        by new uploads and by training until :meth:`unarchive_model`. Versions, aliases, specs,
        datasets and the audit trail are kept as they are.

        Raises
        ------
        NotFoundError
            The registry does not know the model.
        ConflictError
            The model is already archived (or was archived while this request ran).
        """
        check_actor(actor)
        current = self.get_model(model)
        if current.archived is not None:
            raise ConflictError(
                f"model {model!r} is already archived (by {current.archived.get('by')} at {current.archived.get('at')})"
            )
        now = self.clock()
        record = {"at": now, "by": actor, "reason": reason}
        update = Update(
            self.table,
            meta_key(model),
            set={"archived_at": now, "archived_by": actor, "archived_reason": reason or "", "updated_at": now},
            condition=Condition(item_exists=True, equals={"archived_at": ABSENT}),
        )
        try:
            self.audit.append(
                model,
                actor=actor,
                action="model.archived",
                subject=f"model/{model}",
                before={"archived": None},
                after={"archived": record, "champion": current.champion, "challenger": current.challenger},
                request_id=request_id,
                with_ops=[update],
            )
        except ConditionFailedError:
            raise ConflictError(f"model {model!r} was archived by someone else while this request ran") from None
        return self.get_model(model)

    def unarchive_model(self, model: str, *, actor: str, request_id: str | None = None) -> ModelSummary:
        """Undo :meth:`archive_model` (audited ``model.unarchived``); the model serves its champion again.

        Raises
        ------
        NotFoundError
            The registry does not know the model.
        ConflictError
            The model is not archived (or was unarchived while this request ran).
        """
        check_actor(actor)
        current = self.get_model(model)
        if current.archived is None:
            raise ConflictError(f"model {model!r} is not archived")
        now = self.clock()
        update = Update(
            self.table,
            meta_key(model),
            set={"updated_at": now},
            remove=("archived_at", "archived_by", "archived_reason"),
            condition=Condition(equals={"archived_at": current.archived["at"]}),
        )
        try:
            self.audit.append(
                model,
                actor=actor,
                action="model.unarchived",
                subject=f"model/{model}",
                before={"archived": current.archived},
                after={"archived": None},
                request_id=request_id,
                with_ops=[update],
            )
        except ConditionFailedError:
            raise ConflictError(f"model {model!r} was changed by someone else while this request ran") from None
        return self.get_model(model)

    def ensure_active(self, model: str) -> ModelSummary | None:
        """Refuse work for an archived model (uploads, training); None if the registry does not know it yet.

        Raises
        ------
        TransitionError
            The model is archived; the message says who archived it and how to undo it.
        """
        try:
            summary = self.get_model(model)
        except NotFoundError:
            return None
        if summary.archived is not None:
            raise TransitionError(archived_message(summary))
        return summary

    # ----------------------------------------------------------------------------------------- versions
    def register_version(
        self,
        model: str,
        *,
        actor: str,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        spec_revision: int | None = None,
        dataset_version: Mapping[str, Any] | None = None,
        code_revision: str | None = None,
        pipeline_execution: str | None = None,
        artifact_uri: str | None = None,
        artifact_sha256: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: Status | str = Status.PENDING_APPROVAL,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> ModelVersion:
        """Register a new version under the next version number.

        It starts ``PENDING_APPROVAL``, or ``REJECTED`` (with a ``reason``) for a candidate the
        gates turned down: it is kept for the record but can never serve.

        The number comes from an atomic counter, so concurrent registrations get distinct,
        consecutive numbers. If writing the version fails after its number was taken, that
        number stays unused (a gap), never reused.

        Returns
        -------
        ModelVersion
            The version as stored.
        """
        check_model_name(model)
        check_actor(actor)
        if artifact_sha256 is not None and not SHA256.match(artifact_sha256):
            raise InputError(f"artifact_sha256: {artifact_sha256!r} is not a lowercase hex sha256")
        checked_metrics = _check_metrics(metrics or {})
        initial = Status(status) if status in tuple(Status) else None
        if initial not in (Status.PENDING_APPROVAL, Status.REJECTED):
            raise InputError(f"status {status!r}: a new version starts PENDING_APPROVAL or REJECTED")
        if initial == Status.REJECTED and not reason:
            raise InputError("reason: a version registered as REJECTED needs the reason (which gate failed)")
        number = self.allocate(model, "version_counter", actor=actor)
        now = self.clock()
        history = (
            []
            if initial == Status.PENDING_APPROVAL
            else [{"from": None, "to": initial.value, "by": actor, "at": now, "reason": reason}]
        )
        version = ModelVersion(
            model=model,
            version=number,
            status=initial,
            metrics=checked_metrics,
            params=dict(params or {}),
            spec_revision=spec_revision,
            dataset_version=dict(dataset_version) if dataset_version is not None else None,
            code_revision=code_revision,
            pipeline_execution=pipeline_execution,
            artifact_uri=artifact_uri,
            artifact_sha256=artifact_sha256,
            created_by=actor,
            created_at=now,
            updated_at=now,
            tags=dict(tags or {}),
            status_history=history,
        )
        self.audit.append(
            model,
            actor=actor,
            action="version.register",
            subject=f"model/{model}/version/{number}",
            after=version.summary(),
            request_id=request_id,
            with_ops=[Put(self.table, version.to_item(), Condition(item_exists=False))],
        )
        return version

    def get_version(self, model: str, version: int) -> ModelVersion:
        """One version. Raises :class:`~mlops.errors.NotFoundError` if it does not exist."""
        check_model_name(model)
        item = self.store.get(self.table, version_key(model, int(version)))
        if item is None:
            raise NotFoundError(f"model {model!r} has no version {version}")
        return ModelVersion.from_item(item)

    def list_versions(self, model: str, *, limit: int = 20, next_token: str | None = None) -> ResultPage:
        """Versions of a model, newest first, ``limit`` at a time."""
        check_model_name(model)
        start = decode_token(next_token, model_partition(model)) if next_token else None
        page = self.store.query(
            self.table,
            model_items(model),
            sk_prefix=sk_prefix(VERSION_SK_PREFIX),
            forward=False,
            limit=limit,
            start=start,
        )
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        return ResultPage([ModelVersion.from_item(item) for item in page.items], token)

    def iter_versions(self, model: str) -> Iterator[ModelVersion]:
        """Every version of a model, newest first."""
        token: str | None = None
        while True:
            page = self.list_versions(model, limit=100, next_token=token)
            yield from page.items
            if page.next_token is None:
                return
            token = page.next_token

    # ----------------------------------------------------------------------------------------- status
    def transition(
        self,
        model: str,
        version: int,
        to: Status | str,
        *,
        actor: str,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> ModelVersion:
        """Change a version's status, if the lifecycle allows it.

        Raises
        ------
        TransitionError
            The change is not allowed (``REJECTED`` is final; an aliased version cannot be
            archived). Nothing was changed.
        ConflictError
            Someone changed the version (or its aliases) at the same time. Nothing was changed.
        """
        check_actor(actor)
        try:
            target = Status(to)
        except ValueError:
            raise InputError(f"status {to!r}: must be one of {', '.join(s.value for s in Status)}") from None
        current = self.get_version(model, version)
        allowed = TRANSITIONS[current.status]
        if target not in allowed:
            why = "it is final" if not allowed else f"allowed: {', '.join(sorted(s.value for s in allowed))}"
            raise TransitionError(
                f"model {model!r} version {version}: {current.status.value} -> {target.value} is not allowed ({why})"
            )
        ops: list[Operation] = []
        if target == Status.ARCHIVED:
            summary = self.get_model(model)
            for alias in ALIASES:
                if summary.alias(alias) == current.version:
                    raise TransitionError(
                        f"model {model!r} version {version} is the {alias}; move or clear the alias before archiving it"
                    )
            ops.append(
                Check(
                    self.table,
                    meta_key(model),
                    Condition(not_equals={_alias_attribute(a): current.version for a in ALIASES}),
                )
            )
        now = self.clock()
        change = {"from": current.status.value, "to": target.value, "by": actor, "at": now, "reason": reason}
        ops.insert(
            0,
            Update(
                self.table,
                version_key(model, current.version),
                set={"status": target.value, "updated_at": now},
                append={"status_history": [change]},
                condition=Condition(equals={"status": current.status.value}),
            ),
        )
        try:
            self.audit.append(
                model,
                actor=actor,
                action=f"version.{target.value.lower()}",
                subject=f"model/{model}/version/{current.version}",
                before={"status": current.status.value},
                after={"status": target.value, "reason": reason},
                request_id=request_id,
                with_ops=ops,
            )
        except ConditionFailedError:
            latest = self.get_version(model, version)
            raise ConflictError(
                f"model {model!r} version {version} changed while this request ran (status now "
                f"{latest.status.value}, aliases may have moved); nothing was changed, re-read and retry"
            ) from None
        return self.get_version(model, version)

    def approve(
        self, model: str, version: int, *, actor: str, reason: str | None = None, request_id: str | None = None
    ) -> ModelVersion:
        """``PENDING_APPROVAL -> APPROVED`` (or restore an archived version)."""
        return self.transition(model, version, Status.APPROVED, actor=actor, reason=reason, request_id=request_id)

    def reject(
        self, model: str, version: int, *, actor: str, reason: str, request_id: str | None = None
    ) -> ModelVersion:
        """``PENDING_APPROVAL -> REJECTED`` (final)."""
        return self.transition(model, version, Status.REJECTED, actor=actor, reason=reason, request_id=request_id)

    def archive(
        self, model: str, version: int, *, actor: str, reason: str | None = None, request_id: str | None = None
    ) -> ModelVersion:
        """``APPROVED -> ARCHIVED`` (refused while an alias points at the version)."""
        return self.transition(model, version, Status.ARCHIVED, actor=actor, reason=reason, request_id=request_id)

    # ----------------------------------------------------------------------------------------- aliases
    def set_alias(
        self,
        model: str,
        alias: str,
        version: int | None,
        *,
        actor: str,
        expected: int | None = UNSET,
        request_id: str | None = None,
    ) -> ModelSummary:
        """Point ``champion`` or ``challenger`` at an APPROVED version (None clears the alias).

        Parameters
        ----------
        expected
            The version the caller believes the alias points at now (None: not set). The move
            happens only if that is still true. Left out, the value read at the start of this
            call is used, so a concurrent move in between still makes this call fail.

        Raises
        ------
        ConflictError
            The alias does not point where ``expected`` says (someone moved it first), it
            already points at ``version`` (there is nothing to move), or the target version
            changed status at the same time. Nothing was changed.
        TransitionError
            The target version is not APPROVED.
        """
        check_actor(actor)
        attribute = _alias_attribute(alias)
        check_model_name(model)
        # One read gives both the alias and its revision, so the guard describes one state.
        meta = self.store.get(self.table, meta_key(model))
        if meta is None:
            raise NotFoundError(f"model {model!r} is not in the registry (no spec, dataset or version yet)")
        current = ModelSummary.from_item(meta).alias(alias)
        if expected is not UNSET and expected != current:
            raise ConflictError(
                f"model {model!r}: {alias} points at {_describe(current)}, not {_describe(expected)} as expected "
                "(someone moved it first); nothing was changed"
            )
        # A move to where the alias already points is refused, not written. Written, it would leave
        # the alias's value as it was, so a caller who read that value before the write and calls
        # later would still find its ``expected`` true and move the alias as well: two winners of
        # one race (the value-only ``expected`` cannot see the move in between; no store can).
        if version == current:
            raise ConflictError(f"model {model!r}: {alias} already points at {_describe(current)}; nothing was changed")
        # Every move bumps a per-alias revision and is conditional on the one read here, so a move
        # back and forth between this read and the write (A -> B -> A) still makes this call fail.
        revision_attribute = f"{attribute}_rev"
        revision = meta.get(revision_attribute)
        guard = Condition(
            equals={
                attribute: current if current is not None else ABSENT,
                revision_attribute: revision if revision is not None else ABSENT,
            }
        )
        ops: list[Operation] = []
        now = self.clock()
        if version is None:
            ops.append(
                Update(
                    self.table,
                    meta_key(model),
                    set={"updated_at": now},
                    add={revision_attribute: 1},
                    remove=(attribute,),
                    condition=guard,
                )
            )
        else:
            target = self.get_version(model, version)
            if target.status != Status.APPROVED:
                raise TransitionError(
                    f"model {model!r} version {version} is {target.status.value}; only APPROVED versions can be {alias}"
                )
            ops.append(
                Update(
                    self.table,
                    meta_key(model),
                    set={attribute: target.version, "updated_at": now},
                    add={revision_attribute: 1},
                    condition=guard,
                )
            )
            ops.append(
                Check(
                    self.table, version_key(model, target.version), Condition(equals={"status": Status.APPROVED.value})
                )
            )
        try:
            self.audit.append(
                model,
                actor=actor,
                action="alias.clear" if version is None else "alias.set",
                subject=f"model/{model}/alias/{alias}",
                before={"version": current},
                after={"version": version},
                request_id=request_id,
                with_ops=ops,
            )
        except ConditionFailedError as exc:
            now_pointing = self.get_model(model).alias(alias)
            if 0 in exc.failed:
                raise ConflictError(
                    f"model {model!r}: {alias} was moved by someone else (from {_describe(current)} to "
                    f"{_describe(now_pointing)}) while this request ran; nothing was changed, re-read and retry"
                ) from None
            raise ConflictError(
                f"model {model!r} version {version} stopped being APPROVED while this request ran; nothing was changed"
            ) from None
        return self.get_model(model)

    def get_by_alias(self, model: str, alias: str) -> ModelVersion:
        """The version an alias points at. Raises NotFoundError if the alias is not set."""
        version = self.get_model(model).alias(alias)
        if version is None:
            raise NotFoundError(f"model {model!r} has no {alias}")
        return self.get_version(model, version)

    # ----------------------------------------------------------------------------------------- history
    def append_history(
        self,
        model: str,
        version: int,
        history: str,
        entry: Mapping[str, Any],
        *,
        actor: str,
        action: str,
        request_id: str | None = None,
    ) -> ModelVersion:
        """Append an entry to a version's ``approvals`` or ``deployments`` list (audited).

        For the approval and deployment steps: they record what happened without touching the
        lineage fields, which never change after registration.
        """
        check_actor(actor)
        if history not in HISTORY_FIELDS:
            raise InputError(f"history {history!r}: must be one of {', '.join(HISTORY_FIELDS)}")
        current = self.get_version(model, version)
        now = self.clock()
        record = {"at": now, "by": actor, **dict(entry)}
        try:
            self.audit.append(
                model,
                actor=actor,
                action=action,
                subject=f"model/{model}/version/{current.version}",
                after={history: record},
                request_id=request_id,
                with_ops=[
                    Update(
                        self.table,
                        version_key(model, current.version),
                        set={"updated_at": now},
                        append={history: [record]},
                        condition=Condition(item_exists=True),
                    )
                ],
            )
        except ConditionFailedError:
            raise NotFoundError(f"model {model!r} has no version {version}") from None
        return self.get_version(model, version)


def archived_message(summary: ModelSummary) -> str:
    """The refusal every archived-model check gives (CLI, pipeline, serving)."""
    archived = summary.archived or {}
    reason = f" ({archived['reason']})" if archived.get("reason") else ""
    return (
        f"model {summary.name!r} is archived{reason} since {archived.get('at')} by {archived.get('by')}; "
        f"`mlops models unarchive {summary.name}` restores it"
    )


def _describe(version: int | None) -> str:
    return "nothing" if version is None else f"version {version}"
