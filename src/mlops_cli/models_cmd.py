"""``mlops models list|show|diff|card|archive|unarchive``: what the registry holds.

Also home of the helpers the registry-backed commands share (``spec``, ``audit``): opening the
registry of the selected environment and naming the actor behind a change.
"""

from __future__ import annotations

import getpass
from typing import Any

import click

from mlops.contracts.names import schedule_group_name
from mlops.deployment.history import deployment_history, render_history
from mlops.errors import NotFoundError
from mlops.registry.origin import describe_origin, origin_from_tags
from mlops.registry.serving_path import describe_serving
from mlops.registry.versions import ModelSummary, ModelVersion, Registry
from mlops.registry.view import diff_versions, params_text, render_diff, version_facts
from mlops.training.code import code_from_tags
from mlops.training.run_view import render_code
from mlops.training.threshold import DecisionThreshold
from mlops_cli.common import AppContext, emit, json_option, pass_app


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
        + (f"  ARCHIVED by {model.archived.get('by')}" if model.archived else "")
    )


def _version_row(version: ModelVersion, summary: ModelSummary) -> str:
    aliases = [a for a in ("champion", "challenger") if summary.alias(a) == version.version]
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))
    line = (
        f"{version.version:>7}  {version.status.value:<17} {','.join(aliases) or '-':<20} "
        f"{version.created_at}  {metrics}"
    )
    return line + (f"\n{'':>9}{params_text(version.params)}" if version.params else "")


@click.group("models")
def command() -> None:
    """Models in the registry: versions, statuses, aliases and lineage."""


@command.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Models per page.")
@click.option("--next-token", default=None, help="Continue a previous listing.")
@click.option("--all", "show_all", is_flag=True, help="Include archived models.")
@json_option
@pass_app
def list_models(app: AppContext, limit: int, next_token: str | None, show_all: bool) -> None:
    """List models by name, with their latest version and aliases (archived ones only with --all)."""
    page = open_registry(app).list_models(limit=limit, next_token=next_token, include_archived=show_all)
    data = {"models": [m.to_dict() for m in page.items], "next_token": page.next_token}
    lines = [f"{'MODEL':<24} {'LATEST':>7} {'CHAMPION':>9} {'CHALLENGER':>10} {'SPEC':>5}  UPDATED"]
    empty = (
        "(no models yet: `mlops spec put FILE` adds one)"
        if show_all
        else "(no models listed: `mlops spec put FILE` adds one; `--all` also lists archived ones)"
    )
    lines += [_model_row(m) for m in page.items] or [empty]
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
        # which function serves it (ONNX or the Python fallback), its measured cold start, and why
        data["serving"] = serving = describe_serving(record.tags)
        lines.append(f"  {'serving_path':<19} {serving['serving_path']}: {serving['cold_start']}")
        if "why_not_onnx" in serving:
            lines.append(f"  {'why_not_onnx':<19} {serving['why_not_onnx']}")
        dataset = record.dataset_version or {}
        lines.append(
            f"  {'dataset_version':<19} {_dash(dataset.get('version_id'))}"
            + (f" (sha256 {dataset['sha256'][:12]}..., {dataset.get('rows')} rows)" if dataset.get("sha256") else "")
        )
        code = code_from_tags(record.tags)
        data["code"] = code  # the training code's version, sha256 and entry point (None: the spec's estimator)
        lines.append(f"  {'code':<19} {render_code(code)}")
        origin = origin_from_tags(record.tags or {})
        if origin:  # a model trained elsewhere: where it came from and who (AWS verified) imported it
            data["origin"] = origin
            lines.append(f"  {'origin':<19} {describe_origin(origin)}")
        if record.params:
            lines.append(f"  {'estimator':<19} {_dash(record.params.get('estimator'))}")
            for key, value in sorted(record.params.items()):
                if key != "estimator":
                    lines.append(f"  param  {key:<12} {value}")
        for key, value in sorted(record.metrics.items()):
            lines.append(f"  metric {key:<12} {value}")
        threshold = DecisionThreshold.from_tags(record.tags)
        if threshold is not None:
            data["decision_threshold"] = threshold.to_dict()
            lines.append(f"  {'decision_threshold':<19} {threshold.describe()}")
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
        f"{summary.latest_version} versions, spec revision {summary.latest_spec_revision}"
        + (f"; ARCHIVED {summary.archived.get('at')} by {summary.archived.get('by')}" if summary.archived else ""),
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
    from mlops.training.steps.services import version_prefix  # the registry and pydantic: this subcommand only

    registry = open_registry(app)
    found = registry.get_version(model, version)  # NotFoundError (exit 3) for an unknown version
    key = f"{version_prefix(model, version)}model-card.md"
    s3 = app.session().client("s3")
    try:
        text = s3.get_object(Bucket=app.platform().data_bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        raise NotFoundError(f"model {model!r} version {version} has no model card (s3 key {key})") from None
    emit(app, {"model": model, "version": found.version, "status": found.status.value, "card": text}, text)


@command.command("diff")
@click.argument("model")
@click.argument("a", type=click.IntRange(1))
@click.argument("b", type=click.IntRange(1))
@json_option
@pass_app
def diff(app: AppContext, model: str, a: int, b: int) -> None:
    """Compare MODEL's versions A and B: data, parameters, metrics, slices, split and gates.

    Changed rows are marked with *; metrics show B - A. Exit 3 if a version does not exist.
    """
    registry = open_registry(app)
    s3 = app.session().client("s3")
    bucket = app.platform().data_bucket
    found = diff_versions(version_facts(registry, s3, bucket, model, a), version_facts(registry, s3, bucket, model, b))
    emit(app, found, render_diff(found))


_SCHEDULE_WORDS = {
    "disabled": "schedule disabled (no drift checks)",
    "enabled": "schedule enabled (drift checks resume)",
    "unchanged": "schedule unchanged (already in that state)",
    "absent": "no drift-check schedule to change",
}


def _schedule_line(schedule: dict[str, Any]) -> str:
    if schedule["action"] == "failed":
        return f"  monitoring  schedule NOT changed ({schedule['error']}); the monitor refuses archived models anyway"
    return f"  monitoring  {_SCHEDULE_WORDS.get(schedule['action'], schedule['action'])}"


def _schedule_state(app: AppContext, model: str, *, enabled: bool) -> dict[str, Any]:
    """Pause or resume MODEL's drift-check schedule; a refusal is reported, never fatal."""
    # The monitor (0.2 s more) only for pause/resume, not for every `models` subcommand.
    from mlops.monitoring.schedules import set_schedule_state

    try:
        scheduler = app.session().client("scheduler")
        return set_schedule_state(scheduler, schedule_group_name(app.environment), model, enabled=enabled)
    except Exception as exc:  # the registry change stands; monitoring itself refuses an archived model
        return {"model": model, "action": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}


@command.command("archive")
@click.argument("model")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@actor_option
@json_option
@pass_app
def archive(app: AppContext, model: str, reason: str | None, actor: str | None) -> None:
    """Archive MODEL: hide it from `models list`, stop serving it and its drift checks.

    Its versions, aliases, specs, datasets and audit trail are kept; uploads and training for it
    are refused until `mlops models unarchive MODEL`. Audited as model.archived.
    """
    summary = open_registry(app).archive_model(model, actor=resolve_actor(app, actor), reason=reason)
    schedule = _schedule_state(app, model, enabled=False)
    data = {"model": summary.to_dict(), "schedule": schedule}
    archived = summary.archived or {}
    lines = [
        f"model {model} archived by {archived.get('by')} at {archived.get('at')}"
        + (f": {archived['reason']}" if archived.get("reason") else ""),
        "  listing     hidden from `mlops models list` (shown with --all)",
        f"  serving     predictions refused with HTTP 410 (champion v{_dash(summary.champion)} kept)",
        _schedule_line(schedule),
        "  training    uploads refused until `mlops models unarchive " + model + "`",
    ]
    emit(app, data, "\n".join(lines))


@command.command("unarchive")
@click.argument("model")
@actor_option
@json_option
@pass_app
def unarchive(app: AppContext, model: str, actor: str | None) -> None:
    """Restore an archived MODEL: listed, served by its champion, monitored and trained again."""
    summary = open_registry(app).unarchive_model(model, actor=resolve_actor(app, actor))
    schedule = _schedule_state(app, model, enabled=True)
    data = {"model": summary.to_dict(), "schedule": schedule}
    lines = [
        f"model {model} unarchived: listed, served by champion v{_dash(summary.champion)}, uploads accepted",
        _schedule_line(schedule),
    ]
    emit(app, data, "\n".join(lines))


def _add_import() -> None:
    # here: the import command's own imports (onnx, skl2onnx via mlops.training.imported) load only when
    # `mlops models` is used, and models_import_cmd imports this module (a cycle at module level)
    from mlops_cli.models_import_cmd import import_model

    command.add_command(import_model)


_add_import()
