"""Benchmark: the full drift report on rows x (20 numeric + 5 categorical), reference and current (issue 9).

Data: both sides generated in memory from fixed seeds, drift injected in 4 numeric columns
(location, scale, tail mixture, discrete shift) and 2 categorical ones (swap, new category).
Measured in the same run, per row count:

* ``floor``: one ``np.sort`` of every numeric column of both sides (no statistic at all);
* ``data``: ``drift_report`` with the reference as data (every method on every feature: KS,
  normalized Wasserstein, PSI, chi-square, Jensen-Shannon, missing rates, unseen categories,
  Benjamini-Hochberg, verdict), the reference's sorting and counting included;
* ``profile``: the same against the reference's stored profile (what the monitor does);
* ``categories``: counting the 5 category columns of the current side the way the engine does
  (``pandas.factorize`` through ``mlops.data.validation.coerce``: public APIs only) against the
  way it once did (:func:`identity_counts`, kept here only as the baseline: long object columns
  counted by their objects' addresses read through ``ctypes``); both must give the same counts;
  ``--categories`` runs this part alone;
* ``ks``: the exact KS p-value (both sides up to 10,000 values) through scipy's public API
  (``stats.ks_p_value``: ``ks_2samp`` on two samples built to have the statistic) against the
  way it once was computed (:func:`private_ks_p_value`, kept here only as the baseline: scipy's
  private ``_attempt_exact_2kssamp``), per call, with the ratio; both must give the same
  p-value; ``--ks`` runs this part alone;
* with ``--compare PYTHON`` (``make bench-drift-compare``): Evidently ``DataDriftPreset`` and
  alibi-detect ``TabularDrift`` on the same data, run by PYTHON (a separate virtual environment
  from benchmarks/requirements-drift-compare.txt; neither is a dependency of this project).

Times are the best of ``--repeat`` runs (Evidently: one run). Peak memory is each tool's peak
resident memory above the process's resident memory once the two frames exist, in a fresh
process per tool with fixed glibc malloc thresholds (Linux ``/proc/self/clear_refs``; elsewhere
the whole process's peak).
Run: ``python benchmarks/bench_drift.py [--rows 10000 100000 1000000] [--repeat 3] [--compare PY]``
``[--categories] [--ks]``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DRIFTED = {"x00", "x01", "x02", "x03", "c0", "c1"}
LEVELS = np.array([f"level-{i:02d}" for i in range(12)], dtype=object)
TOOLS = ("ours", "evidently", "alibi")
# Targets from issue 9, at 1M rows (printed for the largest row count run).
FLOOR_TARGET, EVIDENTLY_TARGET, ALIBI_TARGET, TARGET_ROWS = 4.0, 50.0, 3.0, 1_000_000


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


def fingerprint(frame: pd.DataFrame) -> str:
    """Same data on both interpreters (numpy versions differ between the two environments)."""
    numbers = float(np.round(frame[NUMERIC].to_numpy().sum(), 3))
    categories = int(sum((frame[c].to_numpy() == LEVELS[0]).sum() for c in CATEGORICAL))
    return f"{numbers:.3f}/{categories}"


def best_of(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


# ------------------------------------------------------------------------------ our engine
def make_spec() -> Any:
    from mlops.spec.model import parse_spec

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


def floor(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    for name in NUMERIC:
        np.sort(reference[name].to_numpy())
        np.sort(current[name].to_numpy())


def run_ours(reference: pd.DataFrame, current: pd.DataFrame) -> Callable[[], Any]:
    from mlops.drift import drift_report

    spec = make_spec()
    drift_report(reference.head(2000), current.head(2000), spec)  # imports and first-call costs
    return lambda: drift_report(reference, current, spec)


# ------------------------------------------------------------------------------ category counting
def identity_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """The engine's former category count (the baseline; never used by the platform).

    It read a long object column's PyObject pointers as integers through ``ctypes``, counted the
    distinct addresses (integer hashing), and read back as text only the distinct objects. It
    relied on interpreter internals (an object array is an array of pointers, alive while the
    array is) and on pandas' private ``_ndarray`` of python-backed string arrays.
    """
    from mlops.data.validation import coerce

    values = series.to_numpy() if series.dtype == object else getattr(series.array, "_ndarray", None)
    if not (isinstance(values, np.ndarray) and values.dtype == object and values.flags.c_contiguous):
        codes, uniques, null = coerce.factorized(series)
        present = codes >= 0
        return uniques, np.bincount(codes[present], minlength=len(uniques)), int(np.count_nonzero(null))
    addresses = np.frombuffer((ctypes.c_ssize_t * len(values)).from_address(values.ctypes.data), dtype=np.intp)
    identity, distinct = pd.factorize(addresses)
    per_object = np.bincount(identity, minlength=len(distinct))
    objects = np.fromiter(
        (ctypes.cast(int(address), ctypes.py_object).value for address in distinct), dtype=object, count=len(distinct)
    )
    codes, uniques, null = coerce.factorized(pd.Series(objects, dtype=object))
    present = codes >= 0
    counts = np.bincount(codes[present], weights=per_object[present], minlength=len(uniques)).astype(np.int64)
    return uniques, counts, int(per_object[null].sum())


def _as_table(result: tuple[np.ndarray, np.ndarray, int]) -> tuple[dict[Any, int], int]:
    uniques, counts, missing = result
    table: dict[Any, int] = {}
    for label, count in zip(uniques.tolist(), counts.tolist(), strict=True):
        table[label] = table.get(label, 0) + int(count)
    return {k: v for k, v in table.items() if v}, missing


def compare_category_counts(frame: pd.DataFrame, repeat: int) -> tuple[float, float, bool]:
    """Seconds to count every category column (public API, ctypes baseline) and whether they agree."""
    from mlops.drift.sides import _category_counts

    columns = [frame[name] for name in CATEGORICAL]
    public_s = baseline_s = float("inf")
    for _ in range(repeat):  # interleaved, so a change in the machine's load hits both alike
        public_s = min(public_s, best_of(lambda: [_category_counts(c) for c in columns], 1)[0])
        baseline_s = min(baseline_s, best_of(lambda: [identity_counts(c) for c in columns], 1)[0])
    same = all(_as_table(_category_counts(c)) == _as_table(identity_counts(c)) for c in columns)
    return public_s, baseline_s, same


def categories_only(rows_list: list[int], repeat: int) -> None:
    print(f"category counting, {len(CATEGORICAL)} columns of {len(LEVELS)} levels: public API vs the ctypes baseline")
    print(f"{'rows':>10} {'public s':>9} {'ctypes s':>9} {'x ctypes':>8} {'+ s':>7} {'same':>5}")
    for rows in rows_list:
        public_s, baseline_s, same = compare_category_counts(make_frame(rows, 2, True), repeat)
        print(
            f"{rows:>10,} {public_s:>9.4f} {baseline_s:>9.4f} {public_s / baseline_s:>8.2f}"
            f" {public_s - baseline_s:>7.3f} {same!s:>5}",
            flush=True,
        )


# ------------------------------------------------------------------------------ exact KS p-values
KS_SIZES = [(100, 100), (500, 400), (1_000, 1_200), (2_000, 3_000), (5_000, 5_000), (7_000, 10_000), (10_000, 10_000)]


def private_ks_p_value(statistic: float, n1: int, n2: int) -> float:
    """The engine's former exact KS p-value (the baseline; never used by the platform).

    It called scipy's private ``scipy.stats._stats_py._attempt_exact_2kssamp`` with the statistic
    alone; on failure the engine fell back to the asymptotic law (the same fallback as
    ``ks_2samp``; not timed here: none of the cases below fails).
    """
    # Private to scipy, hence imported here only, where the benchmark needs it as its baseline.
    from scipy.stats._stats_py import _attempt_exact_2kssamp

    success, _, probability = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), statistic, "two-sided")
    return float(min(max(probability, 0.0), 1.0)) if success else float("nan")


def per_call(func: Callable[[], Any], calls: int = 5) -> float:
    """Seconds per call over a few calls in a row (as a report makes them: one per numeric feature)."""
    started = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - started) / calls


def ks_only(repeat: int) -> None:
    """Exact KS p-values: the public-API route (``stats.ks_p_value``) against the private routine."""
    from mlops.drift import stats

    rounds = max(repeat, 15)
    print(f"exact KS p-value per call: public API (stats.ks_p_value) vs scipy's private routine, best of {rounds}")
    head = f"{'n1 x n2':>15} {'data':>8} {'D':>7} {'p':>9} {'public ms':>9} {'private ms':>10} {'x private':>9}"
    print(head + f" {'+ ms':>6} {'same':>5}")
    for n1, n2 in KS_SIZES:
        rng = np.random.default_rng(n1 + n2)
        reference = np.sort(rng.normal(0, 1, n1))
        for label, shift in (("same", 0.0), ("shift .1", 0.1)):
            current = np.sort(rng.normal(shift, 1, n2))
            statistic = stats.compare_sorted(reference, current).ks_statistic
            public_s = private_s = float("inf")
            for _ in range(rounds):  # interleaved, so a change in the machine's load hits both alike
                public_s = min(public_s, per_call(lambda: stats.ks_p_value(statistic, n1, n2)))  # noqa: B023
                private_s = min(private_s, per_call(lambda: private_ks_p_value(statistic, n1, n2)))  # noqa: B023
            p, baseline = stats.ks_p_value(statistic, n1, n2), private_ks_p_value(statistic, n1, n2)
            same = abs(p - baseline) <= 1e-12 * max(baseline, 1e-300)
            print(
                f"{f'{n1:,} x {n2:,}':>15} {label:>8} {statistic:>7.4f} {p:>9.3g} {public_s * 1e3:>9.3f}"
                f" {private_s * 1e3:>10.3f} {public_s / private_s:>9.2f} {(public_s - private_s) * 1e3:>6.2f}"
                f" {same!s:>5}",
                flush=True,
            )


# ------------------------------------------------------------------------------ competitors
def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> Callable[[], Any]:
    from evidently import Report  # type: ignore[import-not-found,unused-ignore]
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found,unused-ignore]

    Report([DataDriftPreset()]).run(current.head(2000), reference.head(2000))
    return lambda: Report([DataDriftPreset()]).run(current, reference)


def run_alibi(reference: pd.DataFrame, current: pd.DataFrame) -> Callable[[], Any]:
    from alibi_detect.cd import TabularDrift  # type: ignore[import-not-found,unused-ignore]

    def alibi() -> Any:
        ref, cur = reference.copy(), current.copy()
        categories: dict[int, None] = {}
        for j, name in enumerate(ref.columns):
            if name in CATEGORICAL:
                codes, _ = pd.factorize(pd.concat([ref[name], cur[name]]))
                ref[name], cur[name] = codes[: len(ref)], codes[len(ref) :]
                categories[j] = None
        detector = TabularDrift(ref.to_numpy(np.float32), p_val=0.05, categories_per_feature=categories)
        return detector.predict(cur.to_numpy(np.float32))

    return alibi


RUNNERS = {"ours": run_ours, "evidently": run_evidently, "alibi": run_alibi}


# ------------------------------------------------------------------------------ worker
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(tool: str, rows: int, repeat: int, measure: str) -> None:
    """One tool on freshly generated data, in this process: seconds or peak memory, as one JSON line."""
    import warnings

    warnings.filterwarnings("ignore")
    reference, current = make_frame(rows, 1, False), make_frame(rows, 2, True)
    func = RUNNERS[tool](reference, current)
    out: dict[str, Any] = {"data": fingerprint(reference)}
    if measure == "time":
        out["seconds"], _ = best_of(func, 1 if tool == "evidently" else repeat)
    else:
        gc.collect()
        try:
            before = _status_kib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
            func()
            out["peak_mib"], out["scope"] = (_status_kib("VmHWM") - before) / 1024, "above the data"
        except OSError:
            import resource

            func()
            out["peak_mib"], out["scope"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process"
    print(json.dumps(out))


def in_subprocess(python: str, tool: str, rows: int, repeat: int, measure: str) -> dict[str, Any]:
    command = [python, __file__, "--worker", tool, "--measure", measure, "--rows", str(rows), "--repeat", str(repeat)]
    env = dict(os.environ)
    if measure == "memory":
        # Fixed glibc thresholds: large blocks are always mapped and returned when freed, so the
        # resident peak is what the tool holds, not what earlier frees left in the heap.
        env.update(MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{tool} at {rows:,} rows failed under {python}: {' | '.join(tail)}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare", metavar="PYTHON", help="interpreter with evidently and alibi-detect installed")
    parser.add_argument("--categories", action="store_true", help="only category counting against its baseline")
    parser.add_argument("--ks", action="store_true", help="only exact KS p-values against their private-API baseline")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("time", "memory"), default="time", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows[0], args.repeat, args.measure)
        return
    if args.categories:
        categories_only(args.rows, args.repeat)
        return
    if args.ks:
        ks_only(args.repeat)
        return

    from mlops.data.profile import profile_frame
    from mlops.drift import drift_report
    from mlops.drift.sides import Reference

    spec = make_spec()
    load = os.getloadavg()[0]
    print(f"drift benchmark on {os.cpu_count()} CPU(s), load average {load:.1f} at the start")
    print("drift report, rows x (20 numeric + 5 categorical), drift injected in", " ".join(sorted(DRIFTED)))
    print("floor = one np.sort of every numeric column of both sides; data / profile = reference given as")
    print("data / as its stored profile; peak = peak resident MiB above the two frames, one process per tool")
    head = f"{'rows':>10} {'floor s':>8} {'data s':>8} {'x floor':>7} {'profile s':>9} {'x floor':>7} {'flags ok':>8}"
    if args.compare:
        head += f" {'evidently s':>11} {'x ours':>7} {'alibi s':>8} {'x ours':>7}"
    head += f" {'peak ours':>9}" + (f" {'peak evidently':>14}" if args.compare else "")
    print(head)
    summary: dict[str, float] = {}
    for rows in args.rows:
        reference, current = make_frame(rows, 1, False), make_frame(rows, 2, True)
        stored = Reference.from_profile(profile_frame(reference, spec))
        ours = run_ours(reference, current)
        # Rounds interleave the three, so a change in the machine's load hits them alike.
        floor_s = data_s = profile_s = float("inf")
        for _ in range(args.repeat):
            floor_s = min(floor_s, best_of(lambda: floor(reference, current), 1)[0])  # noqa: B023
            seconds, report = best_of(ours, 1)
            data_s = min(data_s, seconds)
            seconds, by_profile = best_of(lambda: drift_report(stored, current, spec), 1)  # noqa: B023
            profile_s = min(profile_s, seconds)
        ok = set(report.drifted_features) == DRIFTED and set(by_profile.drifted_features) == DRIFTED
        line = (
            f"{rows:>10,} {floor_s:>8.3f} {data_s:>8.3f} {data_s / floor_s:>7.2f}"
            f" {profile_s:>9.3f} {profile_s / floor_s:>7.2f} {ok!s:>8}"
        )
        mine = in_subprocess(sys.executable, "ours", rows, args.repeat, "memory")
        if args.compare:
            evidently = in_subprocess(args.compare, "evidently", rows, args.repeat, "time")
            evidently.update(in_subprocess(args.compare, "evidently", rows, args.repeat, "memory"))
            alibi = in_subprocess(args.compare, "alibi", rows, args.repeat, "time")
            for other in (evidently, alibi):
                if other["data"] != fingerprint(reference):
                    print(f"  warning: {other} saw other data ({fingerprint(reference)} here)")
            line += (
                f" {evidently['seconds']:>11.2f} {evidently['seconds'] / data_s:>7.1f}"
                f" {alibi['seconds']:>8.2f} {alibi['seconds'] / data_s:>7.1f}"
            )
            line += f" {mine['peak_mib']:>9.0f} {evidently['peak_mib']:>14.0f}"
            summary.update(evidently=evidently["seconds"] / data_s, alibi=alibi["seconds"] / data_s)
            summary.update(memory=mine["peak_mib"] / max(evidently["peak_mib"], 1e-9))
        else:
            line += f" {mine['peak_mib']:>9.0f}"
        print(line, flush=True)
        if not ok:
            print(f"  drifted: {sorted(report.drifted_features)} / {sorted(by_profile.drifted_features)}")
        summary.update(rows=rows, data=data_s / floor_s, profile=profile_s / floor_s)
    categories_only(args.rows, args.repeat)
    ks_only(args.repeat)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (times are best of {args.repeat}; Evidently: one run)")
    largest = f"{int(summary['rows']):,} rows"
    at_target = summary["rows"] >= TARGET_ROWS

    def target(text: str) -> str:
        return f" [target {text}]" if at_target else f" [targets are set at {TARGET_ROWS:,} rows]"

    for side in ("data", "profile"):
        ratio = summary[side]
        print(f"at {largest}: report (reference as {side}) {ratio:.2f}x the floor" + target(f"<= {FLOOR_TARGET:g}x"))
    if args.compare:
        print(f"at {largest}: {summary['evidently']:.1f}x faster than Evidently" + target(f">= {EVIDENTLY_TARGET:g}x"))
        print(f"at {largest}: {summary['alibi']:.1f}x faster than alibi-detect" + target(f">= {ALIBI_TARGET:g}x"))
        print(f"at {largest}: peak memory {summary['memory']:.2f}x Evidently's" + target("< 1x"))
    else:
        print("Evidently / alibi-detect comparison: make bench-drift-compare (its own virtual environment)")


if __name__ == "__main__":
    main()
