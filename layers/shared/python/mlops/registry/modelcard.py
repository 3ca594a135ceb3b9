"""The model card: one markdown page per model version, stored next to its artifact.

Sections: intended use (from the spec), training data (dataset version, rows, sha256), features
(used and dropped, with reasons), metrics, comparison with the champion, slice metrics for the
protected attributes, the gate's verdict, limitations (derived from what the pipeline saw:
dropped features, small slices, class imbalance, metrics that could not be computed, training
warnings, failed fairness checks) and lineage (code revision, library versions, execution).

Every input is plain data (what the pipeline's steps pass each other as JSON), so a card can be
rendered again from the registry at any time.

Examples
--------
>>> text = render_model_card(spec, 3, evaluation.metrics, evaluation.to_dict()["slices"],  # doctest: +SKIP
...     dataset_ref={"version_id": "v1", "sha256": "ab...", "rows": 2000},
...     lineage={**result.summary(), "pipeline_execution": arn},
...     gate_result=gate_result, champion_comparison={"version": 2, "metrics": champion.metrics})
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.registry.origin import describe_origin
from mlops.spec.model import LOWER_IS_BETTER, METRICS, ModelSpec

MIN_SLICE_ROWS = 30
IMBALANCED_SHARE = 0.2


def render_model_card(
    spec: ModelSpec,
    version: int | str,
    metrics: Mapping[str, Any],
    slices: Sequence[Any],
    dataset_ref: Mapping[str, Any],
    lineage: Mapping[str, Any],
    gate_result: Any,
    champion_comparison: Mapping[str, Any] | None,
    *,
    notes: Mapping[str, str] | None = None,
    confusion_matrix: Mapping[str, Any] | None = None,
    fairness: Mapping[str, Mapping[str, Any]] | None = None,
    threshold: Mapping[str, Any] | None = None,
) -> str:
    """Render a model version's card as markdown.

    Parameters
    ----------
    spec
        The spec the version was trained under.
    version
        The model version number.
    metrics
        Holdout metrics (``None`` for one that could not be computed).
    slices
        Slice metrics: ``SliceMetrics`` or their dicts (``attribute``, ``value``, ``rows``,
        ``metrics``, ``positive_rate``).
    dataset_ref
        The dataset version: ``version_id``, ``sha256``, ``rows``, optionally ``uri`` (or
        ``bucket``/``key``), ``schema_fingerprint``, ``uploaded_by``, ``uploaded_at``.
    lineage
        Training facts (``TrainResult.summary()``) plus ``code_revision``, ``pipeline_execution``,
        ``spec_revision``, ``artifact_uri``, ``artifact_sha256``, ``created_at``, ``candidates``
        (how many search candidates were trained), and the serving facts of
        :func:`mlops.registry.serving_path.describe_serving` (``serving_path``, ``cold_start``,
        ``why_not_onnx``: a "Serving" section); every key is optional.
    gate_result
        A ``GateResult`` or its dict (``passed``, ``reasons``, ``checks``); ``None`` if not gated.
    champion_comparison
        ``{"version": int, "metrics": {...}}`` of the champion on the same holdout, or ``None``.
    notes
        Why a metric is missing (``Evaluation.notes``).
    confusion_matrix
        ``{"labels": [...], "matrix": [[...]]}`` (``Evaluation.confusion_matrix``).
    fairness
        ``Evaluation.fairness``: disparate impact per protected attribute.
    threshold
        The decision threshold (``DecisionThreshold.to_dict()`` of :mod:`mlops.training.threshold`):
        its value, positive class, how it was chosen, its rates there and on the holdout.

    Returns
    -------
    str
        Markdown text.
    """
    gate_data = _plain(gate_result) if gate_result is not None else None
    slice_rows = [_plain(s) for s in slices]
    lines: list[str] = [f"# Model card: {spec.name} v{version}", ""]
    status = "not gated" if gate_data is None else ("passed" if gate_data.get("passed") else "rejected")
    estimator = spec.training.estimator or spec.training.entry_point
    lines += [f"Gate: **{status}**. Estimator: `{estimator}`. Task: {spec.task}.", ""]

    lines += ["## Intended use", ""]
    lines.append(spec.description or "_No description in the spec._")
    lines.append("")
    lines.append(f"- Owner: {spec.owner or 'not stated'}")
    lines.append(f"- Task: {spec.task}, predicting `{spec.target.name}`")
    if spec.task == "classification":
        classes = ", ".join(f"`{c}`" for c in spec.target.classes or [])
        lines.append(f"- Classes: {classes}; positive class `{spec.positive_class}`")
    elif spec.target.min is not None or spec.target.max is not None:
        lines.append(f"- Target range: {_num(spec.target.min)} to {_num(spec.target.max)}")
    lines.append(f"- Primary metric: {spec.primary_metric} ({_direction(spec.primary_metric)} is better)")
    lines.append("")

    lines += ["## Training data", ""]
    uri = dataset_ref.get("uri")
    if not uri and dataset_ref.get("bucket") and dataset_ref.get("key"):
        uri = f"s3://{dataset_ref['bucket']}/{dataset_ref['key']}"
    lines += _bullets(
        [
            ("Dataset version", dataset_ref.get("version_id")),
            ("Location", uri),
            ("sha256", dataset_ref.get("sha256")),
            ("Rows", dataset_ref.get("rows")),
            ("Schema fingerprint", dataset_ref.get("schema_fingerprint")),
            ("Uploaded by", dataset_ref.get("uploaded_by")),
            ("Uploaded at", dataset_ref.get("uploaded_at")),
            ("Training rows", lineage.get("train_rows")),
            ("Holdout rows", lineage.get("holdout_rows")),
            ("Holdout share and seed", _split(lineage)),
            ("Holdout chosen by", _split_method(spec, lineage.get("split"))),
        ]
    )
    for reason, count in (lineage.get("rows_dropped") or {}).items():
        lines.append(f"- Rows left out ({reason}): {count}")
    for note in (lineage.get("split") or {}).get("notes") or []:
        lines.append(f"- Split: {note}")
    lines.append("")

    lines += ["## Features", ""]
    used = list(lineage.get("features") or [f.name for f in spec.features])
    dropped: Mapping[str, str] = lineage.get("dropped_features") or {}
    lines += ["| feature | type | used | note |", "| --- | --- | --- | --- |"]
    for feature in spec.features:
        is_used = feature.name in used and feature.name not in dropped
        note = dropped.get(feature.name, feature.description)
        lines.append(f"| {_cell(feature.name)} | {feature.type.value} | {'yes' if is_used else 'no'} | {_cell(note)} |")
    lines.append("")

    lines += _threshold_section(threshold)
    lines += ["## Metrics (holdout)", ""]
    lines += ["| metric | value | better |", "| --- | --- | --- |"]
    for name in _metric_names(spec, metrics):
        value = metrics.get(name)
        shown = _num(value) if value is not None else f"n/a ({(notes or {}).get(name, 'not computed')})"
        lines.append(f"| {name} | {_cell(shown)} | {_direction(name)} |")
    lines.append("")
    if confusion_matrix and confusion_matrix.get("labels"):
        labels = [str(label) for label in confusion_matrix["labels"]]
        lines += ["Confusion matrix (rows: actual, columns: predicted):", ""]
        lines += ["| actual \\ predicted | " + " | ".join(map(_cell, labels)) + " |"]
        lines += ["| --- |" + " --- |" * len(labels)]
        for label, row in zip(labels, confusion_matrix.get("matrix") or [], strict=False):
            lines.append(f"| {_cell(label)} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")

    lines += ["## Comparison with the champion", ""]
    if not champion_comparison:
        lines += ["No champion: this is the first candidate to be compared.", ""]
    else:
        theirs = champion_comparison.get("metrics") or {}
        # The candidate on exactly the rows the champion was scored on (older runs: its holdout metrics).
        ours = champion_comparison.get("candidate_metrics") or metrics
        lines += _champion_rows(champion_comparison)
        lines += ["", "| metric | candidate | champion | change |", "| --- | --- | --- | --- |"]
        for name in _metric_names(spec, metrics):
            mine, other = ours.get(name), theirs.get(name)
            change = "n/a"
            if isinstance(mine, int | float) and isinstance(other, int | float) and _finite(mine) and _finite(other):
                delta = float(mine) - float(other)
                better = (delta < 0) if name in LOWER_IS_BETTER else (delta > 0)
                change = f"{delta:+.4g} ({'better' if better else 'worse' if delta else 'same'})"
            lines.append(f"| {name} | {_num(mine)} | {_num(other)} | {change} |")
        lines.append("")

    lines += ["## Slices (protected attributes)", ""]
    if not spec.fairness.protected_attributes:
        lines += ["The spec names no protected attributes.", ""]
    elif not slice_rows:
        lines += ["No slice metrics were computed.", ""]
    else:
        names = list(METRICS[spec.task])
        header = "| attribute | value | rows | " + " | ".join(names)
        has_rate = any(row.get("positive_rate") is not None for row in slice_rows)
        header += " | positive rate |" if has_rate else " |"
        lines += [header, "| --- " * (3 + len(names) + (1 if has_rate else 0)) + "|"]
        for row in slice_rows:
            values = [_num((row.get("metrics") or {}).get(name)) for name in names]
            cells = [_cell(str(row.get("attribute"))), _cell(str(row.get("value"))), str(row.get("rows")), *values]
            if has_rate:
                cells.append(_num(row.get("positive_rate")))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for attribute, result in (fairness or {}).items():
            impact = result.get("disparate_impact")
            if impact is not None:
                minimum = result.get("min_disparate_impact")
                upper = result.get("upper_bound")
                if isinstance(minimum, int | float) and impact >= minimum:
                    verdict = f"meets the minimum {_num(minimum)}"
                elif result.get("passed") and upper is not None:
                    # Below on this holdout, but within its noise (the gate refuses only what it shows).
                    verdict = f"below the minimum {_num(minimum)}, not shown to be: upper bound {_num(upper)}"
                else:
                    verdict = f"does not meet the minimum {_num(minimum)}"
                excluded = result.get("excluded_groups") or []
                small = f"; groups too small to compare: {', '.join(map(str, excluded))}" if excluded else ""
                lines.append(f"- Disparate impact across {attribute}: {_num(impact)} ({verdict}){small}")
            elif result.get("note"):
                lines.append(f"- Disparate impact across {attribute}: not computed ({result['note']})")
        lines.append("")

    lines += ["## Gate", ""]
    if gate_data is None:
        lines += ["Not gated.", ""]
    else:
        lines.append(f"Result: **{status}**.")
        lines.append("")
        for check in gate_data.get("checks") or []:
            # A check that is only reported (fairness.mode: report) did not refuse the candidate.
            mark = "pass" if check.get("passed") else ("FAIL" if check.get("enforced", True) else "note")
            lines.append(f"- [{mark}] {check.get('message', '')}")
        if not gate_data.get("checks"):
            lines.append("- No gate checks are configured.")
        lines.append("")

    lines += ["## Limitations", ""]
    limits = _limitations(spec, metrics, slice_rows, lineage, notes, confusion_matrix, fairness)
    lines += [f"- {text}" for text in limits] if limits else ["- None found by the pipeline's checks."]
    lines.append("")

    if lineage.get("serving_path"):
        lines += ["## Serving", ""]
        lines += _bullets(
            [
                ("Served by", _SERVED_BY.get(str(lineage["serving_path"]), lineage["serving_path"])),
                ("Cold start", lineage.get("cold_start")),
                ("No ONNX export because", lineage.get("why_not_onnx")),
            ]
        )
        lines.append("")

    lines += ["## Lineage", ""]
    lines += _bullets(
        [
            ("Model version", version),
            ("Spec revision", lineage.get("spec_revision")),
            ("Spec fingerprint", spec.fingerprint()),
            ("Code revision", _code_revision(lineage)),
            ("Pipeline execution", lineage.get("pipeline_execution")),
            ("Artifact", lineage.get("artifact_uri")),
            ("Artifact sha256", lineage.get("artifact_sha256")),
            ("Estimator", lineage.get("estimator") or spec.training.estimator or spec.training.entry_point),
            ("Imported", describe_origin(lineage.get("imported"))),
            ("Parameters", _params(lineage.get("params"))),
            ("Training code", _training_code(lineage.get("code"))),
            ("Search candidates trained", lineage.get("candidates")),
            ("Created at", lineage.get("created_at")),
        ]
    )
    versions = {k: v for k, v in (lineage.get("library_versions") or {}).items() if k != "code_revision"}
    if versions:
        lines.append("- Libraries: " + ", ".join(f"{name} {value}" for name, value in versions.items()))
    lines.append("")
    return "\n".join(lines)


def _threshold_section(threshold: Mapping[str, Any] | None) -> list[str]:
    """How a probability becomes a label: the threshold, the objective, where it was chosen, what it gives."""
    if not threshold or threshold.get("value") is None:
        return []
    positive = threshold.get("positive_class")
    lines = ["## Decision threshold", ""]
    lines.append(
        f"`{positive}` is predicted when its probability is at or above **{_num(threshold['value'])}**"
        " (the served labels, the holdout metrics below and performance monitoring all use it)."
    )
    lines.append("")
    method, wanted = threshold.get("method", "fixed"), threshold.get("objective_value")
    if method == "fixed":
        lines.append("- Set in the spec (`training.threshold`).")
    else:
        objective = {
            "max_f1": "the highest F1",
            "min_precision": f"the highest recall with precision at least {_num(wanted)}",
            "min_recall": f"the highest precision with recall at least {_num(wanted)}",
        }.get(str(method), str(method))
        chosen = threshold.get("chosen_on") or {}
        lines.append(
            f"- Chosen for {objective}, on out-of-fold predictions of the {chosen.get('rows')} training rows"
            f" ({chosen.get('folds')} folds), not on the holdout: {_rates(chosen)}."
        )
        if not threshold.get("met", True):
            lines.append("- The objective is **not met** by any threshold on those rows (the gate refuses it).")
    if threshold.get("holdout"):
        lines.append(f"- On the holdout: {_rates(threshold['holdout'])}.")
    lines.append("")
    return lines


def _rates(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {_num(values.get(name))}" for name in ("precision", "recall", "f1"))


def _training_code(code: Any) -> str | None:
    """The code package a model was built from (``training.entry_point``), or None for a spec-built one."""
    if not isinstance(code, Mapping) or not code.get("version"):
        return None
    return (
        f"version {code['version']} of {code.get('package')} (sha256 {code.get('sha256')}), "
        f"entry point `{code.get('entry_point')}`, uploaded by {code.get('uploader')}"
    )


# How each serving path (mlops.registry.serving_path) reaches the model, in a reader's words.
_SERVED_BY = {
    "onnx": "`onnx`: its ONNX export, run by onnxruntime in the inference function",
    "python": "`python`: its pickled pipeline (restricted unpickler, sha256 checked), run by scikit-learn in the"
    " fallback function, which the inference function invokes",
}


def _limitations(
    spec: ModelSpec,
    metrics: Mapping[str, Any],
    slices: list[dict[str, Any]],
    lineage: Mapping[str, Any],
    notes: Mapping[str, str] | None,
    confusion_matrix: Mapping[str, Any] | None,
    fairness: Mapping[str, Mapping[str, Any]] | None,
) -> list[str]:
    out: list[str] = []
    for name, reason in (lineage.get("dropped_features") or {}).items():
        out.append(f"Feature `{name}` is not used: {reason}.")
    for name in METRICS[spec.task]:
        if metrics.get(name) is None and name in metrics:
            out.append(f"{name} could not be computed on the holdout ({(notes or {}).get(name, 'no reason given')}).")
    small = [s for s in slices if isinstance(s.get("rows"), int) and s["rows"] < MIN_SLICE_ROWS]
    if small:
        listed = ", ".join(f"{s.get('attribute')}={s.get('value')} ({s.get('rows')} rows)" for s in small)
        out.append(f"Slice metrics rest on fewer than {MIN_SLICE_ROWS} rows for {listed}; treat them as indicative.")
    if confusion_matrix and confusion_matrix.get("matrix"):
        counts = [sum(row) for row in confusion_matrix["matrix"]]
        total = sum(counts)
        if total:
            for label, count in zip(confusion_matrix.get("labels") or [], counts, strict=False):
                if count / total < IMBALANCED_SHARE:
                    out.append(
                        f"Class imbalance: class `{label}` is {count / total:.1%} of the holdout"
                        f" ({count} of {total} rows); accuracy alone overstates quality."
                    )
    for attribute, result in (fairness or {}).items():
        impact, minimum = result.get("disparate_impact"), result.get("min_disparate_impact")
        if result.get("passed") is not False and isinstance(impact, int | float) and isinstance(minimum, int | float):
            if impact < minimum:
                out.append(
                    f"Predicted positive rates differ across {attribute}: disparate impact {_num(impact)} is below"
                    f" {_num(minimum)} on this holdout, within what its size can tell (upper bound"
                    f" {_num(result.get('upper_bound'))}); a larger holdout would settle it."
                )
        elif result.get("passed") is False:
            out.append(
                f"Predicted positive rates differ across {attribute}: disparate impact"
                f" {_num(result.get('disparate_impact'))} is below {_num(result.get('min_disparate_impact'))}."
            )
    candidates = lineage.get("candidates")
    if isinstance(candidates, int) and candidates > 1:
        out.append(
            f"Parameters were chosen among {candidates} candidates; if they were ranked on this holdout,"
            " its metrics are slightly optimistic."
        )
    for warning in lineage.get("warnings") or []:
        out.append(f"Training warning: {warning}")
    holdout_rows = lineage.get("holdout_rows")
    if isinstance(holdout_rows, int) and holdout_rows < 100:
        out.append(f"The holdout has only {holdout_rows} rows; metrics have wide uncertainty.")
    out.append("Metrics describe data like the training data; inputs outside its ranges are monitored for drift.")
    return out


def _plain(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(value)


def _metric_names(spec: ModelSpec, metrics: Mapping[str, Any]) -> list[str]:
    known = list(METRICS[spec.task])
    return [*[m for m in known if m in metrics], *sorted(m for m in metrics if m not in known)]


def _bullets(items: list[tuple[str, Any]]) -> list[str]:
    return [f"- {label}: {value}" for label, value in items if value not in (None, "", {})]


def _split(lineage: Mapping[str, Any]) -> str | None:
    if lineage.get("test_size") is None:
        return None
    return f"{lineage['test_size']} (seed {lineage.get('seed')})"


def _split_method(spec: ModelSpec, split: Mapping[str, Any] | None) -> str | None:
    """One line saying how the holdout was chosen (docs/training-pipeline.md)."""
    if not split:
        return None
    method = split.get("method")
    if method == "hash":
        key = split.get("key") or []
        if set(key) == {*spec.feature_names, spec.target.name}:
            hashed = "every feature and the target"
        else:
            hashed = ", ".join(f"`{k}`" for k in key)
        return f"hash of each row's {hashed}, seed {split.get('seed')} (a row keeps its side in every dataset version)"
    if method == "time":
        return f"time: the newest rows by `{split.get('time_column')}`, from {split.get('cutoff')} on"
    if method == "holdout_dataset":
        source = split.get("holdout_file") or {}
        parts = [f"fixed holdout file {source.get('uri')}"]
        if source.get("version_id"):
            parts.append(f"version {source['version_id']}")
        parts.append(f"sha256 {source.get('sha256')}")
        return ", ".join(parts)
    return str(method)


def _champion_rows(champion: Mapping[str, Any]) -> list[str]:
    """Which rows the champion was scored on, and how many of them it had trained on."""
    version = champion.get("version", "?")
    scored, holdout = champion.get("rows_scored"), champion.get("holdout_rows")
    if holdout is None:  # an evaluation from before rows were counted
        return [f"Champion: v{version}, scored on the same holdout."]
    lines = [f"Champion: v{version}, scored on {scored} of the {holdout} holdout rows, as was the candidate below."]
    if champion.get("seen_check") == "fingerprints":
        lines.append(
            f"Holdout rows the champion had trained on: {champion.get('seen_rows_scored', 0)} scored"
            f" ({champion.get('seen_rows_excluded', 0)} excluded before scoring, recognized by the fingerprints"
            " of its training rows)."
        )
    else:
        why = champion.get("seen_note", "not recorded")
        lines.append(f"Holdout rows the champion had trained on: unknown ({why}).")
    if champion.get("error"):
        lines.append(f"The champion was not scored: {champion['error']}.")
    return lines


def _params(params: Any) -> str | None:
    if not params:
        return None
    return ", ".join(f"{k}={v}" for k, v in sorted(dict(params).items()))


def _code_revision(lineage: Mapping[str, Any]) -> Any:
    return lineage.get("code_revision") or (lineage.get("library_versions") or {}).get("code_revision")


def _direction(metric: str) -> str:
    return "lower" if metric in LOWER_IS_BETTER else "higher"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> str:
    if not _finite(value):
        return "n/a"
    number = float(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
