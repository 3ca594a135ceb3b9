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
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout[result.stdout.index("demo finished") :]
    assert "outcome registered: version 1 PENDING_APPROVAL" in summary
    assert "run FAILED (DatasetInvalid)" in summary
    assert "chain intact" in summary
    assert "is champion" in summary
    assert "from version 1" in summary and "field 'tenure_months'" in summary
    assert "(0 errors)" in summary
