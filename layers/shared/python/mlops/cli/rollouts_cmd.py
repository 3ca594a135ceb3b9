"""``mlops rollouts M``: who approved what and when, and every rollout of a model."""

from __future__ import annotations

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.cli.models_cmd import open_registry
from mlops.deployment import deployment_history


@click.command("rollouts")
@click.argument("model")
@json_option
@pass_app
def command(app: AppContext, model: str) -> None:
    """Show MODEL's serving state, approvals and rollout history (oldest first)."""
    history = deployment_history(open_registry(app), model)
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
    emit(app, history, "\n".join(lines))
