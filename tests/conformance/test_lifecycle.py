"""Real datasets through the whole lifecycle on the local cloud.

For each dataset (binary with the target as the first column, multiclass with missing values,
regression with extra columns): the spec is stored, the file as shipped (less some held-back rows)
is uploaded and runs the training pipeline (validate, train, evaluate, gate, register), the
candidate is approved and deployed as champion, the held-back rows are predicted over signed
HTTP, their true labels are uploaded, and the monitor runs on those captured, labelled requests.
The held-back rows come from the same file as the training rows: nothing drifted, so the monitor
must say so (no drifted feature, performance not degraded).

One local cloud serves the whole module; each dataset is its own model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

from mlops.registry.versions import Registry, Status
from mlops.training.steps.services import report_key
from mlops_local.testing import LocalCloudProcess, signed_as
from tests.conformance.conftest import Result, run_mlops
from tests.conformance.datasets import BIKESHARE, DEFAULT, PENGUINS, RealDataset

pytestmark = pytest.mark.xdist_group("conformance-cloud")

BATCH = 100  # records per prediction request


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Lifecycle:
    """One dataset's way through the platform; each stage runs once, on first use, in order.

    A stage that failed fails every later test with the same error instead of running again.
    """

    def __init__(self, dataset: RealDataset, cloud: LocalCloudProcess, tmp: Path) -> None:
        self.dataset, self.cloud, self.tmp = dataset, cloud, tmp
        self.model = dataset.spec.name
        self.env = cloud.environ()
        self._done: dict[str, Any] = {}

    def parameter(self, leaf: str) -> str:
        return str(self.cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    def registry(self) -> Registry:
        return Registry.for_dynamodb(
            self.cloud.client("dynamodb"),
            registry_table=self.parameter("registry-table"),
            audit_table=self.parameter("audit-table"),
        )

    def mlops(self, *args: str) -> Result:
        return run_mlops(*args, env=self.env)

    def ok(self, *args: str) -> Any:
        result = self.mlops(*args)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        return json.loads(result.stdout) if result.stdout.strip() else None

    def ok_as(self, identity: str, *args: str) -> Any:
        """:meth:`ok` signed as another local principal (the scientist uploads; the caller approves)."""
        result = run_mlops(*args, env=signed_as(self.env, identity))
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        return json.loads(result.stdout) if result.stdout.strip() else None

    def stage(self, name: str, run: Callable[[], Any]) -> Any:
        if name not in self._done:
            try:
                self._done[name] = ("ok", run())
            except BaseException as exc:
                self._done[name] = ("error", exc)
        status, value = self._done[name]
        if status == "error":
            raise AssertionError(f"{self.dataset.key}: stage {name!r} failed: {value}") from value
        return value

    def failed_checks(self, uploaded: dict[str, Any]) -> list[str]:
        """The failed checks of an upload's validation report (to say why a run failed)."""
        key = report_key(self.model, uploaded["version_id"], "validation.json")
        try:
            body = self.cloud.client("s3").get_object(Bucket=uploaded["bucket"], Key=key)["Body"].read()
        except Exception as exc:  # only to explain a failure
            return [f"no validation report at {key}: {exc}"]
        checks = json.loads(body)["checks"]
        return [f"{c['check']} [{c['column']}]: {c['message']}" for c in checks if c["status"] == "failed"]

    # ------------------------------------------------------------------------------------------
    def trained(self) -> dict[str, Any]:
        """Spec stored by alice; the shipped file less the held-back rows uploaded by the scientist; run finished."""

        def run() -> dict[str, Any]:
            self.ok("spec", "put", str(self.dataset.spec_path), "--actor", "alice")
            path = self.tmp / f"{self.dataset.key}-train.csv"
            path.write_bytes(self.dataset.training_bytes())
            return dict(self.ok_as("scientist", "data", "upload", str(path), "--model", self.model, "--wait"))

        return dict(self.stage("trained", run))

    def champion(self) -> int:
        """The registered candidate approved through the signed API and deployed by the deployment pipeline."""

        def run() -> int:
            run = self.trained()["run"]
            assert run["status"] == "SUCCEEDED", f"the training run ended {run['status']}"
            output = run["output"]
            assert output.get("outcome") == "registered", output
            version = int(output["version"])

            def approved() -> Any:
                result = self.mlops("approve", self.model, str(version), "--comment", "conformance: gates met")
                if result.returncode == 0:
                    return json.loads(result.stdout)
                assert "no approval request" in result.stderr or "not waiting" in result.stderr, result.stderr
                return None

            decision = wait_for(approved, 120, f"{self.model} v{version} to wait for approval")
            assert decision["decision"] == "approved", decision
            registry = self.registry()
            wait_for(lambda: registry.get_model(self.model).champion == version, 120, f"{self.model} v{version}")
            return version

        return int(self.stage("champion", run))

    def served(self) -> dict[str, Any]:
        """The held-back rows predicted over signed HTTP; every request's capture landed."""

        def run() -> dict[str, Any]:
            version = self.champion()
            frame = self.dataset.held_back_frame()
            records = self.dataset.records(frame)
            answers = []
            for start in range(0, len(records), BATCH):
                status, answer = self.cloud.api(
                    "POST", f"models/{self.model}/predict", {"records": records[start : start + BATCH]}
                )
                assert status == 200, answer
                answers.append(answer)
            s3, bucket = self.cloud.client("s3"), self.parameter("data-bucket")

            def captured() -> bool:
                prefix = f"captures/{self.model}/"
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                keys = {o["Key"].rsplit("/", 1)[-1] for p in pages for o in p.get("Contents", [])}
                return all(f"{a['request_id']}.jsonl" in keys for a in answers)

            wait_for(captured, 60, "the captures of every prediction")
            return {"version": version, "frame": frame, "answers": answers, "bucket": bucket}

        return dict(self.stage("served", run))

    def monitored(self) -> dict[str, Any]:
        """True labels of the held-back rows uploaded; the monitor run on their captured predictions."""

        def run() -> dict[str, Any]:
            served = self.served()
            target = self.dataset.target
            truth = served["frame"][target].tolist()
            rows = []
            for number, answer in enumerate(served["answers"]):
                for index in range(len(answer["predictions"])):
                    label = truth[number * BATCH + index]
                    rows.append({"request_id": answer["request_id"], "index": index, target: label})
            labels = self.tmp / f"{self.dataset.key}-labels.csv"
            pd.DataFrame(rows).to_csv(labels, index=False)
            uploaded = self.ok("labels", "upload", str(labels), "--model", self.model, "--actor", "dana")
            result = self.mlops("monitor", "run", self.model)
            assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
            summary = json.loads(result.stdout)
            body = self.cloud.client("s3").get_object(Bucket=served["bucket"], Key=summary["report_key"])["Body"]
            return {"labels": uploaded, "summary": summary, "report": json.loads(body.read())}

        return dict(self.stage("monitored", run))


@pytest.fixture(scope="module", params=[DEFAULT, PENGUINS, BIKESHARE], ids=lambda d: d.key)
def lifecycle(
    request: pytest.FixtureRequest, conformance_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory
) -> Lifecycle:
    dataset: RealDataset = request.param
    return Lifecycle(dataset, conformance_cloud, tmp_path_factory.mktemp(dataset.key))


def test_the_pipeline_registers_a_candidate(lifecycle: Lifecycle) -> None:
    # GIVEN the file as shipped (in its column order, with its missing values), less the held-back rows
    dataset = lifecycle.dataset
    # WHEN it is uploaded
    uploaded = lifecycle.trained()
    run = uploaded["run"]
    # THEN the pipeline validated, trained, evaluated, gated and registered a candidate
    failed_steps = [(s["name"], s["error"], str(s["cause"])[:2000]) for s in run["steps"] if s.get("error")]
    assert run["status"] == "SUCCEEDED", (run.get("error"), lifecycle.failed_checks(uploaded), failed_steps)
    steps = {s["name"] for s in run["steps"]}
    assert {"Validate", "TrainCandidates", "Evaluate", "CheckOnnx", "Gate", "Register"} <= steps, steps
    assert run["output"]["outcome"] == "registered", run["output"]
    # AND the registered version records every uploaded row and clears the spec's gates on its holdout
    version = lifecycle.registry().get_version(lifecycle.model, int(run["output"]["version"]))
    assert version.status == Status.PENDING_APPROVAL
    trained_rows = len(dataset.frame()) - dataset.held_back
    assert version.dataset_version is not None and version.dataset_version["rows"] == trained_rows
    for metric, bound in dataset.spec.gates.metrics.items():
        value = version.metrics[metric]
        assert bound.min is None or value >= bound.min, (metric, value)
        assert bound.max is None or value <= bound.max, (metric, value)


def test_approval_deploys_the_champion(lifecycle: Lifecycle) -> None:
    # WHEN someone other than the uploader approves the candidate (signed API call through the CLI)
    version = lifecycle.champion()
    # THEN the deployment pipeline made it champion, and the audit chain is intact
    registry = lifecycle.registry()
    assert registry.get_model(lifecycle.model).champion == version
    assert registry.get_version(lifecycle.model, version).status == Status.APPROVED
    assert lifecycle.mlops("audit", "verify", "--model", lifecycle.model).returncode == 0


def test_predictions_over_signed_http_are_right(lifecycle: Lifecycle) -> None:
    # GIVEN the champion and rows it never saw (held back from the upload)
    served = lifecycle.served()
    dataset, spec = lifecycle.dataset, lifecycle.dataset.spec
    answers = served["answers"]
    # THEN every answer comes from the champion, one prediction per record
    assert all(a["version"] == served["version"] for a in answers)
    predictions = [p for a in answers for p in a["predictions"]]
    truth = served["frame"][dataset.target].to_numpy()
    assert len(predictions) == len(truth) == dataset.held_back
    # AND the answers are as good as the model's registered quality says: only a model that read
    # every column by its name clears these floors
    if spec.task == "classification":
        classes = answers[0]["classes"]
        assert [str(c) for c in classes] == [str(c) for c in spec.target.classes or []]
        assert set(map(str, predictions)) <= set(map(str, classes))
        probabilities = np.vstack([np.asarray(a["probabilities"], dtype=float) for a in answers])
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        if dataset.quality_metric == "roc_auc":
            positive = classes.index(spec.positive_class)
            quality = roc_auc_score(truth == spec.positive_class, probabilities[:, positive])
        else:
            quality = accuracy_score(truth.astype(str), np.asarray(predictions).astype(str))
    else:
        quality = r2_score(truth.astype(float), np.asarray(predictions, dtype=float))
    assert quality >= dataset.quality_floor, (dataset.quality_metric, quality)


def test_monitoring_on_same_distribution_rows_raises_no_alarm(lifecycle: Lifecycle) -> None:
    # GIVEN the held-back rows predicted and their true labels uploaded
    monitored = lifecycle.monitored()
    held_back = lifecycle.dataset.held_back
    assert monitored["labels"]["labels"] == held_back
    # WHEN the monitor ran on the window of those captured requests
    summary, report = monitored["summary"], monitored["report"]
    # THEN it compared every feature and found no drift: the rows come from the training file
    assert summary["rows"] == held_back, summary
    assert summary["verdict"] == "no_drift", (summary["drifted_features"], summary["missing_rate_alerts"])
    assert summary["drifted_features"] == [] and summary["missing_rate_alerts"] == []
    compared = {f["name"] for f in report["features"] if f["status"] in ("ok", "drifted")}
    assert compared == set(lifecycle.dataset.spec.feature_names)
    # AND the labelled window's performance was judged, and not found degraded
    performance = report["performance"]
    assert performance is not None and performance["rows"] == held_back, performance
    assert summary["performance"] == "ok", performance
    assert not [m for m in performance["metrics"] if m["degraded"]], performance["metrics"]


def test_monitoring_scores_the_window_with_what_was_served(lifecycle: Lifecycle) -> None:
    # GIVEN the labelled window
    performance = lifecycle.monitored()["report"]["performance"]
    metrics = {m["name"]: m for m in performance["metrics"]}
    # THEN a classifier's window is scored on the class probabilities it served (ROC AUC and log
    # loss computed, not "unknown"), a regressor's on its numbers
    classifier = lifecycle.dataset.spec.task == "classification"
    expected = ("roc_auc", "log_loss", "accuracy") if classifier else ("rmse", "r2")
    for name in expected:
        assert name in metrics and metrics[name]["current"] is not None, (name, performance)
