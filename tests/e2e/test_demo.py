"""`mlops local demo` (what `make demo` runs): the scenario ends with exit 0 and says what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops.local.testing import synthesize_once

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.xdist_group("local-cloud")
def test_demo_runs_the_lifecycle_and_exits_zero() -> None:
    assembly = synthesize_once("dev", ROOT)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlops"), "local", "demo", "--assembly", str(assembly)],
        capture_output=True,
        text=True,
        check=False,
        # A guard against a hang, not a speed target: on a 2-core machine at load ~19 one demo took 825 s.
        timeout=1800,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("demo finished") :]
    assert "outcome registered: version 1 PENDING_APPROVAL" in summary
    assert "run FAILED (DatasetInvalid)" in summary
    assert "chain intact" in summary
    # AND the scientist uploaded, another identity approved (four-eyes on identities AWS verified)
    assert "approved by arn:aws:iam::123456789012:user/approver" in result.stdout
    assert "is champion" in summary
    assert "from version 1" in summary and "field 'tenure_months'" in summary
    assert "(0 errors)" in summary
    # AND it ends with a drift check: clean traffic passes, shifted traffic is flagged with its features
    monitor_line = next(line for line in summary.splitlines() if line.strip().startswith("monitor "))
    drift_line = next(line for line in summary.splitlines() if line.strip().startswith("drift "))
    assert "no_drift" in monitor_line
    assert "drifted over" in drift_line and "tenure_months" in drift_line and "monthly_charges" in drift_line
    assert "mlops-dev-drift -> ALARM" in drift_line and "retraining started" in drift_line
    # (on the champion's rows and the shifted requests, whose outcomes the demo uploads as labels)
    assert "+ 400 labelled captures" in drift_line
    html = Path(drift_line.split("--html ", 1)[1].split("`", 1)[0])
    assert html.is_file() and "<html" in html.read_text()[:500].lower()
