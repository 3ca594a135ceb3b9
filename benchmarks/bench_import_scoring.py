"""Benchmark: scoring an imported ONNX model where Evaluate runs (onnx.reference) against onnxruntime.

The training functions have the science layer (numpy, pandas, scikit-learn, onnx) but not
onnxruntime (the inference layer's). An imported ONNX-only model is scored on the holdout there by
``onnx.reference.ReferenceEvaluator`` (:class:`mlops.training.imported.OnnxReferenceModel`). This
measures, in the same run, on the penguins (palmerpenguins, repeated to ``--rows``) and a notebook
pipeline (impute, scale, one-hot, logistic regression) exported with skl2onnx:

* ``reference``: ``OnnxReferenceModel.predict_proba`` on the model-input frame;
* ``onnxruntime``: serving's ``OnnxPredictor`` on the same rows as records (the baseline);
* ``sklearn``: the pipeline itself;

with the ratio reference/onnxruntime and the largest probability difference between them.
Run: ``python benchmarks/bench_import_scoring.py [--rows 344 10000 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops.training.artifacts import sha256_hex
from mlops.training.frames import model_input
from mlops.training.imported import ONNX_FORMAT, export_imported_onnx, load_imported
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import notebook_pipeline, penguins_frame


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[344, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = PENGUINS.spec
    frame = penguins_frame()
    pipeline = notebook_pipeline(frame)
    data = export_imported_onnx(pipeline, spec)
    reference = load_imported(data, sha256_hex(data), ONNX_FORMAT, spec)
    runtime = OnnxPredictor(data, spec)
    columns = list(pipeline.feature_names_in_)
    print(f"{'rows':>8} {'reference s':>12} {'onnxruntime s':>14} {'sklearn s':>10} {'ratio':>8} {'max delta':>10}")
    for rows in args.rows:
        big = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows]
        x = model_input(big, spec)
        records = records_from_frame(big, spec)
        t_ref, p_ref = best(args.repeat, lambda x=x: reference.predict_proba(x))
        t_ort, p_ort = best(args.repeat, lambda r=records: runtime.predict(r).probabilities)
        t_skl, _ = best(args.repeat, lambda x=x: pipeline.predict_proba(x[columns]))
        delta = float(np.abs(np.asarray(p_ref) - np.asarray(p_ort)).max())
        print(f"{rows:>8} {t_ref:>12.4f} {t_ort:>14.4f} {t_skl:>10.4f} {t_ref / t_ort:>7.1f}x {delta:>10.2e}")


if __name__ == "__main__":
    main()
