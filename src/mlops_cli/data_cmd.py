"""``mlops data upload FILE --model M``: upload a dataset version; it starts the training pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError
from mlops.training.runs import describe_run, wait_run
from mlops.training.uploads import upload_dataset
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request
from mlops_cli.models_cmd import open_registry
from mlops_cli.runs_cmd import check_succeeded, explain, print_run, training_state_machine

# A refused upload: bad request or no spec for the model is the caller's input (exit 2).
_UPLOAD_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    403: CheckFailedError,
    404: InputError,
    409: ConflictError,
}


def _authorize(app: AppContext, model: str, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /models/<model>/uploads``, signed with the caller's credentials."""
    return signed_request(
        app,
        "POST",
        f"models/{quote(model, safe='')}/uploads",
        json.dumps(request).encode(),
        errors=_UPLOAD_ERRORS,
        why_credentials="the upload API records who uploads a dataset from the credentials that sign the request",
        retry_unavailable=True,  # a repeated request only records the same caller's grant again
    )


@click.group("data")
def command() -> None:
    """Datasets: upload a new version of a model's training data."""


@command.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, help="The model the data trains (its spec must be stored).")
@click.option("--name", default=None, help="Object name under datasets/<model>/ (default: the file's name).")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Wait for the training run and show it: exit 1 if the data is invalid or the run failed "
    "(the failed checks, or the failing step, error and cause, are printed).",
)
@click.option(
    "--timeout", default=900.0, show_default=True, help="Seconds to wait with --wait (then exit 3; the run goes on)."
)
@click.option(
    "--actor",
    default=None,
    help="Refused: the uploader is the identity of your AWS credentials, recorded by the upload API "
    "(use --profile or AWS_PROFILE to upload as someone else).",
)
@json_option
@pass_app
def upload(
    app: AppContext, file: Path, model: str, name: str | None, wait: bool, timeout: float, actor: str | None
) -> None:
    """Upload FILE to datasets/<model>/ and print the dataset version and the run it starts.

    The upload goes through the platform's upload API (SigV4-signed with your credentials), which
    records who you are, then straight to S3 with the presigned PUT it answers. The four-eyes rule
    compares that identity with the approver's. A model with no stored spec is refused before
    anything is stored (exit 2).
    """
    if actor is not None:
        raise click.UsageError(
            "--actor: the uploader is no longer named by the client; it is the identity AWS verifies for your "
            "credentials (the upload API records it). Upload with the credentials of the person uploading "
            "(--profile NAME or AWS_PROFILE)."
        )
    session = app.session()
    open_registry(app).ensure_active(model)  # an archived model takes no new data (exit 3, says how to restore)
    result = upload_dataset(model, file, authorize=lambda request: _authorize(app, model, request), name=name)
    data = result.to_dict()
    text = (
        f"uploaded s3://{result.bucket}/{result.key}\n  version {result.version_id} ({result.size:,} bytes)\n"
        f"  by      {result.uploader}\n"
        f"  run     {result.run_name}   (mlops runs show {result.run_name})"
    )
    if not wait:
        emit(app, data, text)
        return
    if not app.as_json:
        click.echo(text)  # what was stored, before the wait
    sfn = session.client("stepfunctions")
    run = wait_run(sfn, training_state_machine(app), result.run_name, timeout_s=timeout)
    run = explain(app, describe_run(sfn, training_state_machine(app), run.arn))
    data["run"] = run.to_dict()
    if app.as_json:
        emit(app, data)
    else:
        print_run(run)
    check_succeeded(run)  # exit 1 for invalid data or a failed run (the README's table)
