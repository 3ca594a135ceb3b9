"""``mlops models list|show``: what the registry holds.

Also home of the helpers the registry-backed commands share (``spec``, ``audit``): opening the
registry of the selected environment and naming the actor behind a change.
"""

from __future__ import annotations

import getpass
from typing import Any

import click

from mlops.cli.common import AppContext, emit, json_option, pass_app
from mlops.deployment import deployment_history, render_history
from mlops.errors import NotFoundError
from mlops.registry import ModelSummary, ModelVersion, Registry


def open_registry(app: AppContext) -> Registry:
    """The registry of the environment ``--env`` selects (tables found through SSM)."""
    return Registry.for_platform(app.session().client("dynamodb"), app.platform())


def resolve_actor(app: AppContext, explicit: str | None) -> str:
    """Who is making a change: ``--actor``, else the caller's AWS identity, else the OS user."""
    if explicit:
        return explicit
    try:
        return str(app.session().client("sts").get_caller_identity()["Arn"])
    except Exception:  # no credentials or no STS endpoint: the OS user still says who it was
        return f"user:{getpass.getuser()}"


actor_option = click.option(
    "--actor",
    envvar="MLOPS_ACTOR",
    default=None,
    help="Who makes the change, for the audit trail (default: your AWS identity).",
)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _model_row(model: ModelSummary) -> str:
    return (
        f"{model.name:<24} {model.latest_version:>7} {_dash(model.champion):>9} {_dash(model.challenger):>10} "
        f"{model.latest_spec_revision:>5}  {_dash(model.updated_at)}"
    )


def _version_row(version: ModelVersion, summary: ModelSummary) -> str:
    aliases = [a for a in ("champion", "challenger") if summary.alias(a) == version.version]
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))
    return (
        f"{version.version:>7}  {version.status.value:<17} {','.join(aliases) or '-':<20} "
        f"{version.created_at}  {metrics}"
    )


@click.group("models")
def command() -> None:
    """Models in the registry: versions, statuses, aliases and lineage."""


@command.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Models per page.")
@click.option("--next-token", default=None, help="Continue a previous listing.")
@json_option
@pass_app
def list_models(app: AppContext, limit: int, next_token: str | None) -> None:
    """List models by name, with their latest version and aliases."""
    page = open_registry(app).list_models(limit=limit, next_token=next_token)
    data = {"models": [m.to_dict() for m in page.items], "next_token": page.next_token}
    lines = [f"{'MODEL':<24} {'LATEST':>7} {'CHAMPION':>9} {'CHALLENGER':>10} {'SPEC':>5}  UPDATED"]
    lines += [_model_row(m) for m in page.items] or ["(no models yet: `mlops spec put FILE` adds one)"]
    if page.next_token:
        lines.append(f"more: --next-token {page.next_token}")
    emit(app, data, "\n".join(lines))


@command.command("show")
@click.argument("model")
@click.option(
    "--version",
    "version",
    type=click.IntRange(1),
    default=None,
    help="Show one version in full (lineage, history) instead of the list.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Versions per page.")
@click.option("--next-token", default=None, help="Continue a previous listing.")
@json_option
@pass_app
def show_model(app: AppContext, model: str, version: int | None, limit: int, next_token: str | None) -> None:
    """Show MODEL: its aliases and its versions, newest first (or one version in full)."""
    registry = open_registry(app)
    summary = registry.get_model(model)
    if version is not None:
        record = registry.get_version(model, version)
        data = record.to_dict()
        data["aliases"] = [a for a in ("champion", "challenger") if summary.alias(a) == version]
        lines = [
            f"{model} version {version}: {record.status.value}"
            + (f" ({', '.join(data['aliases'])})" if data["aliases"] else "")
        ]
        for name in (
            "created_by",
            "created_at",
            "spec_revision",
            "code_revision",
            "pipeline_execution",
            "artifact_uri",
            "artifact_sha256",
        ):
            lines.append(f"  {name:<19} {_dash(data[name])}")
        dataset = record.dataset_version or {}
        lines.append(
            f"  {'dataset_version':<19} {_dash(dataset.get('version_id'))}"
            + (f" (sha256 {dataset['sha256'][:12]}..., {dataset.get('rows')} rows)" if dataset.get("sha256") else "")
        )
        for key, value in sorted(record.metrics.items()):
            lines.append(f"  metric {key:<12} {value}")
        for change in record.status_history:
            lines.append(
                f"  {change.get('at')} {change.get('from')} -> {change.get('to')} by {change.get('by')}"
                + (f": {change['reason']}" if change.get("reason") else "")
            )
        emit(app, data, "\n".join(lines))
        return
    page = registry.list_versions(model, limit=limit, next_token=next_token)
    data = {"model": summary.to_dict(), "versions": [v.to_dict() for v in page.items], "next_token": page.next_token}
    lines = [
        f"{model}: champion {_dash(summary.champion)}, challenger {_dash(summary.challenger)}, "
        f"{summary.latest_version} versions, spec revision {summary.latest_spec_revision}",
        f"{'VERSION':>7}  {'STATUS':<17} {'ALIASES':<20} {'CREATED':<24}  METRICS",
    ]
    lines += [_version_row(v, summary) for v in page.items] or ["(no versions yet)"]
    if page.next_token:
        lines.append(f"more: --next-token {page.next_token}")
    history = deployment_history(registry, model)
    data["history"] = {key: history[key] for key in ("approvals", "deployments", "rollout")}
    lines += render_history(history)[1:]  # who approved what, when, and every rollout
    emit(app, data, "\n".join(lines))


@command.command("card")
@click.argument("model")
@click.argument("version", type=int)
@json_option
@pass_app
def card(app: AppContext, model: str, version: int) -> None:
    """Print the model card (markdown) of MODEL VERSION: intended use, data, metrics, slices, limits."""
    from mlops.pipeline_steps import version_prefix

    registry = open_registry(app)
    found = registry.get_version(model, version)  # NotFoundError (exit 3) for an unknown version
    key = f"{version_prefix(model, version)}model-card.md"
    s3 = app.session().client("s3")
    try:
        text = s3.get_object(Bucket=app.platform().data_bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        raise NotFoundError(f"model {model!r} version {version} has no model card (s3 key {key})") from None
    emit(app, {"model": model, "version": found.version, "status": found.status.value, "card": text}, text)
