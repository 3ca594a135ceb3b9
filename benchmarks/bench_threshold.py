"""Benchmark: what choosing a decision threshold costs in training, and what it gives on the holdout.

On ISLP Default (10,000 rows, 3.3% positives, logistic regression) and ISLP Caravan (5,822 rows,
85 features, 6% positives, the conformance spec's estimator), in one process, best of ``--repeat``:

- baseline: ``train`` without ``training.threshold`` (one fit);
- fixed: ``training.threshold: 0.5`` (one fit: nothing is chosen);
- objective: ``training.threshold: {objective: max_f1}`` (one fit plus ``folds`` fits on the
  training rows for out-of-fold probabilities).

Printed: seconds, the ratio to the baseline measured in the same run, and the holdout F1 of the
baseline's labels (highest probability) and of the chosen threshold's.

Run: ``python benchmarks/bench_threshold.py [--repeat 3] [--folds 5]``
"""

from __future__ import annotations

import argparse
import io
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.spec.model import ModelSpec, load_spec, parse_spec
from mlops.training.evaluation import evaluate
from mlops.training.fit import TrainResult, train

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "islp-default": ("data/Default.csv", "islp-default.yaml"),
    "islp-caravan": ("data/Caravan.csv", "islp-caravan.yaml"),
}


def _spec(base: ModelSpec, threshold: Any) -> ModelSpec:
    document = base.model_dump(mode="json")
    document["training"]["threshold"] = threshold
    return parse_spec(document)


def _best(frame: pd.DataFrame, spec: ModelSpec, repeat: int) -> tuple[float, TrainResult]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = train(frame, spec)
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'dataset':<14} {'variant':<10} {'seconds':>8} {'ratio':>6}  {'holdout F1':>10}  threshold")
    for name, (resource, spec_file) in DATASETS.items():
        frame = pd.read_csv(io.BytesIO(resources.files("ISLP").joinpath(*resource.split("/")).read_bytes()))
        base = load_spec(ROOT / "tests" / "conformance" / "specs" / spec_file)
        variants = {
            "baseline": base,
            "fixed": _spec(base, 0.5),
            "objective": _spec(base, {"objective": "max_f1", "folds": args.folds}),
        }
        baseline = None
        for variant, spec in variants.items():
            seconds, result = _best(frame, spec, args.repeat)
            baseline = baseline or seconds
            f1 = evaluate(result.pipeline, result.holdout, spec, result.threshold).metrics["f1"]
            shown = "-" if result.threshold is None else f"{result.threshold.value:g} ({result.threshold.method})"
            f1_text = "n/a" if f1 is None else f"{f1:.4f}"
            print(f"{name:<14} {variant:<10} {seconds:>8.2f} {seconds / baseline:>5.2f}x  {f1_text:>10}  {shown}")


if __name__ == "__main__":
    main()
