"""A model's deployment history: who approved what, when, and every rollout (CLI views)."""

from __future__ import annotations

from typing import Any

from mlops.registry.rollouts import get_rollout
from mlops.registry.versions import Registry


def deployment_history(registry: Registry, model: str) -> dict[str, Any]:
    """Who approved what, when, and every rollout: for ``mlops models show`` and ``mlops deployments``."""
    summary = registry.get_model(model)
    rollout = get_rollout(registry, model)
    approvals: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []
    for version in registry.iter_versions(model):
        approvals += [{"version": version.version, **a} for a in version.approvals]
        deployments += [{"version": version.version, **d} for d in version.deployments]
    return {
        "model": model,
        "champion": summary.champion,
        "challenger": summary.challenger,
        "rollout": {k: v for k, v in rollout.to_dict().items() if k != "history"},
        "champion_history": rollout.history,
        "approvals": sorted(approvals, key=lambda a: str(a.get("at"))),
        "deployments": sorted(deployments, key=lambda d: str(d.get("at"))),
    }


def render_history(history: dict[str, Any]) -> list[str]:
    """Readable lines of :func:`deployment_history`: serving state, approvals, rollouts."""
    model = history["model"]
    rollout = history["rollout"]
    lines = [
        f"{model}: champion {history['champion'] or '-'}, challenger {history['challenger'] or '-'} "
        f"(mode {rollout['mode']}, share {rollout['share']:.0%})",
        "approvals:",
    ]
    lines += [
        f"  {a.get('at')}  v{a['version']:<5} {a.get('decision'):<10} by {a.get('by')}"
        + (f": {a['comment']}" if a.get("comment") else "")
        for a in history["approvals"]
    ] or ["  (none)"]
    lines.append("rollouts:")
    lines += [
        f"  {d.get('at')}  v{d['version']:<5} {d.get('outcome') or d.get('strategy'):<12} by {d.get('by')}"
        + (f" (was v{d['previous_champion']})" if d.get("previous_champion") else "")
        + (f": {d['reason']}" if d.get("reason") else "")
        for d in history["deployments"]
    ] or ["  (none)"]
    return lines
