"""Benchmark: copying Step Functions state data on the local cloud, ``json_copy`` against ``copy.deepcopy``.

moto's interpreter copies a state's data several times per state (its input when entered, read
and reset; its result; the history event). On the local cloud a batch job's child execution gets
``batch_size`` rows (``{"Items": [...], "BatchInput": {"job": ...}}``); the 200,000-row batch test
spent about 40% of the cloud process's CPU in ``copy.deepcopy`` before the interpreter was given
:func:`mlops_local.patches.json_copy`. The rows here are ISLP Default's real rows (the batch test's
data), shaped as the ItemSelector shapes them. Both copies run in this process, same run; the copies
are checked equal to the original.

Run: ``python benchmarks/bench_state_copy.py [--rows N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_local.patches import json_copy

ROOT = Path(__file__).resolve().parents[1]


def child_input(rows: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.conformance.datasets import DEFAULT  # the pinned public dataset (requirements-data.txt)

    header, lines = DEFAULT.lines()
    names = next(csv.reader([header.decode()]))
    items = [
        {"row": index, "values": dict(zip(names, next(csv.reader([line.decode()])), strict=True))}
        for index, line in enumerate(lines[:rows])
    ]
    job = {"bucket": "mlops-dev-data", "input_key": "batch/m/nightly.csv", "batch_size": rows, "max_concurrency": 4}
    return {"Items": items, "BatchInput": {"job": job}}


def seconds(copier: Callable[[Any], Any], data: dict[str, Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        copied = copier(data)
        best = min(best, time.perf_counter() - started)
        assert copied == data and copied["Items"] is not data["Items"]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows in one child execution's input (dev batch_size)")
    parser.add_argument("--repeat", type=int, default=20, help="copies timed per method (the best counts)")
    args = parser.parse_args()
    data = child_input(args.rows)
    baseline = seconds(copy.deepcopy, data, args.repeat)
    ours = seconds(json_copy, data, args.repeat)
    print(f"rows per child input: {len(data['Items'])}")
    print(f"copy.deepcopy (baseline): {baseline * 1000:.2f} ms per copy")
    print(f"json_copy:                {ours * 1000:.2f} ms per copy")
    print(f"ratio (deepcopy / json_copy): {baseline / ours:.2f}x faster")


if __name__ == "__main__":
    main()
