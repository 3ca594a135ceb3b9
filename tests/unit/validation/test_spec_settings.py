"""Per-model validation settings from the spec, on real public data no one here generated.

ISLP's Caravan (5,822 customers, 602 rows that repeat an earlier row exactly), Default (students
default more often than others: the labels' disparate impact is 0.68) and Wage, read from the CSV
files the ISLP package ships, as shipped.
"""

from __future__ import annotations

import io
from importlib import resources
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.data.validation import Status, ValidationReport, validate_frame, validate_stream
from mlops.spec.model import ModelSpec, parse_spec


def shipped(name: str) -> bytes:
    return resources.files("ISLP").joinpath("data", name).read_bytes()


def caravan_spec(**sections: Any) -> ModelSpec:
    """Caravan's 85 coded columns as int features; ``Purchase`` ("No"/"Yes") is the last column."""
    header = shipped("Caravan.csv").split(b"\n", 1)[0].decode().strip().split(",")
    assert header[-1] == "Purchase" and len(header) == 86
    return parse_spec(
        {
            "name": "caravan",
            "task": "classification",
            "target": {"name": "Purchase", "classes": ["No", "Yes"], "positive_class": "Yes"},
            "features": [{"name": name, "type": "int", "min": 0} for name in header[:-1]],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
            **sections,
        }
    )


def validate(data: bytes, spec: ModelSpec, name: str) -> ValidationReport:
    return validate_stream(io.BytesIO(data), spec, name)


def label_rates(frame: pd.DataFrame, target: str, positive: str, by: str) -> pd.DataFrame:
    """Rows and positive-label rate per group, computed with pandas alone (the oracle)."""
    return frame.assign(positive=frame[target] == positive).groupby(by)["positive"].agg(rows="size", rate="mean")


@pytest.mark.parametrize(
    ("setting", "status", "valid"),
    [("error", Status.FAILED, False), ("warning", Status.WARNING, True), (None, Status.FAILED, False)],
)
def test_caravan_duplicates_follow_the_spec(setting: str | None, status: Status, valid: bool) -> None:
    # GIVEN Caravan as shipped, whose 602 duplicate rows pandas counts independently
    data = shipped("Caravan.csv")
    assert int(pd.read_csv(io.BytesIO(data)).duplicated().sum()) == 602
    spec = caravan_spec(**({"validation": {"duplicate_rows": setting}} if setting else {}))
    # WHEN validated under validation.duplicate_rows (error is the default when the spec is silent)
    report = validate(data, spec, "Caravan.csv")
    # THEN the 602 rows are the check's count, failing or warning as the spec says
    [check] = report.find("dataset.duplicate_rows")
    assert check.status is status and check.failing_count == 602
    assert report.valid is valid, report.render_text()
    # AND every example names the earlier row it repeats
    assert check.examples and all(e.note and e.note.startswith("same as row ") for e in check.examples)
    # AND the report says which setting was in force, in JSON and in text
    expected = setting or "error"
    assert report.settings is not None and report.settings["duplicate_rows"] == expected
    assert ValidationReport.from_json(report.to_json()).settings == report.settings
    assert f"settings: duplicate rows {expected}" in report.render_text()


def test_caravan_duplicates_off_runs_no_check() -> None:
    # GIVEN Caravan and a spec that turns the duplicate check off
    report = validate(shipped("Caravan.csv"), caravan_spec(validation={"duplicate_rows": "off"}), "Caravan.csv")
    # WHEN / THEN there is no duplicate check at all, the data is valid, and the report says why
    assert not report.find("dataset.duplicate_rows")
    assert report.valid and report.summary["warning"] == 0
    assert report.settings is not None and report.settings["duplicate_rows"] == "off"
    assert "settings: duplicate rows off" in report.render_text()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_duplicate_count_does_not_depend_on_row_order(seed: int) -> None:
    # GIVEN Caravan's rows in another order (metamorphic: which row comes first moves, not how many repeat)
    frame = pd.read_csv(io.BytesIO(shipped("Caravan.csv")))
    shuffled = frame.sample(frac=1.0, random_state=seed % 2**32).reset_index(drop=True)
    spec = caravan_spec(validation={"duplicate_rows": "warning"})
    # WHEN validated
    report = validate_frame(shuffled, spec)
    # THEN the count of rows repeating an earlier one is still 602
    assert report.find("dataset.duplicate_rows")[0].failing_count == 602


DEFAULT_SPEC = {
    "name": "default",
    "task": "classification",
    "target": {"name": "default", "classes": ["No", "Yes"], "positive_class": "Yes"},
    "features": [
        {"name": "student", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "balance", "type": "float", "min": 0},
        {"name": "income", "type": "float", "min": 0},
    ],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}},
}


@pytest.mark.parametrize("mode", ["gate", "report"])
def test_label_disparate_impact_is_reported_never_failed(mode: str) -> None:
    # GIVEN ISLP Default (target first, as shipped): students default more often in the data itself
    data = shipped("Default.csv")
    rates = label_rates(pd.read_csv(io.BytesIO(data)), "default", "Yes", "student")
    oracle = rates["rate"].min() / rates["rate"].max()
    assert oracle == pytest.approx(0.6768, abs=1e-4)
    spec = parse_spec({**DEFAULT_SPEC, "fairness": {"protected_attributes": ["student"], "mode": mode}})
    # WHEN validated, whatever the fairness mode
    report = validate(data, spec, "Default.csv")
    # THEN the labels' disparate impact is the pandas figure, as a warning that fails nothing
    [check] = report.find("fairness.disparate_impact", "student")
    assert check.status is Status.WARNING and report.valid, report.render_text()
    assert check.details["disparate_impact"] == pytest.approx(oracle)
    assert check.details["of"] == "labels"
    assert {g: v["rows"] for g, v in check.details["groups"].items()} == rates["rows"].to_dict()
    assert "label disparate impact 0.68 below 0.80" in check.message and "not refused" in check.message
    # AND the settings in force are in the report and its text
    assert report.settings is not None
    assert report.settings["fairness"] == {
        "mode": mode,
        "min_group_size": 30,
        "min_disparate_impact": 0.8,
        "protected_attributes": ["student"],
    }
    assert f"fairness mode {mode} for student (groups of at least 30 rows" in report.render_text()


@pytest.mark.parametrize("min_group_size", [1, 30, 100])
def test_small_groups_are_listed_but_not_compared(min_group_size: int) -> None:
    # GIVEN Caravan by average age band (MGEMLEEF): bands 1 and 6 hold 74 and 30 customers with one
    # buyer each, the other bands hundreds to thousands
    data = shipped("Caravan.csv")
    rates = label_rates(pd.read_csv(io.BytesIO(data)), "Purchase", "Yes", "MGEMLEEF")
    rates.index = rates.index.astype(str)
    spec = caravan_spec(
        validation={"duplicate_rows": "off"},
        fairness={"protected_attributes": ["MGEMLEEF"], "min_group_size": min_group_size},
    )
    # WHEN validated with fairness.min_group_size
    [check] = validate(data, spec, "Caravan.csv").find("fairness.disparate_impact", "MGEMLEEF")
    # THEN groups below the minimum are listed with their figures but left out of the ratio
    compared = rates[rates["rows"] >= min_group_size]
    small = sorted(rates.index[rates["rows"] < min_group_size])
    assert sorted(check.details["excluded_groups"]) == small
    assert set(check.details["groups"]) == set(rates.index)
    assert all(g["compared"] is (g["rows"] >= min_group_size) for g in check.details["groups"].values())
    assert check.details["disparate_impact"] == pytest.approx(compared["rate"].min() / compared["rate"].max())
    # AND one buyer among 74 customers decides the ratio only when groups that small count
    if min_group_size <= 74:
        assert check.status is Status.WARNING and check.details["disparate_impact"] < 0.25
    else:
        assert check.status is Status.PASSED and check.details["disparate_impact"] > 0.9
        assert "not compared" in check.message


def test_the_default_minimum_leaves_out_a_group_of_19() -> None:
    # GIVEN ISLP Wage: health insurance by marital status, where 19 people are widowed
    data = shipped("Wage.csv")
    frame = pd.read_csv(io.BytesIO(data))
    assert int((frame["maritl"] == "3. Widowed").sum()) == 19
    spec = parse_spec(
        {
            "name": "wage",
            "task": "classification",
            "target": {"name": "health_ins", "classes": ["1. Yes", "2. No"], "positive_class": "1. Yes"},
            "features": [
                {"name": "year", "type": "int"},
                {"name": "age", "type": "int", "min": 18},
                *({"name": name, "type": "category"} for name in ("maritl", "race", "education", "region")),
                *({"name": name, "type": "category"} for name in ("jobclass", "health")),
                {"name": "logwage", "type": "float"},
                {"name": "wage", "type": "float", "min": 0},
            ],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
            "fairness": {"protected_attributes": ["maritl"]},
            # Wage has 3 rows that repeat an earlier one exactly: shown, not refused.
            "validation": {"duplicate_rows": "warning"},
        }
    )
    # WHEN validated with the spec's default minimum group size (30)
    report = validate(data, spec, "Wage.csv")
    # THEN the widowed group is listed with its 19 rows, not compared, and the data is valid
    [check] = report.find("fairness.disparate_impact", "maritl")
    assert check.details["min_group_size"] == 30
    assert check.details["excluded_groups"] == ["3. Widowed"]
    assert check.details["groups"]["3. Widowed"] == {
        "rows": 19,
        "positives": 14,
        "positive_rate": pytest.approx(14 / 19),
        "compared": False,
    }
    assert report.valid, report.render_text()
    assert report.find("dataset.duplicate_rows")[0].failing_count == int(frame.duplicated().sum()) == 3
