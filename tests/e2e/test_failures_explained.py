"""Failures explained where they happen, on the local cloud: real upload API, S3, Step Functions and CLI.

- An invalid dataset uploaded with ``mlops data upload --wait`` exits 1 (the README's table) and
  prints the failed checks with example rows and the validation report's location.
- A run whose training fails (a search space value the estimator refuses at fit: the names pass
  ``spec put``, the value does not pass ``fit``) exits 1 and prints the failing step (the Map
  item), the error and the estimator's message, not the generic ``PipelineFailed`` text; the
  same run's PlanTraining failed once (an injected Lambda error) and was retried.
- ``runs show`` of it gives each step's real state: PlanTraining SUCCEEDED after 2 attempts,
  TrainCandidate FAILED in the failing item only, RecordFailure SUCCEEDED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_local.testing import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[2]
MLOPS = str(Path(sys.executable).parent / "mlops")
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

ROWS = 300  # the churn spec's row_count.min is 200


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )


def put_spec(env: dict[str, str], tmp: Path, name: str, training: dict[str, Any] | None = None) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    spec["name"] = name
    spec["training"].update(training or {})
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    stored = cli(env, "spec", "put", str(path), "--actor", "alice")
    assert stored.returncode == 0, stored.stderr


@pytest.fixture(scope="module")
def envs(local_cloud: LocalCloudProcess) -> dict[str, dict[str, str]]:
    return {name: local_cloud.environ(name) for name in ("testing", "scientist")}


def test_invalid_data_with_wait_exits_1_and_prints_the_failed_checks_and_the_report(
    envs: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    put_spec(envs["testing"], tmp_path, "fx-invalid")
    frame = generate("churn", ROWS, 21)
    frame.loc[[0, 3, 4], "tenure_months"] = 500  # above the spec's max 72
    frame.loc[[1], "contract"] = "weekly"  # not an allowed value
    path = tmp_path / "invalid.csv"
    frame.to_csv(path, index=False)
    # WHEN the scientist uploads it and waits
    result = cli(envs["scientist"], "data", "upload", str(path), "--model", "fx-invalid", "--wait")
    # THEN exit 1: a check failed (the README's table), with the checks and where the report is
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = result.stdout
    assert "failed: the dataset is invalid (Validate): 2 failed checks (column.max, column.allowed)" in out, out
    assert "FAIL column.max [tenure_months] (3 rows)" in out, out
    assert "row 1: value '500'" in out, out
    assert "FAIL column.allowed [contract] (1 row)" in out and "value 'weekly'" in out, out
    version = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("version "))
    assert f"/reports/fx-invalid/datasets/{version}/validation.json" in out, out
    assert "PipelineFailed" not in out and "validation.report_uri in the Validate" not in out, out
    assert "the dataset is invalid" in result.stderr and "report s3://" in result.stderr, result.stderr


def test_a_run_failing_in_training_names_the_step_error_and_cause(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    model = "fx-fit"
    # GIVEN a spec whose names pass `spec put` but whose second candidate's value fails at fit
    put_spec(
        envs["testing"],
        tmp_path,
        model,
        {
            "params": {"max_iter": 20, "max_depth": 3},
            "search": {"strategy": "grid", "space": {"learning_rate": [0.1, -1.0]}, "metric": "roc_auc"},
        },
    )
    # AND PlanTraining's first invocation fails (a Lambda service error: retried by the state machine)
    local_cloud.add_faults({"kind": "function.error", "target": "TrainingPlanTraining", "match": [model], "count": 1})
    path = tmp_path / "train.csv"
    generate("churn", ROWS, 22).to_csv(path, index=False)
    # WHEN the scientist uploads with --wait
    result = cli(envs["scientist"], "data", "upload", str(path), "--model", model, "--wait")
    # THEN exit 1, and the failing step, error and cause are printed, not the generic Fail state's text
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = result.stdout
    cause = (
        "training.search.space.learning_rate: The 'learning_rate' parameter of HistGradientBoostingClassifier "
        "must be a float in the range (0.0, inf). Got -1.0 instead."
    )
    assert "  failed at TrainCandidate (item 1 of 2 in TrainCandidates)\n    error:  SpecError\n" in out, out
    assert f"    cause:  {cause}" in out, out
    assert "A pipeline step failed after its retries" not in out, out
    run_name = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("run "))
    assert f"recorded: registry RUN#{run_name} (step TrainCandidates)" in out, out
    assert f"at TrainCandidate: SpecError: {cause}" in result.stderr, result.stderr
    # AND the step lines say what really happened
    assert "  SUCCEEDED PlanTraining (2 attempts, retried after Lambda.ServiceException)" in out, out
    assert "  FAILED    TrainCandidates (2 items; failed: item 1)" in out, out
    assert "  FAILED      TrainCandidate x2 (1 failed: item 1): SpecError: training.search.space" in out, out
    assert "  SUCCEEDED RecordFailure\n" in out, out
    # WHEN runs show --json reads the same run
    shown = cli(envs["testing"], "runs", "show", run_name, "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    steps = {s["name"]: s for s in run["steps"]}
    # THEN each step's real state: retried-and-succeeded, failed in one item, the failure path ran fine
    assert (steps["PlanTraining"]["status"], steps["PlanTraining"]["attempts"]) == ("SUCCEEDED", 2)
    assert steps["PlanTraining"]["retries"] == 1 and steps["PlanTraining"]["error"] == "Lambda.ServiceException"
    assert (steps["TrainCandidates"]["status"], steps["TrainCandidates"]["iterations"]) == ("FAILED", 2)
    train = steps["TrainCandidate"]
    assert (train["status"], train["parent"], train["failed_iterations"], train["error"]) == (
        "FAILED",
        "TrainCandidates",
        [1],
        "SpecError",
    )
    for name in ("Validate", "FailedTrainCandidates", "RecordFailure", "NotifyFailure"):
        assert steps[name]["status"] == "SUCCEEDED", steps[name]
    assert (steps["PipelineFailed"]["status"], steps["PipelineFailed"]["kind"]) == ("FAILED", "Fail")
    failure = run["failure"]
    assert (failure["step"], failure["error"], failure["cause"], failure["iteration"]) == (
        "TrainCandidate",
        "SpecError",
        cause,
        1,
    )
    assert failure["recorded"]["step"] == "TrainCandidates" and failure["recorded"]["error"] == "SpecError"
    # AND runs wait on the finished run exits 1 as well
    waited = cli(envs["testing"], "runs", "wait", run_name, "--timeout", "30")
    assert waited.returncode == 1 and "at TrainCandidate: SpecError" in waited.stderr, waited.stderr


def test_a_wait_that_gives_up_exits_3(envs: dict[str, dict[str, str]]) -> None:
    # a run that does not exist (yet) is waited for until --timeout: the wait gives up, exit 3
    result = cli(envs["testing"], "runs", "wait", "fx-nothing-0000", "--timeout", "1")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "still not started after 1 s (the wait gave up; the run goes on)" in result.stderr, result.stderr
