"""What the checks found: each column's tallies and the dataset's counts turned into check results."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.data.validation.report import CheckResult, Status
from mlops.data.validation.tallies import ColumnPlan, Tally
from mlops.spec.model import FeatureType

if TYPE_CHECKING:
    from mlops.data.validation.engine import Validator


def all_results(v: Validator) -> list[CheckResult]:
    """Every check's result (passed ones included) once all chunks were consumed."""
    out: list[CheckResult] = []
    out.extend(schema_results(v))
    out.append(row_count_result(v))
    if v.duplicate_rows != "off":
        out.append(duplicates_result(v))
    for column in v.all_columns:
        if column.present:
            out.extend(column_results(v, column))
    if v.target.present and v.spec.task == "classification" and not v.rows:
        out.append(
            CheckResult(
                check="target.class_balance",
                column=v.target.name,
                status=Status.SKIPPED,
                message="no rows to count",
            )
        )
    elif v.target.present and v.spec.task == "classification":
        out.append(balance_result(v))
        out.extend(fairness_results(v))
    elif v.spec.fairness.protected_attributes:
        out.extend(
            CheckResult(
                check="fairness.disparate_impact",
                column=a,
                status=Status.SKIPPED,
                message="disparate impact needs a classification target (present in the data)",
            )
            for a in v.spec.fairness.protected_attributes
        )
    if v.reference is not None:
        for column in v.all_columns:
            if column.present and column.reference is not None:
                out.extend(reference_results(v, column))
    return out


def schema_results(v: Validator) -> list[CheckResult]:
    header = v.header or []
    expected = [c.name for c in v.all_columns]
    missing = [c for c in v.columns if not c.present]
    out: list[CheckResult] = []
    if missing:
        hints = [f"{c.name!r}{header_hint(c.name, header)}" for c in missing]
        out.append(
            CheckResult(
                check="schema.missing_columns",
                status=Status.FAILED,
                message=f"{len(missing)} required column(s) missing: {', '.join(hints)}",
                failing_count=len(missing),
                details={"missing": [c.name for c in missing]},
            )
        )
    else:
        out.append(
            CheckResult(
                check="schema.missing_columns",
                status=Status.PASSED,
                message=f"all {len(v.columns)} feature columns present",
            )
        )
    target_name = v.target.name
    out.append(
        CheckResult(
            check="target.present", column=target_name, status=Status.PASSED, message="the target column is present"
        )
        if v.target.present
        else CheckResult(
            check="target.present",
            column=target_name,
            status=Status.FAILED,
            failing_count=1,
            message=f"the target column {target_name!r} is missing{header_hint(target_name, header)}",
        )
    )
    known = set(expected)
    seen: set[str] = set()
    extra = []
    for name in header:
        if name not in known and name not in seen:
            extra.append(name)
        seen.add(name)
    if extra and not v.spec.allow_extra_columns:
        shown = ", ".join(repr(n) if n else "(unnamed)" for n in extra[:10])
        more = f" and {len(extra) - 10:,} more" if len(extra) > 10 else ""
        out.append(
            CheckResult(
                check="schema.unexpected_columns",
                status=Status.FAILED,
                message=f"{len(extra):,} column(s) not in the spec: {shown}{more} "
                "(set allow_extra_columns: true in the spec to accept them)",
                failing_count=len(extra),
                details={"unexpected": extra[:100]},
            )
        )
    else:
        message = f"{len(extra):,} extra column(s) ignored (allow_extra_columns)" if extra else "no unexpected columns"
        out.append(
            CheckResult(
                check="schema.unexpected_columns",
                status=Status.PASSED,
                message=message,
                details={"ignored": extra[:100]} if extra else {},
            )
        )
    return out


def row_count_result(v: Validator) -> CheckResult:
    bounds = v.spec.row_count
    high = f"{bounds.max:,}" if bounds.max is not None else "no maximum"
    ok = v.rows >= bounds.min and (bounds.max is None or v.rows <= bounds.max)
    if ok:
        message = f"{v.rows:,} rows (bounds {bounds.min:,} to {high})"
    elif v.rows < bounds.min:
        message = f"{v.rows:,} rows, fewer than the minimum {bounds.min:,}"
    else:
        message = f"{v.rows:,} rows, more than the maximum {high}"
    return CheckResult(
        check="dataset.row_count",
        status=Status.PASSED if ok else Status.FAILED,
        message=message,
        failing_count=0 if ok else 1,
        details={"rows": v.rows, "min": bounds.min, "max": bounds.max},
    )


def duplicates_result(v: Validator) -> CheckResult:
    tally = v.duplicates
    if not tally.count:
        return CheckResult(check="dataset.duplicate_rows", status=Status.PASSED, message="no duplicate rows")
    status = Status.FAILED if v.duplicate_rows == "error" else Status.WARNING
    return CheckResult(
        check="dataset.duplicate_rows",
        status=status,
        message=f"{tally.count:,} row(s) repeat an earlier row (compared on the spec's columns)"
        + ("" if status is Status.FAILED else "; reported only (validation.duplicate_rows: warning)"),
        failing_count=tally.count,
        examples=tally.examples,
        details={"severity": v.duplicate_rows},
    )


def column_results(v: Validator, column: ColumnPlan) -> list[CheckResult]:
    out: list[CheckResult] = []
    prefix = column.prefix
    tallies = column.tallies

    def result(check: str, ok_message: str, fail_message: str, details: dict[str, Any] | None = None) -> None:
        tally = tallies.get(check) or Tally(0)
        failed = tally.count > 0
        out.append(
            CheckResult(
                check=f"{prefix}.{check}",
                column=column.name,
                status=Status.FAILED if failed else Status.PASSED,
                message=fail_message.replace("{n}", f"{tally.count:,}").replace("{s}", "" if tally.count == 1 else "s")
                if failed
                else ok_message,
                failing_count=tally.count,
                examples=tally.examples,
                details=details or {},
            )
        )

    type_name = column.type.value
    if column.role == "target" and v.spec.task == "classification":
        classes = ", ".join(column.classes or [])
        result("nulls", "no missing labels", "{n} row{s} without a label (the target may not be missing)")
        result(
            "values",
            f"every label is one of the classes [{classes}]",
            f"{{n}} label{{s}} not among the classes [{classes}]",
        )
        return out
    if column.numeric or column.type in (FeatureType.BOOL, FeatureType.DATETIME):
        result("type", f"every value is a valid {type_name}", f"{{n}} value{{s}} cannot be read as {type_name}")
    if not column.nullable:
        result("nulls", "no missing values", "{n} missing value{s} (the column is not nullable)")
    if "non_finite" in tallies or column.type is FeatureType.FLOAT:
        result("non_finite", "no infinite values", "{n} infinite value{s} (inf, -inf)")
    if column.min is not None:
        result(
            "min",
            f"all values >= {number_text(column.min)}",
            f"{{n}} value{{s}} below the minimum {number_text(column.min)}",
        )
    if column.max is not None:
        result(
            "max",
            f"all values <= {number_text(column.max)}",
            f"{{n}} value{{s}} above the maximum {number_text(column.max)}",
        )
    if column.allowed is not None:
        listed = listing([number_text(v) if isinstance(v, float) else v for v in column.allowed])
        result("allowed", f"every value is one of {listed}", f"{{n}} value{{s}} not among the allowed {listed}")
    if column.regex is not None:
        result(
            "regex",
            f"every value matches /{column.regex.pattern}/",
            f"{{n}} value{{s}} not matching /{column.regex.pattern}/ (the whole value must match)",
        )
    if column.unique:
        result("unique", "every value is unique", "{n} value{s} already in an earlier row (must be unique)")
    return out


def balance_result(v: Validator) -> CheckResult:
    counts = v.target.class_counts
    total = sum(counts.values())
    classes = v.target.classes or []
    fractions = {c: (counts.get(c, 0) / total if total else 0.0) for c in classes}
    details: dict[str, Any] = {"counts": {c: counts.get(c, 0) for c in classes}, "fractions": fractions}
    floor = v.spec.target.min_class_fraction
    shown = ", ".join(f"{c}: {counts.get(c, 0):,} ({fractions[c]:.1%})" for c in classes)
    if floor is None:
        return CheckResult(
            check="target.class_balance",
            column=v.target.name,
            status=Status.PASSED,
            message=f"class counts {shown} (no balance bound in the spec)",
            details=details,
        )
    details["min_class_fraction"] = floor
    low = [c for c in classes if fractions[c] < floor]
    if low:
        return CheckResult(
            check="target.class_balance",
            column=v.target.name,
            status=Status.FAILED,
            failing_count=len(low),
            message=f"class(es) {', '.join(low)} below the minimum share {floor:.1%}: {shown}",
            details=details,
        )
    return CheckResult(
        check="target.class_balance",
        column=v.target.name,
        status=Status.PASSED,
        message=f"every class at least {floor:.1%}: {shown}",
        details=details,
    )


def fairness_results(v: Validator) -> list[CheckResult]:
    """Disparate impact of the dataset's labels per protected attribute: reported, never failed.

    Base rates that differ between groups are a fact about the world the data describes, not
    a defect of the data, so a low ratio is a warning here; the gate judges the candidate's
    predictions (``fairness.mode``). Groups below ``fairness.min_group_size`` rows are listed
    but take no part in the ratio: a category seen once would otherwise decide it.
    """
    out: list[CheckResult] = []
    fairness = v.spec.fairness
    threshold = fairness.min_disparate_impact
    min_size = fairness.min_group_size
    positive = v.target.positive
    for attribute, groups in v.groups.items():
        check = "fairness.disparate_impact"
        if not any(c.name == attribute and c.present for c in v.columns):
            out.append(
                CheckResult(
                    check=check,
                    column=attribute,
                    status=Status.SKIPPED,
                    message="the protected attribute column is missing",
                )
            )
            continue
        ordered = sorted(groups.items(), key=lambda item: (-item[1][0], item[0]))
        table = {
            g: {"rows": n, "positives": p, "positive_rate": (p / n if n else 0.0), "compared": n >= min_size}
            for g, (n, p) in ordered[:100]
        }
        rates = {g: p / n for g, (n, p) in ordered if n >= min_size}
        small = [g for g, (n, _) in ordered if n < min_size]
        details: dict[str, Any] = {
            "groups": table,
            "positive_class": positive,
            "min_disparate_impact": threshold,
            "min_group_size": min_size,
            "excluded_groups": small[:100],
            "of": "labels",
        }
        excluded = (
            f"; {len(small):,} group(s) under {min_size:,} rows listed, not compared ({listing(small, 5)})"
            if small
            else ""
        )
        if len(rates) < 2:
            out.append(
                CheckResult(
                    check=check,
                    column=attribute,
                    status=Status.SKIPPED,
                    details=details,
                    message=f"fewer than two groups with at least {min_size:,} rows "
                    f"(fairness.min_group_size): nothing to compare{excluded}",
                )
            )
            continue
        low_group = min(rates, key=lambda g: rates[g])
        high_group = max(rates, key=lambda g: rates[g])
        ratio = rates[low_group] / rates[high_group] if rates[high_group] > 0 else 1.0
        details["disparate_impact"] = ratio
        low_rows, high_rows = groups[low_group][0], groups[high_group][0]
        summary = (
            f"positive rate ({positive}) {rates[low_group]:.1%} for {low_group!r} "
            f"({low_rows:,} rows) vs {rates[high_group]:.1%} for {high_group!r} "
            f"({high_rows:,} rows){excluded}"
        )
        below = ratio < threshold
        out.append(
            CheckResult(
                check=check,
                column=attribute,
                status=Status.WARNING if below else Status.PASSED,
                failing_count=1 if below else 0,
                details=details,
                message=(
                    f"label disparate impact {ratio:.2f} below {threshold:.2f}: {summary}. Reported, not "
                    f"refused: these are the data's base rates; the gate checks the model's predictions "
                    f"(fairness.mode: {fairness.mode})"
                    if below
                    else f"label disparate impact {ratio:.2f} (minimum {threshold:.2f}): {summary}"
                ),
            )
        )
    return out


def reference_results(v: Validator, column: ColumnPlan) -> list[CheckResult]:
    reference = column.reference
    assert reference is not None
    options = v.options
    bad = Status.FAILED if options.reference_severity == "error" else Status.WARNING
    out: list[CheckResult] = []

    def add(check: str, failed: bool, message: str, details: dict[str, Any], tally: Tally | None = None) -> None:
        out.append(
            CheckResult(
                check=f"reference.{check}",
                column=column.name,
                status=bad if failed else Status.PASSED,
                message=message,
                failing_count=(tally.count if tally else 1) if failed else 0,
                examples=tally.examples if tally and failed else [],
                details=details,
            )
        )

    moments = column.moments
    if moments is not None and reference.numeric is not None and moments.count:
        ref = reference.numeric
        scale = ref.std if ref.std > 0 else 1.0
        shift = abs(moments.mean - ref.mean) / scale
        add(
            "mean_shift",
            shift > options.max_mean_shift,
            f"mean {moments.mean:.4g} vs reference {ref.mean:.4g}: {shift:.2f} reference std "
            f"(limit {options.max_mean_shift})",
            {"mean": moments.mean, "reference_mean": ref.mean, "shift_in_std": shift},
        )
        low, high = options.std_ratio_bounds
        ratio = moments.std / ref.std if ref.std > 0 else (1.0 if moments.std == 0 else float("inf"))
        add(
            "std_shift",
            not (low <= ratio <= high),
            f"std {moments.std:.4g} vs reference {ref.std:.4g}: ratio {ratio:.2f} (bounds {low} to {high})",
            {"std": moments.std, "reference_std": ref.std, "ratio": ratio if np.isfinite(ratio) else None},
        )
    rows, nulls = column.ref_rows, column.ref_nulls
    if column.role == "target" and v.spec.task == "classification":
        rows = nulls = 0  # labels may not be missing at all: target.nulls covers it
    if rows:
        rate = nulls / rows
        change = abs(rate - reference.null_rate)
        add(
            "missing_rate",
            change > options.max_missing_rate_change,
            f"missing rate {rate:.1%} vs reference {reference.null_rate:.1%} "
            f"(change limit {options.max_missing_rate_change:.0%})",
            {"missing_rate": rate, "reference_missing_rate": reference.null_rate},
        )
    tally = column.tallies.get("new_categories")
    if tally is not None:
        fraction = tally.count / v.rows if v.rows else 0.0
        add(
            "new_categories",
            tally.count > 0 and fraction > options.max_new_category_fraction,
            f"{tally.count:,} value(s) ({fraction:.2%} of rows) are categories the reference never saw"
            if tally.count
            else "no categories the reference never saw",
            {"fraction": fraction},
            tally,
        )
    return out


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def listing(values: list[Any], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def header_hint(name: str, header: list[str]) -> str:
    """' (did you mean ...)' for a near miss in the header: case, spaces, small typos."""
    folded = name.strip().lower()
    for candidate in header:
        if candidate.strip().lower() == folded:
            return f" (found {candidate!r}: names are case- and space-sensitive)"
    close = difflib.get_close_matches(name, header[:2000], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""
