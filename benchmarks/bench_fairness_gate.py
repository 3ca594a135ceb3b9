"""Benchmark: how often the fairness gate refuses a fair model (false refusals), bound vs point.

The example churn data is generated with ``senior`` playing no part in churn (equal churn rates
in the population), so a model's predictions have no real disparate impact across ``senior``.
For each seed, a churn dataset of ``--rows`` rows is generated, the example spec's model is
trained (one candidate: the spec's params) and evaluated on its holdout, and the disparate
impact of its predictions across ``senior`` is judged two ways against the spec's minimum (0.8):

* point: refuse when the holdout's ratio is below the minimum (the four-fifths rule as is);
* bound (what the gate does): refuse when the ratio's upper ``fairness.confidence`` bound is
  below the minimum.

It prints one JSON document: the refusal count and rate of each rule, and their ratio.

Run: ``python benchmarks/bench_fairness_gate.py [--seeds 40] [--rows 1500]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "layers" / "shared" / "python"))

from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

from mlops.spec.model import load_spec  # noqa: E402
from mlops.training.evaluation import evaluate  # noqa: E402
from mlops.training.fit import train  # noqa: E402
from mlops.training.gate import gate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--rows", type=int, default=1500)
    args = parser.parse_args()
    spec = load_spec(ROOT / "examples" / "specs" / "churn.yaml")
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"search": None})})
    minimum = spec.fairness.min_disparate_impact
    started = time.perf_counter()
    point = bound = 0
    judged: list[dict[str, float]] = []
    for seed in range(args.seeds):
        frame = generate("churn", rows=args.rows, seed=1000 + seed)
        result = train(frame, spec)
        fairness = evaluate(result.pipeline, result.holdout, spec).fairness
        impact = fairness["senior"]["disparate_impact"]
        if impact is None:
            continue
        point += impact < minimum
        [check] = [c for c in gate({}, spec, fairness=fairness).checks if c["check"] == "fairness"]
        bound += not check["passed"]
        upper = fairness["senior"]["upper_bound"]
        judged.append({"disparate_impact": round(impact, 3), "upper_bound": round(upper, 3)})
    runs = len(judged)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "models_judged": runs,
                "confidence": spec.fairness.confidence,
                "min_disparate_impact": minimum,
                "false_refusals_point": point,
                "false_refusals_bound": bound,
                "false_refusal_rate_point": round(point / runs, 3) if runs else None,
                "false_refusal_rate_bound": round(bound / runs, 3) if runs else None,
                "point_over_bound": round(point / bound, 1) if bound else None,
                "seconds": round(time.perf_counter() - started, 1),
                "judged": judged,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
