"""No leakage on the local cloud: the champion is never scored on rows it trained on.

The real state machines, functions and CLI, with scikit-learn's diabetes data (442 rows, a
regression) written to CSV and a spec written here. The champion trains on the first 300 rows;
the next dataset version is those rows plus the 142 others (the usual "append new data"
retrain). Which rows the champion trained on is worked out here from row positions and compared
by content with pandas, not with the platform's own row fingerprints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops_local.testing import LocalCloudProcess, signed_as

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "leakage"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

pytestmark = pytest.mark.xdist_group("local-cloud")


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame  # the columns as shipped: ten features, then target


def spec(seed: int) -> dict[str, Any]:
    return {
        "name": MODEL,
        "task": "regression",
        "target": {"name": "target"},
        "features": [{"name": name, "type": "float"} for name in FEATURES],
        "training": {"estimator": "sklearn.linear_model.Ridge", "test_size": 0.2, "seed": seed},
        "deployment": {"strategy": "all_at_once"},
    }


def mlops(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else None


def put_spec(env: dict[str, str], tmp_path: Path, seed: int) -> None:
    path = tmp_path / f"spec-{seed}.yaml"
    path.write_text(yaml.safe_dump(spec(seed)))
    mlops(env, "spec", "put", str(path), "--actor", "alice")


def upload(env: dict[str, str], tmp_path: Path, frame: pd.DataFrame, name: str) -> dict[str, Any]:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    uploaded = mlops(signed_as(env, "scientist"), "data", "upload", str(path), "--model", MODEL, "--wait")
    assert uploaded["run"]["status"] == "SUCCEEDED", uploaded["run"]
    return dict(uploaded)


def s3_json(aws: Callable[[str], Any], uri: str) -> Any:
    bucket, key = uri[5:].split("/", 1)
    return json.loads(aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def run_facts(env: dict[str, str], aws: Callable[[str], Any], uploaded: dict[str, Any]) -> dict[str, Any]:
    """The registered version's evaluation document and the positions of its holdout rows."""
    version = uploaded["run"]["output"]["version"]
    shown = mlops(env, "models", "show", MODEL, "--version", str(version))
    evaluation = s3_json(aws, shown["tags"]["evaluation_uri"])
    holdout = s3_json(aws, evaluation["split"]["holdout_rows_uri"])["rows"]
    return {"version": version, "evaluation": evaluation, "holdout": holdout}


def rows_in(frame: pd.DataFrame, other: pd.DataFrame) -> int:
    """How many rows of ``frame`` equal (every column) some row of ``other``."""
    merged = frame.merge(other.drop_duplicates(), how="inner", on=list(frame.columns))
    return len(merged)


def wait_for_champion(env: dict[str, str], version: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if mlops(env, "models", "show", MODEL)["model"]["champion"] == version:
            return
        time.sleep(0.5)
    raise AssertionError(f"version {version} did not become champion within {timeout} s")


def test_the_champion_is_never_scored_on_rows_it_trained_on(
    local_env: dict[str, str], tmp_path: Path, aws: Callable[[str], Any], local_cloud: LocalCloudProcess
) -> None:
    data = diabetes()
    v1, v2 = data.iloc[:300], data  # v2 = v1 + 142 appended rows
    # GIVEN a champion trained on v1 (uploaded by the scientist, approved by someone else)
    put_spec(local_env, tmp_path, seed=42)
    first = run_facts(local_env, aws, upload(local_env, tmp_path, v1, "diabetes.csv"))
    assert first["evaluation"]["champion"] is None
    approved = mlops(local_env, "approve", MODEL, str(first["version"]), "--comment", "first model")
    assert approved["decision"] == "approved"
    wait_for_champion(local_env, first["version"])
    champion_training = v1.drop(index=first["holdout"])

    # WHEN v2 (v1 plus new rows) is uploaded
    second = run_facts(local_env, aws, upload(local_env, tmp_path, v2, "diabetes.csv"))
    # THEN the new holdout holds none of the champion's training rows (by content)
    holdout = v2.iloc[second["holdout"]]
    assert rows_in(holdout, champion_training) == 0
    # AND it does hold rows the champion could be scored on: old holdout rows and new rows
    assert len(set(second["holdout"]) & set(first["holdout"])) > 0 and max(second["holdout"]) >= 300
    # AND the evaluation records the check: nothing to exclude, nothing seen among the scored rows
    champion = second["evaluation"]["champion"]
    assert champion["version"] == first["version"] and champion["seen_check"] == "fingerprints"
    assert (champion["seen_rows_scored"], champion["seen_rows_excluded"]) == (0, 0)
    assert champion["rows_scored"] == len(second["holdout"]) == champion["holdout_rows"]
    assert second["evaluation"]["split"]["method"] == "hash"
    # AND the model card says so
    card = mlops(local_env, "models", "card", MODEL, str(second["version"]))["card"]
    assert f"scored on {len(second['holdout'])} of the {len(second['holdout'])} holdout rows" in card
    assert "Holdout rows the champion had trained on: 0 scored (0 excluded before scoring" in card
    assert "- Holdout chosen by: hash of each row's every feature and the target, seed 42" in card

    # WHEN the spec's seed changes, so the same rows are dealt again, and v2 is uploaded again
    put_spec(local_env, tmp_path, seed=7)
    third = run_facts(local_env, aws, upload(local_env, tmp_path, v2, "diabetes-reseeded.csv"))
    # THEN some of the champion's training rows are in the new holdout, and exactly those were excluded
    holdout = v2.iloc[third["holdout"]]
    seen = rows_in(holdout, champion_training)
    assert seen > 0
    champion = third["evaluation"]["champion"]
    assert champion["seen_rows_excluded"] == seen and champion["seen_rows_scored"] == 0
    assert champion["rows_scored"] == len(third["holdout"]) - seen
    # AND the candidate was compared with the champion on those same rows
    assert set(champion["candidate_metrics"]) == set(champion["metrics"]) == {"rmse", "mae", "r2"}
    card = mlops(local_env, "models", "card", MODEL, str(third["version"]))["card"]
    assert f"Holdout rows the champion had trained on: 0 scored ({seen} excluded before scoring" in card
