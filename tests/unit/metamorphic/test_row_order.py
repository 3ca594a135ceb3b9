"""Permuting a file's rows changes no validation verdict and no drift statistic.

Which rows are named as examples follows the rows (row numbers are positions in the file), so
validation is compared on each check's status and failing count; drift on the whole report.

Drift from the training rows is exactly the same. Drift against a stored profile agrees to
floating-point rounding (relative 1e-12; ~1e-16 seen): the profile's mean and standard deviation
are sums accumulated in file order, and the Wasserstein distance is scaled by that deviation.
Counts, p-values, categories and verdicts are still compared exactly. Shrinking is off: a
falsifying permutation of hundreds of rows does not shrink in useful time.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mlops.data.profile import profile_stream
from mlops.data.validation import ValidationReport, validate_stream
from mlops.drift import Reference, drift_report, read_window
from tests.unit.metamorphic import views
from tests.unit.metamorphic.tables import Dataset, Table, breast_cancer, churn_with_errors, diabetes, drift_sides, wine

NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK)


@cache
def churn_with_duplicates() -> Dataset:
    """Churn with errors, and three rows that repeat earlier ones (one of them twice)."""
    base = churn_with_errors()
    rows = base.table.rows
    table = Table(base.table.header, (*rows, rows[5], rows[6], rows[5]))
    return Dataset("churn_with_duplicates", table, base.spec)


MAKERS = {
    "breast_cancer": breast_cancer,
    "wine": wine,
    "diabetes": diabetes,
    "churn_with_errors": churn_with_errors,
    "churn_with_duplicates": churn_with_duplicates,
}


def validate(table: Table, dataset: Dataset) -> ValidationReport:
    return validate_stream(io.BytesIO(table.to_bytes()), dataset.spec, "data.csv")


@cache
def verdicts(name: str) -> tuple[bool, list[tuple[Any, ...]]]:
    dataset = MAKERS[name]()
    report = validate(dataset.table, dataset)
    return report.valid, views.verdicts(report)


@pytest.mark.parametrize("name", list(MAKERS))
@FAST
@given(data=st.data())
def test_permuting_rows_changes_no_validation_verdict(name: str, data: st.DataObject) -> None:
    # GIVEN a file and the same file with its rows in another order
    dataset = MAKERS[name]()
    order = data.draw(st.permutations(range(len(dataset.table.rows))), label="row order")
    # WHEN validated
    report = validate(dataset.table.with_rows(order), dataset)
    # THEN the verdict, and every check's status and failing count, are the same
    assert (report.valid, views.verdicts(report)) == verdicts(name)


def test_the_duplicates_compared_above_are_found() -> None:
    # GIVEN churn with three repeated rows
    _, found = verdicts("churn_with_duplicates")
    # THEN the duplicate rows (and the repeated identifiers) are failures the comparison covers
    assert ("dataset.duplicate_rows", "", "failed", 3) in found
    assert ("column.unique", "customer_id", "failed", 4) in found


@cache
def drift_of(name: str, profiled: bool) -> dict[str, Any]:
    dataset = MAKERS[name]()
    reference, window = drift_sides(dataset)
    return views.drift(_drift(dataset, reference, window, profiled))


def _drift(dataset: Dataset, reference: Table, window: Table, profiled: bool) -> Any:
    spec = dataset.spec
    ref: Any
    if profiled:
        ref = profile_stream(io.BytesIO(reference.to_bytes()), spec, "train.csv")
    else:
        ref = Reference.from_frame(read_window(io.BytesIO(reference.to_bytes()), spec), spec)
    return drift_report(ref, read_window(io.BytesIO(window.to_bytes()), spec), spec)


@pytest.mark.parametrize("profiled", [False, True], ids=["training_csv", "stored_profile"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes", "churn_with_errors"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK)
@given(data=st.data())
def test_permuting_rows_changes_no_drift_statistic(name: str, profiled: bool, data: st.DataObject) -> None:
    # GIVEN a reference and a window that differ for real, each with its rows in another order
    dataset = MAKERS[name]()
    reference, window = drift_sides(dataset)
    reference = reference.with_rows(data.draw(st.permutations(range(len(reference.rows))), label="reference"))
    window = window.with_rows(data.draw(st.permutations(range(len(window.rows))), label="window"))
    # WHEN drift is computed (from the training rows, or from their stored profile)
    report = _drift(dataset, reference, window, profiled)
    # THEN every statistic, p-value, count, chart bin and verdict is the same (to rounding, for a profile)
    if profiled:
        assert views.same(views.drift(report), drift_of(name, profiled)) == []
        assert views.drift_statistics(report)["verdict"] == drift_of(name, profiled)["verdict"]
    else:
        assert views.drift(report) == drift_of(name, profiled)
