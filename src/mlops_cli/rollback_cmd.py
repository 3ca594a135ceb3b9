"""``mlops rollback M [--to V]``: move the champion back in one audited step."""

from __future__ import annotations

import click

from mlops.deployment.rollback import rollback
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import actor_option, open_registry, resolve_actor


@click.command("rollback")
@click.argument("model")
@click.option(
    "--to", "to", type=click.IntRange(1), default=None, help="The version to serve (default: the previous champion)."
)
@actor_option
@json_option
@pass_app
def command(app: AppContext, model: str, to: int | None, actor: str | None) -> None:
    """Make a previous approved version of MODEL the champion again (and clear any challenger)."""
    result = rollback(open_registry(app), model, to=to, actor=resolve_actor(app, actor))
    text = f"model {model}: champion {result['previous_champion']} -> {result['champion']}"
    if result["cleared_challenger"] is not None:
        text += f" (challenger {result['cleared_challenger']} cleared)"
    emit(app, result, text)
