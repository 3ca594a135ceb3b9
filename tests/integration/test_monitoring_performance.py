"""Performance drift through the monitor's Analyze step on moto, with a real model on real data.

A logistic regression is trained on scikit-learn's breast cancer set and registered the way the
pipeline registers it (metrics, reference profile, ``predictions.json`` of its holdout, evaluation);
held-back rows are answered by the serving predictor and captured by serving's own capture writer
(with the probabilities it served); their labels are uploaded; the monitor runs Plan and Analyze.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import log_loss, roc_auc_score

from mlops.contracts.monitoring import AnalyzeRequest, PlanRequest
from mlops.data.labels import label_key
from mlops.data.profile import profile_frame
from mlops.drift import holdout_document
from mlops.monitoring import steps
from mlops.monitoring.services import MonitorServices, MonitorSettings
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.capture import capture_key, capture_lines
from mlops.serving.predictors import SklearnPredictor, ThresholdPredictor
from mlops.serving.routing import PredictResult
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.evaluation import evaluate
from mlops.training.fit import train
from mlops.training.frames import coerce_frame
from mlops.training.onnx_model import records_from_frame
from mlops.training.split import split_for_training
from mlops.training.threshold import DecisionThreshold
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, dynamodb

__all__ = ["aws", "dynamodb"]  # moto fixtures, tables as the stacks declare them

NOW = datetime.now(UTC).replace(microsecond=0)
RUN = "artifacts/breast-cancer/runs/r1"


def dataset() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    frame["diagnosis"] = np.where(frame.pop("target") == 0, "malignant", "benign")
    return frame


@pytest.fixture
def spec() -> ModelSpec:
    frame = dataset()
    return parse_spec(
        {
            "name": "breast-cancer",
            "task": "classification",
            "target": {"name": "diagnosis", "classes": ["benign", "malignant"], "positive_class": "malignant"},
            "features": [{"name": c, "type": "float"} for c in frame.columns if c != "diagnosis"],
            "training": {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {"max_iter": 5000},
                "test_size": 0.3,
                "seed": 3,
            },
            "monitoring": {"schedule": "rate(1 hour)", "min_rows": 50},
        }
    )


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def world(dynamodb: Any, spec: ModelSpec) -> dict[str, Any]:
    """A registered champion trained on 2/3 of the rows; the other third held back as the future."""
    return make_world(dynamodb, spec)


def make_world(dynamodb: Any, spec: ModelSpec, threshold: DecisionThreshold | None = None) -> dict[str, Any]:
    """The champion as the pipeline registers it: with a decision threshold, everything at that threshold."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    revision = SpecStore(registry).put(spec, actor="alice").revision
    frame = dataset()
    order = np.random.default_rng(0).permutation(len(frame))
    future, known = frame.iloc[order[:190]], frame.iloc[order[190:]]
    result = train(known, spec)
    train_frame, _ = split_for_training(known, spec)
    evaluation = evaluate(result.pipeline, result.holdout, spec, threshold)
    documents = {
        "profile.json": profile_frame(train_frame, spec).to_json(),
        "predictions.json": json.dumps(holdout_document(result.pipeline, result.holdout, spec, threshold=threshold)),
        "evaluation.json": json.dumps({"evaluation": evaluation.to_dict()}),
    }
    for name, body in documents.items():
        s3.put_object(Bucket=DATA_BUCKET, Key=f"{RUN}/{name}", Body=body.encode())
    version = registry.register_version(
        spec.name,
        actor="pipeline:training:r1",
        metrics=evaluation.finite_metrics(),
        spec_revision=revision,
        tags={
            "profile_uri": f"s3://{DATA_BUCKET}/{RUN}/profile.json",
            "predictions_uri": f"s3://{DATA_BUCKET}/{RUN}/predictions.json",
            "evaluation_uri": f"s3://{DATA_BUCKET}/{RUN}/evaluation.json",
            **({"decision_threshold": threshold.tag()} if threshold is not None else {}),
        },
    ).version
    registry.approve(spec.name, version, actor="carol")
    registry.set_alias(spec.name, "champion", version, actor="carol")
    services = MonitorServices(
        bucket=DATA_BUCKET, registry=registry, s3=s3, settings=MonitorSettings(), clock=Clock(NOW)
    )
    return {
        "services": services,
        "s3": s3,
        "pipeline": result.pipeline,
        "future": future,
        "version": version,
        "threshold": threshold,
    }


def serve_and_capture(world: dict[str, Any], spec: ModelSpec) -> tuple[list[str], np.ndarray]:
    """Answer each held-back row with the serving predictor and capture it as serving does."""
    records = records_from_frame(coerce_frame(world["future"], spec), spec)
    predictor: Any = SklearnPredictor(world["pipeline"], spec, 0)
    if world.get("threshold") is not None:
        predictor = ThresholdPredictor(predictor, world["threshold"])
    prediction = predictor.predict(records)
    at = NOW - timedelta(minutes=30)
    ids = []
    for index, record in enumerate(records):
        request_id = f"req-{index}"
        body = {
            "request_id": request_id,
            "model": spec.name,
            "version": world["version"],
            "predictions": [prediction.predictions[index]],
            "classes": prediction.classes,
            "probabilities": [prediction.probabilities[index]],
        }
        result = PredictResult(body, spec.name, world["version"], "champion", 1)
        world["s3"].put_object(
            Bucket=DATA_BUCKET,
            Key=capture_key(spec.name, request_id, at),
            Body=capture_lines(request_id, at, result, [record], None),
        )
        ids.append(request_id)
    assert prediction.classes is not None and prediction.probabilities is not None
    column = prediction.classes.index("malignant")
    return ids, np.asarray(prediction.probabilities)[:, column]


def upload_labels(world: dict[str, Any], spec: ModelSpec, ids: list[str], labels: np.ndarray) -> None:
    body = "request_id,diagnosis\n" + "\n".join(f"{rid},{label}" for rid, label in zip(ids, labels, strict=True))
    world["s3"].put_object(
        Bucket=DATA_BUCKET, Key=label_key(spec.name, "csv", NOW - timedelta(minutes=5)), Body=body.encode()
    )


def analyze(world: dict[str, Any], spec: ModelSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    services = world["services"]
    plan = steps.plan(PlanRequest.model_validate({"input": {"model": spec.name}, "execution_name": "m-1"}), services)
    result = steps.analyze(AnalyzeRequest(plan=plan), services).model_dump(mode="json")
    report = json.loads(world["s3"].get_object(Bucket=DATA_BUCKET, Key=result["report_key"])["Body"].read())
    return result, report


def test_served_probabilities_reach_roc_auc_and_log_loss(world: dict[str, Any], spec: ModelSpec) -> None:
    # GIVEN 190 held-back rows answered and captured with their probabilities, and their true labels
    ids, malignant = serve_and_capture(world, spec)
    truth = world["future"]["diagnosis"].to_numpy()
    upload_labels(world, spec, ids, truth)
    # WHEN the monitor runs
    result, report = analyze(world, spec)
    performance = report["performance"]
    metrics = {m["name"]: m for m in performance["metrics"]}
    # THEN ROC AUC and log loss are computed from the served probabilities (as scikit-learn computes them)
    assert performance["probabilities"] is True
    assert metrics["roc_auc"]["current"] == pytest.approx(roc_auc_score(truth == "malignant", malignant), abs=1e-9)
    expected_loss = log_loss(truth == "malignant", np.column_stack([1 - malignant, malignant]))
    assert metrics["log_loss"]["current"] == pytest.approx(expected_loss, rel=1e-6)
    assert metrics["roc_auc"]["method"].startswith("delong") and metrics["roc_auc"]["verdict"] == "ok"
    # AND the holdout's own rows (kept at registration) give the registered side its uncertainty
    assert "labelled rows with their predictions and probabilities" in performance["holdout_basis"]
    # AND rows from the training distribution are not called degraded
    assert performance["status"] == "ok" and result["performance"] == "ok"
    assert not any("no probabilities" in str(m.get("reason")) for m in performance["metrics"])


def test_a_real_degradation_is_found_through_the_monitor(world: dict[str, Any], spec: ModelSpec) -> None:
    # GIVEN the same captures, but labels where 30% of the rows got the other class
    ids, _ = serve_and_capture(world, spec)
    truth = world["future"]["diagnosis"].to_numpy().copy()
    flip = np.random.default_rng(1).choice(len(truth), size=57, replace=False)
    truth[flip] = np.where(truth[flip] == "benign", "malignant", "benign")
    upload_labels(world, spec, ids, truth)
    # WHEN the monitor runs
    result, report = analyze(world, spec)
    metrics = {m["name"]: m for m in report["performance"]["metrics"]}
    # THEN performance is degraded, ROC AUC among the degraded metrics, and the run is drifted
    assert result["performance"] == "degraded" and result["drifted"]
    assert metrics["roc_auc"]["verdict"] == "degraded" and metrics["accuracy"]["verdict"] == "degraded"
    assert metrics["accuracy"]["interval"][1] < -metrics["accuracy"]["tolerance"]


def test_label_metrics_are_judged_at_the_champions_decision_threshold(dynamodb: Any, spec: ModelSpec) -> None:
    # GIVEN a champion registered at decision threshold 0.9 for "malignant" (metrics, kept holdout
    # predictions and its tag), whose 190 held-back rows were answered by the threshold and captured
    world = make_world(dynamodb, spec, DecisionThreshold(value=0.9, positive_class="malignant"))
    ids, malignant = serve_and_capture(world, spec)
    truth = world["future"]["diagnosis"].to_numpy()
    upload_labels(world, spec, ids, truth)
    # WHEN the monitor runs
    result, report = analyze(world, spec)
    performance = report["performance"]
    metrics = {m["name"]: m for m in performance["metrics"]}
    # THEN precision and recall are those of "P(malignant) >= 0.9" of the served probabilities
    predicted, actual = malignant >= 0.9, truth == "malignant"
    tp = int(np.sum(predicted & actual))
    assert metrics["precision"]["current"] == pytest.approx(tp / predicted.sum())
    assert metrics["recall"]["current"] == pytest.approx(tp / actual.sum())
    # (rows between 0.5 and 0.9 make these differ from the class with the highest probability)
    assert np.any(predicted != (malignant > 0.5))
    # AND the report says at which threshold, and rows like the training rows are not degraded
    assert (
        "labels at the decision threshold 0.9 (P(malignant) at or above it), from the served probabilities"
        in (performance["notes"])
    )
    assert performance["status"] == "ok" and result["performance"] == "ok", performance
