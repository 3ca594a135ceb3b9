"""``mlops monitor run M``: run a model's deployed drift check now; ``mlops monitor runs M``: past checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlops.errors import CheckFailedError, NotFoundError
from mlops.monitoring.monitor import start_monitor_run
from mlops.monitoring.services import list_monitor_runs
from mlops.registry.versions import check_model_name
from mlops.training.run_view import render_run
from mlops.training.runs import describe_run, wait_run
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import open_registry
from mlops_cli.runs_cmd import check_succeeded


def monitor_state_machine(app: AppContext) -> str:
    arn = app.platform().monitor_state_machine_arn
    if not arn:
        raise NotFoundError(f"environment {app.environment!r} has no monitoring pipeline deployed")
    return arn


def _text(result: dict[str, Any]) -> str:
    lines = [
        f"{result['model']} v{result['version']}: {result['verdict'].upper()} "
        f"({result['rows']} row(s), window {result['window']['start']} .. {result['window']['end']}, "
        f"{result['mode']})"
    ]
    if result.get("drifted_features"):
        lines.append("  drifted features: " + ", ".join(result["drifted_features"]))
    if result.get("missing_rate_alerts"):
        lines.append("  missing-rate changes: " + ", ".join(result["missing_rate_alerts"]))
    if result.get("prediction_drifted"):
        lines.append("  predictions drifted")
    if result.get("performance"):
        lines.append(f"  performance: {result['performance']}")
    lines.extend(_retrain_lines(result.get("retrain") or {}))
    lines.append(f"  report: s3://{result['bucket']}/{result['report_key']}")
    lines.append(f"  html:   s3://{result['bucket']}/{result['html_key']}")
    return "\n".join(lines)


def _retrain_lines(retrain: dict[str, Any]) -> list[str]:
    """What the run did about retraining: started on which data, or skipped and why."""
    action = retrain.get("action")
    if action == "started":
        name = retrain.get("execution_name")
        lines = [f"  retraining started: {name}  (mlops runs show {name})"]
        data = retrain.get("data") or {}
        version = str(data.get("version_id") or "")[:16]
        if data.get("source") == "captures+labels":
            lines.append(
                f"    on a new dataset: the champion's {data.get('base_rows')} row(s) + "
                f"{data.get('labelled_rows')} labelled capture(s), {data.get('key')} version {version}"
            )
        elif data.get("source") == "newer_dataset":
            lines.append(
                f"    on {data.get('key')} version {version} ({data.get('rows')} rows, uploaded "
                f"{data.get('uploaded_at')}), newer than the champion's"
            )
        return lines
    if action == "skipped":
        until = f" until {retrain['cooldown_until']}" if retrain.get("cooldown_until") else ""
        return [f"  retraining skipped: {retrain.get('reason')}{until}"]
    if action == "failed":
        return [f"  retraining failed to start: {retrain.get('error')}"]
    return []


@click.group("monitor")
def command() -> None:
    """Deployed drift checks: captured inputs and predictions against the champion's reference."""


@command.command("run")
@click.argument("model")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the check and print its verdict.")
@click.option(
    "--html", "html", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Save the HTML report here."
)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the check finds drift.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait (then exit 3; the check goes on).")
@click.option(
    "--distributed",
    is_flag=True,
    help="Force the Distributed Map path (per-shard sketches), whatever the window's size.",
)
@click.option(
    "--shard-objects", type=click.IntRange(min=1), default=None, help="With --distributed: objects per shard."
)
@json_option
@pass_app
def run(
    app: AppContext,
    model: str,
    wait: bool,
    html: Path | None,
    fail_on_drift: bool,
    timeout: float,
    distributed: bool,
    shard_objects: int | None,
) -> None:
    """Start MODEL's drift check now (as its schedule would) and print the verdict and report keys."""
    check_model_name(model)
    session = app.session()
    sfn = session.client("stepfunctions")
    arn = monitor_state_machine(app)
    started = start_monitor_run(sfn, arn, model, distributed=distributed, shard_objects=shard_objects)
    if not wait and html is None:
        emit(app, started, f"started {started['execution_name']}")
        return
    finished = wait_run(sfn, arn, started["execution_name"], timeout_s=timeout)
    finished = describe_run(sfn, arn, finished.arn)
    output = finished.output or {}
    if finished.status != "SUCCEEDED":  # a failed check run: exit 1, naming the step, error and cause
        if app.as_json:
            emit(app, {**started, "run": finished.to_dict()})
        else:
            click.echo("\n".join(render_run(finished)))
        check_succeeded(finished, "drift check")
    plan = output.get("plan") or {}
    if plan.get("mode") == "disabled":
        emit(app, {**started, "verdict": "disabled", "plan": plan}, f"{model}: monitoring is disabled in its spec")
        return
    result = dict((output.get("analysis") or {}).get("result") or {})
    result["execution_name"] = started["execution_name"]
    if html is not None:
        body = session.client("s3").get_object(Bucket=result["bucket"], Key=result["html_key"])["Body"].read()
        html.write_bytes(body)
        result["html_file"] = str(html)
    emit(app, result, _text(result) + (f"\n  saved:  {html}" if html is not None else ""))
    if fail_on_drift and result.get("drifted"):
        raise CheckFailedError(
            f"{model}: drift detected in {', '.join(result.get('drifted_features') or []) or 'the window'}"
        )


@command.command("runs")
@click.argument("model")
@click.option("--limit", default=20, show_default=True)
@json_option
@pass_app
def runs(app: AppContext, model: str, limit: int) -> None:
    """MODEL's past drift checks, newest first (verdict, drifted features, report)."""
    check_model_name(model)
    items = list_monitor_runs(open_registry(app), model, limit=limit)
    lines = [
        f"{i.get('status', '?'):<9} {i.get('finished_at') or '-':<33} {i.get('verdict') or i.get('step') or '-':<10} "
        f"{', '.join(i.get('drifted_features') or []) or '-'}  {i.get('report_key') or i.get('cause') or ''}"
        for i in items
    ] or [f"{model}: no drift checks yet"]
    emit(app, {"runs": items}, "\n".join(lines))
