"""Data from the example generators passes validation against the example specs."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from mlops.data.profile import profile_frame
from mlops.data.validation import validate_frame, validate_stream
from mlops.spec.model import load_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _generate():  # examples/ is not a package: load the script as a module
    spec = importlib.util.spec_from_file_location("example_generate", EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


@pytest.mark.parametrize("model", ["churn", "house-prices"])
def test_generated_example_data_is_valid(model: str) -> None:
    # GIVEN an example spec and data generated for it
    spec = load_spec(EXAMPLES / "specs" / f"{model}.yaml")
    frame = _generate()(model, rows=3000, seed=7)
    # WHEN validated in memory and as a CSV stream in small blocks
    in_memory = validate_frame(frame, spec)
    streamed = validate_stream(io.BytesIO(frame.to_csv(index=False).encode()), spec, f"{model}.csv", block_size=8192)
    # THEN both are valid
    assert in_memory.valid, in_memory.render_text()
    assert streamed.valid, streamed.render_text()
    assert streamed.rows == 3000


def test_drifted_example_data_fails_reference_checks() -> None:
    # GIVEN a reference profile of churn training data and a drifted sample
    spec = load_spec(EXAMPLES / "specs" / "churn.yaml")
    generate = _generate()
    reference = profile_frame(generate("churn", rows=3000, seed=1), spec)
    drifted = generate("churn", rows=3000, seed=2, drift=True)
    # WHEN validated against the reference
    report = validate_frame(drifted, spec, reference=reference)
    # THEN a statistical check reports the shift
    assert any(c.check.startswith("reference.") and c.failed for c in report.checks), report.render_text()
