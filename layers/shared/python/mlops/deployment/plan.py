"""The deployment pipeline's plan: ask for approval, skip it, or deploy directly, and by which strategy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from mlops.deployment.approval import approval_commands, console_url, timeout_seconds, uploader_of
from mlops.errors import InputError, NotFoundError, TransitionError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import ModelVersion, Registry, Status
from mlops.spec.model import ModelSpec

Strategy = Literal["all_at_once", "canary", "shadow"]
STRATEGIES: tuple[str, ...] = ("all_at_once", "canary", "shadow")


def _metric_table(candidate: Mapping[str, float], champion: Mapping[str, float] | None) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(candidate):
        value = candidate[name]
        base = (champion or {}).get(name)
        rows.append(
            {
                "metric": name,
                "candidate": value,
                "champion": base,
                "delta": None if base is None else round(value - base, 6),
            }
        )
    return rows


def candidate_summary(
    version: ModelVersion,
    *,
    evaluation: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
    uploader: str | None,
) -> dict[str, Any]:
    """What approvers review: metrics against the champion (same holdout) and the data checks.

    Parameters
    ----------
    evaluation
        The training run's evaluation document (``evaluation_uri``), with ``champion.metrics``.
    validation
        The dataset's validation report (``validation_report``).
    """
    champion = (evaluation or {}).get("champion") or {}
    dataset = version.dataset_version or {}
    checks = list((validation or {}).get("checks") or [])

    def named(check: Mapping[str, Any]) -> str:
        return str(check.get("check")) + (f"[{check['column']}]" if check.get("column") else "")

    failed = [named(c) for c in checks if c.get("status") == "failed"]
    warned = [named(c) for c in checks if c.get("status") == "warning"]
    return {
        "model": version.model,
        "version": version.version,
        "status": version.status.value,
        # Side by side on the same rows: the holdout less any the champion trained on.
        "metrics": _metric_table(champion.get("candidate_metrics") or version.metrics, champion.get("metrics")),
        "champion_version": champion.get("version"),
        "validation": {
            "valid": (validation or {}).get("valid"),
            "rows": (validation or {}).get("rows", dataset.get("rows")),
            "checks": len(checks),
            "failed": failed[:20],
            "warnings": warned[:20],
            "report": version.tags.get("validation_report"),
        },
        "dataset": {
            "key": dataset.get("key"),
            "version_id": dataset.get("version_id"),
            "sha256": dataset.get("sha256"),
            "uploaded_by": uploader,
        },
        "lineage": {
            "spec_revision": version.spec_revision,
            "code_revision": version.code_revision,
            "artifact_sha256": version.artifact_sha256,
            "training_execution": version.pipeline_execution,
            "model_card": f"mlops models card {version.model} {version.version}",
        },
    }


def summary_text(summary: Mapping[str, Any]) -> str:
    """The candidate summary as a few lines of text (notification body, CLI)."""
    lines = [f"Model {summary['model']} version {summary['version']} ({summary['status']})"]
    champion = summary.get("champion_version")
    lines.append("Metrics (candidate vs champion" + (f" v{champion}" if champion else ": none yet") + "):")
    for row in summary.get("metrics", []):
        base = "-" if row["champion"] is None else f"{row['champion']:.4g}"
        delta = "" if row["delta"] is None else f" ({row['delta']:+.4g})"
        lines.append(f"  {row['metric']:<14} {row['candidate']:.4g} vs {base}{delta}")
    validation = summary.get("validation") or {}
    lines.append(
        f"Data checks: {'passed' if validation.get('valid') else 'see report'}, {validation.get('rows')} rows, "
        f"{validation.get('checks')} checks, failed: {', '.join(validation.get('failed') or []) or 'none'}"
    )
    dataset = summary.get("dataset") or {}
    lines.append(
        f"Dataset {dataset.get('key')} version {dataset.get('version_id')} uploaded by {dataset.get('uploaded_by')}"
    )
    return "\n".join(lines)


def plan_rollout(
    registry: Registry,
    model: str,
    version: int,
    *,
    environment: str,
    execution: str,
    strategy: str | None = None,
    read_json: Callable[[str], Any] | None = None,
    four_eyes_default: bool = True,
) -> dict[str, Any]:
    """Decide what the deployment pipeline does with ``version``: ask, skip, or deploy directly.

    ``approval`` is ``required`` (a PENDING_APPROVAL version whose spec wants approval),
    ``skip`` (approval switched off in the spec) or ``not_needed`` (already APPROVED, or
    ARCHIVED and being restored, e.g. ``mlops deploy`` of an old version).

    Raises
    ------
    TransitionError
        The version is REJECTED: it can never serve; or the model is archived.
    """
    registry.ensure_active(model)  # an archived model deploys nothing until it is unarchived
    candidate = registry.get_version(model, version)
    if candidate.status == Status.REJECTED:
        reason = next((c.get("reason") for c in reversed(candidate.status_history) if c.get("reason")), None)
        raise TransitionError(
            f"model {model!r} version {version} is REJECTED"
            + (f" ({reason})" if reason else "")
            + "; it can never serve"
        )
    spec = spec_of(registry, candidate)
    chosen = strategy or spec.deployment.strategy
    if chosen not in STRATEGIES:
        raise InputError(f"strategy {chosen!r}: must be one of {', '.join(STRATEGIES)}")
    if candidate.status == Status.PENDING_APPROVAL:
        approval = "required" if spec.approval.required else "skip"
    else:
        approval = "not_needed"

    def load(uri: str | None) -> Any:
        if not uri or read_json is None:
            return None
        try:
            return read_json(uri)
        except Exception:  # a missing report must not block the decision; the summary says so
            return None

    evaluation = load(candidate.tags.get("evaluation_uri"))
    summary = candidate_summary(
        candidate,
        evaluation=evaluation,
        validation=load(candidate.tags.get("validation_report")),
        uploader=uploader_of(registry, candidate),
    )
    bake_seconds = int(spec.deployment.bake_minutes) * 60
    return {
        "model": model,
        "version": int(version),
        "status": candidate.status.value,
        "approval": approval,
        "approval_timeout_seconds": timeout_seconds(spec.approval.timeout_hours),
        "four_eyes": bool(spec.approval.four_eyes or four_eyes_default),
        "strategy": chosen,
        "canary_percent": int(spec.deployment.canary_percent),
        "bake_seconds": bake_seconds,
        "candidate": summary,
        "summary_text": summary_text(summary),
        "commands": approval_commands(model, int(version), environment),
        "console_url": console_url(execution),
    }


def spec_of(registry: Registry, version: ModelVersion) -> ModelSpec:
    store = SpecStore(registry)
    try:
        return store.get(version.model, version.spec_revision).spec()
    except NotFoundError:
        return store.get(version.model).spec()
