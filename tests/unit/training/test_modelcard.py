"""The model card: every section present and filled from the pipeline's facts."""

from __future__ import annotations

from mlops.artifacts import dump_artifact
from mlops.evaluation import evaluate
from mlops.gate import gate
from mlops.modelcard import render_model_card
from mlops.spec import ModelSpec
from mlops.training import TrainResult

VERSION_ID = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
SECTIONS = [
    "## Intended use",
    "## Training data",
    "## Features",
    "## Metrics (holdout)",
    "## Comparison with the champion",
    "## Slices (protected attributes)",
    "## Gate",
    "## Limitations",
    "## Lineage",
]


def test_card_has_every_section_with_the_facts(churn_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN a trained, evaluated and gated churn candidate, and a champion
    evaluation = evaluate(churn_trained.pipeline, churn_trained.holdout, churn_spec)
    champion = {"roc_auc": 0.70, "accuracy": 0.72, "log_loss": 0.5}
    verdict = gate(evaluation.metrics, churn_spec, champion)
    _, sha = dump_artifact(churn_trained.pipeline)
    data = evaluation.to_dict()
    # WHEN the card is rendered from plain data
    card = render_model_card(
        churn_spec,
        7,
        data["metrics"],
        data["slices"],
        {
            "version_id": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            "sha256": "ab" * 32,
            "rows": 2000,
            "bucket": "b",
            "key": "k",
        },
        {**churn_trained.summary(), "artifact_sha256": sha, "pipeline_execution": "arn:exec", "candidates": 4},
        verdict,
        {"version": 6, "metrics": champion},
        notes=data["notes"],
        confusion_matrix=data["confusion_matrix"],
        fairness=data["fairness"],
    )
    # THEN every section is there, in order
    positions = [card.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    # AND the facts are in it
    assert card.startswith("# Model card: churn v7")
    assert "Predicts whether a subscriber cancels" in card and "growth-analytics" in card
    assert VERSION_ID in card and "s3://b/k" in card and "ab" * 32 in card
    assert "| customer_id | string | no |" in card and "| contract | category | yes |" in card
    assert "| roc_auc |" in card and "Champion: v6" in card and "(better)" in card
    assert "| senior | false |" in card and "| senior | true |" in card
    assert f"Artifact sha256: {sha}" in card and "Code revision: test-rev" in card and "scikit-learn" in card
    assert "Feature `customer_id` is not used" in card
    assert "chosen among 4 candidates" in card
    assert "Result: **passed**" in card


def test_card_for_first_version_and_rejection(house_trained: TrainResult, house_spec: ModelSpec) -> None:
    # GIVEN a regression candidate rejected by its thresholds, without champion, with a metric missing
    metrics = {"rmse": 160_000.0, "mae": 90_000.0, "r2": None}
    verdict = gate(metrics, house_spec)
    # WHEN rendered with minimal inputs
    card = render_model_card(
        house_spec, 1, metrics, [], {"version_id": "v1"}, {}, verdict, None, notes={"r2": "undefined: one row"}
    )
    # THEN it says there is no champion, why it was rejected, and what could not be computed
    assert "No champion" in card
    assert "Gate: **rejected**" in card and "[FAIL] rmse is 160,000, above the maximum 150,000" in card
    assert "r2 could not be computed on the holdout (undefined: one row)" in card
    assert "The spec names no protected attributes." in card
    assert "| r2 | n/a (undefined: one row) | higher |" in card
