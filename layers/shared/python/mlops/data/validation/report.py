"""The validation report: one JSON document per validated dataset, and its text rendering.

The JSON schema is documented in ``docs/validation.md``; ``schema_version`` changes whenever a
field is removed or changes meaning (adding a field does not change it).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    SKIPPED = "skipped"


class Example(BaseModel):
    """One failing row: its 1-based data row number (the header is not counted) and the value."""

    model_config = ConfigDict(extra="forbid")

    row: int | None = None
    value: str | None = None
    note: str | None = None


class CheckResult(BaseModel):
    """The outcome of one check on one column (or on the whole dataset when ``column`` is None)."""

    model_config = ConfigDict(extra="forbid")

    check: str
    column: str | None = None
    status: Status
    message: str
    failing_count: int = 0
    examples: list[Example] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED


class SourceInfo(BaseModel):
    """What was read: name, size and sha256 of the bytes as stored (compressed when gzip)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    bytes: int = 0
    sha256: str | None = None
    compression: str | None = None
    encoding: str = "utf-8"


class ValidationReport(BaseModel):
    """Everything one validation run found. ``valid`` is the gate: readable and no failed check.

    Examples
    --------
    >>> report = validate_file("data.csv", spec)  # doctest: +SKIP
    >>> report.valid, report.rows
    (True, 1000)
    >>> print(report.render_text())  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    valid: bool
    readable: bool
    model: str
    spec_fingerprint: str
    source: SourceInfo
    rows: int = 0
    columns: list[str] = Field(default_factory=list)
    schema_fingerprint: str | None = None
    reference_used: bool = False
    # The spec's validation settings in force: duplicate_rows, fairness mode and min_group_size
    # (None in reports made before the settings were recorded).
    settings: dict[str, Any] | None = None
    duration_seconds: float = 0.0
    summary: dict[str, int] = Field(default_factory=dict)
    checks: list[CheckResult] = Field(default_factory=list)

    # ------------------------------------------------------------------------------------------
    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.FAILED]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.WARNING]

    def find(self, check: str, column: str | None = None) -> list[CheckResult]:
        """Results of one check id (``"column.min"``), optionally for one column."""
        return [c for c in self.checks if c.check == check and (column is None or c.column == column)]

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document (see ``docs/validation.md`` for its schema)."""
        return json.dumps(self.model_dump(mode="json"), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        return cls.model_validate_json(text)

    def render_text(self, show_passed: bool = False) -> str:
        """A human-readable rendering: verdict, failures with examples, warnings, counts."""
        verdict = "VALID" if self.valid else ("UNREADABLE" if not self.readable else "INVALID")
        size = ""
        if self.source.sha256 is not None:
            size = f", {self.source.bytes:,} bytes" + (f" {self.source.compression}" if self.source.compression else "")
        lines = [
            f"{verdict}: {self.source.name} against spec '{self.model}'",
            f"  {self.rows:,} rows, {len(self.columns):,} columns{size}, {self.duration_seconds:.2f}s",
            "  "
            + ", ".join(f"{self.summary.get(s.value, 0)} {s.value}" for s in Status)
            + (", reference profile used" if self.reference_used else ""),
        ]
        if self.settings:
            lines.append("  settings: " + _settings_text(self.settings))
        groups = [(Status.FAILED, "FAIL"), (Status.WARNING, "WARN")]
        if show_passed:
            groups.append((Status.PASSED, "ok"))
        for status, tag in groups:
            for result in (c for c in self.checks if c.status is status):
                where = f" [{result.column}]" if result.column is not None else ""
                lines.append(f"{tag:<4} {result.check}{where}: {result.message}")
                for example in result.examples:
                    parts = []
                    if example.row is not None:
                        parts.append(f"row {example.row}")
                    if example.value is not None:
                        parts.append(f"value {_clip(example.value)!r}")
                    if example.note:
                        parts.append(example.note)
                    lines.append("       " + ": ".join(parts))
        if self.valid and not show_passed:
            lines.append(f"all {self.summary.get(Status.PASSED.value, 0)} checks passed" if not self.warnings else "")
        return "\n".join(line for line in lines if line) + "\n"


def _settings_text(settings: dict[str, Any]) -> str:
    """``duplicate rows error; fairness mode gate for sex (groups of at least 30 rows, ...)``."""
    parts = [f"duplicate rows {settings.get('duplicate_rows')}"]
    fairness = settings.get("fairness") or {}
    if fairness.get("protected_attributes"):
        parts.append(
            f"fairness mode {fairness.get('mode')} for {', '.join(map(str, fairness['protected_attributes']))}"
            f" (groups of at least {fairness.get('min_group_size')} rows,"
            f" minimum disparate impact {fairness.get('min_disparate_impact')})"
        )
    else:
        parts.append("fairness: no protected attributes")
    return "; ".join(parts)


def _clip(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."
