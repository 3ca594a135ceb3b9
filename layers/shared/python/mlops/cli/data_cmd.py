"""``mlops data upload FILE --model M``: upload a dataset version; it starts the training pipeline."""

from __future__ import annotations

from pathlib import Path

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.cli.models_cmd import actor_option, open_registry, resolve_actor
from mlops.cli.runs_cmd import print_run, training_state_machine
from mlops.runs import describe_run, upload_dataset, wait_run


@click.group("data")
def command() -> None:
    """Datasets: upload a new version of a model's training data."""


@command.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, help="The model the data trains (its spec must be stored).")
@click.option("--name", default=None, help="Object name under datasets/<model>/ (default: the file's name).")
@click.option("--wait/--no-wait", default=False, help="Wait for the training run to finish and show it.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait with --wait.")
@actor_option
@json_option
@pass_app
def upload(
    app: AppContext, file: Path, model: str, name: str | None, wait: bool, timeout: float, actor: str | None
) -> None:
    """Upload FILE to datasets/<model>/ and print the dataset version and the run it starts."""
    platform = app.platform()
    session = app.session()
    open_registry(app).ensure_active(model)  # an archived model takes no new data (exit 3, says how to restore)
    result = upload_dataset(
        session.client("s3"), platform.data_bucket, model, file, uploader=resolve_actor(app, actor), name=name
    )
    data = result.to_dict()
    text = (
        f"uploaded s3://{result.bucket}/{result.key}\n  version {result.version_id} ({result.size:,} bytes)\n"
        f"  run     {result.run_name}   (mlops runs show {result.run_name})"
    )
    if wait:
        sfn = session.client("stepfunctions")
        run = wait_run(sfn, training_state_machine(app), result.run_name, timeout_s=timeout)
        run = describe_run(sfn, training_state_machine(app), run.arn)
        data["run"] = run.to_dict()
        if not app.as_json:
            click.echo(text)
            print_run(run)
            return
    emit(app, data, text)
