"""The reported defect, as reported: churn data with its target moved to the first column.

``examples/generate.py churn --rows 500``, then the same file with ``churned`` first: ``mlops
validate`` reported 14 failed checks and ``mlops drift original.csv reordered.csv`` reported
7 of 7 features drifted, because columns were read by position. Both files hold the same data.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SPEC = str(EXAMPLES / "specs" / "churn.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("reorder")
    original, reordered = folder / "original.csv", folder / "reordered.csv"
    subprocess.run(
        [sys.executable, str(EXAMPLES / "generate.py"), "churn", "--rows", "500", "--out", str(original)],
        check=True,
        capture_output=True,
    )
    with original.open(newline="") as source, reordered.open("w", newline="") as target:
        records = list(csv.reader(source))
        at = records[0].index("churned")
        writer = csv.writer(target, lineterminator="\n")
        writer.writerows([record[at], *record[:at], *record[at + 1 :]] for record in records)
    return original, reordered


def test_the_reordered_file_has_the_target_first_and_the_same_rows(files: tuple[Path, Path]) -> None:
    # GIVEN the two files
    original, reordered = files
    head = reordered.read_text().splitlines()
    # THEN the target comes first and nothing else changed: the same records, 500 of them
    assert head[0].startswith("churned,customer_id,tenure_months,")
    assert len(head) == 501
    assert sorted(original.read_bytes()) == sorted(reordered.read_bytes())  # the same bytes, rearranged


def test_validate_passes_the_reordered_file_like_the_original(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the original and the reordered file
    original, reordered = files
    # WHEN each is validated from the command line
    code, out, err = run(capsys, "validate", str(reordered), "--spec", SPEC)
    code_original, out_original, _ = run(capsys, "validate", str(original), "--spec", SPEC)
    # THEN both are valid, with the same checks (the report was 14 failed checks)
    assert (code, code_original) == (0, 0), out + err
    assert out.startswith("VALID: ") and "0 failed" in out
    assert out.splitlines()[2:] == out_original.splitlines()[2:]  # after the name and the timing line
    _, document, _ = run(capsys, "validate", str(reordered), "--spec", SPEC, "--json")
    _, document_original, _ = run(capsys, "validate", str(original), "--spec", SPEC, "--json")
    report, report_original = json.loads(document), json.loads(document_original)
    assert report["checks"] == report_original["checks"]
    assert report["schema_fingerprint"] == report_original["schema_fingerprint"]


def test_drift_finds_no_drift_between_the_original_and_the_reordered_file(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the original and the reordered file (the same data)
    original, reordered = files
    # WHEN they are compared from the command line, failing on drift
    code, out, err = run(capsys, "drift", str(original), str(reordered), "--spec", SPEC, "--fail-on-drift")
    # THEN there is no drift (the report was 7 of 7 features drifted)
    assert code == 0, out + err
    assert out.startswith("NO DRIFT: 10 feature(s) compared")
    _, document, _ = run(capsys, "drift", str(reordered), str(original), "--spec", SPEC, "--json")
    report = json.loads(document)
    assert report["verdict"] == "no_drift" and report["drifted_features"] == []
    # AND every compared feature is identical on both sides: distance 0, p-value 1
    compared = [f for f in report["features"] if f["status"] == "ok"]
    assert len(compared) == 10
    for feature in compared:
        assert feature["statistic"] == 0 and feature["p_value"] in (None, 1.0), feature["name"]
        assert feature["reference_count"] == feature["current_count"], feature["name"]
