"""``mlops spec put|show|list``: model spec revisions (stored, never overwritten); ``spec init``: a starting spec."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from mlops.errors import InputError
from mlops.registry.specs import SpecRevision, SpecStore
from mlops.spec.estimators import check_estimator_params
from mlops.spec.model import load_spec
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import actor_option, open_registry, resolve_actor


def _header(revision: SpecRevision) -> str:
    return (
        f"{revision.model} spec revision {revision.revision} (sha256 {revision.fingerprint[:12]}...) "
        f"by {revision.created_by} at {revision.created_at}"
    )


@click.group("spec")
def command() -> None:
    """Model specs: infer a starting spec from a CSV, store a new revision, show a revision."""


@command.command("init")
@click.argument("data", metavar="DATA")
@click.option("--target", required=True, help="The column the model predicts.")
@click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default=None,
    help="Default: classification for a text target or one of at most 20 distinct integers, else regression.",
)
@click.option("--model", "name", default=None, help="Model name (default: from the file name).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the spec here (default: stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@json_option
@pass_app
def init(
    app: AppContext, data: str, target: str, task: str | None, name: str | None, out: Path | None, force: bool
) -> None:
    """Write a starting spec (YAML with comments) inferred from DATA, a CSV or gzip CSV file.

    Types, nullable, allowed values (columns with at most 20 distinct values), ranges (the observed
    min/max widened by 10% of the span, not below 0 for columns without negative values), the task,
    a default estimator and gates. The spec is checked against DATA before it is written; a check it
    still fails (labels missing from the target, for example) is printed as a warning.
    """
    from mlops.data.spec_init import infer_spec  # pandas, only for this command

    if out is not None and out.exists() and not force:
        raise InputError(f"{out}: already exists (pass --force to overwrite it)")
    draft = infer_spec(Path(data), target, task=task, name=name)  # type: ignore[arg-type]
    for problem in draft.problems:
        click.echo(f"warning: {data} fails this check of the spec: {problem}", err=True)
    if out is not None:
        try:
            out.write_text(draft.text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    counts: dict[str, int] = {}
    for feature in draft.features:
        counts[feature.type] = counts.get(feature.type, 0) + 1
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    summary = draft.summary() | {"path": str(out) if out else None}
    if out is None and not app.as_json:
        click.echo(draft.text, nl=False)
        return
    if out is None:
        summary["spec"] = draft.text
    text = (
        f"wrote {out}: model {draft.spec.name}, task {draft.task} ({draft.task_reason}), "
        f"target {target!r}, {len(draft.features)} features ({kinds}) from {draft.rows:,} rows"
        + (f"; {draft.duplicates:,} repeated rows (a warning)" if draft.duplicates else "")
        + f"\nnext: mlops validate {data} --spec {out}; mlops spec put {out}"
    )
    emit(app, summary, text)


@command.command("put")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@actor_option
@json_option
@pass_app
def put(app: AppContext, file: Path, actor: str | None) -> None:
    """Validate FILE (YAML or JSON) and store it as the model's next spec revision.

    A spec identical to the latest revision is not stored again. Estimator parameters and search
    space keys are checked against the estimator before the platform is contacted.
    """
    spec = load_spec(file)
    check_estimator_params(spec, source=str(file))
    store = SpecStore(open_registry(app))
    revision = store.put(spec, actor=resolve_actor(app, actor), source=file.name)
    data = {k: v for k, v in revision.to_dict().items() if k != "document"}
    if revision.changed:
        text = f"{spec.name}: stored spec revision {revision.revision} (sha256 {revision.fingerprint[:12]}...)"
    else:
        text = f"{spec.name}: unchanged, identical to spec revision {revision.revision}"
    emit(app, data, text)


@command.command("show")
@click.argument("model")
@click.option("--revision", type=click.IntRange(1), default=None, help="Which revision (default: the latest).")
@json_option
@pass_app
def show(app: AppContext, model: str, revision: int | None) -> None:
    """Print MODEL's spec (the latest revision, or --revision R) as YAML."""
    stored = SpecStore(open_registry(app)).get(model, revision)
    text = f"# {_header(stored)}\n" + yaml.safe_dump(stored.document, sort_keys=False).rstrip()
    emit(app, stored.to_dict(), text)


@command.command("list")
@click.argument("model")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Revisions per page.")
@click.option("--next-token", default=None, help="Continue a previous listing.")
@json_option
@pass_app
def list_revisions(app: AppContext, model: str, limit: int, next_token: str | None) -> None:
    """List MODEL's spec revisions, newest first."""
    page = SpecStore(open_registry(app)).list(model, limit=limit, next_token=next_token)
    rows = [{k: v for k, v in r.to_dict().items() if k not in ("document", "changed")} for r in page.items]
    lines = [
        f"{r['revision']:>6}  {r['fingerprint'][:12]}  {r['created_at']}  {r['created_by']}  {r['source'] or ''}"
        for r in rows
    ] or [f"(model {model!r} has no spec revisions)"]
    if page.next_token:
        lines.append(f"more: --next-token {page.next_token}")
    emit(app, {"revisions": rows, "next_token": page.next_token}, "\n".join(lines))
