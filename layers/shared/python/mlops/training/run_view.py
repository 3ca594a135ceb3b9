"""A run as text: one line per step, the failure with its checks (``mlops runs show``, ``runs wait``);
a notebook run's params, metrics, tags, recorder, logged model and the version it was imported as."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.registry.versions import ModelVersion
from mlops.training.history import CONTAINERS, Failure, Run, Step, cause_message
from mlops.training.notebook_runs import NotebookRun


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _items(indexes: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in indexes[:limit])
    return shown + (f" and {len(indexes) - limit} more" if len(indexes) > limit else "")


def render_step(step: Step, depth: int = 0) -> str:
    """``  FAILED      TrainCandidate x4 (2 failed: items 2, 3): SpecError: ...`` (one line)."""
    notes: list[str] = []
    name = step.name
    if step.kind in CONTAINERS:
        if step.iterations is not None:
            notes.append(f"{step.iterations} item{'s' if step.iterations != 1 else ''}")
        if step.failed_iterations:
            notes.append(
                f"failed: item{'s' if len(step.failed_iterations) > 1 else ''} {_items(step.failed_iterations)}"
            )
    else:
        if step.entries > 1:
            name += f" x{step.entries}"
            if step.failed:
                where = f": item{'s' if len(step.failed_iterations) > 1 else ''} {_items(step.failed_iterations)}"
                notes.append(f"{step.failed} failed" + (where if step.failed_iterations else ""))
            if step.aborted:
                notes.append(f"{step.aborted} aborted")
        if step.retries:
            retried = f"{step.attempts} attempts"
            if step.status == "SUCCEEDED" and step.error:
                retried += f", retried after {step.error}"
            notes.append(retried)
    if step.kind == "Fail":
        notes.append("a Fail state: ends the run")
    line = f"  {step.status:<9} {'  ' * depth}{name}" + (f" ({'; '.join(notes)})" if notes else "")
    if step.status == "FAILED" and step.error and step.kind not in CONTAINERS and step.kind != "Fail":
        line += ": " + _clip(f"{step.error}: {cause_message(step.cause) or ''}", 240)
    return line


def render_failure(failure: Failure, *, model: str | None = None, max_checks: int = 10) -> list[str]:
    """What made the run fail: the step, the error, the cause, and for invalid data the failed checks."""
    where = failure.step
    if failure.within is not None:
        item = f"item {failure.iteration}" if failure.iteration is not None else "an item"
        of = f" of {failure.iterations}" if failure.iterations is not None else ""
        where += f" ({item}{of} in {failure.within})"
    if failure.attempts > 1:
        where += f" after {failure.attempts} attempts"
    if failure.error == "DatasetInvalid" and failure.report_uri:
        summary = str(failure.summary or failure.cause or "the dataset failed validation")
        summary = summary.removeprefix("invalid: ")
        lines = [f"  failed: the dataset is invalid ({failure.step}): {summary}"]
        checks = failure.checks
        for check in checks[:max_checks]:
            column = f" [{check.get('column')}]" if check.get("column") is not None else ""
            count = check.get("failing_count") or 0
            rows = f" ({count:,} row{'s' if count != 1 else ''})" if count else ""
            lines.append(f"    FAIL {check.get('check')}{column}{rows}: {_clip(check.get('message') or '', 200)}")
            for example in (check.get("examples") or [])[:3]:
                parts = []
                if example.get("row") is not None:
                    parts.append(f"row {example['row']}")
                if example.get("value") is not None:
                    parts.append(f"value {_clip(example['value'], 60)!r}")
                if example.get("note"):
                    parts.append(str(example["note"]))
                lines.append("         " + ": ".join(parts))
        if len(checks) > max_checks:
            lines.append(f"    ... and {len(checks) - max_checks} more failed checks in the report")
        lines.append(f"    report: {failure.report_uri}")
    else:
        lines = [f"  failed at {where}", f"    error:  {failure.error or '-'}"]
        cause = failure.cause or "-"
        lines += [
            f"    cause:  {line}" if i == 0 else f"            {line}" for i, line in enumerate(cause.splitlines()[:20])
        ]
    recorded = failure.recorded
    if recorded:
        audit = f"  (mlops audit list --model {model})" if model else ""
        lines.append(
            f"    recorded: registry {recorded.get('sk')} (step {recorded.get('step')}), "
            f"audit event pipeline.failed{audit}"
        )
    lines += [f"    note:   {note}" for note in failure.notes]
    return lines


def render_run(run: Run) -> list[str]:
    """``mlops runs show``'s text: each step's real state, the outcome, and why a failed run failed."""
    lines = [
        f"run {run.name}  [{run.status}]  model {run.model or '?'}",
        f"  started {run.started}  stopped {run.stopped or '-'}",
    ]
    parents = {step.name: step.parent for step in run.steps}

    def depth(step: Step) -> int:
        level, parent, seen = 0, step.parent, set()
        while parent is not None and parent not in seen:
            seen.add(parent)
            level, parent = level + 1, parents.get(parent)
        return level

    lines += [render_step(step, depth(step)) for step in run.steps]
    output = run.output or {}
    if isinstance(output, dict) and "outcome" in output:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((output.get("metrics") or {}).items()))
        lines.append(
            f"  outcome: {output['outcome']}: {output.get('model')} version {output.get('version')} "
            f"{output.get('status')}"
        )
        if metrics:
            lines.append(f"  metrics: {metrics}")
        lines += [f"  reason:  {reason}" for reason in output.get("reasons") or []]
        if output.get("card_uri"):
            lines.append(
                f"  card:    {output['card_uri']}  (mlops models card {output.get('model')} {output.get('version')})"
            )
    elif run.output:
        lines.append("  output: " + json.dumps(run.output, default=str)[:800])
    if run.failure is not None:
        lines += render_failure(run.failure, model=run.model)
    elif run.error:
        lines.append(f"  failed: {run.error}: {run.cause or ''}")
    return lines


def render_code(code: Mapping[str, Any] | None) -> str:
    """``version 2 of churn_features (sha256 ab12cd34ef56...), entry point ..., uploaded by ...``."""
    if not code:
        return "- (the spec's estimator)"
    return (
        f"version {code.get('version')} of {code.get('package')} (sha256 {str(code.get('sha256'))[:12]}...), "
        f"entry point {code.get('entry_point')}, uploaded by {code.get('uploader')}"
    )


def render_values(values: Mapping[str, Any]) -> str:
    """``C=0.5, columns=["x", "y"]``: numbers to 4 significant digits, the rest as JSON."""
    return ", ".join(
        f"{k}={json.dumps(v) if not isinstance(v, float) else f'{v:.4g}'}" for k, v in sorted(values.items())
    )


def render_notebook_run(run: NotebookRun) -> list[str]:
    """``FINISHED   <when>   <run id>  by <who>`` and its params and metrics (``mlops runs list``)."""
    status = run.tags.get("status", "RECORDED")
    lines = [f"{status:<10} {run.created_at:<33} {run.run_id}  by {run.caller}"]
    if run.params:
        lines.append(f"  params:  {render_values(run.params)}")
    if run.metrics:
        lines.append(f"  metrics: {render_values(run.metrics)}")
    return lines


def render_notebook_run_detail(run: NotebookRun, imported: Sequence[ModelVersion]) -> list[str]:
    """``mlops runs show nb-... --model M``: everything the run recorded, and what became of its model."""
    lines = [
        f"notebook run {run.run_id}  [{run.tags.get('status', 'RECORDED')}]  model {run.model}",
        f"  recorded {run.created_at}  by {run.caller} (the identity AWS verified)",
        f"  params:  {render_values(run.params) or '-'}",
        f"  metrics: {render_values(run.metrics) or '-'}",
        f"  tags:    {render_values(run.tags) or '-'}",
    ]
    artifact = run.artifact
    if not artifact:
        lines.append("  model:   - (the run logged none: run.log_model in the notebook)")
        return lines
    lines.append(
        f"  model:   {artifact.get('format')}, {int(artifact.get('size') or 0):,} bytes,"
        f" sha256 {str(artifact.get('sha256'))[:12]}...  s3://{artifact.get('bucket')}/{artifact.get('key')}"
    )
    for version in imported:
        lines.append(
            f"  imported as version {version.version} [{version.status.value}]"
            f"  (mlops models show {run.model} --version {version.version})"
        )
    if not imported:
        lines.append(f"  imported: not yet  (mlops models import {run.model} --run {run.run_id} --dataset VERSION)")
    return lines
