"""Benchmark: the full drift report on rows x (20 numeric + 5 categorical), reference and current (issue 9).

Data: both sides generated in memory, drift injected in 4 numeric columns (location, scale, tail
mixture, discrete shift) and 2 categorical ones (swap, new category). Measured in the same run:

* ``report``: ``drift_report`` on the two DataFrames (every method on every feature, BH, verdict);
* ``report+profile``: the same against the reference's stored profile (what the monitor does);
* ``floor``: one ``np.sort`` of every numeric column of both sides (no statistic at all);
* Evidently ``DataDriftPreset`` and alibi-detect ``TabularDrift`` when importable (they are not
  dependencies of this project: ``pip install evidently alibi-detect`` in a scratch venv to compare).

Peak memory is tracemalloc's (numpy allocations are traced). Run:
``python benchmarks/bench_drift.py [--rows 10000 100000 1000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from mlops.drift import drift_report
from mlops.drift.engine import Reference
from mlops.profile import profile_frame
from mlops.spec import ModelSpec, parse_spec

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DRIFTED = {"x00", "x01", "x02", "x03", "c0", "c1"}
LEVELS = np.array([f"level-{i:02d}" for i in range(12)], dtype=object)


def make_spec() -> ModelSpec:
    features = [{"name": n, "type": "float"} for n in NUMERIC] + [{"name": n, "type": "category"} for n in CATEGORICAL]
    return parse_spec(
        {
            "name": "bench",
            "task": "regression",
            "target": {"name": "y"},
            "features": features,
            "training": {"estimator": "sklearn.linear_model.Ridge"},
        }
    )


def make_frame(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        values = rng.normal(i, 1 + i / 10, rows) if i % 3 else rng.lognormal(0, 0.6, rows)
        if i % 4 == 3:
            values = np.round(values * 4)  # discrete, many ties
        columns[name] = values
    if drift:
        columns["x00"] = columns["x00"] + 0.2
        columns["x01"] = columns["x01"] * 1.3
        tail = rng.random(rows) < 0.03
        columns["x02"][tail] += 8
        columns["x03"] = columns["x03"] + 1
    weights = np.linspace(1, 3, len(LEVELS))
    p = weights / weights.sum()
    for j, name in enumerate(CATEGORICAL):
        probabilities = p[::-1] if (drift and j == 0) else p
        values = LEVELS[rng.choice(len(LEVELS), rows, p=probabilities)]
        if drift and j == 1:
            values[rng.random(rows) < 0.05] = "level-new"
        columns[name] = values
    return pd.DataFrame(columns)


def timed(func: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall time of ``repeat`` runs, and the peak traced memory (MiB) of one run."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    gc.collect()
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, result


def floor(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    for name in NUMERIC:
        np.sort(reference[name].to_numpy())
        np.sort(current[name].to_numpy())


def optional_competitors(reference: pd.DataFrame, current: pd.DataFrame, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        from evidently import Report  # type: ignore[import-not-found,unused-ignore]
        from evidently.presets import DataDriftPreset  # type: ignore[import-not-found,unused-ignore]

        out["evidently"] = timed(lambda: Report([DataDriftPreset()]).run(current, reference), 1)[0]
    except ImportError:
        print("  evidently: not installed (pip install evidently, in a scratch venv) - skipped")
    try:
        from alibi_detect.cd import TabularDrift  # type: ignore[import-not-found,unused-ignore]

        def alibi() -> None:
            ref = reference.copy()
            cur = current.copy()
            categories: dict[int, None] = {}
            for j, name in enumerate(ref.columns):
                if name in CATEGORICAL:
                    codes, _ = pd.factorize(pd.concat([ref[name], cur[name]]))
                    ref[name], cur[name] = codes[: len(ref)], codes[len(ref) :]
                    categories[j] = None
            detector = TabularDrift(ref.to_numpy(np.float32), p_val=0.05, categories_per_feature=categories)
            detector.predict(cur.to_numpy(np.float32))

        out["alibi-detect"] = timed(alibi, repeat)[0]
    except ImportError:
        print("  alibi-detect: not installed (pip install alibi-detect, in a scratch venv) - skipped")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = make_spec()
    header = ("rows", "floor s", "report s", "ratio", "vs profile s", "peak MiB", "verdict ok")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (10, 8, 9, 6, 13, 9, 10), strict=True)))
    for rows in args.rows:
        reference, current = make_frame(rows, 1, False), make_frame(rows, 2, True)
        profile = profile_frame(reference, spec)
        stored = Reference.from_profile(profile)
        drift_report(reference.head(1000), current.head(1000), spec)  # imports, first-call costs
        floor_s, _, _ = timed(partial(floor, reference, current), args.repeat)
        report_s, peak, report = timed(partial(drift_report, reference, current, spec), args.repeat)
        profile_s, _, by_profile = timed(partial(drift_report, stored, current, spec), args.repeat)
        correct = set(report.drifted_features) == DRIFTED and set(by_profile.drifted_features) == DRIFTED
        print(
            f"{rows:>10,} {floor_s:>8.3f} {report_s:>9.3f} {report_s / floor_s:>6.2f} {profile_s:>13.3f}"
            f" {peak:>9.0f} {correct!s:>10}"
        )
        if not correct:
            found = f"{sorted(report.drifted_features)} / {sorted(by_profile.drifted_features)}"
            print(f"  drifted: {found}; expected {sorted(DRIFTED)}")
        if rows == max(args.rows):
            for name, seconds in optional_competitors(reference, current, args.repeat).items():
                print(f"  {name}: {seconds:.2f}s, our report is {seconds / report_s:.1f}x faster")


if __name__ == "__main__":
    main()
