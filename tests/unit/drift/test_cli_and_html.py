"""`mlops drift`: exit codes 0/1/2, JSON and HTML output, never a traceback."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mlops.data.profile import profile_frame
from mlops.drift import drift_report, render_html
from mlops.spec.model import ModelSpec
from mlops_cli.main import main

from .conftest import DRIFTED, make_frame


@pytest.fixture
def files(tmp_path: Path, spec: ModelSpec) -> dict[str, Path]:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.canonical_json())
    reference = tmp_path / "reference.csv"
    make_frame(4_000, seed=1).to_csv(reference, index=False)
    clean, drifted = tmp_path / "clean.csv", tmp_path / "drifted.csv"
    make_frame(1_500, seed=2).to_csv(clean, index=False)
    make_frame(1_500, seed=3, drift=True).to_csv(drifted, index=False)
    profile = tmp_path / "profile.json"
    profile_frame(make_frame(4_000, seed=1), spec).save(profile)
    return {"spec": spec_path, "reference": reference, "clean": clean, "drifted": drifted, "profile": profile}


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mlops", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_clean_window_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    # GIVEN a clean window, WHEN checked with --fail-on-drift
    code, out, err = run(
        monkeypatch,
        capsys,
        "drift",
        str(files["reference"]),
        str(files["clean"]),
        "--spec",
        str(files["spec"]),
        "--fail-on-drift",
    )
    # THEN it exits 0 and says no drift
    assert code == 0, err
    assert out.startswith("NO DRIFT: 9 feature(s) compared")


def test_drift_exits_1_only_with_fail_on_drift(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    args = ["drift", str(files["profile"]), str(files["drifted"]), "--spec", str(files["spec"])]
    # GIVEN a drifted window against the saved profile: without the flag it exits 0
    code, out, _ = run(monkeypatch, capsys, *args)
    assert code == 0 and out.startswith("DRIFT: 5 of 9")
    # WHEN --fail-on-drift, --json and --html are given
    page = tmp_path / "report.html"
    code, out, err = run(monkeypatch, capsys, *args, "--fail-on-drift", "--json", "--html", str(page))
    # THEN it exits 1, prints the JSON document, names the features, and writes the page
    assert code == 1
    document = json.loads(out)
    assert document["verdict"] == "drifted" and set(document["drifted_features"]) == DRIFTED
    assert "Traceback" not in err and "drift in" in err
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("which", ["reference", "current", "spec", "profile"])
def test_unreadable_input_exits_2(
    which: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    # GIVEN one input missing or broken
    reference, current, spec = str(files["reference"]), str(files["clean"]), str(files["spec"])
    if which == "reference":
        reference = str(tmp_path / "missing.csv")
    elif which == "current":
        (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02" * 100)
        current = str(tmp_path / "binary.csv")
    elif which == "spec":
        (tmp_path / "bad.yaml").write_text("name: [")
        spec = str(tmp_path / "bad.yaml")
    else:
        (tmp_path / "broken.json").write_text('{"model": 3}')
        reference = str(tmp_path / "broken.json")
    # WHEN checked
    code, _, err = run(monkeypatch, capsys, "drift", reference, current, "--spec", spec)
    # THEN it exits 2 with one message, no traceback
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err


def test_window_without_any_feature_is_unreadable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run(monkeypatch, capsys, "drift", str(files["reference"]), str(other), "--spec", str(files["spec"]))
    assert code == 2 and "none of the spec's features" in err


def test_html_is_self_contained_and_sorted_by_severity(spec: ModelSpec, reference_frame: object) -> None:
    # GIVEN a report with drifted and clean features
    report = drift_report(make_frame(4_000, seed=1), make_frame(2_000, seed=2, drift=True), spec)
    # WHEN rendered (plain SVG charts, the path used where matplotlib is not installed)
    page = render_html(report, charts="svg")
    # THEN every feature has a section with an inline chart, drifted features come first,
    # and nothing is loaded from elsewhere
    sections = re.findall(r"<section id='f-([^']+)'>", page)
    assert set(sections) == {f.name for f in report.features}
    assert set(sections[: len(DRIFTED)]) == DRIFTED
    assert page.count("<svg") == len(report.features)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert "<script" not in page


def test_report_json_round_trips(spec: ModelSpec) -> None:
    from mlops.drift import DriftReport

    report = drift_report(make_frame(3_000, seed=1), make_frame(200, seed=2, drift=True), spec)
    assert DriftReport.model_validate_json(report.to_json()) == report
