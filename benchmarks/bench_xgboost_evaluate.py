"""Benchmark: what Evaluate pays to score an XGBoost candidate from its ONNX export (onnx.reference).

Evaluate (science layer: onnx, no onnxruntime, no xgboost) scores an XGBoost candidate from the
ONNX export its SageMaker job made, with ``onnx.reference.ReferenceEvaluator``
(:class:`mlops.training.imported.OnnxReferenceModel`), on the whole holdout, for its metrics, the
champion comparison and the holdout predictions. This measures, in the same run, on ISLP Default
(the target as 0/1, repeated to ``--rows``) with an XGBClassifier trained by the platform's
``train`` (``--trees`` rounds, depth ``--depth``):

* ``reference``: ``OnnxReferenceModel.predict_proba`` on the model-input frame (what Evaluate runs);
* ``onnxruntime``: serving's ``OnnxPredictor`` on the same rows as records (the baseline);
* ``xgboost``: the pipeline itself (what the job runs);

with the ratio reference/onnxruntime and the largest probability difference from XGBoost's.
Run: ``python benchmarks/bench_xgboost_evaluate.py [--rows 1000 10000] [--trees 100] [--depth 6]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops.training.export import export_onnx
from mlops.training.fit import train
from mlops.training.frames import load_training_frame, model_input
from mlops.training.imported import OnnxReferenceModel
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from tests.conformance.datasets import DEFAULT
from tests.unit.training.helpers import spec_with


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = spec_with(
        DEFAULT.spec,
        target={"name": "default", "classes": [0, 1], "positive_class": 1},
        training={
            "estimator": "xgboost.XGBClassifier",
            "params": {"n_estimators": args.trees, "max_depth": args.depth},
            "backend": "sagemaker",
            "search": None,
        },
    )
    raw = DEFAULT.frame()
    raw["default"] = (raw["default"] == "Yes").astype(int)
    frame = load_training_frame(io.BytesIO(raw.to_csv(index=False).encode()), spec)
    result = train(frame, spec)
    data = export_onnx(result.pipeline, spec)
    reference = OnnxReferenceModel(data, spec)
    runtime = OnnxPredictor(data, spec)
    print(f"ISLP Default, XGBClassifier {args.trees} trees depth {args.depth}; ONNX export {len(data) / 1024:.0f} KiB")
    print(f"{'rows':>8} {'reference s':>12} {'onnxruntime s':>14} {'xgboost s':>10} {'ratio':>8} {'max delta':>10}")
    for rows in args.rows:
        big = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows]
        x = model_input(big, spec)
        records = records_from_frame(big, spec)
        t_ref, p_ref = best(args.repeat, lambda x=x: reference.predict_proba(x))
        t_ort, _ = best(args.repeat, lambda r=records: runtime.predict(r).probabilities)
        t_xgb, p_xgb = best(args.repeat, lambda x=x: result.pipeline.predict_proba(x))
        delta = float(np.abs(np.asarray(p_ref) - np.asarray(p_xgb)).max())
        print(f"{rows:>8} {t_ref:>12.4f} {t_ort:>14.4f} {t_xgb:>10.4f} {t_ref / t_ort:>7.1f}x {delta:>10.2e}")


if __name__ == "__main__":
    main()
