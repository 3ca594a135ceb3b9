"""Benchmark: dataset validation speed and memory (issue 5).

1. In memory, 1M rows x 25 columns (20 numeric, 5 categorical) plus a 0/1 target: the schema +
   range + null + allowed-values pass of ``mlops.data.validation.validate_frame`` against plain
   vectorized pandas doing the same checks (target: at most 1.5x) and against pandera on the
   same schema (target: at least 3x faster). Best of ``--repeat`` runs, same process.
2. The same data as a CSV file: ``validate_file`` (chunked reader + checks) against
   ``pandas.read_csv`` + the plain checks (information only: reading dominates).
3. Peak memory of ``validate_file`` on a ~1 GB CSV, measured in a subprocess with
   ``resource.getrusage(RUSAGE_CHILDREN)`` (target: under 1.5 GB).

pandera is not a dependency of the project; install it for this comparison only::

    pip install pandera==0.35.0

Run: ``python benchmarks/bench_validation.py [--rows N] [--repeat K] [--memory-gb G | --skip-memory]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.data.validation import validate_file, validate_frame
from mlops.spec.model import ModelSpec, parse_spec

PANDERA_PIN = "pandera==0.35.0"
NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
CATEGORIES = [[f"v{i}_{j}" for j in range(3 + 2 * i)] for i in range(5)]


def make_spec() -> ModelSpec:
    features: list[dict[str, Any]] = [{"name": n, "type": "float", "min": -20, "max": 20} for n in NUMERIC]
    features += [{"name": c, "type": "category", "allowed": CATEGORIES[i]} for i, c in enumerate(CATEGORICAL)]
    return parse_spec(
        {
            "name": "bench",
            "task": "classification",
            "target": {"name": "label", "classes": [0, 1]},
            "features": features,
            "row_count": {"min": 1},
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        }
    )


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {n: rng.normal(0, 2, rows) for n in NUMERIC}
    for i, c in enumerate(CATEGORICAL):
        values = np.asarray(CATEGORIES[i], dtype=object)
        data[c] = pd.Series(values[rng.integers(0, len(values), rows)], dtype="str")
    data["label"] = rng.integers(0, 2, rows)
    return pd.DataFrame(data)


def plain_pandas(df: pd.DataFrame, spec: ModelSpec) -> int:
    """The same checks, written the obvious vectorized way: failing counts only, no examples."""
    failures = 0
    expected = [*spec.feature_names, spec.target.name]
    failures += len(set(expected) - set(df.columns)) + len(set(df.columns) - set(expected))
    for feature in spec.features:
        column = df[feature.name]
        failures += int(column.isna().sum())
        if feature.type.value == "float":
            failures += int(not pd.api.types.is_numeric_dtype(column))
            failures += int((column < feature.min).sum()) + int((column > feature.max).sum())
        else:
            failures += int((~column.isin(feature.allowed)).sum())
    target = df[spec.target.name]
    failures += int(target.isna().sum()) + int((~target.isin(spec.target.classes)).sum())
    return failures


def ours(df: pd.DataFrame, spec: ModelSpec) -> int:
    # duplicate_rows is off: it is not part of the schema/range/null/allowed pass compared here
    spec = spec.model_copy(update={"validation": spec.validation.model_copy(update={"duplicate_rows": "off"})})
    report = validate_frame(df, spec)
    return sum(c.failing_count for c in report.checks)


def pandera_schema(spec: ModelSpec) -> Any:
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for feature in spec.features:
        if feature.type.value == "float":
            columns[feature.name] = pa.Column(float, [pa.Check.ge(feature.min), pa.Check.le(feature.max)])
        else:
            columns[feature.name] = pa.Column(str, pa.Check.isin(feature.allowed))
    columns[spec.target.name] = pa.Column(int, pa.Check.isin(spec.target.classes))
    return pa.DataFrameSchema(columns, strict=True)


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def write_csv(path: Path, target_bytes: int, rows_per_part: int) -> int:
    rows = 0
    seed = 1
    with path.open("w", encoding="utf-8", newline="") as handle:
        header = True
        while handle.tell() < target_bytes:
            part = make_frame(rows_per_part, seed)
            part.to_csv(handle, index=False, header=header, float_format="%.6f")
            header = False
            rows += len(part)
            seed += 1
    return rows


def child_peak_rss(path: Path, rows: int) -> tuple[float, float, dict[str, Any]]:
    """Run validate_file in a fresh interpreter; return (peak MiB, seconds, summary)."""
    code = (
        "import json, sys\n"
        "from bench_validation import make_spec\n"
        "from mlops.data.validation import validate_file\n"
        "r = validate_file(sys.argv[1], make_spec())\n"
        "print(json.dumps({'rows': r.rows, 'valid': r.valid, 'failed': [c.check for c in r.failures],"
        " 'seconds': r.duration_seconds}))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"memory run failed:\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print("  (note: an earlier child had a higher peak; the figure is an upper bound)")
    return peak / 1024, elapsed, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-gb", type=float, default=1.0, help="size of the CSV for the memory run")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    spec = make_spec()
    print(f"generating {args.rows:,} rows x 25 columns (20 numeric, 5 categorical) + target")
    df = make_frame(args.rows)

    # The memory run goes first so that no earlier child inflates RUSAGE_CHILDREN.
    results: dict[str, float] = {}
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "big.csv"
            print(f"\n[3] peak memory, validate_file on a ~{args.memory_gb:g} GB CSV (chunked path)")
            rows = write_csv(big, int(args.memory_gb * 1024**3), 500_000)
            size = big.stat().st_size
            peak, seconds, summary = child_peak_rss(big, rows)
            results["peak_mib"] = peak
            print(
                f"  file {size / 1024**3:.2f} GiB, {rows:,} rows; validated in {seconds:.1f}s "
                f"({size / 1024**2 / summary['seconds']:.0f} MiB/s), valid={summary['valid']}"
            )
            print(f"  peak RSS {peak:,.0f} MiB (target < 1536 MiB): {'OK' if peak < 1536 else 'OVER'}")

    print("\n[1] in memory: schema + range + null + allowed values")
    t_plain, plain_failures = best_of(args.repeat, lambda: plain_pandas(df, spec))
    t_ours, our_failures = best_of(args.repeat, lambda: ours(df, spec))
    assert plain_failures == our_failures == 0, (plain_failures, our_failures)
    bad = df.copy()
    bad.loc[::1000, "n00"] = 99.0
    bad.loc[::997, "c0"] = "zzz"
    _, plain_bad = best_of(1, lambda: plain_pandas(bad, spec))
    _, ours_bad = best_of(1, lambda: ours(bad, spec))
    assert plain_bad == ours_bad > 0, (plain_bad, ours_bad)  # both see the same failures
    t_full, _ = best_of(args.repeat, lambda: validate_frame(df, spec))
    ratio = t_ours / t_plain
    results["ratio_vs_pandas"] = ratio
    print(f"  plain pandas          {t_plain:7.3f}s")
    print(
        f"  mlops validate_frame  {t_ours:7.3f}s   ratio {ratio:.2f}x plain pandas (target <= 1.5x): "
        f"{'OK' if ratio <= 1.5 else 'OVER'}"
    )
    print(f"  (+ duplicate rows     {t_full:7.3f}s   the default full pass, with cross-row hashing)")
    try:
        schema = pandera_schema(spec)
    except ImportError:
        print(
            f"  pandera not installed: comparison skipped (install it for this benchmark only: "
            f"pip install {PANDERA_PIN})"
        )
    else:
        t_pandera, _ = best_of(args.repeat, lambda: schema.validate(df, lazy=True))
        speedup = t_pandera / t_ours
        results["speedup_vs_pandera"] = speedup
        print(
            f"  pandera               {t_pandera:7.3f}s   mlops is {speedup:.1f}x faster (target >= 3x): "
            f"{'OK' if speedup >= 3 else 'UNDER'}"
        )

    print("\n[2] from a CSV file (information: parsing dominates)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        df.to_csv(path, index=False, float_format="%.6f")
        size = path.stat().st_size
        text_columns = dict.fromkeys(CATEGORICAL, str)
        t_read_plain, _ = best_of(
            max(1, args.repeat // 2), lambda: plain_pandas(pd.read_csv(path, dtype=text_columns), spec)
        )
        t_file, report = best_of(max(1, args.repeat // 2), lambda: validate_file(path, spec))
        assert report.valid, report.render_text()
        print(f"  read_csv + plain      {t_read_plain:7.3f}s   ({size / 1024**2:.0f} MiB)")
        print(
            f"  mlops validate_file   {t_file:7.3f}s   ratio {t_file / t_read_plain:.2f}x "
            "(includes sha256, row scan, duplicate rows, streaming)"
        )
        results["file_ratio"] = t_file / t_read_plain

    print("\nsummary: " + json.dumps({k: round(v, 2) for k, v in results.items()}))


if __name__ == "__main__":
    main()
