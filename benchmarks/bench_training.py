"""Benchmark: train + evaluate the churn example at 10k and 100k rows, and where the time goes (issue 6).

For each size, in one process, best of ``--repeat`` runs:

- ours: ``load_training_frame`` (CSV bytes, the validation reader), ``train`` (coerce, split,
  model input, one-thread fit), ``evaluate`` (holdout metrics and slices), ``dump_artifact``;
- baseline: the same estimator and params fitted by plain scikit-learn on pre-encoded data (the
  same training rows one-hot encoded with ``pandas.get_dummies``, numbers as they are), also with
  one thread, plus ``predict_proba`` on the holdout. The ratio ours / baseline is the overhead of
  the platform (typing, pipeline preprocessing, metrics, slices, serialization);
- information: the baseline fit with every core, i.e. what determinism (one thread) costs.

Run: ``python benchmarks/bench_training.py [--rows 10000 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlops.spec.model import load_spec
from mlops.training.artifacts import dump_artifact
from mlops.training.evaluation import evaluate
from mlops.training.fit import estimator_params, train
from mlops.training.frames import coerce_frame, load_training_frame, model_input
from mlops.training.split import split

ROOT = Path(__file__).resolve().parents[1]


def _generate() -> Callable[..., pd.DataFrame]:
    module_spec = importlib.util.spec_from_file_location("example_generate", ROOT / "examples" / "generate.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.generate


def _best(repeat: int, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = [run() for _ in range(repeat)]
    return min(results, key=lambda r: r["total"])


def bench(rows: int, repeat: int) -> dict[str, Any]:
    spec = load_spec(ROOT / "examples" / "specs" / "churn.yaml")
    raw = _generate()("churn", rows=rows, seed=7)
    csv_bytes = raw.to_csv(index=False).encode()

    def ours() -> dict[str, float]:
        t0 = time.perf_counter()
        frame = load_training_frame(io.BytesIO(csv_bytes), spec, "churn.csv")
        t1 = time.perf_counter()
        result = train(frame, spec, code_revision="bench")
        t2 = time.perf_counter()
        evaluation = evaluate(result.pipeline, result.holdout, spec)
        t3 = time.perf_counter()
        dump_artifact(result.pipeline)
        t4 = time.perf_counter()
        ours.auc = evaluation.metrics["roc_auc"]  # type: ignore[attr-defined]
        return {
            "read": t1 - t0,
            "train": t2 - t1,
            "fit": result.fit_seconds,
            "evaluate": t3 - t2,
            "dump": t4 - t3,
            "total": t4 - t0,
        }

    # The baseline starts from data already typed and split, and encodes it outside the timing.
    typed = coerce_frame(raw, spec)
    train_df, holdout_df = split(typed, spec)
    encoded = pd.get_dummies(model_input(pd.concat([train_df, holdout_df]), spec), dtype=np.float64)
    x_train, x_holdout = encoded.loc[train_df.index], encoded.loc[holdout_df.index]
    y_train = train_df[spec.target.name].astype(int).to_numpy()
    y_holdout = holdout_df[spec.target.name].astype(int).to_numpy()
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    params = estimator_params(spec)

    def baseline(threads: int | None) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            with threadpool_limits(limits=threads):
                t0 = time.perf_counter()
                model = HistGradientBoostingClassifier(**params).fit(x_train, y_train)
                t1 = time.perf_counter()
                proba = model.predict_proba(x_holdout)[:, 1]
                t2 = time.perf_counter()
            run.auc = roc_auc_score(y_holdout, proba)  # type: ignore[attr-defined]
            return {"fit": t1 - t0, "predict": t2 - t1, "total": t2 - t0}

        return run

    ours_best = _best(repeat, ours)
    one = baseline(1)
    base_best = _best(repeat, one)
    every = baseline(None)
    all_cores = _best(repeat, every)
    return {
        "rows": rows,
        "ours_seconds": {k: round(v, 3) for k, v in ours_best.items()},
        "baseline_seconds": {k: round(v, 3) for k, v in base_best.items()},
        "ratio_total_vs_baseline": round(ours_best["total"] / base_best["total"], 2),
        "ratio_fit_vs_baseline_fit": round(ours_best["fit"] / base_best["fit"], 2),
        "baseline_all_cores_seconds": round(all_cores["total"], 3),
        "cores": os.cpu_count(),
        "roc_auc": {"ours": round(ours.auc, 4), "baseline": round(one.auc, 4)},  # type: ignore[attr-defined]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    import sklearn.ensemble  # noqa: F401  (import cost reported apart: it is a cold-start cost)

    print(json.dumps({"import_sklearn_ensemble_seconds": round(time.perf_counter() - started, 3)}))
    for rows in args.rows:
        print(json.dumps(bench(rows, args.repeat)))


if __name__ == "__main__":
    main()
