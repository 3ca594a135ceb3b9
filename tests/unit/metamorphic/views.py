"""What must not change when a file's columns or rows are rearranged, as comparable values."""

from __future__ import annotations

import math
from typing import Any

from mlops.data.profile import ReferenceProfile
from mlops.data.validation import ValidationReport
from mlops.drift import DriftReport


def checks(report: ValidationReport) -> list[tuple[Any, ...]]:
    """Every check in full: id, column, status, message, count, example rows and values, details."""
    return [
        (
            c.check,
            c.column,
            c.status.value,
            c.message,
            c.failing_count,
            [(e.row, e.value, e.note) for e in c.examples],
            c.details,
        )
        for c in report.checks
    ]


def verdicts(report: ValidationReport) -> list[tuple[Any, ...]]:
    """What a row order cannot change: each check's status and failing count (not which rows)."""
    return sorted((c.check, c.column or "", c.status.value, c.failing_count) for c in report.checks)


def validation(report: ValidationReport) -> dict[str, Any]:
    """The report without what names the file itself (its header order and its bytes' sha256)."""
    return {
        "valid": report.valid,
        "readable": report.readable,
        "rows": report.rows,
        "columns": sorted(report.columns),
        "schema_fingerprint": report.schema_fingerprint,
        "summary": report.summary,
        "checks": checks(report),
    }


def drift(report: DriftReport) -> dict[str, Any]:
    """The whole drift document but its time stamps and the two sources' names."""
    document = report.model_dump(mode="json", exclude={"created_at", "seconds"})
    document["reference"].pop("source")
    document["current"].pop("source")
    return document


def drift_statistics(report: DriftReport) -> dict[str, Any]:
    """Per feature: status, statistic, p-values, counts; and the verdict."""
    return {
        "verdict": report.verdict,
        "drifted_features": sorted(report.drifted_features),
        "missing_rate_alerts": sorted(report.missing_rate_alerts),
        "features": {
            f.name: (
                f.status,
                f.drifted,
                f.method,
                f.statistic,
                f.p_value,
                f.p_value_adjusted,
                f.severity,
                f.reference_count,
                f.current_count,
                {name: (m.statistic, m.p_value) for name, m in f.methods.items()},
                None if f.missing is None else f.missing.model_dump(mode="json"),
                None if f.categories is None else f.categories.model_dump(mode="json"),
            )
            for f in report.features
        },
    }


def profile(built: ReferenceProfile) -> dict[str, Any]:
    return built.model_dump(mode="json", exclude={"source", "created_at"})


def same(actual: Any, expected: Any, rel: float = 1e-12, path: str = "") -> list[str]:
    """Where two documents differ: exactly, except floats within ``rel`` of each other."""
    if isinstance(actual, float) and isinstance(expected, float):
        return (
            [] if math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-300) else [f"{path}: {actual} != {expected}"]
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        if actual.keys() != expected.keys():
            return [f"{path}: keys {sorted(actual)} != {sorted(expected)}"]
        return [d for k in actual for d in same(actual[k], expected[k], rel, f"{path}.{k}")]
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        if len(actual) != len(expected):
            return [f"{path}: {len(actual)} items != {len(expected)}"]
        return [
            d for i, (a, e) in enumerate(zip(actual, expected, strict=True)) for d in same(a, e, rel, f"{path}[{i}]")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]
