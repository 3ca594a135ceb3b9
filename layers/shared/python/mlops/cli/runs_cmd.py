"""``mlops runs list|show|wait``: training pipeline runs, step by step."""

from __future__ import annotations

import json
from typing import Any

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.errors import CheckFailedError, NotFoundError
from mlops.registryview import render_candidates
from mlops.runs import Run, describe_run, list_runs, wait_run


def training_state_machine(app: AppContext) -> str:
    arn = app.platform().training_state_machine_arn
    if not arn:
        raise NotFoundError(f"environment {app.environment!r} has no training pipeline deployed")
    return arn


def print_run(run: Run) -> None:
    click.echo(f"run {run.name}  [{run.status}]  model {run.model or '?'}")
    click.echo(f"  started {run.started}  stopped {run.stopped or '-'}")
    for step in run.steps:
        notes = []
        if step.entries > 1:
            notes.append(f"{step.entries} runs")
        if step.attempts > max(step.entries, 1):
            notes.append(f"{step.attempts - max(step.entries, 1)} retried")
        line = f"  {step.status:<9} {step.name}" + (f" ({', '.join(notes)})" if notes else "")
        if step.error:
            line += f": {step.error}: {step.cause or ''}"[:300]
        click.echo(line)
    output = run.output or {}
    if "outcome" in output:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((output.get("metrics") or {}).items()))
        click.echo(
            f"  outcome: {output['outcome']}: {output.get('model')} version {output.get('version')} "
            f"{output.get('status')}"
        )
        if metrics:
            click.echo(f"  metrics: {metrics}")
        for reason in output.get("reasons") or []:
            click.echo(f"  reason:  {reason}")
        if output.get("card_uri"):
            click.echo(
                f"  card:    {output['card_uri']}  (mlops models card {output.get('model')} {output.get('version')})"
            )
    elif run.output:
        click.echo("  output: " + json.dumps(run.output, default=str)[:800])
    if run.error:
        click.echo(f"  failed: {run.error}: {run.cause or ''}")


def run_candidates(app: AppContext, run: Run) -> dict[str, Any] | None:
    """The run's search candidates, best first (None before its Evaluate step wrote them)."""
    from mlops.registryview import run_candidates as stored_candidates

    if not run.model:
        return None
    return stored_candidates(app.session().client("s3"), app.platform().data_bucket, run.model, run.name)


@click.group("runs")
def command() -> None:
    """Training pipeline runs (one per uploaded dataset version)."""


@command.command("list")
@click.option("--model", "-m", default=None, help="Only this model's runs.")
@click.option("--limit", default=20, show_default=True)
@json_option
@pass_app
def list_cmd(app: AppContext, model: str | None, limit: int) -> None:
    """The newest runs, newest first."""
    runs = list_runs(app.session().client("stepfunctions"), training_state_machine(app), model=model, limit=limit)
    lines = [f"{r.status:<10} {r.started or '-':<33} {r.name}" for r in runs] or ["no runs"]
    emit(app, {"runs": [r.to_dict() for r in runs]}, "\n".join(lines))


@command.command("show")
@click.argument("run")
@json_option
@pass_app
def show(app: AppContext, run: str) -> None:
    """RUN's steps: status, attempts, failure reasons, output, and every search candidate's score
    best first (RUN is a name or an execution ARN)."""
    found = describe_run(app.session().client("stepfunctions"), training_state_machine(app), run)
    candidates = run_candidates(app, found)
    if app.as_json:
        emit(app, {**found.to_dict(), "candidates": candidates})
    else:
        print_run(found)
        if candidates is not None:
            click.echo("\n".join(render_candidates(candidates)))


@command.command("wait")
@click.argument("run")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds before giving up (exit 1).")
@json_option
@pass_app
def wait(app: AppContext, run: str, timeout: float) -> None:
    """Wait for RUN to finish; exit 0 if it SUCCEEDED, 1 otherwise."""
    sfn = app.session().client("stepfunctions")
    found = wait_run(sfn, training_state_machine(app), run, timeout_s=timeout)
    found = describe_run(sfn, training_state_machine(app), found.arn)
    if app.as_json:
        emit(app, found.to_dict())
    else:
        print_run(found)
    if found.status != "SUCCEEDED":
        raise CheckFailedError(f"run {found.name} ended {found.status}")
