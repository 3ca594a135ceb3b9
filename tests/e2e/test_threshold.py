"""A decision threshold through the local cloud: chosen in training, recorded, served over HTTP.

One model, ``threshold-default``: ISLP Default's conformance spec with ``training.threshold:
{objective: max_f1}`` (3.3% of its rows default, so the best F1 is far below 0.5). The pipeline
trains it on the shipped file without its last 2,000 rows and chooses the threshold on
out-of-fold predictions of its training rows; the version is approved and made champion; the
2,000 held-back rows are then predicted through the real API. A row whose probability of "Yes"
lies between the threshold and 0.5 is answered "Yes": the answer flips with the threshold.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
import yaml

from mlops.errors import NotFoundError
from mlops.registry.versions import Registry, Status
from mlops.training.threshold import DecisionThreshold
from mlops_local.testing import LocalCloudProcess
from tests.conformance.conftest import run_mlops
from tests.conformance.datasets import DEFAULT

MODEL = "threshold-default"
ROWS = 2000


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


@pytest.fixture(scope="module")
def served(local_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = local_cloud.environ()
    tmp = tmp_path_factory.mktemp("threshold")
    header, rows = DEFAULT.lines()
    (tmp / "train.csv").write_bytes(header + b"".join(rows[:-ROWS]))
    (tmp / "score.csv").write_bytes(header + b"".join(rows[-ROWS:]))
    document = yaml.safe_load(DEFAULT.spec_path.read_text())
    document["name"] = MODEL
    document["training"]["threshold"] = {"objective": "max_f1"}
    (tmp / "spec.yaml").write_text(yaml.safe_dump(document))
    put = run_mlops("spec", "put", str(tmp / "spec.yaml"), "--actor", "alice", env=env)
    assert put.returncode == 0, put.stderr
    local_cloud.client("s3").put_object(
        Bucket=parameter(local_cloud, "data-bucket"),
        Key=f"datasets/{MODEL}/train.csv",
        Body=(tmp / "train.csv").read_bytes(),
        Metadata={"uploaded-by": "bob"},
    )
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    # The version number is allocated before the version is written: wait for the version itself.
    deadline = time.monotonic() + 300
    record = None
    while record is None and time.monotonic() < deadline:
        with contextlib.suppress(NotFoundError):
            record = registry.get_version(MODEL, 1)
        time.sleep(1)
    assert record is not None, "no version was registered within 300 s"
    version = record.version
    assert record.status == Status.PENDING_APPROVAL, record.status_history
    registry.approve(MODEL, version, actor="carol")
    registry.set_alias(MODEL, "champion", version, actor="carol")
    return {"env": env, "tmp": tmp, "version": version, "record": record}


def test_the_pipeline_records_the_threshold_it_chose(served: dict[str, Any]) -> None:
    # GIVEN the version the pipeline registered
    threshold = DecisionThreshold.from_tags(served["record"].tags)
    # THEN it records a threshold chosen for max F1 on its training rows, well below 0.5, with its holdout figures
    assert threshold is not None and threshold.method == "max_f1" and threshold.met
    assert threshold.positive_class == "Yes" and 0.05 < threshold.value < 0.5
    assert threshold.chosen_on is not None and threshold.chosen_on["folds"] == 5
    assert threshold.holdout is not None and threshold.holdout["f1"] > 0.3
    # AND its registered F1 is the one at that threshold
    assert served["record"].metrics["f1"] == pytest.approx(threshold.holdout["f1"])
    # AND `mlops models show` prints it
    shown = run_mlops(
        "models", "show", MODEL, "--version", str(served["version"]), env=served["env"], json_output=False
    )
    assert shown.returncode == 0, shown.stderr
    assert f"decision_threshold  {threshold.value:g} (P(Yes) at or above it predicts Yes; highest F1" in shown.stdout
    card = run_mlops("models", "card", MODEL, str(served["version"]), env=served["env"], json_output=False)
    assert "## Decision threshold" in card.stdout


def test_a_served_answer_flips_with_the_threshold(served: dict[str, Any]) -> None:
    threshold = DecisionThreshold.from_tags(served["record"].tags)
    assert threshold is not None
    # WHEN the 2,000 held-back rows are predicted through the API
    result = run_mlops(
        "predict", MODEL, "--data", f"@{served['tmp'] / 'score.csv'}", env=served["env"], json_output=False
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == ROWS and {a["version"] for a in answers} == {served["version"]}
    # THEN every label is "P(Yes) >= threshold" of the probability served beside it
    assert all(a["prediction"] == ("Yes" if a["probabilities"]["Yes"] >= threshold.value else "No") for a in answers)
    # AND rows between the threshold and 0.5, which the class with the highest probability would call
    # "No", are answered "Yes"
    flipped = [a for a in answers if threshold.value <= a["probabilities"]["Yes"] < 0.5]
    assert flipped and all(a["prediction"] == "Yes" for a in flipped)
