"""`models show`, `models diff`, `runs show`'s candidates and `models archive` on versions the pipeline registered.

Real data (ISLP's Default, as the package ships it), the pipeline's own step functions writing to
moto (Validate, PlanTraining, a grid search of three candidates, Evaluate, Gate, Register), then
the real ``mlops`` entry point reading what they wrote. Version 1 trains on the shipped file less
its held-back rows; version 2 on the whole file, after v1 became champion (so its gate also
compares it with v1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from mlops.contracts.names import schedule_group_name
from mlops.data.trigger import upload_from_event
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.registry.view import run_candidates
from mlops.settings import Platform
from mlops.spec.model import parse_spec
from mlops.training.steps.candidates import plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from mlops_local.patches import serialize_dynamodb
from tests.conformance.datasets import DEFAULT
from tests.integration.console import console
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, create_tables

MODEL = "islp-default"
GRID = [0.0001, 0.01, 1.0]


def run_pipeline(services: Services, key: str, body: bytes, run: str) -> dict[str, Any]:
    """The training state machine's steps, in its order, with the payloads its states pass."""
    version_id = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)["VersionId"]
    event = {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version_id}}}
    upload = upload_from_event(event).to_dict()
    validation = validate_upload(upload, request_id=run, services=services)
    assert validation["valid"], validation["summary"]
    common = {"upload": upload, "spec_revision": validation["spec_revision"], "execution_name": run}
    plan = plan_training(common, services=services)
    trained = [train_candidate({**common, "candidate": c}, services=services) for c in plan["candidates"]]
    evaluation = evaluate_candidates({**common, "candidates": trained, "execution": run}, services=services)
    onnx = check_onnx_export({"onnx": evaluation["onnx"], "model": MODEL, "execution_name": run}, services=services)
    gate = gate_candidate(
        {"evaluation": evaluation, "model": MODEL, "spec_revision": validation["spec_revision"]}, services=services
    )
    return register_candidate(
        {
            "upload": upload,
            "evaluation": evaluation,
            "onnx": onnx,
            "gate": gate,
            "validation": validation,
            "execution": f"arn:aws:states:us-east-1:123456789012:execution:mlops-dev-training:{run}",
            "execution_name": run,
            "status": "PENDING_APPROVAL" if gate["passed"] else "REJECTED",
        },
        services=services,
    )


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    serialize_dynamodb()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ssm = boto3.client("ssm", region_name="us-east-1")
        for name, value in (
            ("data-bucket", DATA_BUCKET),
            ("registry-table", REGISTRY_TABLE),
            ("audit-table", AUDIT_TABLE),
        ):
            ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
        platform = Platform(
            environment="dev", data_bucket=DATA_BUCKET, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE
        )
        registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
        services = Services(platform=platform, s3=s3, registry=registry)
        document = yaml.safe_load(DEFAULT.spec_path.read_text())
        document["training"]["search"] = {"strategy": "grid", "space": {"C": GRID}, "max_candidates": 3}
        SpecStore(registry).put(parse_spec(document), actor="alice")
        first = run_pipeline(services, f"datasets/{MODEL}/default.csv", DEFAULT.training_bytes(), "run-1")
        registry.approve(MODEL, first["version"], actor="carol")
        registry.set_alias(MODEL, "champion", first["version"], actor="carol")
        second = run_pipeline(services, f"datasets/{MODEL}/default-full.csv", DEFAULT.raw(), "run-2")
        yield {"registry": registry, "s3": s3, "services": services, "v1": first, "v2": second}


@pytest.fixture
def mlops(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    return console(monkeypatch, capsys)


def test_models_show_prints_each_versions_estimator_and_parameters(mlops, world: dict[str, Any]) -> None:
    # GIVEN two versions the pipeline registered (each the winner of a grid over C)
    registry = world["registry"]
    chosen = {v: registry.get_version(MODEL, v).params for v in (1, 2)}
    assert all(p["estimator"] == "sklearn.linear_model.LogisticRegression" and p["C"] in GRID for p in chosen.values())
    # WHEN the model is shown, as a list and one version in full
    listing = mlops("models", "show", MODEL)
    one = mlops("models", "show", MODEL, "--version", "1")
    # THEN every version's line is followed by its estimator and chosen parameters, readable
    assert listing.code == 0, listing.err
    lines = listing.out.splitlines()
    for version, params in chosen.items():
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{version:>7}  "))
        expected = f"LogisticRegression(C={params['C']:.4g}, max_iter=1000, random_state=14)"
        assert lines[at + 1].strip() == expected, listing.out
    assert one.code == 0 and "estimator           sklearn.linear_model.LogisticRegression" in one.out
    assert f"param  C            {chosen[1]['C']}" in one.out and "param  max_iter     1000" in one.out


def test_runs_candidates_lists_every_candidate_best_first_marking_the_chosen(world: dict[str, Any]) -> None:
    # WHEN the first run's search is read back from what Evaluate stored
    found = run_candidates(world["s3"], DATA_BUCKET, MODEL, "run-1")
    # THEN all three candidates are there with their C and roc_auc, best first, the registered one chosen
    assert found is not None and found["metric"] == "roc_auc" and found["lower_is_better"] is False
    candidates = found["candidates"]
    assert sorted(c["params"]["C"] for c in candidates) == GRID
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True) and all(0.5 < s <= 1 for s in scores)
    assert [c["rank"] for c in candidates] == [1, 2, 3]
    [chosen] = [c for c in candidates if c["chosen"]]
    assert chosen["rank"] == 1 and chosen["params"]["C"] == world["registry"].get_version(MODEL, 1).params["C"]
    # and the text `runs show` prints names the varying parameter only, marking the chosen line
    from mlops.registry.view import render_candidates

    lines = render_candidates(found)
    assert lines[0] == "  candidates: 3 trained, ranked by roc_auc (higher is better)"
    assert lines[2].startswith("  *    1") and f"C={chosen['params']['C']:.4g}" in lines[2]
    assert "    same for all: max_iter=1000" in lines


def test_models_diff_compares_data_params_metrics_slices_split_and_gates(mlops, world: dict[str, Any]) -> None:
    # WHEN v1 and v2 are compared
    text = mlops("models", "diff", MODEL, "1", "2")
    found = mlops("models", "diff", MODEL, "1", "2", "--json")
    # THEN the data differ (400 held-back rows, another object), metrics carry v2 - v1
    assert text.code == 0 and found.code == 0, text.err
    diff = found.json()
    sections = {name: {row["name"]: row for row in rows} for name, rows in diff["sections"].items()}
    assert sections["data"]["rows"]["a"] == 9600 and sections["data"]["rows"]["b"] == 10000
    assert sections["data"]["key"]["changed"] and sections["data"]["sha256"]["changed"]
    assert not sections["data"]["schema_fingerprint"]["changed"]
    v1, v2 = (world["registry"].get_version(MODEL, v) for v in (1, 2))
    roc = sections["metrics"]["roc_auc"]
    assert roc["a"] == v1.metrics["roc_auc"] and roc["b"] == v2.metrics["roc_auc"]
    assert roc["delta"] == pytest.approx(v2.metrics["roc_auc"] - v1.metrics["roc_auc"])
    assert sections["params"]["C"]["a"] == v1.params["C"] and sections["params"]["C"]["b"] == v2.params["C"]
    # per-slice metrics of the protected attribute, the split, and the gate: v2 also faced the champion
    assert {"student=No rows", "student=Yes rows", "student=Yes roc_auc"} <= set(sections["slices"])
    assert sections["split"]["method"]["a"] == "hash" and sections["split"]["test_size"]["b"] == 0.25
    assert sections["split"]["holdout_rows"]["changed"]
    assert "roc_auc min 0.9" in sections["gates"] and "beats champion on roc_auc" in sections["gates"]
    assert sections["gates"]["beats champion on roc_auc"]["a"] is None
    assert "data" in diff["changed"] and "metrics" in diff["changed"] and "gates" in diff["changed"]
    # and the text table has one block per section, changed rows starred, deltas signed
    assert text.out.startswith(f"{MODEL}: v1 (APPROVED) vs v2 (")
    for header in ("DATA", "PARAMS", "METRICS", "SLICES", "SPLIT", "GATES"):
        assert f"\n{header} " in text.out
    [row] = [line for line in text.out.splitlines() if line.startswith("* rows ")]
    assert "9600" in row and "10000" in row
    metric = next(line for line in text.out.splitlines() if line[2:].startswith("roc_auc "))
    assert metric.rstrip().endswith(f"{roc['delta']:+.4g}")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("models", "diff", MODEL, "1", "9"), 3, f"model '{MODEL}' has no version 9"),
        (("models", "diff", "ghost", "1", "2"), 3, "model 'ghost' has no version 1"),
        (("models", "diff", MODEL, "1", "0"), 2, "Invalid value for 'B'"),
    ],
)
def test_models_diff_of_a_missing_version_exits_with_its_code(mlops, args: tuple[str, ...], code: int, message: str):
    result = mlops(*args)
    assert result.code == code, result.out + result.err
    assert message in result.err and "Traceback" not in result.err


def test_archive_and_unarchive_on_moto(mlops, world: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN the model's drift-check schedule (as the deployment creates it)
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    group = schedule_group_name("dev")
    scheduler.create_schedule_group(Name=group)
    scheduler.create_schedule(
        Name=MODEL,
        GroupName=group,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "RoleArn": "arn:aws:iam::1:role/r"},
        State="ENABLED",
    )
    # WHEN the model is archived
    archived = mlops("models", "archive", MODEL, "--reason", "superseded", "--actor", "dana")
    # THEN it says what stopped; the listing hides it unless --all; the schedule is disabled, its target kept
    assert archived.code == 0, archived.err
    assert f"model {MODEL} archived by dana" in archived.out and ": superseded" in archived.out
    assert "monitoring  schedule disabled" in archived.out
    assert MODEL not in mlops("models", "list").out
    assert "ARCHIVED by dana" in mlops("models", "list", "--all").out
    paused = scheduler.get_schedule(Name=MODEL, GroupName=group)
    assert paused["State"] == "DISABLED" and paused["ScheduleExpression"] == "rate(1 day)"
    assert paused["Target"]["Arn"].endswith(":stateMachine:m")
    # an upload is refused before anything is stored (exit 3), and archiving again is a conflict
    data = tmp_path / "more.csv"
    data.write_bytes(DEFAULT.raw())
    before = world["s3"].list_object_versions(Bucket=DATA_BUCKET, Prefix=f"datasets/{MODEL}/")["Versions"]
    refused = mlops("data", "upload", str(data), "--model", MODEL)
    assert refused.code == 3 and f"model '{MODEL}' is archived (superseded)" in refused.err
    assert f"mlops models unarchive {MODEL}" in refused.err
    after = world["s3"].list_object_versions(Bucket=DATA_BUCKET, Prefix=f"datasets/{MODEL}/")["Versions"]
    assert len(after) == len(before)
    assert mlops("models", "archive", MODEL).code == 3
    # WHEN unarchived THEN it is listed, the schedule runs again, and the trail holds both, intact
    restored = mlops("models", "unarchive", MODEL, "--actor", "erin", "--json")
    assert restored.code == 0 and restored.json()["schedule"]["action"] == "enabled"
    assert restored.json()["model"]["archived"] is None
    assert MODEL in mlops("models", "list").out
    assert scheduler.get_schedule(Name=MODEL, GroupName=group)["State"] == "ENABLED"
    trail = mlops("audit", "list", "--model", MODEL, "--json").json()["events"]
    assert [e["action"] for e in trail[:2]] == ["model.unarchived", "model.archived"]
    assert [e["actor"] for e in trail[:2]] == ["erin", "dana"]
    assert mlops("audit", "verify", "--model", MODEL).code == 0
