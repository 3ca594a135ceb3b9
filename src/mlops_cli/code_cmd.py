"""``mlops code upload DIR --model M`` and ``mlops code list --model M``: a model's training code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError
from mlops.registry.code_versions import STORED, list_code_versions
from mlops.training.uploads import upload_code
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request
from mlops_cli.models_cmd import open_registry

# A refused upload: bad request or no spec is the caller's input (exit 2); not a code uploader, exit 1.
_CODE_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    403: CheckFailedError,
    404: InputError,
    409: ConflictError,
}


def _authorize(app: AppContext, model: str, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /models/<model>/code``, signed with the caller's credentials."""
    return signed_request(
        app,
        "POST",
        f"models/{quote(model, safe='')}/code",
        json.dumps(request).encode(),
        errors=_CODE_ERRORS,
        why_credentials="the code upload API records who uploads training code from the credentials that sign it",
    )


@click.group("code")
def command() -> None:
    """Training code: a model's code packages, versioned like its datasets (training.entry_point)."""


@command.command("upload")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, help="The model whose spec names the package's entry point.")
@json_option
@pass_app
def upload(app: AppContext, directory: Path, model: str) -> None:
    """Package DIRECTORY (a Python package) and store it as the model's next code version.

    The zip is deterministic (sorted entries, fixed timestamps, no __pycache__), so the same source
    gives the same sha256. The code upload API (its own IAM permission, apart from dataset uploads)
    records the version, the sha256 and you (the identity AWS verified) as the uploader; the next
    training run of a spec with training.entry_point uses it (or the version training.code_version pins).
    """
    result = upload_code(model, directory, authorize=lambda request: _authorize(app, model, request))
    emit(
        app,
        result,
        f"code version {result['version']} of {model}: package {result['package']} "
        f"({result['size']:,} bytes)\n  sha256  {result['sha256']}\n  by      {result['uploader']}\n"
        f"  stored  {result['uri']}",
    )


@command.command("list")
@click.option("--model", "-m", required=True, help="The model.")
@json_option
@pass_app
def list_versions(app: AppContext, model: str) -> None:
    """A model's code versions, oldest first: version, state, package, sha256, size, uploader, time."""
    versions = list_code_versions(open_registry(app), model)
    rows = [v.to_dict() for v in versions]
    if app.as_json:
        emit(app, rows)
        return
    if not rows:
        click.echo(f"{model} has no training code (mlops code upload DIR --model {model})")
        return
    click.echo(
        f"{'VERSION':>7}  {'STATE':<8} {'PACKAGE':<20} {'SHA256':<14} {'BYTES':>9}  {'UPLOADED AT':<24} UPLOADER"
    )
    for v in versions:
        click.echo(
            f"{v.version:>7}  {v.state:<8} {v.package:<20} {v.sha256[:12]:<14} {v.size:>9,}  {v.uploaded_at:<24} "
            f"{v.uploader}"
        )
    if any(v.state != STORED for v in versions):
        click.echo(
            "pending: the upload was authorized but its package was not confirmed stored; a run skips it for "
            "'latest' (unless its package did arrive) and refuses it when pinned"
        )
