"""The registry as a data scientist reads it, on the local cloud: candidates, parameters, archive.

Model ``arch`` v1 comes from the training pipeline (a grid search of two candidates) and becomes
champion through the deployment pipeline (approval not required), which also creates its drift
check schedule. Then the real ``mlops`` command shows the run's candidates and the version's
parameters, and archives and unarchives the model while the inference endpoint is asked over
signed HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.registry.versions import Registry
from mlops_local.testing import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "arch"
GROUP = "mlops-dev-monitoring"


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(local_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``arch`` v1 trained by a two-candidate grid and deployed as champion (its schedule created)."""
    cloud = local_cloud
    env = cloud.environ()
    tmp = tmp_path_factory.mktemp("archive")
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    spec.update(name=MODEL, approval={"required": False}, deployment={"strategy": "all_at_once"})
    spec["training"]["params"]["max_iter"] = 40
    spec["training"]["search"] = {"strategy": "grid", "space": {"max_depth": [2, 4]}, "metric": "roc_auc"}
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert mlops(env, "spec", "put", str(tmp / "spec.yaml"), "--actor", "alice").returncode == 0
    frame = generate("churn", 800, 11)
    frame.to_csv(tmp / "train.csv", index=False)
    uploaded = mlops(env, "--json", "data", "upload", str(tmp / "train.csv"), "--model", MODEL, "--wait")
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    run = json.loads(uploaded.stdout)["run"]
    assert run["status"] == "SUCCEEDED", json.dumps(run, indent=1)[:3000]
    version = run["output"]["version"]
    registry = Registry.for_dynamodb(
        cloud.client("dynamodb"),
        registry_table=parameter(cloud, "registry-table"),
        audit_table=parameter(cloud, "audit-table"),
    )
    wait_for(lambda: registry.get_model(MODEL).champion == version, 120, "the deployment to make v1 champion")
    rows = json.loads(frame.drop(columns=["churned"]).head(3).to_json(orient="records", date_format="iso"))
    for row in rows:
        row["signup_date"] = str(row["signup_date"])[:10]
        row["senior"] = bool(row["senior"])
    return {
        "cloud": cloud,
        "env": env,
        "tmp": tmp,
        "run": run["name"],
        "version": version,
        "registry": registry,
        "records": rows,
    }


def predict(world: dict[str, Any]) -> tuple[int, Any]:
    status, answer = world["cloud"].api("POST", f"models/{MODEL}/predict", {"records": world["records"]})
    return int(status), answer


def test_runs_show_lists_both_candidates_best_first(world: dict[str, Any]) -> None:
    # WHEN the run is shown, as text and as JSON
    text = mlops(world["env"], "runs", "show", world["run"])
    found = mlops(world["env"], "--json", "runs", "show", world["run"])
    # THEN both candidates of the grid are there, best first, the chosen one marked
    assert text.returncode == 0 and found.returncode == 0, text.stderr
    assert "  candidates: 2 trained, ranked by roc_auc (higher is better)" in text.stdout, text.stdout
    candidates = json.loads(found.stdout)["candidates"]["candidates"]
    assert sorted(c["params"]["max_depth"] for c in candidates) == [2, 4]
    assert candidates[0]["score"] >= candidates[1]["score"] and candidates[0]["chosen"]
    chosen = world["registry"].get_version(MODEL, world["version"]).params["max_depth"]
    assert candidates[0]["params"]["max_depth"] == chosen
    [marked] = [line for line in text.stdout.splitlines() if line.startswith("  *    1")]
    assert f"max_depth={chosen}" in marked


def test_models_show_prints_the_chosen_parameters(world: dict[str, Any]) -> None:
    shown = mlops(world["env"], "models", "show", MODEL)
    assert shown.returncode == 0, shown.stderr
    params = world["registry"].get_version(MODEL, world["version"]).params
    assert f"HistGradientBoostingClassifier(learning_rate=0.1, max_depth={params['max_depth']}, max_iter=40" in (
        shown.stdout
    ), shown.stdout


def test_archive_stops_serving_schedule_and_uploads_and_unarchive_restores_them(world: dict[str, Any]) -> None:
    env, registry, scheduler = world["env"], world["registry"], world["cloud"].client("scheduler")
    assert scheduler.get_schedule(Name=MODEL, GroupName=GROUP)["State"] == "ENABLED"
    # WHEN the model is archived
    archived = mlops(env, "models", "archive", MODEL, "--reason", "replaced by churn", "--actor", "dana")
    assert archived.returncode == 0, archived.stderr
    assert "monitoring  schedule disabled" in archived.stdout, archived.stdout
    # THEN predictions are refused with 410 naming the model (every worker, once its alias TTL of 30 s ran out)
    streak: list[int] = []

    def refused() -> bool:
        status, answer = predict(world)
        streak.append(status)
        if status == 410:
            assert answer["error"] == "model_archived" and f"model '{MODEL}' is archived" in answer["message"]
        return streak[-3:] == [410, 410, 410]

    wait_for(refused, 60, "three refusals in a row")
    cli = mlops(env, "predict", MODEL, "--data", json.dumps({"record": world["records"][0]}))
    assert cli.returncode == 3 and f"model '{MODEL}' is archived" in cli.stderr and "(HTTP 410)" in cli.stderr
    # the listing hides it unless --all, the schedule is disabled, an upload is refused before it is stored
    assert f"\n{MODEL} " not in mlops(env, "models", "list").stdout
    assert "ARCHIVED by dana" in mlops(env, "models", "list", "--all").stdout
    assert scheduler.get_schedule(Name=MODEL, GroupName=GROUP)["State"] == "DISABLED"
    upload = mlops(env, "data", "upload", str(world["tmp"] / "train.csv"), "--model", MODEL)
    assert upload.returncode == 3 and f"model '{MODEL}' is archived (replaced by churn)" in upload.stderr
    # (the upload API itself refuses too, signed by the scientist: no grant, no presigned PUT)
    request = {"name": "late.csv", "sha256": "0" * 64, "size": 10}
    status, answer = world["cloud"].api("POST", f"models/{MODEL}/uploads", request, identity="scientist")
    assert status == 409 and f"model '{MODEL}' is archived" in answer["error"], (status, answer)
    # AND nothing is deployed or rolled back while archived (exit 3, saying how to restore it)
    for refused in (
        mlops(env, "deploy", MODEL, str(world["version"]), "--strategy", "all_at_once"),
        mlops(env, "rollback", MODEL, "--to", str(world["version"]), "--actor", "ops@example.com"),
    ):
        assert refused.returncode == 3 and "mlops models unarchive" in refused.stderr, refused.stderr
    assert registry.get_model(MODEL).latest_version == world["version"]
    # WHEN unarchived THEN the next prediction is served by the same champion, listed and scheduled again
    restored = mlops(env, "models", "unarchive", MODEL, "--actor", "erin")
    assert restored.returncode == 0 and "monitoring  schedule enabled" in restored.stdout, restored.stdout
    status, answer = predict(world)
    assert status == 200 and answer["version"] == world["version"], answer
    assert f"\n{MODEL} " in mlops(env, "models", "list").stdout
    assert scheduler.get_schedule(Name=MODEL, GroupName=GROUP)["State"] == "ENABLED"
    # and the history is whole: both changes audited with their actors, the chain verifies
    events, _ = registry.audit.list_events(MODEL, limit=100)
    assert [(e.action, e.actor) for e in events[:2]] == [("model.unarchived", "erin"), ("model.archived", "dana")]
    verified = mlops(env, "audit", "verify", "--model", MODEL)
    assert verified.returncode == 0, verified.stdout + verified.stderr
