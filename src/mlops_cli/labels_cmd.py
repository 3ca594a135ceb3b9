"""``mlops labels upload FILE --model M``: ground truth for captured predictions, joined by request id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from mlops.data.labels import DEFAULT_LOOKBACK_DAYS, upload_labels
from mlops.errors import InputError
from mlops.monitoring.captures import find_capture_keys
from mlops.registry.specs import SpecStore
from mlops.registry.versions import check_model_name
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import actor_option, open_registry, resolve_actor


@click.group("labels")
def command() -> None:
    """Ground truth: the true outcome of captured predictions, for performance drift."""


@command.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, help="The model whose predictions the labels are for.")
@click.option(
    "--lookback-days",
    default=float(DEFAULT_LOOKBACK_DAYS),
    show_default=True,
    help="How far back to look for the captured predictions the labels match.",
)
@actor_option
@json_option
@pass_app
def upload(app: AppContext, file: Path, model: str, lookback_days: float, actor: str | None) -> None:
    """Check FILE (CSV or JSON Lines: request_id, the target column, optional index) and upload it.

    Prints how many of its request ids match captured predictions in the lookback.
    """
    check_model_name(model)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    spec = SpecStore(open_registry(app)).get(model).spec()
    platform = app.platform()
    s3 = app.session().client("s3")
    key, labels = upload_labels(
        s3, platform.data_bucket, model, data, str(file), spec, uploader=resolve_actor(app, actor)
    )
    now = datetime.now(UTC)
    ids = {label.request_id for label in labels}
    keys, notes = find_capture_keys(s3, platform.data_bucket, model, ids, now - timedelta(days=lookback_days), now)
    matched = {k.rsplit("/", 1)[-1].removesuffix(".jsonl") for k in keys}
    result = {
        "model": model,
        "key": key,
        "bucket": platform.data_bucket,
        "labels": len(labels),
        "request_ids": len(ids),
        "matched_request_ids": len(matched),
        "lookback_days": lookback_days,
        "notes": notes,
    }
    text = (
        f"uploaded s3://{platform.data_bucket}/{key}: {len(labels)} label(s)\n"
        f"  {len(matched)} of {len(ids)} request id(s) match captured predictions of the last {lookback_days:g} day(s)"
    )
    emit(app, result, text + "".join(f"\n  note: {n}" for n in notes))
