"""Benchmark: the whole training pipeline on the local cloud at 10k and 100k rows (issue 6).

For each size: upload the churn example through ``mlops data upload --wait`` and time the run,
step by step (from the execution history). Baseline, measured in the same run on the same data:
the same work done directly in this process with no orchestration: validate the file, then for
each search candidate train + evaluate, then evaluate the best and profile the data. The ratio
pipeline / direct is what the serverless orchestration costs locally (S3 round trips, four
parallel Lambda workers on this machine's cores, Step Functions, registry and audit writes).

Run: ``python benchmarks/bench_pipeline.py [--rows 10000 100000]`` (synthesizes the dev stage first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from generate import generate  # noqa: E402

from mlops.data.profile import profile_frame  # noqa: E402
from mlops.data.validation.api import validate_file  # noqa: E402
from mlops.spec.model import load_spec  # noqa: E402
from mlops.training.evaluation import evaluate  # noqa: E402
from mlops.training.fit import train  # noqa: E402
from mlops.training.frames import load_training_frame  # noqa: E402
from mlops.training.search import candidates  # noqa: E402
from mlops.training.split import split_for_training  # noqa: E402
from mlops_local.testing import LocalCloudProcess, synthesize_once  # noqa: E402

SPEC = ROOT / "examples" / "specs" / "churn.yaml"


def direct(path: Path) -> float:
    spec = load_spec(SPEC)
    started = time.perf_counter()
    validate_file(path, spec)
    frame = load_training_frame(path, spec)
    results = []
    for params in candidates(spec):
        result = train(frame, spec, params_override=params)
        results.append((evaluate(result.pipeline, result.holdout, spec).finite_metrics()["roc_auc"], result))
    best = max(results, key=lambda item: item[0])[1]
    train_frame, holdout = split_for_training(frame, spec)
    evaluate(best.pipeline, holdout, spec)
    profile_frame(train_frame, spec)
    return time.perf_counter() - started


def seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    assembly = synthesize_once("dev", ROOT)
    cloud = LocalCloudProcess(assembly, "--no-schedules", "--warm")
    cloud.start()
    env = {**os.environ, **cloud.environ()}
    mlops = str(Path(sys.executable).parent / "mlops")
    try:
        subprocess.run([mlops, "spec", "put", str(SPEC)], env=env, check=True, capture_output=True)
        print(f"{'rows':>8} {'pipeline s':>11} {'direct s':>9} {'ratio':>6}  where the pipeline's time goes")
        with tempfile.TemporaryDirectory() as folder:
            for rows in args.rows:
                path = Path(folder) / f"churn-{rows}.csv"
                generate("churn", rows, 7).to_csv(path, index=False)
                baseline = direct(path)
                started = time.perf_counter()
                out = subprocess.run(
                    [mlops, "--json", "data", "upload", str(path), "--model", "churn", "--wait", "--timeout", "1800"],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                elapsed = time.perf_counter() - started
                run = json.loads(out.stdout)["run"]
                assert run["status"] == "SUCCEEDED", run
                steps = [
                    (s["name"], seconds(s["started"], s["ended"]))
                    for s in run["steps"]
                    if s["name"]
                    in ("Validate", "PlanTraining", "TrainCandidates", "Evaluate", "CheckOnnx", "Gate", "Register")
                ]
                where = ", ".join(f"{name} {value:.1f}" for name, value in steps)
                print(f"{rows:>8} {elapsed:>11.1f} {baseline:>9.1f} {elapsed / baseline:>6.2f}  {where}")
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
