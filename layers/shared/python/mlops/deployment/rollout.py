"""Rollouts: which approved version serves, how it got there, and how to undo it.

The aliases live on the model (:meth:`mlops.registry.versions.Registry.set_alias`, conditional and
audited): ``champion`` answers requests; ``challenger`` is a canary (answers ``share`` of the
requests) or a shadow (gets copies, never answers). How the challenger serves is this module's
rollout item, ``MODEL#<name>`` / ``ROLLOUT#current``, which the inference function reads:

=============  ==========================================================================
attribute      meaning
=============  ==========================================================================
``mode``       ``single`` (champion only), ``canary`` or ``shadow``
``champion``   the champion when the rollout item was written
``challenger`` the challenger (None in ``single``)
``share``      fraction of requests the canary answers (0 for shadow and single)
``history``    every champion change, oldest first: ``{"version", "at", "by", "how"}``
=============  ==========================================================================

Every change writes the rollout item in one transaction with its audit event, and appends to the
version's ``deployments`` history.

A canary ends in :func:`finish_canary`, promoted or rolled back by its alarms
(:mod:`mlops.deployment.canary`); :mod:`mlops.deployment.rollback` moves the champion back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from mlops.deployment.plan import STRATEGIES
from mlops.errors import ConflictError, InputError, TransitionError
from mlops.registry.rollouts import Rollout, get_rollout, rollout_key
from mlops.registry.tables import ABSENT, Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry, Status


def serve_champion_alone(
    registry: Registry,
    model: str,
    *,
    actor: str,
    action: str,
    execution: str | None,
    champion_change: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Rollout:
    """Record that the champion answers alone again (no canary, no shadow)."""
    return _write_rollout(
        registry,
        model,
        mode="single",
        challenger=None,
        share=0.0,
        actor=actor,
        action=action,
        execution=execution,
        champion_change=champion_change,
        request_id=request_id,
    )


def _write_rollout(
    registry: Registry,
    model: str,
    *,
    mode: str,
    challenger: int | None,
    share: float,
    actor: str,
    action: str,
    execution: str | None,
    champion_change: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Rollout:
    """Write the rollout item (conditional on the revision read) with its audit event."""
    for _attempt in range(5):
        current = get_rollout(registry, model)
        champion = registry.get_model(model).champion
        now = registry.clock()
        history = list(current.history)
        if champion_change is not None:
            history.append({"at": now, "by": actor, **dict(champion_change)})
        after = Rollout(
            model=model,
            mode=mode,
            champion=champion,
            challenger=challenger,
            share=share,
            execution=execution,
            updated_at=now,
            updated_by=actor,
            revision=current.revision + 1,
            history=history[-100:],
        )
        item = {k: v for k, v in asdict(after).items() if v is not None}
        item.update(rollout_key(model))
        item["kind"] = "rollout"
        guard = Condition(equals={"revision": current.revision if current.revision else ABSENT})
        summary = {k: v for k, v in after.to_dict().items() if k != "history"}
        try:
            registry.audit.append(
                model,
                actor=actor,
                action=action,
                subject=f"model/{model}/rollout",
                before={k: v for k, v in current.to_dict().items() if k != "history"},
                after=summary,
                request_id=request_id,
                with_ops=[Put(registry.table, item, guard)],
            )
        except ConditionFailedError:
            continue
        return after
    raise ConflictError(f"model {model!r}: the rollout changed repeatedly while this request ran; retry")


def _move(
    registry: Registry, model: str, alias: str, version: int | None, *, actor: str, request_id: str | None
) -> bool:
    """Point an alias; False if it already pointed there (a re-run), ConflictError on a race."""
    if registry.get_model(model).alias(alias) == version:
        return False
    registry.set_alias(model, alias, version, actor=actor, request_id=request_id)
    return True


def deploy_version(
    registry: Registry,
    model: str,
    version: int,
    strategy: str,
    *,
    actor: str,
    canary_percent: int = 10,
    execution: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Move the aliases for ``strategy``; the version must be APPROVED (ARCHIVED is restored).

    ``all_at_once`` makes it champion (clearing it as challenger); ``canary`` and ``shadow`` make
    it challenger. A canary with no champion to compare with is deployed all at once.

    Returns
    -------
    dict
        ``strategy`` (as applied), ``bake`` (a canary waits, then is checked), ``champion``,
        ``challenger``, ``previous_champion``.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    target = registry.get_version(model, version)
    done = _own_entry(target.deployments, execution, finished=False)
    if done is not None:  # a retried step (its answer was lost): the same answer, nothing moved twice
        return _deployed(registry, model, version, strategy, done)
    registry.ensure_active(model)  # archived while it waited for approval: nothing moves
    if target.status == Status.ARCHIVED:
        registry.approve(model, version, actor=actor, reason="restored for deployment", request_id=request_id)
    elif target.status != Status.APPROVED:
        raise TransitionError(
            f"model {model!r} version {version} is {target.status.value}; only APPROVED versions are deployed"
        )
    summary = registry.get_model(model)
    previous = summary.champion
    rollout = get_rollout(registry, model)
    # a retry after the aliases moved but before the history was written: this execution's change
    # is the rollout's last one, and the champion it replaced is recorded there
    redo = bool(execution) and rollout.execution == execution and previous == version and bool(rollout.history)
    if redo and rollout.history[-1].get("version") == version:
        previous = rollout.history[-1].get("from")
    applied = strategy
    note = None
    if strategy == "canary" and (previous is None or previous == version):
        applied, note = "all_at_once", "no other champion to compare a canary with: deployed all at once"
    if applied == "all_at_once":
        if summary.challenger == version:
            _move(registry, model, "challenger", None, actor=actor, request_id=request_id)
        _move(registry, model, "champion", version, actor=actor, request_id=request_id)
        if not (redo and rollout.mode == "single"):
            serve_champion_alone(
                registry,
                model,
                actor=actor,
                action="rollout.all_at_once",
                execution=execution,
                champion_change={"version": version, "from": previous, "how": "all_at_once"},
                request_id=request_id,
            )
        share = 1.0
    else:
        if previous == version:
            raise ConflictError(f"model {model!r} version {version} is already the champion; nothing to {applied}")
        _move(registry, model, "challenger", version, actor=actor, request_id=request_id)
        share = canary_percent / 100 if applied == "canary" else 0.0
        _write_rollout(
            registry,
            model,
            mode=applied,
            challenger=version,
            share=share,
            actor=actor,
            action=f"rollout.{applied}",
            execution=execution,
            request_id=request_id,
        )
    entry = {"strategy": applied, "share": share, "previous_champion": previous, "execution": execution}
    if note:
        entry["note"] = note
    registry.append_history(
        model, version, "deployments", entry, actor=actor, action=f"deployment.{applied}", request_id=request_id
    )
    return _deployed(registry, model, version, strategy, entry)


def _own_entry(entries: list[dict[str, Any]], execution: str | None, *, finished: bool) -> dict[str, Any] | None:
    """The ``deployments`` entry that ``execution`` already wrote: its deploy (``finished=False``)
    or its canary's end (``finished=True``). The idempotency key of a retried deployment step."""
    if not execution:
        return None
    return next(
        (e for e in reversed(entries) if e.get("execution") == execution and ("outcome" in e) == finished), None
    )


def _deployed(registry: Registry, model: str, version: int, requested: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The deploy step's answer, from the ``deployments`` entry it wrote."""
    after = registry.get_model(model)
    applied = str(entry["strategy"])
    return {
        "model": model,
        "version": int(version),
        "strategy": applied,
        "requested_strategy": requested,
        "bake": applied == "canary",
        "share": float(entry["share"]),
        "champion": after.champion,
        "challenger": after.challenger,
        "previous_champion": None if entry.get("previous_champion") is None else int(entry["previous_champion"]),
        "note": entry.get("note"),
    }


def finish_canary(
    registry: Registry,
    model: str,
    version: int,
    *,
    healthy: bool,
    reason: str,
    actor: str,
    execution: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """End a canary's bake: promote it (champion := challenger) or roll it back (clear, archive).

    If the challenger is no longer ``version`` (someone rolled back or deployed meanwhile), nothing
    changes and the outcome is ``superseded``.
    """
    summary = registry.get_model(model)
    done = _own_entry(registry.get_version(model, version).deployments, execution, finished=True)
    if done is not None:  # a retried step: this execution already promoted or rolled back
        return {
            "model": model,
            "version": int(version),
            "outcome": done["outcome"],
            "reason": done.get("reason"),
            "champion": summary.champion,
            "challenger": summary.challenger,
        }
    if summary.challenger != version:
        return {"model": model, "version": int(version), "outcome": "superseded", "champion": summary.champion}
    previous = summary.champion
    if healthy:
        registry.set_alias(model, "challenger", None, actor=actor, expected=version, request_id=request_id)
        registry.set_alias(model, "champion", version, actor=actor, expected=previous, request_id=request_id)
        serve_champion_alone(
            registry,
            model,
            actor=actor,
            action="rollout.promoted",
            execution=execution,
            champion_change={"version": version, "from": previous, "how": "canary promoted"},
            request_id=request_id,
        )
        outcome = "promoted"
    else:
        registry.set_alias(model, "challenger", None, actor=actor, expected=version, request_id=request_id)
        serve_champion_alone(
            registry,
            model,
            actor=actor,
            action="rollout.rolled_back",
            execution=execution,
            request_id=request_id,
        )
        registry.archive(model, version, actor=actor, reason=f"canary rolled back: {reason}", request_id=request_id)
        outcome = "rolled_back"
    registry.append_history(
        model,
        version,
        "deployments",
        {
            "strategy": "canary",
            "outcome": outcome,
            "reason": reason,
            "previous_champion": previous,
            "execution": execution,
        },
        actor=actor,
        action=f"deployment.{outcome}",
        request_id=request_id,
    )
    after = registry.get_model(model)
    return {
        "model": model,
        "version": int(version),
        "outcome": outcome,
        "reason": reason,
        "champion": after.champion,
        "challenger": after.challenger,
    }
