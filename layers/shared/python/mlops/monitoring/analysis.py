"""The Analyze step: the window against the champion's reference, the report, the run item, metrics, alerts.

Prediction drift against the champion's holdout predictions; performance drift when labels were
uploaded for the window's requests. Retraining is asked of :mod:`mlops.monitoring.retrain_start`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mlops.data.labels import load_labels
from mlops.errors import NotFoundError
from mlops.monitoring.captures import (
    as_int,
    champion_predictions,
    find_capture_keys,
    iso,
    parse_time,
    read_records,
    records_frame,
)
from mlops.monitoring.retrain_start import maybe_retrain
from mlops.monitoring.schedules import monitoring_spec
from mlops.monitoring.services import MONITOR_ACTOR, MetricPoint, MonitorServices, report_prefix, stamp
from mlops.monitoring.sketch import WindowSketch
from mlops.registry.keys import monitor_key, monitor_run_key
from mlops.registry.tables import ABSENT, Condition, ConditionFailedError, Put, Update
from mlops.spec.model import ModelSpec
from mlops.storage import read_object, read_uri
from mlops.training.threshold import DecisionThreshold


@dataclass
class Window:
    """What the analysis compares: the window's features, the champion's predictions, exactness."""

    frame: Any
    predictions: Any
    rows: int
    exact: bool
    notes: list[str] = field(default_factory=list)


def _load_shards(services: MonitorServices, shards_key: str) -> list[dict[str, Any]]:
    return list(json.loads(read_object(services.s3, services.bucket, shards_key)))


def window_inline(services: MonitorServices, plan: Mapping[str, Any], spec: ModelSpec) -> Window:
    """Every record of the window, read by this function."""

    window = plan["window"]
    keys = [key for shard in _load_shards(services, plan["shards_key"]) for key in shard["keys"]]
    records = read_records(services.s3, services.bucket, keys, parse_time(window["start"]), parse_time(window["end"]))
    predictions = champion_predictions(records, int(plan["version"]))
    frame = records_frame(records, spec)
    return Window(frame, np.asarray([p for p in predictions if p is not None], dtype=object), len(records), True)


def window_from_sketches(services: MonitorServices, plan: Mapping[str, Any], spec: ModelSpec) -> Window:
    """The merged shard sketches of a distributed run."""
    merged: WindowSketch | None = None
    for shard in _load_shards(services, plan["shards_key"]):
        sketch = WindowSketch.from_json(read_object(services.s3, services.bucket, shard["sketch_key"]))
        merged = sketch if merged is None else merged.merge(sketch)
    if merged is None:
        merged = WindowSketch.for_spec(spec)
    frame, predictions, exact = merged.frame()
    notes = [f"merged from {plan['shards']} shard sketch(es) of {merged.rows} row(s)"]
    if not exact:
        notes.append(
            f"the window ({merged.rows} rows) is compared through uniform samples of at most "
            f"{merged.capacity} values per numeric column (counts are exact)"
        )
    return Window(frame, predictions, merged.rows, exact, notes)


def version_document(services: MonitorServices, champion: Any, tag: str) -> dict[str, Any] | None:
    """The JSON document a version's tag points at (``predictions_uri``, ``evaluation_uri``), or None."""
    uri = (champion.tags or {}).get(tag)
    if not uri or not str(uri).startswith("s3://"):
        return None
    document = json.loads(read_uri(services.s3, str(uri)))
    return document if isinstance(document, dict) else None


def reference_predictions(services: MonitorServices, champion: Any, document: Mapping[str, Any] | None = None) -> Any:
    """The champion's predictions on its holdout (registered as ``predictions_uri``), or None."""
    document = document if document is not None else version_document(services, champion, "predictions_uri")
    if document is None:
        return None
    return np.asarray(document.get("predictions") or [], dtype=object)


def registered_holdout(services: MonitorServices, champion: Any, predictions: Mapping[str, Any] | None) -> Any:
    """What is known of the holdout behind the champion's registered metrics (a ``Holdout``).

    Versions registered since performance monitoring judges uncertainty keep the holdout's labels,
    predictions and probabilities in ``predictions.json``; older ones have the confusion matrix and
    size of their evaluation (``evaluation_uri``).
    """
    # cold start: all four monitor functions load this module; only Analyze compares (scipy, pandas)
    from mlops.drift import Holdout

    evaluation = None
    if predictions is None or not predictions.get("labels"):
        evaluation = version_document(services, champion, "evaluation_uri")
    return Holdout.from_documents(predictions, evaluation)


@dataclass
class LabelledWindow:
    """Uploaded labels joined to the champion's captured answers, row by row."""

    labels: list[Any] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    # The served class probabilities of each joined row (None unless every joined row has them).
    probabilities: list[list[float]] | None = None
    notes: list[str] = field(default_factory=list)


def labelled_predictions(
    services: MonitorServices, model: str, spec: ModelSpec, champion: int, now: datetime
) -> LabelledWindow:
    """Uploaded labels joined by ``(request_id, index)`` to the champion's captured answers.

    A capture holds the prediction and, for a classifier, the probabilities it served (see
    ``mlops.serving.service.capture_lines``): both are kept, so ROC AUC and log loss can be compared.
    """

    lookback = services.settings.label_lookback_days
    labels, notes = load_labels(services.s3, services.bucket, model, spec, now=now, lookback_days=lookback)
    window = LabelledWindow(notes=notes)
    if not labels:
        return window
    keys, scan_notes = find_capture_keys(
        services.s3, services.bucket, model, {rid for rid, _ in labels}, now - timedelta(days=lookback + 1), now
    )
    notes.extend(scan_notes)
    probabilities: list[Any] = []
    for record in read_records(services.s3, services.bucket, keys):
        if as_int(record.get("version")) != champion:
            continue
        label = labels.get((str(record.get("request_id")), int(record.get("index") or 0)))
        if label is not None:
            window.labels.append(label)
            window.predictions.append(record.get("prediction"))
            probabilities.append(record.get("probabilities"))
    if spec.task == "classification" and window.labels:
        widths = {len(p) if isinstance(p, list) else 0 for p in probabilities}
        if len(widths) == 1 and widths != {0}:
            window.probabilities = probabilities
        else:
            notes.append("some joined captures have no served probabilities: ROC AUC and log loss not compared")
    return window


def analyze_run(
    event: Mapping[str, Any], services: MonitorServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """The Analyze state: report, run item, metrics, notification and (maybe) retraining.

    Returns
    -------
    dict
        ``model``, ``version``, ``verdict``, ``drifted``, ``drifted_features``, ``rows``,
        ``report_key``, ``html_key``, ``retrain`` and ``metrics`` (a list of
        :class:`MetricPoint` as dicts, emitted by the handler).
    """
    # cold start: all four monitor functions load this module; only Analyze compares (scipy, pandas)
    from mlops.drift import drift_report, render_html

    plan = event.get("plan") or event
    model, version, run_id = str(plan["model"]), int(plan["version"]), str(plan["run_id"])
    registry = services.registry
    champion = registry.get_version(model, version)
    spec = monitoring_spec(registry, model, champion.spec_revision)
    profile = _reference_profile(services, champion)
    window = (
        window_from_sketches(services, plan, spec)
        if plan.get("mode") == "distributed"
        else window_inline(services, plan, spec)
    )
    now = services.clock()
    predictions_document = version_document(services, champion, "predictions_uri")
    ref_predictions = reference_predictions(services, champion, predictions_document)
    current_predictions = window.predictions if window.predictions is not None and len(window.predictions) else None
    labelled = labelled_predictions(services, model, spec, version, now)
    labels, label_notes = labelled.labels, labelled.notes
    report = drift_report(
        profile,
        window.frame,
        spec,
        current_source=f"captures {plan['window']['start']} .. {plan['window']['end']}",
        reference_predictions=ref_predictions if current_predictions is not None else None,
        current_predictions=current_predictions if ref_predictions is not None else None,
    )
    if labels:
        # cold start: all four monitor functions load this module; only Analyze compares (scipy, pandas)
        from mlops.drift import performance_drift

        holdout = registered_holdout(services, champion, predictions_document)
        probabilities = labelled.probabilities
        if probabilities is not None and (holdout.classes is None or len(holdout.classes) != len(probabilities[0])):
            label_notes.append(
                "the version does not record the class of each probability column: ROC AUC and log loss not compared"
            )
            probabilities = None
        report.performance = performance_drift(
            np.asarray(labels, dtype=object),
            np.asarray(labelled.predictions, dtype=object),
            spec,
            champion.metrics,
            probabilities=None if probabilities is None else np.asarray(probabilities, dtype=np.float64),
            model_classes=holdout.classes if probabilities is not None else None,
            holdout=holdout,
            threshold=DecisionThreshold.from_tags(champion.tags),
        )
        if report.performance.status == "degraded" and report.verdict == "no_drift":
            report.verdict, report.drifted = "drifted", True
    report.current.rows = window.rows
    report.current.exact = window.exact
    report.notes.extend(window.notes + label_notes)
    if ref_predictions is None:
        report.notes.append("no registered holdout predictions for this version: prediction drift not checked")
    if not labels:
        report.notes.append("no labels joined to this window's predictions: performance drift not checked")

    prefix = str(plan.get("prefix") or report_prefix(model, version, stamp(now)))
    report_key, html_key = f"{prefix}.json", f"{prefix}.html"
    services.s3.put_object(
        Bucket=services.bucket, Key=report_key, Body=report.to_json().encode(), ContentType="application/json"
    )
    services.s3.put_object(
        Bucket=services.bucket,
        Key=html_key,
        Body=render_html(report).encode(),
        ContentType="text/html; charset=utf-8",
    )
    features = [f for f in report.features if f.status in ("ok", "drifted")]
    score = max([f.score for f in features] + ([report.prediction.score] if report.prediction else []) + [0.0])
    if report.verdict == "too_small":
        score = 0.0
    summary: dict[str, Any] = {
        "model": model,
        "version": version,
        "run_id": run_id,
        "trigger": plan.get("trigger", "manual"),
        "verdict": report.verdict,
        "drifted": report.drifted,
        "drifted_features": list(report.drifted_features),
        "missing_rate_alerts": list(report.missing_rate_alerts),
        "prediction_drifted": bool(report.prediction and report.prediction.drifted),
        "performance": report.performance.status if report.performance else None,
        "rows": window.rows,
        "score": score,
        "mode": plan.get("mode", "inline"),
        "objects": plan.get("objects"),
        "shards": plan.get("shards"),
        "window": plan["window"],
        "report_key": report_key,
        "html_key": html_key,
        "bucket": services.bucket,
    }
    retrain: dict[str, Any] = {"action": "not_requested"}
    if report.drifted and spec.monitoring.retrain_on_drift:
        retrain = maybe_retrain(
            services, model, now=now, cooldown_hours=spec.monitoring.cooldown_hours, run=summary, request_id=request_id
        )
    summary["retrain"] = retrain
    _record_run(services, summary, plan, now=now, request_id=request_id)
    if report.drifted and services.sns is not None and services.settings.notifications_topic_arn:
        services.sns.publish(
            TopicArn=services.settings.notifications_topic_arn,
            Subject=f"MLOps: drift in {model} v{version}"[:100],
            Message=json.dumps({"event": "model.drifted", **summary}, default=str),
        )
    summary["metrics"] = [asdict(p) for p in drift_metrics(summary, report)]
    return summary


def _reference_profile(services: MonitorServices, champion: Any) -> Any:
    # cold start: all four monitor functions load this module; only Analyze compares (scipy, pandas)
    from mlops.data.profile import ReferenceProfile

    uri = (champion.tags or {}).get("profile_uri")
    if not uri or not str(uri).startswith("s3://"):
        raise NotFoundError(
            f"model {champion.model!r} version {champion.version} has no registered reference profile (profile_uri)"
        )
    return ReferenceProfile.from_json(read_uri(services.s3, str(uri)), source=str(uri))


def drift_metrics(summary: Mapping[str, Any], report: Any) -> list[MetricPoint]:
    """Per model ``DriftScore``, ``DriftedFeatures``, ``ChampionVersion``, ``WindowRows``; per feature
    ``FeatureDriftScore``; the aggregate ``ModelsDrifted`` (service dimension only)."""
    model = str(summary["model"])
    dims = {"model": model}
    points = [
        MetricPoint("DriftScore", float(summary["score"]), "None", dims),
        MetricPoint("DriftedFeatures", float(len(summary["drifted_features"])), "Count", dims),
        MetricPoint("ChampionVersion", float(summary["version"]), "None", dims),
        MetricPoint("WindowRows", float(summary["rows"]), "Count", dims),
    ]
    for feature in report.features:
        if feature.status in ("ok", "drifted", "too_small"):
            points.append(
                MetricPoint("FeatureDriftScore", float(feature.score), "None", {**dims, "feature": feature.name})
            )
    points.append(MetricPoint("ModelsDrifted", 1.0 if summary["drifted"] else 0.0, "Count", {}))
    return points


def _record_run(
    services: MonitorServices,
    summary: Mapping[str, Any],
    plan: Mapping[str, Any],
    *,
    now: datetime,
    request_id: str | None,
) -> None:
    """The run item and the monitor item, with one audit event, in one transaction (once per run)."""
    registry = services.registry
    model = str(summary["model"])
    started = str(plan.get("planned_at") or iso(now))
    run = {
        **monitor_run_key(model, started, str(summary["run_id"])),
        "kind": "monitor_run",
        "status": "SUCCEEDED",
        "finished_at": iso(now),
        **{k: v for k, v in summary.items() if k not in ("metrics",)},
        "score": _decimal_safe(summary["score"]),
    }
    state_set: dict[str, Any] = {
        "last_run": str(summary["run_id"]),
        "last_run_at": iso(now),
        "last_verdict": summary["verdict"],
        "last_report_key": summary["report_key"],
        "champion_version": summary["version"],
    }
    with contextlib.suppress(ConditionFailedError):  # a retried Analyze: this run is recorded already
        registry.audit.append(
            model,
            actor=MONITOR_ACTOR,
            action="monitor.run",
            subject=f"model/{model}/version/{summary['version']}/monitor/{summary['run_id']}",
            after={k: summary[k] for k in ("verdict", "drifted_features", "rows", "report_key", "trigger")},
            request_id=request_id,
            with_ops=[
                Put(registry.table, run, Condition(item_exists=False)),
                Update(registry.table, monitor_key(model), set=state_set),
            ],
        )
    if summary["verdict"] != "too_small":
        # Too-small windows are not consumed: the next run's window starts where this one did.
        # The end moves only from where this run's window began: a run overlapping a newer one
        # (a manual check during a scheduled one) never moves it back.
        previous = plan.get("previous_window_end")
        with contextlib.suppress(ConditionFailedError):
            registry.store.write(
                Update(
                    registry.table,
                    monitor_key(model),
                    set={"last_window_end": summary["window"]["end"]},
                    condition=Condition(equals={"last_window_end": previous if previous else ABSENT}),
                )
            )


def _decimal_safe(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0
