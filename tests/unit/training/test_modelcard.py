"""The model card: every section present and filled from the pipeline's facts."""

from __future__ import annotations

from mlops.registry.modelcard import render_model_card
from mlops.spec.model import ModelSpec
from mlops.training.artifacts import dump_artifact
from mlops.training.evaluation import evaluate
from mlops.training.fit import TrainResult
from mlops.training.gate import gate

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


def _card(spec: ModelSpec, lineage: dict, champion: dict | None, metrics: dict | None = None) -> str:
    metrics = metrics or {"rmse": 50.0, "mae": 40.0, "r2": 0.5}
    return render_model_card(spec, 3, metrics, [], {"version_id": "v1"}, lineage, None, champion)


def test_card_says_how_the_holdout_was_chosen(house_trained: TrainResult, house_spec: ModelSpec) -> None:
    # GIVEN a candidate trained with the default (hash) split
    lineage = house_trained.summary()
    # WHEN its card is rendered THEN it names the method, the hashed columns and the seed
    card = _card(house_spec, lineage, None)
    assert f"- Holdout rows: {house_trained.holdout_rows}" in card
    seed = house_spec.training.seed
    assert f"- Holdout chosen by: hash of each row's every feature and the target, seed {seed}" in card
    # AND a key, a time split and a fixed file are each described by what defines them
    keyed = {**lineage, "split": {"method": "hash", "key": ["zip"], "seed": 1}}
    assert "hash of each row's `zip`, seed 1" in _card(house_spec, keyed, None)
    timed = {**lineage, "split": {"method": "time", "time_column": "sold_on", "cutoff": "2026-03-01T00:00:00"}}
    assert "time: the newest rows by `sold_on`, from 2026-03-01T00:00:00 on" in _card(house_spec, timed, None)
    source = {"uri": "s3://d/holdouts/h/holdout.csv", "version_id": "3xY", "sha256": "cd" * 32, "rows": 80}
    fixed = {**lineage, "split": {"method": "holdout_dataset", "holdout_file": source, "notes": ["2 rows left out"]}}
    card = _card(house_spec, fixed, None)
    assert f"fixed holdout file s3://d/holdouts/h/holdout.csv, version 3xY, sha256 {'cd' * 32}" in card
    assert "- Split: 2 rows left out" in card


def test_card_says_how_many_holdout_rows_the_champion_had_seen(house_spec: ModelSpec) -> None:
    # GIVEN a champion scored on the holdout less the 12 rows it had trained on
    champion = {
        "version": 2,
        "metrics": {"rmse": 60.0},
        "candidate_metrics": {"rmse": 55.0},
        "holdout_rows": 100,
        "rows_scored": 88,
        "seen_check": "fingerprints",
        "seen_rows_excluded": 12,
        "seen_rows_scored": 0,
    }
    # WHEN the card is rendered
    card = _card(house_spec, {}, champion)
    # THEN it says which rows both were scored on, that the champion had seen none of them and 12 were excluded
    assert "Champion: v2, scored on 88 of the 100 holdout rows, as was the candidate below." in card
    assert "Holdout rows the champion had trained on: 0 scored (12 excluded before scoring" in card
    # AND the comparison uses the candidate's metrics on those same rows (55), not on its whole holdout (50)
    assert "| rmse | 55 | 60 | -5 (better) |" in card
    # AND a champion registered without fingerprints is "unknown", never a guessed 0
    unknown = {**champion, "seen_check": "unknown", "seen_note": "v2 was registered without the fingerprints"}
    unknown.update(seen_rows_excluded=None, seen_rows_scored=None, rows_scored=100)
    card = _card(house_spec, {}, unknown)
    assert "Holdout rows the champion had trained on: unknown (v2 was registered without the fingerprints)." in card
    assert "0 scored" not in card
