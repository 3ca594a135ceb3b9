"""``mlops spec init`` on real data: the spec it writes validates the file it came from.

Every conformance dataset as its package ships it (ISLP Default, Caravan's 85 features, Bikeshare,
palmerpenguins), scikit-learn's bundled data (its shipped CSV files, and the same data as its
loaders name the columns), each through the real ``mlops`` entry point: ``spec init``, then
``validate`` on the same file. The metamorphic half: permuting the rows, or the columns, of a
real file infers the same spec.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conformance.conftest import Mlops
from tests.conformance.datasets import ALL, BIKESHARE, CARAVAN, DEFAULT, PENGUINS, RealDataset


def init_and_validate(mlops: Mlops, data: Path, target: str, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``spec init`` DATA into a file, then ``validate`` DATA against it; both answers (JSON)."""
    out = data.with_suffix(".spec.yaml")
    made = mlops("spec", "init", str(data), "--target", target, "--out", str(out), *extra)
    assert made.returncode == 0, made.stderr
    assert "Traceback" not in made.stderr
    checked = mlops("validate", str(data), "--spec", str(out))
    report = json.loads(checked.stdout)
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    assert checked.returncode == 0 and report["valid"], failed
    return json.loads(made.stdout), yaml.safe_load(out.read_text())


@pytest.mark.parametrize("dataset", ALL, ids=lambda d: d.key)
def test_the_inferred_spec_validates_the_shipped_file(mlops: Mlops, tmp_path: Path, dataset: RealDataset) -> None:
    # GIVEN the file exactly as its package ships it
    data = tmp_path / f"{dataset.key}.csv"
    data.write_bytes(dataset.raw())
    frame = dataset.frame()
    # WHEN a spec is inferred for the hand-written spec's target, and the file validated against it
    summary, spec = init_and_validate(mlops, data, dataset.target)
    # THEN it validates, with every other column a feature in file order, and the hand-written task
    assert [f["name"] for f in spec["features"]] == [c for c in frame.columns if c != dataset.target]
    assert spec["task"] == dataset.spec.task
    assert summary["problems"] == []
    # nullable exactly where the file has a missing value
    nullable = {f["name"] for f in spec["features"] if f.get("nullable")}
    assert nullable == {c for c in frame.columns if c != dataset.target and frame[c].isna().any()}


def test_caravan_85_features_and_its_repeated_rows(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN Caravan: 85 features of small codes, and 602 rows that repeat an earlier row
    data = tmp_path / "caravan.csv"
    data.write_bytes(CARAVAN.raw())
    summary, spec = init_and_validate(mlops, data, "Purchase")
    # THEN 85 features; the repeats are counted and made a warning (not a refusal), with the count
    assert len(spec["features"]) == 85
    assert summary["duplicate_rows"] == 602 and spec["validation"] == {"duplicate_rows": "warning"}
    assert "602 rows of caravan.csv repeat an earlier row" in data.with_suffix(".spec.yaml").read_text()
    # codes 0-9 are ints that list their values; the 40-code customer subtype gets a range
    by_name = {f["name"]: f for f in spec["features"]}
    assert by_name["MGODRK"] == {"name": "MGODRK", "type": "int", "allowed": list(range(10))}
    assert by_name["MOSTYPE"]["type"] == "int" and "allowed" not in by_name["MOSTYPE"]
    # the No/Yes target: classification, "Yes" positive (quoted in YAML, so not a boolean)
    assert spec["target"] == {"name": "Purchase", "classes": ["No", "Yes"], "positive_class": "Yes"}


def test_what_was_inferred_is_said_in_comments(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN penguins (sex missing for 11 birds, the measurements for 2)
    data = tmp_path / "penguins.csv"
    data.write_bytes(PENGUINS.raw())
    made = mlops("spec", "init", str(data), "--target", "species", json_output=False)
    assert made.returncode == 0, made.stderr
    text = made.stdout
    # THEN the YAML on stdout says what each column held
    assert "# category, 2 values seen; 11 missing\n  - {name: sex, type: category, nullable: true" in text
    assert "# inferred: 'species' holds text (3 values); --task sets it\ntask: classification" in text
    assert "# float, 164 values seen, 32.1 to 59.6; 2 missing" in text
    assert yaml.safe_load(text)["name"] == "penguins"


def test_regression_target_range_and_task(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN Bikeshare, whose target `bikers` counts 1 to 651 riders (585 distinct integers)
    data = tmp_path / "bikeshare.csv"
    data.write_bytes(BIKESHARE.raw())
    summary, spec = init_and_validate(mlops, data, "bikers")
    # THEN regression, said why, with the target's range widened by 10% of the span and not below 0
    assert summary["task"] == "regression" and "585 distinct integers" in summary["task_reason"]
    assert spec["target"] == {"name": "bikers", "min": 0, "max": 716}
    assert spec["training"]["estimator"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert spec["gates"]["metrics"] == {"r2": {"min": 0.5}}


def test_task_given_overrides_the_inference(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN Bikeshare's `season` (4 integers): a classification target by default...
    data = tmp_path / "bikeshare.csv"
    data.write_bytes(BIKESHARE.raw())
    summary, spec = init_and_validate(mlops, data, "season")
    assert spec["task"] == "classification" and spec["target"]["classes"] == [1, 2, 3, 4]
    # ...and a regression target when --task says so
    summary, spec = init_and_validate(mlops, data, "season", "--task", "regression", "--force", "--model", "seasons")
    assert spec["task"] == "regression" and summary["task_reason"] == "given by --task"
    assert spec["name"] == "seasons"


# ------------------------------------------------------------------------------------ scikit-learn
def _sklearn_file(name: str) -> bytes:
    return resources.files("sklearn.datasets").joinpath("data", name).read_bytes()


def test_sklearn_iris_csv_as_shipped(mlops: Mlops, tmp_path: Path) -> None:
    # GIVEN iris.csv as scikit-learn ships it: its header is "150,4,setosa,versicolor,virginica"
    # (counts and class names, not column names), so the label column is called "virginica"
    data = tmp_path / "iris.csv"
    data.write_bytes(_sklearn_file("iris.csv"))
    _, spec = init_and_validate(mlops, data, "virginica")
    # THEN it is read as the CSV it is: four float features named "150", "4", ... and three classes
    assert [f["name"] for f in spec["features"]] == ["150", "4", "setosa", "versicolor"]
    assert spec["target"]["classes"] == [0, 1, 2]


@pytest.mark.parametrize("name", ["breast_cancer.csv", "wine_data.csv"])
def test_sklearn_csv_with_a_short_header_is_refused_naming_the_file(mlops: Mlops, tmp_path: Path, name: str) -> None:
    # GIVEN a shipped file whose first line is "569,30,malignant,benign" (4 fields) over rows of 31
    data = tmp_path / name
    data.write_bytes(_sklearn_file(name))
    # WHEN a spec is inferred from it
    result = mlops("spec", "init", str(data), "--target", "benign")
    # THEN exit 2 naming the file, the problem and the first row
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{data}: " in result.stderr and "with a number of fields other than the header's" in result.stderr
    assert "(first at row 1" in result.stderr


def test_sklearn_space_separated_csv_is_named_as_such(mlops: Mlops, tmp_path: Path) -> None:
    data = tmp_path / "linnerud_exercise.csv"
    data.write_bytes(_sklearn_file("linnerud_exercise.csv"))
    result = mlops("spec", "init", str(data), "--target", "Jumps")
    assert result.returncode == 2
    assert f"{data}: no column 'Jumps' (columns: 'Chins Situps Jumps')" in result.stderr
    assert "looks space-separated" in result.stderr


@pytest.mark.parametrize(
    ("loader", "target", "task"),
    [
        ("load_iris", "target", "classification"),
        ("load_wine", "target", "classification"),
        ("load_breast_cancer", "target", "classification"),
        ("load_diabetes", "target", "regression"),
        ("load_digits", "target", "classification"),
        ("load_linnerud", "Pulse", "regression"),
    ],
)
def test_sklearn_bundled_data_with_its_column_names(
    mlops: Mlops, tmp_path: Path, loader: str, target: str, task: str
) -> None:
    # GIVEN scikit-learn's bundled data with the columns its loader names ("mean radius", "pixel_0_0", ...)
    import sklearn.datasets

    kwargs: dict[str, Any] = {"as_frame": True}
    if loader == "load_diabetes":
        kwargs["scaled"] = False  # the raw values of diabetes_data_raw.csv.gz
    frame = getattr(sklearn.datasets, loader)(**kwargs).frame
    data = tmp_path / f"{loader}.csv"
    frame.to_csv(data, index=False)
    # WHEN a spec is inferred and the file validated against it
    summary, spec = init_and_validate(mlops, data, target)
    # THEN it validates, with the task a person would pick
    assert spec["task"] == task, summary["task_reason"]
    assert len(spec["features"]) == frame.shape[1] - 1


# ------------------------------------------------------------------------------------ metamorphic
def _rewritten(raw: bytes, rows: list[int], columns: list[int]) -> bytes:
    header, *records = list(csv.reader(io.StringIO(raw.decode())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header[c] for c in columns])
    for r in rows:
        writer.writerow([records[r][c] for c in columns])
    return out.getvalue().encode()


def _infer(mlops: Mlops, path: Path, target: str) -> tuple[str, dict[str, Any]]:
    result = mlops("spec", "init", str(path), "--target", target, "--model", "m", json_output=False)
    assert result.returncode == 0, result.stderr
    return result.stdout, yaml.safe_load(result.stdout)


@pytest.mark.parametrize("dataset", [PENGUINS, DEFAULT], ids=lambda d: d.key)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_row_and_column_order_do_not_change_the_spec(
    mlops: Mlops, tmp_path: Path, dataset: RealDataset, seed: int
) -> None:
    # GIVEN the shipped file, and the same rows and columns in another order (a permutation drawn
    # from the seed: hypothesis shrinks a seed, where a 10,000-element permutation is too large)
    raw = dataset.raw()
    header, *records = list(csv.reader(io.StringIO(raw.decode())))
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(records)).tolist()
    columns = rng.permutation(len(header)).tolist()
    original, shuffled_rows, shuffled_both = (tmp_path / f"{n}.csv" for n in ("a", "b", "c"))
    original.write_bytes(_rewritten(raw, list(range(len(records))), list(range(len(header)))))
    shuffled_rows.write_bytes(_rewritten(raw, rows, list(range(len(header)))))
    shuffled_both.write_bytes(_rewritten(raw, rows, columns))
    text, spec = _infer(mlops, original, dataset.target)
    # WHEN a spec is inferred from each
    rows_text, _ = _infer(mlops, shuffled_rows, dataset.target)
    _, both = _infer(mlops, shuffled_both, dataset.target)
    # THEN another row order gives the same text (up to the file's name), and another column order
    # the same spec with the features in the file's own column order
    assert rows_text.replace("b.csv", "a.csv") == text
    by_name = {f["name"]: f for f in spec["features"]}
    assert [f["name"] for f in both["features"]] == [header[c] for c in columns if header[c] != dataset.target]
    assert {f["name"]: f for f in both["features"]} == by_name
    assert {k: v for k, v in both.items() if k not in ("features", "description")} == {
        k: v for k, v in spec.items() if k not in ("features", "description")
    }
