"""``mlops spec put|show|list``: model spec revisions (stored, never overwritten)."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.cli.models_cmd import actor_option, open_registry, resolve_actor
from mlops.estimators import check_estimator_params
from mlops.spec import load_spec
from mlops.specstore import SpecRevision, SpecStore


def _header(revision: SpecRevision) -> str:
    return (
        f"{revision.model} spec revision {revision.revision} (sha256 {revision.fingerprint[:12]}...) "
        f"by {revision.created_by} at {revision.created_at}"
    )


@click.group("spec")
def command() -> None:
    """Model specs: validate and store a new revision, show a revision."""


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
