"""Benchmark: how often feature drift cries wolf on real data, next to how often it finds a real shift.

Data: the real datasets of the conformance suite (tests/conformance), read from the PyPI packages
that ship them (ISLP's Default, Bikeshare and Caravan, palmerpenguins), each with the spec written
for it by hand (its `monitoring` settings: p-value 0.05, Benjamini-Hochberg across features).

For every dataset and seed (``--seeds``, default 200), in the same run:

* ``halves`` (no shift): the rows are shuffled and split into two halves, reference and current;
* ``window`` (no shift): a random window of ``--window`` rows (at most a quarter of the data)
  against all the other rows, as a monitor compares a day's requests with the training data;
* ``shift`` (a real covariate shift): a window of the same size drawn only from the rows of one
  group (Default: students; penguins: Biscoe island; Bikeshare: winter, season 1; Caravan:
  purchasing power class 6 and above) against a random half of all rows;
* ``half-shift``: the same window with half its rows from that group and half from all rows.

``mlops.drift.drift_report`` judges each pair (reference given as data: every statistic exact,
as the stored profile is for columns of at most 5,000 values). Printed per dataset and scenario:
the share of reports with a ``drifted`` verdict (false alarms without a shift, detections with
one), the share of feature comparisons that drifted, and the features that drifted most often.
Run: ``python benchmarks/bench_drift_false_alarms.py [--seeds 200] [--window 500] [--dataset KEY]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared" / "python")]

from mlops.drift import drift_report  # noqa: E402
from tests.conformance.datasets import BIKESHARE, CARAVAN, DEFAULT, PENGUINS, RealDataset  # noqa: E402

# The shifted group, and the columns that define it (they shift by construction; the other
# features shift only as far as the world ties them to the group).
SHIFTS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series], frozenset[str]]] = {
    DEFAULT.key: ("students only", lambda f: f["student"] == "Yes", frozenset({"student"})),
    PENGUINS.key: ("Biscoe island only", lambda f: f["island"] == "Biscoe", frozenset({"island"})),
    BIKESHARE.key: ("winter only (season 1)", lambda f: f["season"] == 1, frozenset({"season", "mnth", "day"})),
    CARAVAN.key: ("purchasing power class >= 6", lambda f: f["MKOOPKLA"] >= 6, frozenset({"MKOOPKLA"})),
}
SCENARIOS = ("halves", "window", "shift", "half-shift")


@dataclass
class Tally:
    reports: int = 0
    drifted_reports: int = 0
    comparisons: int = 0
    drifted_comparisons: int = 0
    missing_rate_alerts: int = 0
    # Reports where a feature other than the shift's defining columns drifted.
    drifted_beyond: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.features: Counter[str] = Counter()

    def add(
        self, reference: pd.DataFrame, current: pd.DataFrame, dataset: RealDataset, defining: frozenset[str]
    ) -> None:
        started = time.perf_counter()
        report = drift_report(reference, current, dataset.spec)
        self.seconds += time.perf_counter() - started
        judged = [f for f in report.features if f.status in ("ok", "drifted")]
        self.reports += 1
        self.drifted_reports += int(report.drifted)
        self.comparisons += len(judged)
        self.drifted_comparisons += sum(f.drifted for f in judged)
        self.missing_rate_alerts += len(report.missing_rate_alerts)
        self.features.update(f.name for f in judged if f.drifted)
        self.drifted_beyond += int(any(f.drifted and f.name not in defining for f in judged))


def pairs(
    frame: pd.DataFrame, scenario: str, seed: int, window: int, group: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    if scenario == "halves":
        half = len(frame) // 2
        return frame.iloc[order[:half]], frame.iloc[order[half:]]
    if scenario == "window":
        return frame.iloc[order[window:]], frame.iloc[order[:window]]
    reference = frame.iloc[order[: len(frame) // 2]]
    members = rng.permutation(np.flatnonzero(group))
    if scenario == "shift":
        return reference, frame.iloc[members[:window]]
    mixed = np.concatenate([members[: window // 2], order[len(frame) // 2 :][: window - window // 2]])
    return reference, frame.iloc[mixed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--window", type=int, default=500, help="window rows (at most a quarter of the data)")
    parser.add_argument("--dataset", action="append", choices=sorted(SHIFTS), help="only these (repeatable)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these (repeatable)")
    args = parser.parse_args()

    datasets = [d for d in (DEFAULT, PENGUINS, BIKESHARE, CARAVAN) if not args.dataset or d.key in args.dataset]
    print(f"feature drift on real data, {args.seeds} seeds per scenario; reference given as data")
    header = f"{'dataset':<16} {'scenario':<11} {'rows ref/cur':>13} {'reports drifted':>16} {'features drifted':>17}"
    print(header + "  most often drifted")
    summary: list[tuple[str, dict[str, float], float, frozenset[str]]] = []
    for dataset in datasets:
        frame = dataset.frame()
        spec = dataset.spec
        label, select, defining = SHIFTS[dataset.key]
        group = select(frame).to_numpy()
        window = min(args.window, len(frame) // 4, int(group.sum()))
        settings = spec.monitoring
        print(
            f"-- {dataset.key}: {len(frame):,} rows, {len(spec.features)} features; p_value {settings.p_value}, "
            f"large_window_rows {settings.large_window_rows}; shift: {label} ({int(group.sum()):,} rows)"
        )
        drift_report(frame, frame.head(50), spec)  # warm-up: imports and first calls are not timed
        rates: dict[str, float] = {}
        beyond = 0.0
        for scenario in args.scenario or SCENARIOS:
            tally = Tally()
            sizes = ""
            for seed in range(args.seeds):
                reference, current = pairs(frame, scenario, seed, window, group)
                sizes = sizes or f"{len(reference)}/{len(current)}"
                tally.add(reference, current, dataset, defining)
            rates[scenario] = tally.drifted_reports / tally.reports
            if scenario == "shift":
                beyond = tally.drifted_beyond / tally.reports
            common = ", ".join(f"{name} {count / tally.reports:.0%}" for name, count in tally.features.most_common(3))
            print(
                f"{dataset.key:<16} {scenario:<11} {sizes:>13} "
                f"{tally.drifted_reports:>5}/{tally.reports:<4} {rates[scenario]:>5.1%} "
                f"{tally.drifted_comparisons:>6}/{tally.comparisons:<5} "
                f"{tally.drifted_comparisons / max(tally.comparisons, 1):>5.1%}  {common or '-'}"
                + (f"  (missing-rate alerts: {tally.missing_rate_alerts})" if tally.missing_rate_alerts else "")
                + f"  [{tally.seconds / tally.reports * 1000:.0f} ms/report]"
            )
        summary.append((dataset.key, rates, beyond, defining))
    print("summary per report: false alarms (halves, window: no shift) vs detections (shift, half-shift)")
    for key, rates, beyond_rate, defining in summary:
        shown = "   ".join(f"{name} {rate:6.1%}" for name, rate in rates.items())
        other = f" (shift on a feature other than {', '.join(sorted(defining))}: {beyond_rate:.1%})"
        print(f"  {key:<16} {shown}" + (other if "shift" in rates else ""))


if __name__ == "__main__":
    main()
