"""``mlops rollouts M``: who approved what and when, and every rollout of a model."""

from __future__ import annotations

import click

from mlops.deployment.history import deployment_history, render_history
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import open_registry


@click.command("rollouts")
@click.argument("model")
@json_option
@pass_app
def command(app: AppContext, model: str) -> None:
    """Show MODEL's serving state, approvals and rollout history (oldest first)."""
    history = deployment_history(open_registry(app), model)
    emit(app, history, "\n".join(render_history(history)))
