"""A failed pipeline run, recorded the one way every pipeline records it.

The training, deployment and monitoring state machines each end a failed run in a state that
records it: one audit event on the model's chain (``pipeline.failed``, ``deployment.failed``,
``monitor.failed``, ``notification.failed``) whose ``after`` is the failure's record (the step,
Step Functions' ``Error`` and ``Cause``, the execution), and, for training and monitoring, the run's
own item in the registry table (``RUN#...`` / ``MONITOR#RUN#...``, keys from
:mod:`mlops.registry.keys`) written in the same transaction.

Step Functions retries a state whose answer was lost (the function ran, then failed or timed out
on return), so a failure is recorded once per run: with a run item, the item is written only if
it is absent (the retry finds it and writes nothing); without one, the chain's newest events are
searched for the same action and record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry

# How many of a chain's newest events a retried record without a run item looks through.
RECENT_EVENTS = 50


def failure_fields(error: Mapping[str, Any] | None, *, cause_limit: int) -> dict[str, Any]:
    """Step Functions' error of a failed state (``{"Error": ..., "Cause": ...}``) as a record's
    ``error`` and ``cause`` (the cause cut to ``cause_limit`` characters)."""
    error = error or {}
    return {"error": error.get("Error"), "cause": str(error.get("Cause"))[:cause_limit]}


def record_failure(
    registry: Registry,
    chain: str,
    *,
    actor: str,
    action: str,
    subject: str,
    record: dict[str, Any],
    item: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Audit ``action`` with ``record`` on ``chain`` (and write the run's ``item`` with it), once.

    Returns ``{"recorded": True, **record}``, also when a retry found the failure already recorded.
    """
    if item is not None:
        with contextlib.suppress(ConditionFailedError):
            registry.audit.append(
                chain,
                actor=actor,
                action=action,
                subject=subject,
                after=record,
                request_id=request_id,
                with_ops=[Put(registry.table, dict(item), Condition(item_exists=False))],
            )
        return {"recorded": True, **record}
    events, _ = registry.audit.list_events(chain, limit=RECENT_EVENTS)
    if not any(e.action == action and e.after == record for e in events):
        registry.audit.append(chain, actor=actor, action=action, subject=subject, after=record, request_id=request_id)
    return {"recorded": True, **record}
