"""The spec the demo stores: the example spec with a smaller search, nothing else changed."""

from __future__ import annotations

from pathlib import Path

from mlops.spec.model import load_spec
from mlops.training.search import candidates
from mlops_local.scenario_context import EXAMPLES, ScenarioContext
from mlops_local.scenario_steps import _demo_spec


def test_the_demo_trains_two_candidates_of_the_example_grid(tmp_path: Path) -> None:
    example = EXAMPLES / "specs" / "churn.yaml"
    ctx = ScenarioContext(cloud=None, facts={"workdir": str(tmp_path)})
    stored, note = _demo_spec(ctx, example)
    demo, full = load_spec(stored), load_spec(example)
    # the example's 2x2 grid stays what the file says (tests of the search use it)
    assert len(candidates(full)) == 4
    # the demo trains 2 of its points: both learning rates at the depth the full grid picks
    demo_points = candidates(demo)
    assert len(demo_points) == 2
    assert all(point in candidates(full) for point in demo_points)
    assert "its search cut to 2 candidates" in note
    # and nothing else differs
    assert demo.model_dump(exclude={"training"}) == full.model_dump(exclude={"training"})
    assert demo.training.model_dump(exclude={"search"}) == full.training.model_dump(exclude={"search"})
