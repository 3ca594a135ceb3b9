"""`mlops validate`: exit codes 0/1/2, text and JSON output, never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops.data.profile import profile_file
from mlops.spec.model import load_spec
from mlops_cli.main import main

DATA = Path(__file__).resolve().parents[2] / "data"
SPEC = str(DATA / "validation_spec.yaml")


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mlops", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_valid_file_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a valid dataset
    # WHEN validated from the command line
    code, out, err = run(monkeypatch, capsys, "validate", str(DATA / "good.csv"), "--spec", SPEC)
    # THEN it exits 0 and says so
    assert code == 0
    assert out.startswith("VALID: ")
    assert err == ""


def test_failed_check_exits_1_with_examples(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a dataset with a value above its maximum
    # WHEN validated
    code, out, err = run(monkeypatch, capsys, "validate", str(DATA / "bad" / "above_max.csv"), "--spec", SPEC)
    # THEN it exits 1 and shows the check, the row and the value
    assert code == 1
    assert "FAIL column.max [age]: 1 value above the maximum 120" in out
    assert "row 11: value '130'" in out
    assert "1 check(s) failed" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["empty.csv", "binary.csv", "semicolon.csv", "utf16.csv", "gzip_truncated.csv.gz"])
def test_unreadable_input_exits_2(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN data that cannot be read at all
    # WHEN validated
    code, out, err = run(monkeypatch, capsys, "validate", str(DATA / "bad" / name), "--spec", SPEC)
    # THEN it exits 2 with the reason in the report
    assert code == 2
    assert out.startswith("UNREADABLE: ")
    assert "cannot be read" in err and "Traceback" not in err


def test_missing_data_file_and_bad_spec_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a missing data file, and a spec with an unknown field
    bad_spec = tmp_path / "spec.yaml"
    bad_spec.write_text(Path(SPEC).read_text() + "colour: red\n")
    # WHEN validated
    missing = run(monkeypatch, capsys, "validate", str(tmp_path / "nope.csv"), "--spec", SPEC)
    spec_error = run(monkeypatch, capsys, "validate", str(DATA / "good.csv"), "--spec", str(bad_spec))
    # THEN both exit 2 with a message naming the file or the field
    assert missing[0] == 2 and "no such file" in missing[1]
    assert spec_error[0] == 2 and "colour: unknown field" in spec_error[2]


def test_json_output_is_the_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a dataset with a bad value
    # WHEN validated with --json and one example per check
    code, out, _ = run(
        monkeypatch,
        capsys,
        "validate",
        str(DATA / "bad" / "below_min.csv"),
        "--spec",
        SPEC,
        "--json",
        "--max-examples",
        "1",
    )
    # THEN stdout is the JSON report
    document = json.loads(out)
    assert code == 1
    assert document["valid"] is False and document["rows"] == 20
    failed = [c for c in document["checks"] if c["status"] == "failed"]
    assert [(c["check"], c["column"], c["examples"][0]["row"]) for c in failed] == [("column.min", "age", 10)]


def test_reference_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a reference profile of the good data
    reference = tmp_path / "reference.json"
    profile_file(DATA / "good.csv", load_spec(SPEC)).save(reference)
    # WHEN the same data is validated against it, and a shifted dataset too
    same = run(monkeypatch, capsys, "validate", str(DATA / "good.csv"), "--spec", SPEC, "--reference", str(reference))
    shifted = tmp_path / "shifted.csv"
    data = pd.read_csv(DATA / "good.csv", dtype=str, keep_default_na=False)
    data["income"] = [f"{float(v) * 10:.2f}" if v else "" for v in data["income"]]
    data.to_csv(shifted, index=False)
    moved = run(monkeypatch, capsys, "validate", str(shifted), "--spec", SPEC, "--reference", str(reference))
    # THEN the first passes with the reference used and the second names the shifted column
    assert same[0] == 0 and "reference profile used" in same[1]
    assert moved[0] == 1
    assert "FAIL reference.mean_shift [income]" in moved[1]


def test_bad_reference_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a reference file that is not a profile
    reference = tmp_path / "reference.json"
    reference.write_text("[1, 2]")
    # WHEN used
    code, _, err = run(
        monkeypatch, capsys, "validate", str(DATA / "good.csv"), "--spec", SPEC, "--reference", str(reference)
    )
    # THEN exit 2 with the file named
    assert code == 2
    assert "reference.json" in err and "not a reference profile" in err
