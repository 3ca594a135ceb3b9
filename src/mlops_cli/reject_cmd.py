"""``mlops reject M V --reason``: turn down a waiting candidate through the approval API."""

from __future__ import annotations

import click

from mlops_cli.approve_cmd import decision_path, print_decision, signed_post
from mlops_cli.common import AppContext, json_option, pass_app


@click.command("reject")
@click.argument("model")
@click.argument("version", type=click.IntRange(1))
@click.option("--reason", required=True, help="Why the candidate may not serve (recorded with your identity).")
@json_option
@pass_app
def command(app: AppContext, model: str, version: int, reason: str) -> None:
    """Reject MODEL VERSION (final: a rejected version can never serve); its pipeline ends."""
    print_decision(app, signed_post(app, decision_path(model, version, "reject"), {"reason": reason}))
