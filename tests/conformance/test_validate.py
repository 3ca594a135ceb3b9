"""``mlops validate`` and ``mlops drift`` (offline) on real datasets, as their packages ship them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.conftest import Mlops
from tests.conformance.datasets import ALL, BIKESHARE, CARAVAN, DEFAULT, PENGUINS, RealDataset


def shipped(dataset: RealDataset, tmp_path: Path) -> Path:
    path = tmp_path / f"{dataset.key}.csv"
    path.write_bytes(dataset.raw())
    return path


def report(mlops: Mlops, data: Path, spec: Path) -> tuple[int, dict[str, Any]]:
    result = mlops("validate", str(data), "--spec", str(spec))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def verdicts(document: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(c["check"], c["column"], c["status"], c["failing_count"]) for c in document["checks"]}


def columns_reversed(raw: bytes) -> bytes:
    """The same CSV with its columns in reverse order (field text unchanged)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(raw.decode())):
        writer.writerow(row[::-1])
    return out.getvalue().encode()


@pytest.mark.parametrize("dataset", ALL, ids=lambda d: d.key)
def test_the_shipped_file_is_valid_against_its_spec(mlops: Mlops, tmp_path: Path, dataset: RealDataset) -> None:
    # GIVEN the file exactly as its package ships it, and the spec written for it
    frame = dataset.frame()
    # WHEN `mlops validate` checks it
    code, document = report(mlops, shipped(dataset, tmp_path), dataset.spec_path)
    # THEN it is valid: every row read, the columns in the order the file has them
    failed = [c for c in document["checks"] if c["status"] == "failed"]
    assert code == 0 and document["valid"] is True, failed
    assert document["rows"] == len(frame)
    assert document["columns"] == list(frame.columns)


def test_target_as_the_first_column_is_read_by_name(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN ISLP Default: the target `default` is the file's first column, as shipped
    assert DEFAULT.frame().columns[0] == DEFAULT.target
    _, document = report(mlops, shipped(DEFAULT, tmp_path), DEFAULT.spec_path)
    # THEN each column's checks ran on that column: balance and income are read as numbers
    by_check = {(c["check"], c["column"]): c for c in document["checks"]}
    for feature in ("balance", "income"):
        assert by_check[("column.type", feature)]["status"] == "passed", by_check[("column.type", feature)]
        assert by_check[("column.min", feature)]["status"] == "passed"
    assert by_check[("column.allowed", "student")]["status"] == "passed"


def test_label_base_rates_are_reported_not_refused(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN ISLP Default, where students default more often than others in the data itself
    # (disparate impact of the labels 0.68, below the spec's 0.8)
    frame = DEFAULT.frame()
    rates = frame.assign(positive=frame["default"] == "Yes").groupby("student")["positive"].mean()
    assert rates.min() / rates.max() < 0.8
    # WHEN the data is validated
    code, document = report(mlops, shipped(DEFAULT, tmp_path), DEFAULT.spec_path)
    # THEN the fairness figures of the labels are in the report, and they fail nothing
    fairness = [c for c in document["checks"] if c["check"].startswith("fairness")]
    assert fairness, "the labels' disparate impact is reported"
    assert all(c["status"] != "failed" for c in fairness), fairness
    assert code == 0


def test_genuine_duplicate_rows_are_a_warning_when_the_spec_says_so(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN ISLP Caravan: 602 rows repeat an earlier row exactly; its spec says duplicates warn
    frame = CARAVAN.frame()
    duplicates = int(frame.duplicated().sum())
    assert duplicates == 602
    assert CARAVAN.spec.validation.duplicate_rows == "warning"
    # WHEN it is validated
    code, document = report(mlops, shipped(CARAVAN, tmp_path), CARAVAN.spec_path)
    # THEN the duplicates are counted exactly, as a warning, and the data is valid
    [check] = [c for c in document["checks"] if c["check"] == "dataset.duplicate_rows"]
    assert check["status"] == "warning" and check["failing_count"] == duplicates, check
    assert code == 0 and document["valid"] is True


def test_duplicate_rows_are_an_error_by_default(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN the same data with the spec's default duplicate policy
    document = yaml.safe_load(CARAVAN.spec_path.read_text())
    del document["validation"]
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(document))
    # WHEN validated THEN the same 602 rows fail the check
    code, result = report(mlops, shipped(CARAVAN, tmp_path), strict)
    [check] = [c for c in result["checks"] if c["check"] == "dataset.duplicate_rows"]
    assert code == 1 and check["status"] == "failed" and check["failing_count"] == 602


def test_na_is_a_missing_value_counted_per_column(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN palmerpenguins, whose file writes missing values as NA (2 birds unmeasured, 11 unsexed),
    # and a spec that makes every feature required
    frame = PENGUINS.frame()
    document = yaml.safe_load(PENGUINS.spec_path.read_text())
    for feature in document["features"]:
        feature["nullable"] = False
    required = tmp_path / "required.yaml"
    required.write_text(yaml.safe_dump(document))
    # WHEN validated
    code, result = report(mlops, shipped(PENGUINS, tmp_path), required)
    # THEN each column's missing values fail column.nulls, counted exactly as pandas counts NA
    nulls = {c["column"]: c["failing_count"] for c in result["checks"] if c["check"] == "column.nulls"}
    expected = {name: int(count) for name, count in frame.isna().sum().items() if name != PENGUINS.target}
    assert nulls == expected
    assert expected["sex"] == 11 and expected["body_mass_g"] == 2
    assert code == 1
    # AND with the spec as written (those columns nullable) the same file is valid
    assert report(mlops, shipped(PENGUINS, tmp_path), PENGUINS.spec_path)[0] == 0


@pytest.mark.parametrize("dataset", [DEFAULT, PENGUINS, BIKESHARE], ids=lambda d: d.key)
def test_column_order_changes_no_verdict(mlops: Mlops, tmp_path: Path, dataset: RealDataset) -> None:
    # GIVEN the shipped file and the same file with its columns reversed
    reversed_path = tmp_path / "reversed.csv"
    reversed_path.write_bytes(columns_reversed(dataset.raw()))
    # WHEN both are validated
    _, original = report(mlops, shipped(dataset, tmp_path), dataset.spec_path)
    _, reordered = report(mlops, reversed_path, dataset.spec_path)
    # THEN every check has the same status and count, and the verdict is the same
    assert verdicts(reordered) == verdicts(original)
    assert reordered["valid"] == original["valid"] and reordered["rows"] == original["rows"]


@pytest.mark.parametrize("dataset", [DEFAULT, PENGUINS, BIKESHARE], ids=lambda d: d.key)
def test_drift_of_a_file_against_itself_reordered_is_zero(mlops: Mlops, tmp_path: Path, dataset: RealDataset) -> None:
    # GIVEN the shipped file and the same rows with the columns in reverse order
    reversed_path = tmp_path / "reversed.csv"
    reversed_path.write_bytes(columns_reversed(dataset.raw()))
    # WHEN `mlops drift` compares them
    result = mlops("drift", str(shipped(dataset, tmp_path)), str(reversed_path), "--spec", str(dataset.spec_path))
    # THEN no feature drifted and every feature's statistic is exactly zero: the same column was compared
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "no_drift" and document["drifted_features"] == []
    compared = {f["name"]: f["statistic"] for f in document["features"]}
    assert set(compared) == set(dataset.spec.feature_names)
    assert all(statistic == 0 for statistic in compared.values()), compared


def test_drift_finds_a_real_shift_in_penguins(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN the penguins of Biscoe island (Adelie and Gentoo, heavier birds) against all the others
    header, rows = PENGUINS.lines()
    island = PENGUINS.frame()["island"].to_numpy()
    biscoe, others = tmp_path / "biscoe.csv", tmp_path / "others.csv"
    biscoe.write_bytes(header + b"".join(r for r, i in zip(rows, island, strict=True) if i == "Biscoe"))
    others.write_bytes(header + b"".join(r for r, i in zip(rows, island, strict=True) if i != "Biscoe"))
    # WHEN `mlops drift` compares them
    result = mlops("drift", str(others), str(biscoe), "--spec", str(PENGUINS.spec_path))
    # THEN the island and the body measurements that differ are reported as drifted
    document = json.loads(result.stdout)
    assert document["verdict"] == "drifted", document["drifted_features"]
    assert {"island", "body_mass_g", "flipper_length_mm"} <= set(document["drifted_features"])
