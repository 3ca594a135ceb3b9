"""``mlops runs list|show|wait``: training pipeline runs, step by step."""

from __future__ import annotations

import json
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError
from mlops.registry.keys import training_run_key
from mlops.registry.versions import Registry
from mlops.registry.view import render_candidates
from mlops.registry.view import run_candidates as stored_candidates
from mlops.training.code import code_from_tags
from mlops.training.history import Run
from mlops.training.notebook_runs import get_notebook_run, imported_from, is_notebook_run_id, list_notebook_runs
from mlops.training.run_view import render_code, render_notebook_run, render_notebook_run_detail, render_run
from mlops.training.runs import describe_run, list_runs, wait_run
from mlops_cli.common import AppContext, emit, json_option, pass_app


def open_registry(app: AppContext) -> Registry:
    """The environment's registry (models_cmd's own, repeated: importing models_cmd here made a cycle
    through models_import_cmd, which imports this module, so `mlops runs` failed to load first)."""
    return Registry.for_platform(app.session().client("dynamodb"), app.platform())


def training_state_machine(app: AppContext) -> str:
    arn = app.platform().training_state_machine_arn
    if not arn:
        raise NotFoundError(f"environment {app.environment!r} has no training pipeline deployed")
    return arn


def print_run(run: Run) -> None:
    """Each step's real state, the outcome, and for a failed run the step, error and cause."""
    click.echo("\n".join(render_run(run)))


def _s3_location(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def explain(app: AppContext, run: Run) -> Run:
    """Add to a failed run what its execution does not hold: the failed checks of an invalid
    dataset (read from its validation report in S3) and the registry's ``RUN#<run>`` item that
    the failure path wrote. What cannot be read is noted, never raised: the run's own story stands."""
    failure = run.failure
    if failure is None:
        return run
    if failure.report_uri:
        bucket, key = _s3_location(failure.report_uri)
        try:
            body = app.session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            report = json.loads(body)
            failure.checks = [c for c in report.get("checks") or [] if c.get("status") == "failed"]
        except (ClientError, BotoCoreError, ValueError) as exc:
            failure.notes.append(f"the validation report could not be read ({exc})")
    elif run.model:
        try:
            registry = open_registry(app)
            item = registry.store.get(registry.table, training_run_key(run.model, run.name))
            if item is not None:
                failure.recorded = {k: v for k, v in item.items() if k in ("sk", "step", "error", "status")}
        except (ClientError, BotoCoreError, MlopsError) as exc:
            failure.notes.append(f"the registry's record of the failure could not be read ({exc})")
    return run


def check_succeeded(run: Run, what: str = "run") -> None:
    """Exit 1 (a check failed: the README's table) unless ``run`` SUCCEEDED; the message names the
    failing step and its error."""
    if run.status == "SUCCEEDED":
        return
    failure = run.failure
    if failure is not None and failure.error == "DatasetInvalid":
        summary = str(failure.summary or failure.cause or "").removeprefix("invalid: ")
        why = f": the dataset is invalid ({summary}); report {failure.report_uri}"
    elif failure is not None:
        why = f" at {failure.step}: {failure.error}: {(failure.cause or '')[:300]}"
    else:
        why = f": {run.error}: {run.cause}" if run.error else ""
    raise CheckFailedError(f"{what} {run.name} ended {run.status}{why}")


def run_candidates(app: AppContext, run: Run) -> dict[str, Any] | None:
    """The run's search candidates, best first (None before its Evaluate step wrote them)."""
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
    """The newest runs, newest first; with --model, the runs recorded from notebooks too (source notebook)."""
    runs = list_runs(app.session().client("stepfunctions"), training_state_machine(app), model=model, limit=limit)
    notebook = list_notebook_runs(open_registry(app), model)[:limit] if model else []
    lines = [f"{r.status:<10} {r.started or '-':<33} {r.name}" for r in runs] or ["no runs"]
    if notebook:
        lines += ["", "notebook runs (source notebook):"] + [line for r in notebook for line in render_notebook_run(r)]
    data: dict[str, Any] = {"runs": [{**r.to_dict(), "source": "pipeline"} for r in runs]}
    if model:
        data["notebook_runs"] = [r.to_dict() for r in notebook]
    emit(app, data, "\n".join(lines))


@command.command("show")
@click.argument("run")
@click.option("--model", "-m", default=None, help="The run's model: needed for a notebook run (nb-...).")
@json_option
@pass_app
def show(app: AppContext, run: str, model: str | None) -> None:
    """RUN's steps: status, attempts, failure reasons, output, the code version it trained, and every
    search candidate's score best first (RUN is a name or an execution ARN). A notebook run (nb-..., with
    --model): its params, metrics, tags, who recorded it, its logged model and the version it became."""
    if is_notebook_run_id(run):
        if not model:
            raise InputError(f"{run} is a notebook run: show it with --model MODEL (`mlops runs list --model MODEL`)")
        show_notebook_run(app, model, run)
        return
    found = explain(app, describe_run(app.session().client("stepfunctions"), training_state_machine(app), run))
    candidates = run_candidates(app, found)
    code = run_code(app, found)
    if app.as_json:
        emit(app, {**found.to_dict(), "candidates": candidates, "code": code})
    else:
        print_run(found)
        if code is not None:
            click.echo(f"  code:    {render_code(code)}")
        if candidates is not None:
            click.echo("\n".join(render_candidates(candidates)))


def run_code(app: AppContext, run: Run) -> dict[str, Any] | None:
    """The code version (code_* tags) of the version ``run`` registered, or None (none registered, or
    the spec's own estimator)."""
    output = run.output if isinstance(run.output, dict) else {}
    model, version = output.get("model"), output.get("version")
    if not model or not isinstance(version, int):
        return None
    try:
        return code_from_tags(open_registry(app).get_version(str(model), version).tags)
    except NotFoundError:
        return None


def show_notebook_run(app: AppContext, model: str, run_id: str) -> None:
    registry = open_registry(app)
    found = get_notebook_run(registry, model, run_id)  # NotFoundError (exit 3) names it
    imported = imported_from(registry, model, run_id)
    data = {
        **found.to_dict(),
        "imported_versions": [{"version": v.version, "status": v.status.value} for v in imported],
    }
    emit(app, data, "\n".join(render_notebook_run_detail(found, imported)))


@command.command("wait")
@click.argument("run")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds before giving up (exit 3; the run goes on).")
@json_option
@pass_app
def wait(app: AppContext, run: str, timeout: float) -> None:
    """Wait for RUN to finish; exit 0 if it SUCCEEDED, 1 if it failed (the failing step, error and
    cause are printed), 3 if it had not finished after --timeout seconds."""
    sfn = app.session().client("stepfunctions")
    found = wait_run(sfn, training_state_machine(app), run, timeout_s=timeout)
    found = explain(app, describe_run(sfn, training_state_machine(app), found.arn))
    if app.as_json:
        emit(app, found.to_dict())
    else:
        print_run(found)
    check_succeeded(found)
