"""Rollback: the champion goes back to an earlier approved version, in one audited alias move."""

from __future__ import annotations

from typing import Any

from mlops.deployment.rollout import serve_champion_alone
from mlops.errors import ConflictError, NotFoundError, TransitionError
from mlops.registry.rollouts import get_rollout
from mlops.registry.versions import Registry, Status


def champion_stack(history: list[dict[str, Any]]) -> list[int]:
    """Champions as an undo stack: a rollback pops back to its target, so rolling back twice goes
    two steps back, never forth again."""
    stack: list[int] = []
    for entry in history:
        version = entry.get("version")
        if version is None:
            continue
        if entry.get("how") == "rollback" and int(version) in stack:
            while stack[-1] != int(version):
                stack.pop()
        else:
            stack.append(int(version))
    return stack


def rollback(
    registry: Registry, model: str, *, to: int | None = None, actor: str, request_id: str | None = None
) -> dict[str, Any]:
    """Move the champion back to a previous approved version in one audited alias move.

    Parameters
    ----------
    to
        The version to serve; default: the champion before the current one (rollout history),
        skipping versions that are no longer APPROVED or ARCHIVED.

    Raises
    ------
    NotFoundError
        There is no champion, or no earlier version to go back to.
    TransitionError
        ``to`` is REJECTED or still PENDING_APPROVAL.
    """
    summary = registry.ensure_active(model) or registry.get_model(model)
    current = summary.champion
    if current is None:
        raise NotFoundError(f"model {model!r} has no champion; there is nothing to roll back")
    if to is None:
        earlier = champion_stack(get_rollout(registry, model).history)
        while earlier and earlier[-1] == current:
            earlier.pop()
        to = next(
            (
                v
                for v in reversed(earlier)
                if v != current and registry.get_version(model, v).status in (Status.APPROVED, Status.ARCHIVED)
            ),
            None,
        )
        if to is None:
            raise NotFoundError(
                f"model {model!r}: no earlier champion to roll back to (champion is version {current}); "
                "name one with --to V"
            )
    if to == current:
        raise ConflictError(f"model {model!r}: version {to} is already the champion; nothing was changed")
    target = registry.get_version(model, to)
    if target.status == Status.ARCHIVED:
        registry.approve(
            model, to, actor=actor, reason=f"restored by rollback from version {current}", request_id=request_id
        )
    elif target.status != Status.APPROVED:
        raise TransitionError(
            f"model {model!r} version {to} is {target.status.value}; a rollback goes to an approved version only"
        )
    if summary.challenger is not None:
        registry.set_alias(model, "challenger", None, actor=actor, expected=summary.challenger, request_id=request_id)
    registry.set_alias(model, "champion", to, actor=actor, expected=current, request_id=request_id)
    serve_champion_alone(
        registry,
        model,
        actor=actor,
        action="rollout.rollback",
        execution=None,
        champion_change={"version": to, "from": current, "how": "rollback"},
        request_id=request_id,
    )
    registry.append_history(
        model,
        to,
        "deployments",
        {"strategy": "rollback", "previous_champion": current, "cleared_challenger": summary.challenger},
        actor=actor,
        action="deployment.rollback",
        request_id=request_id,
    )
    return {"model": model, "champion": to, "previous_champion": current, "cleared_challenger": summary.challenger}
