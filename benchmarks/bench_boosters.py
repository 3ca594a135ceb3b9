"""Benchmark: LightGBM against scikit-learn's HistGradientBoosting, trained by the platform on the same data.

Both run through :func:`mlops.training.fit.train` (the same typing, split, preprocessing by feature
type and one-thread fit), with the same boosting settings: 100 rounds, learning rate 0.1, 31
leaves, at least 20 rows per leaf, 255 bins, no early stopping. Each repeat alternates the two;
the figures are medians of the same run. Reported per dataset: fit seconds (the estimator's fit
alone, ``TrainResult.fit_seconds``), the whole ``train`` call, the holdout's primary metric, and
the ratio HistGradientBoosting / LightGBM (above 1: LightGBM is faster).

Datasets: ISLP Default (10,000 rows, binary), ISLP Bikeshare (8,645 rows, regression) as their
packages ship them (requirements-data.txt), and the churn example generated at ``--rows`` rows.

Run: ``python benchmarks/bench_boosters.py [--rows 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops.spec.model import ModelSpec, load_spec, parse_spec  # noqa: E402
from mlops.training.evaluation import evaluate  # noqa: E402
from mlops.training.fit import train  # noqa: E402
from mlops.training.frames import load_training_frame  # noqa: E402
from tests.conformance.datasets import BIKESHARE, DEFAULT  # noqa: E402

SETTINGS = {
    "classification": {
        "sklearn.ensemble.HistGradientBoostingClassifier": {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "max_bins": 255,
            "early_stopping": False,
        },
        "lightgbm.LGBMClassifier": {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "max_bin": 255,
        },
    },
    "regression": {
        "sklearn.ensemble.HistGradientBoostingRegressor": {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "max_bins": 255,
            "early_stopping": False,
        },
        "lightgbm.LGBMRegressor": {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "max_bin": 255,
        },
    },
}


def _generate() -> Callable[..., pd.DataFrame]:
    module_spec = importlib.util.spec_from_file_location("example_generate", ROOT / "examples" / "generate.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.generate


def _with_estimator(spec: ModelSpec, estimator: str, params: dict[str, Any]) -> ModelSpec:
    document = spec.model_dump(mode="json")
    document["training"].update(estimator=estimator, params=params, search=None)
    return parse_spec(document)


def bench(name: str, spec: ModelSpec, csv_bytes: bytes, repeat: int) -> dict[str, Any]:
    estimators = SETTINGS[spec.task]
    specs = {estimator: _with_estimator(spec, estimator, params) for estimator, params in estimators.items()}
    frames = {estimator: load_training_frame(io.BytesIO(csv_bytes), s) for estimator, s in specs.items()}
    timings: dict[str, dict[str, list[float]]] = {e: {"fit": [], "train": []} for e in estimators}
    metric = spec.primary_metric
    scores: dict[str, float] = {}
    for _ in range(repeat):
        for estimator, estimator_spec in specs.items():  # alternating, so drift in the machine hits both
            started = time.perf_counter()
            result = train(frames[estimator], estimator_spec)
            timings[estimator]["train"].append(time.perf_counter() - started)
            timings[estimator]["fit"].append(result.fit_seconds)
            value = evaluate(result.pipeline, result.holdout, estimator_spec).metrics[metric]
            scores[estimator] = float("nan") if value is None else float(value)
    hist, lgbm = list(estimators)
    median = {e: {k: statistics.median(v) for k, v in t.items()} for e, t in timings.items()}
    return {
        "dataset": name,
        "rows": len(frames[hist]),
        "metric": metric,
        "hist_gradient_boosting": {**{k: round(v, 3) for k, v in median[hist].items()}, metric: round(scores[hist], 4)},
        "lightgbm": {**{k: round(v, 3) for k, v in median[lgbm].items()}, metric: round(scores[lgbm], 4)},
        "fit_ratio_hist_over_lightgbm": round(median[hist]["fit"] / median[lgbm]["fit"], 2),
        "train_ratio_hist_over_lightgbm": round(median[hist]["train"] / median[lgbm]["train"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the generated churn example")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    churn = load_spec(ROOT / "examples" / "specs" / "churn.yaml")
    cases = [
        ("islp-default", DEFAULT.spec, DEFAULT.raw()),
        ("islp-bikeshare", BIKESHARE.spec, BIKESHARE.raw()),
        (f"churn-{args.rows}", churn, _generate()("churn", rows=args.rows, seed=7).to_csv(index=False).encode()),
    ]
    for name, spec, data in cases:
        result = bench(name, spec, data, args.repeat)
        print(json.dumps(result))
        print(
            f"  {name}: fit {result['hist_gradient_boosting']['fit']:.3f} s (HistGradientBoosting) vs"
            f" {result['lightgbm']['fit']:.3f} s (LightGBM): ratio {result['fit_ratio_hist_over_lightgbm']:.2f};"
            f" {result['metric']} {result['hist_gradient_boosting'][result['metric']]} vs"
            f" {result['lightgbm'][result['metric']]}"
        )


if __name__ == "__main__":
    main()
