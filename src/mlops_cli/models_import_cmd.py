"""``mlops models import M --artifact FILE --dataset VERSION``: a model trained elsewhere, evaluated like a candidate.

The artifact is checked against the model's spec and converted on this machine
(:mod:`mlops_cli.import_prep`), then uploaded through the import API (SigV4-signed with your
credentials: the importer is the identity AWS verifies) with a presigned PUT of exactly that
sha256. Its creation starts a training run that skips training only: Evaluate on the dataset
version's holdout, Gate, Register, approval and deployment, as for a trained candidate.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click
from botocore.exceptions import ClientError

from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError, NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import ModelSpec
from mlops.training.notebook_runs import TRACKING_SOURCE, get_notebook_run
from mlops.training.runs import describe_run, wait_run
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request
from mlops_cli.models_cmd import open_registry
from mlops_cli.runs_cmd import check_succeeded, explain, print_run, training_state_machine

if TYPE_CHECKING:  # import_prep loads the science stack: only when a model is imported (below)
    from mlops_cli.import_prep import PreparedImport

# A refused import: a bad request, no spec or dataset version is the caller's input (exit 2);
# a missing permission is exit 1 as for a refused upload.
_IMPORT_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    403: CheckFailedError,
    404: InputError,
    409: ConflictError,
}


def _put(grant: dict[str, Any], data: bytes) -> None:
    """The presigned PUT of exactly the authorized content (S3 checks its SHA-256)."""
    headers = {
        **{str(k): str(v) for k, v in (grant.get("headers") or {}).items()},
        "Content-Length": str(len(data)),
        "Content-Type": "application/octet-stream",
    }
    request = urllib.request.Request(grant["url"], data=data, headers=headers, method="PUT")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=600):  # noqa: S310 - the presigned URL
            pass
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        code = re.search(r"<Code>([^<]+)</Code>", text)
        raise CheckFailedError(
            f"S3 refused the import's upload to s3://{grant.get('bucket')}/{grant.get('key')}"
            f" (HTTP {exc.code} {code.group(1) if code else text[:200]})"
        ) from None
    except urllib.error.URLError as exc:
        raise MlopsError(f"cannot reach S3 for the import's upload: {exc.reason}") from None


def _run_model(app: AppContext, registry: Registry, model: str, run_id: str, spec: ModelSpec) -> PreparedImport:
    """The model notebook run ``run_id`` logged, read back from S3 (its sha256 checked), then prepared
    exactly as a file would be, its origin ``tracking-run`` with the run id (the lineage's source run)."""
    # here: as for prepare_import above, the science stack loads only when a model is imported
    from mlops_cli.import_prep import prepare_import

    run = get_notebook_run(registry, model, run_id)  # NotFoundError (exit 3) names it
    if not run.artifact:
        raise InputError(f"notebook run {run_id} of {model!r} logged no model (run.log_model in the notebook)")
    found = run.artifact
    try:
        data = app.session().client("s3").get_object(Bucket=found["bucket"], Key=found["key"])["Body"].read()
    except ClientError as exc:
        raise NotFoundError(
            f"notebook run {run_id}'s model s3://{found['bucket']}/{found['key']} cannot be read"
            f" ({exc.response.get('Error', {}).get('Code')}): was its upload finished?"
        ) from None
    if hashlib.sha256(data).hexdigest() != found["sha256"]:
        raise CheckFailedError(f"s3://{found['bucket']}/{found['key']} is not the model notebook run {run_id} logged")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / found["key"].rsplit("/", 1)[-1]
        path.write_bytes(data)
        prepared = prepare_import(path, spec)
    return replace(prepared, source=TRACKING_SOURCE, run_id=run_id)


@click.command("import")
@click.argument("model")
@click.option(
    "--artifact",
    type=click.Path(path_type=Path),
    default=None,
    help="An ONNX file, a scikit-learn model in the platform's restricted format (.pkl), or an MLflow model "
    "directory (sklearn or onnx flavor).",
)
@click.option(
    "--dataset",
    "dataset_version",
    required=True,
    help="The dataset version (its S3 version id, as `mlops data upload` prints it) whose holdout evaluates it.",
)
@click.option(
    "--run",
    "notebook_run",
    default=None,
    help="Instead of --artifact: the model a notebook run logged (mlops.tracking; `mlops runs list --model M`).",
)
@click.option("--wait/--no-wait", default=False, help="Wait for the run and show it (exit 1 if it failed).")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait with --wait.")
@json_option
@pass_app
def import_model(
    app: AppContext,
    model: str,
    artifact: Path | None,
    notebook_run: str | None,
    dataset_version: str,
    wait: bool,
    timeout: float,
) -> None:
    """Import a model trained elsewhere into MODEL: checked against its spec, then evaluated, gated and
    registered like a trained candidate (approval and deployment follow as usual)."""
    registry = open_registry(app)
    registry.ensure_active(model)
    spec = SpecStore(registry).get(model).spec()  # NotFoundError (exit 3) if the model has no spec
    # here: onnx, skl2onnx and scikit-learn load only when a model is imported, not for `mlops models list`
    from mlops_cli.import_prep import prepare_import

    if (artifact is None) == (notebook_run is None):
        raise InputError("give exactly one of --artifact FILE and --run RUN_ID (a notebook run's logged model)")
    if notebook_run is not None:
        prepared = _run_model(app, registry, model, notebook_run, spec)
    else:
        assert artifact is not None
        prepared = prepare_import(artifact, spec)  # InputError (exit 2) names what does not fit
    grant = signed_request(
        app,
        "POST",
        f"models/{quote(model, safe='')}/imports",
        json.dumps(prepared.request(dataset_version)).encode(),
        errors=_IMPORT_ERRORS,
        why_credentials="the import API records who imports a model from the credentials that sign the request",
        retry_unavailable=True,
    )
    _put(grant, prepared.data)
    data = {
        "model": model,
        "bucket": grant["bucket"],
        "key": grant["key"],
        "format": prepared.format,
        "source": prepared.source,
        "sha256": prepared.sha256,
        "source_sha256": prepared.source_sha256,
        "run_id": prepared.run_id,
        "columns": prepared.columns,
        "dataset_version": dataset_version,
        "importer": grant["caller"],
        "run_name": grant["run_name"],
    }
    text = (
        f"imported s3://{grant['bucket']}/{grant['key']}\n"
        f"  format  {prepared.format} (from {prepared.source}"
        + (f", run {prepared.run_id}" if prepared.run_id else "")
        + ")\n"
        f"  columns {', '.join(prepared.columns)}\n"
        f"  dataset {dataset_version}\n"
        f"  by      {grant['caller']}\n"
        f"  run     {grant['run_name']}   (mlops runs show {grant['run_name']})"
    )
    if not wait:
        emit(app, data, text)
        return
    if not app.as_json:
        click.echo(text)
    sfn = app.session().client("stepfunctions")
    run = wait_run(sfn, training_state_machine(app), grant["run_name"], timeout_s=timeout)
    run = explain(app, describe_run(sfn, training_state_machine(app), run.arn))
    data["run"] = run.to_dict()
    if app.as_json:
        emit(app, data)
    else:
        print_run(run)
    check_succeeded(run)
