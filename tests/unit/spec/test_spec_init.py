"""``mlops spec init``: what is inferred from a column, ranges with a margin, and bad input (exit 2).

The real datasets (and the spec validating its own file) are in tests/conformance/test_spec_init.py;
these are the rules, each on a file small enough to read in the test.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlops.data.spec_init import RANGE_MARGIN, infer_spec, model_name, widened_range
from mlops.errors import InputError
from mlops_cli.main import main


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def features(tmp_path: Path, text: str, target: str = "y") -> dict[str, dict[str, Any]]:
    draft = infer_spec(write(tmp_path, text), target)
    return {f["name"]: f for f in yaml.safe_load(draft.text)["features"]}


# ------------------------------------------------------------------------------------------ types
def test_types_nullable_and_allowed(tmp_path: Path) -> None:
    rows = [
        "id,flag,when,colour,count,share,note,empty,y",
        *[
            f"C{i:03d},{'true' if i % 2 else 'False'},2024-01-{1 + i % 28:02d},{'red' if i % 3 else 'blue'},"
            f"{i % 4},{i / 7:.3f},{'' if i % 5 == 0 else f'n{i % 30}'},,{i % 2}"
            for i in range(60)
        ],
    ]
    found = features(tmp_path, "\n".join(rows) + "\n")
    assert found["id"] == {"name": "id", "type": "string"}  # every value differs: an identifier
    assert found["flag"] == {"name": "flag", "type": "bool"}
    assert found["when"] == {"name": "when", "type": "datetime"}
    assert found["colour"] == {"name": "colour", "type": "category", "allowed": ["blue", "red"]}
    assert found["count"] == {"name": "count", "type": "int", "allowed": [0, 1, 2, 3]}
    assert found["share"]["type"] == "float" and found["share"]["min"] == 0
    # 30 distinct notes (more than 20): a category without a list; missing in 12 rows
    assert found["note"] == {"name": "note", "type": "category", "nullable": True}
    assert found["empty"] == {"name": "empty", "type": "string", "nullable": True}


def test_yes_no_is_a_category_and_integers_stay_numbers(tmp_path: Path) -> None:
    text = "student,band,y\n" + "".join(f"{'Yes' if i % 3 else 'No'},{i % 10},{i % 2}\n" for i in range(40))
    found = features(tmp_path, text)
    # Yes/No stays text: requests send "Yes", not true (bool is for true/false columns only)
    assert found["student"] == {"name": "student", "type": "category", "allowed": ["No", "Yes"]}
    assert found["band"] == {"name": "band", "type": "int", "allowed": list(range(10))}


def test_a_mostly_numeric_column_with_text_is_text_and_says_so(tmp_path: Path) -> None:
    text = "x,y\n" + "".join(f"{i % 25},{i % 2}\n" for i in range(30)) + "?,0\n"
    draft = infer_spec(write(tmp_path, text), "y")
    assert draft.features[0].type == "category"
    assert "30 values are numbers but 1 are not (e.g. '?'), so it is read as text" in draft.features[0].comment


def test_comments_say_what_was_seen(tmp_path: Path) -> None:
    text = "colour,y\n" + "".join(f"{['red', 'blue', 'green', ''][i % 4]},{i % 2}\n" for i in range(48))
    draft = infer_spec(write(tmp_path, text), "y")
    assert "  # category, 3 values seen; 12 missing\n  - {name: colour, type: category, nullable: true" in draft.text


# ------------------------------------------------------------------------------------------ task
@pytest.mark.parametrize(
    ("values", "task", "why"),
    [
        (["a", "b"], "classification", "holds text"),
        ([0, 1, 2], "classification", "3 distinct integers (at most 20: classes)"),
        (list(range(25)), "regression", "25 distinct integers"),
        ([0.5, 1.5], "regression", "2 distinct numbers"),
    ],
)
def test_the_task_is_inferred_from_the_target(tmp_path: Path, values: list[Any], task: str, why: str) -> None:
    text = "x,y\n" + "".join(f"{i},{values[i % len(values)]}\n" for i in range(50))
    draft = infer_spec(write(tmp_path, text), "y")
    assert draft.task == task and why in draft.task_reason


def test_positive_class_is_the_usual_event_or_the_rarer_class(tmp_path: Path) -> None:
    text = "x,y\n" + "".join(f"{i},{'churn' if i % 5 == 0 else 'stay'}\n" for i in range(50))
    assert infer_spec(write(tmp_path, text), "y").spec.target.positive_class == "churn"
    text = "x,y\n" + "".join(f"{i},{1 if i % 5 else 0}\n" for i in range(50))
    assert infer_spec(write(tmp_path, text, "b.csv"), "y").spec.target.positive_class == 1


def test_missing_labels_are_a_warning_in_the_spec_and_a_problem(tmp_path: Path) -> None:
    text = "x,y\n" + "".join(f"{i},{'' if i == 3 else i % 2}\n" for i in range(30))
    draft = infer_spec(write(tmp_path, text), "y")
    assert "WARNING: 1 rows have no y" in draft.text
    assert [p.split(":")[0] for p in draft.problems] == ["target.nulls [y]"]


# ------------------------------------------------------------------------------------------ ranges
@given(
    low=st.floats(-1e9, 1e9, allow_nan=False),
    span=st.floats(0, 1e9, allow_nan=False),
    integer=st.booleans(),
)
def test_a_range_holds_the_data_with_a_margin_and_keeps_its_sign(low: float, span: float, integer: bool) -> None:
    high = low + span
    if integer:
        low, high = math.floor(low), math.floor(high)
    lo, hi = widened_range(low, high, integer)
    assert lo <= low and hi >= high
    if low >= 0:
        assert lo >= 0
    if high <= 0:
        assert hi <= 0
    if span > 0 and low - RANGE_MARGIN * span > 0:  # the margin is there unless 0 stops it
        assert lo <= low - RANGE_MARGIN * (high - low) + 1e-6 * max(1.0, abs(low))


def test_ranges_examples() -> None:
    assert widened_range(0.0, 2654.3, integer=False) == (0, 2920)
    assert widened_range(32.1, 59.6, integer=False) == (29.3, 62.4)
    assert widened_range(-3.0, -1.0, integer=False) == (-3.2, -0.8)
    assert widened_range(5.0, 5.0, integer=True) == (4, 6)


def test_model_names_from_files() -> None:
    assert model_name(Path("Bike Share 2024.csv.gz")) == "bike-share-2024"
    assert model_name(Path("2024_sales.csv")) == "model-2024-sales"


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, ("--target", "y"), "missing.csv: no such file"),
        ("", ("--target", "y"), "data.csv: the file is empty (0 bytes)"),
        ("x,y\n", ("--target", "y"), "data.csv: the file has a header but no data rows"),
        ("x,y\n1,a\n2,a\n", ("--target", "y"), "data.csv: target 'y' has one value ('a' in 2 rows)"),
        ("x,y\n1,a\n2,b\n", ("--target", "z"), "data.csv: no column 'z' (columns: 'x', 'y')"),
        ("x,yy\n1,a\n2,b\n", ("--target", "y"), "did you mean 'yy'?"),
        ("x,y\n1,a\n2,b\n", ("--target", "y", "--task", "regression"), "a regression target must be numbers"),
        ("x,y\n1,a\n2,b\n", ("--target", "y", "--model", "Bad_Name"), "--model 'Bad_Name': a model name"),
        ("x,y\n1,2\n3\n", ("--target", "y"), "data.csv: 1 row with a number of fields other than the header's 2"),
        ("y\n1\n2\n", ("--target", "y"), "the only column is the target 'y'"),
    ],
)
def test_bad_input_exits_2_naming_the_file_or_column(
    tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "missing.csv" if content is None else write(tmp_path, content)
    code, out, err = run("spec", "init", str(path), *args)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err


def test_too_many_classes(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y\n" + "".join(f"{i},c{i}\n" for i in range(150)))
    with pytest.raises(InputError, match="'y' has 150 distinct values: classification takes at most 100"):
        infer_spec(path, "y")


def test_out_is_not_overwritten_without_force(tmp_path: Path) -> None:
    data = write(tmp_path, "x,y\n1,a\n2,b\n3,a\n")
    out = write(tmp_path, "hand-written\n", "spec.yaml")
    code, _, err = run("spec", "init", str(data), "--target", "y", "--out", str(out))
    assert code == 2 and "spec.yaml: already exists (pass --force to overwrite it)" in err
    assert out.read_text() == "hand-written\n"
    code, out_text, err = run("spec", "init", str(data), "--target", "y", "--out", str(out), "--force")
    assert code == 0, err
    assert out_text.startswith(f"wrote {out}: model data, task classification")
    assert yaml.safe_load(out.read_text())["target"]["classes"] == ["a", "b"]
