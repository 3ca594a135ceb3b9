"""The registry as a data scientist reads it: a version's facts, two versions compared, a run's candidates.

A registered version holds its lineage (dataset version, parameters, metrics); the run that made
it left the rest beside it in the data bucket: the evaluation (slices, split, every search
candidate's score) under ``artifacts/<model>/runs/<run>/evaluation.json`` and the gate's verdict
under ``artifacts/<model>/versions/<version>/gate.json``. This module reads them together.
Versions registered before a file existed show what the registry alone knows (the gate from the
version's status and reason, no slices).

Examples
--------
>>> a = version_facts(registry, s3, "data-bucket", "churn", 1)  # doctest: +SKIP
>>> b = version_facts(registry, s3, "data-bucket", "churn", 2)  # doctest: +SKIP
>>> print(render_diff(diff_versions(a, b)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.registry.versions import ModelVersion, Registry, Status
from mlops.values import finite_number

SPLIT_FIELDS = ("method", "test_size", "seed", "key", "time_column", "cutoff", "train_rows", "holdout_rows")
DATA_FIELDS = ("key", "version_id", "sha256", "rows", "schema_fingerprint")


def _read_json(s3: Any, uri: str) -> dict[str, Any] | None:
    """The JSON document at ``s3://bucket/key``, or None when it is not there."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    try:
        return dict(json.loads(body.read()))
    finally:
        body.close()


def run_evaluation_uri(bucket: str, model: str, run_name: str) -> str:
    """Where a training run's evaluation lives (:func:`mlops.training.steps.services.run_prefix`)."""
    return f"s3://{bucket}/artifacts/{model}/runs/{run_name}/evaluation.json"


def gate_uri(bucket: str, model: str, version: int) -> str:
    """Where the Register step writes a version's gate verdict (beside its model card)."""
    return f"s3://{bucket}/artifacts/{model}/versions/{version}/gate.json"


# ------------------------------------------------------------------------------------ one version
def _gate_from_registry(version: ModelVersion) -> dict[str, Any]:
    """What the registry alone says of the gate (versions registered before gate.json existed)."""
    if version.status == Status.REJECTED:
        reasons = [str(c["reason"]) for c in version.status_history if c.get("to") == "REJECTED" and c.get("reason")]
        return {"passed": False, "reasons": reasons, "checks": [], "source": "registry"}
    return {"passed": True, "reasons": [], "checks": [], "source": "registry"}


def _check_name(check: Mapping[str, Any]) -> str:
    kind = check.get("check")
    if kind == "threshold":
        return f"{check.get('metric')} {check.get('bound')} {check.get('threshold')}"
    if kind == "champion":
        return f"beats champion on {check.get('metric')}"
    if kind == "fairness":
        return f"disparate impact across {check.get('attribute')}"
    return str(kind)


def _threshold_param(version: ModelVersion) -> dict[str, Any]:
    """The version's decision threshold as a parameter (tag ``decision_threshold``, mlops.training.threshold)."""
    text = version.tags.get("decision_threshold")
    if not text:
        return {}
    return {"decision_threshold": json.loads(text).get("value")}


def version_facts(registry: Registry, s3: Any, bucket: str, model: str, version: int) -> dict[str, Any]:
    """Everything recorded about one version, in sections: data, params, metrics, slices, split, gates.

    Raises
    ------
    NotFoundError
        The model or the version does not exist.
    """
    record = registry.get_version(model, version)
    dataset = record.dataset_version or {}
    evaluation_uri = record.tags.get("evaluation_uri")
    stored = _read_json(s3, evaluation_uri) if evaluation_uri else None
    evaluation = (stored or {}).get("evaluation") or {}
    split = (stored or {}).get("split") or {}
    slices: dict[str, dict[str, Any]] = {}
    for item in evaluation.get("slices") or []:
        name = f"{item.get('attribute')}={item.get('value')}"
        slices[name] = {"rows": item.get("rows"), **(item.get("metrics") or {})}
    gate_document = _read_json(s3, gate_uri(bucket, model, record.version))
    if gate_document is None:
        gate = _gate_from_registry(record)
    else:
        gate = {
            "passed": bool(gate_document.get("passed")),
            "reasons": list(gate_document.get("reasons") or []),
            "checks": list(gate_document.get("checks") or []),
            "source": "gate.json",
        }
    holdout_file = split.get("holdout_file") or {}
    return {
        "model": model,
        "version": record.version,
        "status": record.status.value,
        "created_at": record.created_at,
        "spec_revision": record.spec_revision,
        "code_revision": record.code_revision,
        "data": {name: dataset.get(name) for name in DATA_FIELDS},
        "params": {**dict(record.params), **_threshold_param(record)},
        "metrics": dict(record.metrics),
        "slices": slices,
        "split": {
            **{name: split.get(name) for name in SPLIT_FIELDS if split.get(name) is not None},
            **(
                {"holdout_file": holdout_file.get("uri"), "holdout_sha256": holdout_file.get("sha256")}
                if holdout_file
                else {}
            ),
        },
        "gates": gate,
        "sources": {"evaluation": evaluation_uri if stored is not None else None, "gate": gate["source"]},
    }


# ------------------------------------------------------------------------------------ two versions
def _row(name: str, a: Any, b: Any, *, numeric: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "a": a, "b": b, "changed": a != b}
    if numeric:
        x, y = finite_number(a), finite_number(b)
        row["delta"] = None if x is None or y is None else y - x
    return row


def _keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(set(a) | set(b))


def _gate_checks(gates: Mapping[str, Any]) -> dict[str, Any]:
    checks = {"passed": gates.get("passed")}
    for check in gates.get("checks") or []:
        checks[_check_name(check)] = "pass" if check.get("passed") else "FAIL"
    return checks


def diff_versions(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two :func:`version_facts` compared, section by section; metrics carry ``delta`` (b - a).

    Returns
    -------
    dict
        ``model``, ``a``, ``b`` (version numbers), ``sections`` (name to a list of rows
        ``{"name", "a", "b", "changed"[, "delta"]}``) and ``changed`` (names of the sections
        with at least one changed row).
    """
    sections: dict[str, list[dict[str, Any]]] = {
        "data": [_row(k, a["data"].get(k), b["data"].get(k)) for k in DATA_FIELDS],
        "params": [_row(k, a["params"].get(k), b["params"].get(k)) for k in _keys(a["params"], b["params"])],
        "metrics": [
            _row(k, a["metrics"].get(k), b["metrics"].get(k), numeric=True) for k in _keys(a["metrics"], b["metrics"])
        ],
        "slices": [
            _row(f"{s} {m}", (a["slices"].get(s) or {}).get(m), (b["slices"].get(s) or {}).get(m), numeric=True)
            for s in _keys(a["slices"], b["slices"])
            for m in _keys(a["slices"].get(s) or {}, b["slices"].get(s) or {})
        ],
        "split": [_row(k, a["split"].get(k), b["split"].get(k)) for k in _keys(a["split"], b["split"])],
        "gates": [
            _row(k, _gate_checks(a["gates"]).get(k), _gate_checks(b["gates"]).get(k))
            for k in dict.fromkeys([*_gate_checks(a["gates"]), *_gate_checks(b["gates"])])
        ],
    }
    return {
        "model": a["model"],
        "a": a["version"],
        "b": b["version"],
        "status": {"a": a["status"], "b": b["status"]},
        "sections": sections,
        "changed": [name for name, rows in sections.items() if any(r["changed"] for r in rows)],
        "sources": {"a": a["sources"], "b": b["sources"]},
    }


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    text = str(value)
    return text if len(text) <= 40 else text[:18] + "..." + text[-19:]


def render_diff(diff: Mapping[str, Any]) -> str:
    """The text table ``mlops models diff`` prints: one block per section, ``*`` on changed rows."""
    a, b = f"v{diff['a']}", f"v{diff['b']}"
    rows = [row for section in diff["sections"].values() for row in section]
    name_width = max([len(r["name"]) for r in rows] + [10]) + 2
    width_a = max([len(_text(r["a"])) for r in rows] + [len(a)]) + 2
    width_b = max([len(_text(r["b"])) for r in rows] + [len(b)]) + 2
    status = diff["status"]
    lines = [
        f"{diff['model']}: {a} ({status['a']}) vs {b} ({status['b']}); "
        + (f"differ in {', '.join(diff['changed'])}" if diff["changed"] else "no difference")
    ]
    for section, items in diff["sections"].items():
        header = f"{section.upper():<{name_width + 2}}{a:<{width_a}}{b:<{width_b}}"
        lines.append("")
        lines.append((header + ("CHANGE" if any("delta" in r for r in items) else "")).rstrip())
        if not items:
            lines.append("  (nothing recorded)")
        for row in items:
            line = f"{'*' if row['changed'] else ' '} {row['name']:<{name_width}}{_text(row['a']):<{width_a}}"
            line += f"{_text(row['b']):<{width_b}}"
            if row.get("delta") is not None:
                line += f"{row['delta']:+.4g}"
            lines.append(line.rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ a run's search
def run_candidates(s3: Any, bucket: str, model: str, run_name: str) -> dict[str, Any] | None:
    """Every search candidate a run trained, best first, from its evaluation; None before Evaluate ran.

    Returns
    -------
    dict or None
        ``metric``, ``lower_is_better``, ``candidates`` (``rank``, ``index``, ``params``,
        ``score``, ``chosen``) and ``evaluation_uri``. Runs evaluated before the losing
        candidates were recorded list the chosen one only (``complete`` False).
    """
    uri = run_evaluation_uri(bucket, model, run_name)
    stored = _read_json(s3, uri)
    if stored is None:
        return None
    search = stored.get("search") or {}
    if "candidates" in stored:
        candidates = list(stored["candidates"])
        complete = True
    else:
        chosen = stored.get("candidate") or {}
        candidates = [
            {
                "rank": 1,
                "index": chosen.get("index"),
                "params": chosen.get("params") or {},
                "score": None,
                "chosen": True,
            }
        ]
        complete = False
    return {
        "metric": search.get("metric"),
        "lower_is_better": search.get("lower_is_better"),
        "candidates": candidates,
        "complete": complete,
        "evaluation_uri": uri,
    }


def varying_params(candidates: Sequence[Mapping[str, Any]]) -> list[str]:
    """The parameter names whose value differs between candidates (all of them for one candidate)."""
    names = sorted({name for c in candidates for name in (c.get("params") or {})})
    if len(candidates) < 2:
        return names
    return [n for n in names if len({json.dumps((c.get("params") or {}).get(n), default=str) for c in candidates}) > 1]


def render_candidates(found: Mapping[str, Any]) -> list[str]:
    """The lines ``mlops runs show`` prints for a run's search: best first, ``*`` on the chosen one."""
    candidates = found["candidates"]
    metric = found.get("metric") or "score"
    lower = found.get("lower_is_better")
    direction = "" if lower is None else ("lower is better" if lower else "higher is better")
    shown = varying_params(candidates)
    title = f"  candidates: {len(candidates)} trained, ranked by {metric}" + (f" ({direction})" if direction else "")
    lines = [title, f"    {'RANK':>4}  {'INDEX':>5}  {metric.upper():<10}  PARAMS"]
    for c in candidates:
        params = ", ".join(f"{n}={_text((c.get('params') or {}).get(n))}" for n in shown) or "-"
        score = "-" if c.get("score") is None else f"{c['score']:.4f}"
        marker = "*" if c.get("chosen") else " "
        lines.append(f"  {marker} {c.get('rank'):>4}  {_text(c.get('index')):>5}  {score:<10}  {params}")
    fixed = sorted({n for c in candidates for n in (c.get("params") or {})} - set(shown))
    if fixed and candidates:
        first = candidates[0].get("params") or {}
        lines.append("    same for all: " + ", ".join(f"{n}={_text(first.get(n))}" for n in fixed))
    lines.append("    * the candidate the run went on with")
    if not found.get("complete", True):
        lines.append("    (this run was evaluated before the losing candidates' scores were recorded)")
    return lines


def params_text(params: Mapping[str, Any]) -> str:
    """``HistGradientBoostingClassifier(learning_rate=0.1, max_depth=3)`` from a version's params."""
    estimator = str(params.get("estimator") or "?").rsplit(".", 1)[-1]
    rest = ", ".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "estimator")
    return f"{estimator}({rest})"
