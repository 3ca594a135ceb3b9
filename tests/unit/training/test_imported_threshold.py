"""An imported model's decision threshold objective, chosen on the dataset's training rows (ISLP Default).

The import is a scikit-learn pipeline fitted "elsewhere" on ISLP Default's balance and income; the
training pipeline's TrainCandidate step (``import_candidate``) reads it from S3 (moto), chooses the
spec's ``max_f1`` threshold on the training side of the split, never the holdout, and scores the
holdout at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import yaml
from moto import mock_aws
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops.data.trigger import DatasetUpload
from mlops.errors import InputError
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.artifacts import dump_artifact
from mlops.training.evaluation import evaluate
from mlops.training.frames import model_input, target_array
from mlops.training.imported import SKLEARN_FORMAT, load_imported
from mlops.training.split import prepare_split
from mlops.training.steps.imports import import_candidate
from mlops.training.steps.services import Services
from mlops.training.threshold import DecisionThreshold, choose_threshold_for_fitted
from tests.conformance.datasets import DEFAULT

BUCKET = "data"
COLUMNS = ["balance", "income"]


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    document = yaml.safe_load(DEFAULT.spec_path.read_text())
    document["training"]["threshold"] = {"objective": "max_f1"}
    return parse_spec(document)


@pytest.fixture(scope="module")
def imported(spec: ModelSpec) -> tuple[bytes, str]:
    frame = DEFAULT.frame()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    pipeline.fit(model_input(frame, spec)[COLUMNS], frame["default"].astype(str))
    return dump_artifact(pipeline)


@pytest.fixture
def services() -> Iterator[Services]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        platform = Platform(environment="dev", data_bucket=BUCKET, registry_table="r", audit_table="a")
        yield Services(platform=platform, s3=s3, registry=Registry.in_memory())


def _candidate(services: Services, spec: ModelSpec, data: bytes, sha256: str, frame: pd.DataFrame) -> dict[str, Any]:
    key = f"imports/{spec.name}/{sha256}/model.skops"
    services.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    candidate = {
        "index": 0,
        "params": {},
        "imported": {"format": SKLEARN_FORMAT, "uri": f"s3://{BUCKET}/{key}", "sha256": sha256, "source": "notebook"},
    }
    upload = DatasetUpload(bucket=BUCKET, key=f"datasets/{spec.name}/d.csv", version_id="v1", model=spec.name)
    return import_candidate(services, upload, spec, candidate, frame, None, "run-1")


def test_an_imported_models_objective_is_chosen_on_the_training_rows(
    services: Services, spec: ModelSpec, imported: tuple[bytes, str]
) -> None:
    data, sha256 = imported
    frame = DEFAULT.frame()
    # WHEN TrainCandidate takes the import of a spec asking for the threshold of the highest F1
    trained = _candidate(services, spec, data, sha256, frame)
    # THEN the candidate records a threshold chosen on the split's training rows (its own predictions)
    threshold = DecisionThreshold.from_dict(trained["training"]["threshold"])
    assert threshold is not None and threshold.method == "max_f1" and threshold.positive_class == "Yes"
    train_rows, holdout, _, _ = prepare_split(frame, spec, None)
    assert threshold.chosen_on is not None and threshold.chosen_on["rows"] == len(train_rows)
    assert threshold.chosen_on["in_sample"] is True and threshold.chosen_on["folds"] == 0
    assert "imported model's predictions of" in threshold.describe()
    # AND it is far from 0.5 on data with 3% positives, and the holdout is scored at it
    assert threshold.value < 0.45
    model = load_imported(data, sha256, SKLEARN_FORMAT, spec)
    at = evaluate(model, holdout, spec, threshold).finite_metrics()
    argmax = evaluate(model, holdout, spec).finite_metrics()
    assert trained["metrics"] == at and at["recall"] > argmax["recall"]
    # AND it is the one the training rows give, not the one the holdout would give
    on_train = choose_threshold_for_fitted(model, model_input(train_rows, spec), target_array(train_rows, spec), spec)
    on_holdout = choose_threshold_for_fitted(model, model_input(holdout, spec), target_array(holdout, spec), spec)
    assert on_train is not None and on_holdout is not None
    assert on_train.value == threshold.value != on_holdout.value


def test_a_fixed_threshold_and_a_model_without_probabilities(spec: ModelSpec, imported: tuple[bytes, str]) -> None:
    data, sha256 = imported
    model = load_imported(data, sha256, SKLEARN_FORMAT, spec)
    train_rows, _, _, _ = prepare_split(DEFAULT.frame(), spec, None)
    x, y = model_input(train_rows, spec), target_array(train_rows, spec)
    fixed = parse_spec(
        {**spec.model_dump(mode="json"), "training": {**spec.training.model_dump(mode="json"), "threshold": 0.2}}
    )
    assert choose_threshold_for_fitted(model, x, y, fixed) == DecisionThreshold(value=0.2, positive_class="Yes")

    class LabelsOnly:
        classes_ = np.asarray(["No", "Yes"])

        def predict(self, rows: Any) -> Any:
            return np.asarray(["No"] * len(rows))

    with pytest.raises(InputError, match=r"training.threshold: max_f1 needs class probabilities"):
        choose_threshold_for_fitted(LabelsOnly(), x, y, spec)
