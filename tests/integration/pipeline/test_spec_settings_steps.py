"""The Validate and Gate steps on moto follow the spec's validation and fairness settings.

Real data (ISLP's Caravan and Default, as the package ships them), real boto3 against moto, the
step functions the state machine calls: no code of ours is replaced.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import pandas as pd
import pytest

from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.evaluation import evaluate
from mlops.training.fit import train
from mlops.training.gate import gate
from mlops.training.steps.outcome import gate_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.pipeline.conftest import put_upload
from tests.integration.registry.conftest import DATA_BUCKET


def shipped(name: str) -> bytes:
    return resources.files("ISLP").joinpath("data", name).read_bytes()


def read_json(services: Services, uri: str) -> Any:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(services.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def caravan_document(duplicate_rows: str) -> dict[str, Any]:
    header = shipped("Caravan.csv").split(b"\n", 1)[0].decode().strip().split(",")
    return {
        "name": "caravan",
        "task": "classification",
        "target": {"name": "Purchase", "classes": ["No", "Yes"], "positive_class": "Yes"},
        "features": [{"name": name, "type": "int", "min": 0} for name in header[:-1]],
        "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "validation": {"duplicate_rows": duplicate_rows},
    }


@pytest.mark.parametrize(("setting", "valid"), [("warning", True), ("error", False)])
def test_validate_step_applies_the_stored_specs_duplicate_setting(
    services: Services, setting: str, valid: bool
) -> None:
    # GIVEN a stored Caravan spec and the shipped file (602 rows repeat an earlier row) uploaded
    SpecStore(services.registry).put(parse_spec(caravan_document(setting)), actor="alice")
    item = put_upload(services, "datasets/caravan/caravan.csv", shipped("Caravan.csv"))
    # WHEN the Validate step runs
    result = validate_upload(item, request_id="req-1", services=services)
    # THEN the verdict follows the spec, the summary and the audit event name the duplicate check
    assert result["valid"] is valid, result["summary"]
    report = read_json(services, result["report_uri"])
    [check] = [c for c in report["checks"] if c["check"] == "dataset.duplicate_rows"]
    assert check["failing_count"] == 602 and check["status"] == ("warning" if valid else "failed")
    assert report["settings"]["duplicate_rows"] == setting
    [event] = [
        e
        for e in services.registry.audit.list_events("caravan")[0]
        if e.action in ("dataset.validated", "dataset.rejected")
    ]
    if valid:
        assert result["summary"] == "valid: 5822 rows, no check failed; 1 warning(s) (dataset.duplicate_rows)"
        assert event.action == "dataset.validated" and event.after["warning_checks"] == ["dataset.duplicate_rows"]
    else:
        assert "dataset.duplicate_rows" in result["summary"]
        assert event.action == "dataset.rejected" and event.after["failed_checks"] == ["dataset.duplicate_rows"]


WAGE = {
    "name": "wage",
    "task": "classification",
    "target": {"name": "health_ins", "classes": ["1. Yes", "2. No"], "positive_class": "1. Yes"},
    "features": [
        {"name": "age", "type": "int", "min": 18},
        {"name": "wage", "type": "float", "min": 0},
        *({"name": name, "type": "category"} for name in ("maritl", "race", "education", "jobclass", "health")),
    ],
    "allow_extra_columns": True,
    "training": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}},
}


@pytest.fixture(scope="module")
def wage_evaluation() -> dict[str, Any]:
    """Health insurance predicted from ISLP Wage, evaluated on its holdout by education and marital status."""
    spec = parse_spec({**WAGE, "fairness": {"protected_attributes": ["education", "maritl"]}})
    frame = pd.read_csv(io.BytesIO(shipped("Wage.csv")), dtype=str, keep_default_na=False)
    result = train(frame, spec)
    return evaluate(result.pipeline, result.holdout, spec).to_dict()


def gate_step(services: Services, evaluation: dict[str, Any], attribute: str, mode: str) -> Any:
    """Store the spec and the evaluation (fairness by ``attribute``) where the pipeline puts them; run the Gate step."""
    spec = parse_spec({**WAGE, "fairness": {"protected_attributes": [attribute], "mode": mode}})
    revision = SpecStore(services.registry).put(spec, actor="alice").revision
    stored = {**evaluation, "fairness": {attribute: evaluation["fairness"][attribute]}}
    key = "artifacts/wage/runs/r1/evaluation.json"
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=json.dumps({"evaluation": stored}).encode())
    event = {
        "model": spec.name,
        "spec_revision": revision,
        "evaluation": {
            "metrics": {k: v for k, v in evaluation["metrics"].items() if v is not None},
            "champion": None,
            "evaluation_uri": f"s3://{DATA_BUCKET}/{key}",
        },
    }
    return gate_candidate(event, services=services)


@pytest.mark.parametrize("mode", ["gate", "report"])
def test_gate_step_refuses_on_the_predictions_disparate_impact_only_in_gate_mode(
    services: Services, wage_evaluation: dict[str, Any], mode: str
) -> None:
    # GIVEN a candidate that predicts insurance for about half of the holdout's least educated and
    # nearly all of its most educated: far below 0.8, beyond what the holdout's noise explains
    fairness = wage_evaluation["fairness"]["education"]
    assert fairness["disparate_impact"] < 0.6 and fairness["upper_bound"] < 0.8, fairness
    assert fairness["excluded_groups"] == [] and min(fairness["group_rows"].values()) >= 30
    # WHEN the Gate step runs with the spec stored in that fairness mode
    result = gate_step(services, wage_evaluation, "education", mode)
    # THEN gate mode refuses the candidate naming the attribute; report mode records the same figure
    [check] = [c for c in result["checks"] if c["check"] == "fairness"]
    assert check["value"] == pytest.approx(fairness["disparate_impact"]) and check["passed"] is False
    assert check["enforced"] is (mode == "gate")
    assert ": shown to be below it" in check["message"]
    if mode == "gate":
        assert result["passed"] is False
        assert result["reasons"] == [check["message"]] and "disparate impact across education" in check["message"]
    else:
        assert result["passed"] is True and result["reasons"] == []
        assert check["message"].endswith("reported only (fairness.mode: report)")


def test_gate_step_leaves_out_small_groups_and_does_not_refuse_what_the_holdout_cannot_tell(
    services: Services, wage_evaluation: dict[str, Any]
) -> None:
    # GIVEN the same candidate by marital status: the widowed and separated are a handful of
    # holdout rows, and among the rest the point ratio is under 0.8 but its upper bound is not
    fairness = wage_evaluation["fairness"]["maritl"]
    small = sorted(g for g, rows in fairness["group_rows"].items() if rows < 30)
    assert sorted(fairness["excluded_groups"]) == small and "3. Widowed" in small
    assert fairness["disparate_impact"] < 0.8 < fairness["upper_bound"], fairness
    assert not set(fairness["groups_compared"]) & set(small)
    # WHEN the Gate step runs in gate mode
    result = gate_step(services, wage_evaluation, "maritl", "gate")
    # THEN it is not refused, and the check says why and which groups it left out
    [check] = [c for c in result["checks"] if c["check"] == "fairness"]
    assert result["passed"] is True and check["passed"] is True and check["enforced"] is True
    assert "not shown to be below it on this holdout" in check["message"]
    assert f"{len(small)} group(s) under 30 rows not compared" in check["message"]
    assert sorted(check["excluded_groups"]) == small


def test_model_card_says_what_the_gate_could_and_could_not_tell(
    services: Services, wage_evaluation: dict[str, Any]
) -> None:
    # GIVEN the Wage candidate gated in report mode on both attributes
    from mlops.registry.modelcard import render_model_card

    spec = parse_spec({**WAGE, "fairness": {"protected_attributes": ["education", "maritl"], "mode": "report"}})
    verdict = gate({}, spec, fairness=wage_evaluation["fairness"])
    # WHEN its card is rendered
    card = render_model_card(
        spec,
        1,
        wage_evaluation["metrics"],
        wage_evaluation["slices"],
        {"version_id": "v1", "sha256": "ab" * 32, "rows": 3000, "bucket": "b", "key": "k"},
        {"candidates": 1},
        verdict.to_dict(),
        None,
        fairness=wage_evaluation["fairness"],
    )
    # THEN education is shown below the minimum, a note (not a failure) at the gate in report mode;
    # marital status is below on this holdout but not shown to be, with its small groups named
    assert "- [note] disparate impact across education" in card and "[FAIL]" not in card
    assert "Disparate impact across education: 0." in card and "(does not meet the minimum 0.8)" in card
    assert "(below the minimum 0.8, not shown to be: upper bound 0." in card
    assert "groups too small to compare: " in card and "3. Widowed" in card
    assert "within what its size can tell" in card
