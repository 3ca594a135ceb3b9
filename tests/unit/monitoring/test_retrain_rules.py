"""Which data a drift-triggered retrain may train on: only what the champion has not learnt from."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion
from mlops.data.trigger import execution_name
from mlops.monitoring.capture_dataset import _base_rows
from mlops.monitoring.champion import ChampionData
from mlops.monitoring.retrain_start import maybe_retrain
from mlops.monitoring.services import MonitorServices, MonitorSettings
from mlops.registry.versions import Registry
from tests.unit.monitoring.test_cooldown import TRAINING, FakeStepFunctions

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _dataset(version_id: str, when: str, sha: str) -> DatasetVersion:
    return DatasetVersion(
        bucket="data",
        key=f"datasets/churn/{version_id}.csv",
        version_id=version_id,
        sha256=sha * 64,
        size=100,
        rows=10,
        columns=["a"],
        column_types={"a": "int"},
        schema_fingerprint="f",
        uploaded_by="bob",
        uploaded_at=when,
    )


def _record(registry: Registry, version_id: str, when: str, sha: str) -> DatasetVersion:
    return DatasetCatalog(registry).record("churn", _dataset(version_id, when, sha), actor="bob")


def _services(registry: Registry, sfn: FakeStepFunctions) -> MonitorServices:
    return MonitorServices(
        bucket="data",
        registry=registry,
        s3=None,
        settings=MonitorSettings(training_state_machine_arn=TRAINING),
        sfn=sfn,
    )


def _run() -> dict[str, Any]:
    return {"run_id": "m-1", "version": 1, "drifted_features": ["tenure_months"], "report_key": "reports/x.json"}


def _retrain(registry: Registry, sfn: FakeStepFunctions, cooldown_hours: float = 24) -> dict[str, Any]:
    return maybe_retrain(_services(registry, sfn), "churn", now=NOW, cooldown_hours=cooldown_hours, run=_run())


@pytest.fixture
def registry() -> Registry:
    """v1 is the champion, trained on ``v-1`` (uploaded 2026-11-10)."""
    registry = Registry.in_memory()
    first = _record(registry, "v-1", "2026-11-10T00:00:00+00:00", "1")
    registry.register_version("churn", actor="pipeline:training", dataset_version=first.ref())
    return registry


def _skips(registry: Registry) -> list[dict[str, Any]]:
    events, _ = registry.audit.list_events("churn", limit=100)
    return [e.after for e in events if e.action == "monitor.retrain_skipped"]


def test_the_champions_own_dataset_is_not_retrained_and_no_version_is_spent(registry: Registry) -> None:
    # GIVEN only the dataset the champion was trained on
    sfn = FakeStepFunctions()
    # WHEN a drifted run asks for retraining
    result = _retrain(registry, sfn)
    # THEN nothing starts, the version counter stays, and the audit trail says why, naming the dataset
    assert result["action"] == "skipped" and result["code"] == "no_new_data"
    assert "no dataset newer than the champion's (v1: datasets/churn/v-1.csv version v-1" in result["reason"]
    assert sfn.started == [] and registry.get_model("churn").latest_version == 1
    assert _skips(registry)[0]["reason"] == result["reason"] and _skips(registry)[0]["run_id"] == "m-1"


def test_an_older_dataset_the_champion_never_saw_is_not_newer(registry: Registry) -> None:
    # GIVEN a dataset uploaded before the champion's (never trained: its run failed, say)
    _record(registry, "v-0", "2026-11-01T00:00:00+00:00", "0")
    sfn = FakeStepFunctions()
    # THEN a retrain would go backwards: skipped
    assert _retrain(registry, sfn)["action"] == "skipped" and sfn.started == []


def test_a_newer_dataset_trains(registry: Registry) -> None:
    # GIVEN a newer dataset nothing was trained on
    _record(registry, "v-2", "2026-11-20T00:00:00+00:00", "2")
    sfn = FakeStepFunctions()
    # THEN the retrain starts on it
    result = _retrain(registry, sfn)
    assert result["action"] == "started" and result["data"]["source"] == "newer_dataset"
    assert json.loads(sfn.started[0]["input"])["upload"]["version_id"] == "v-2"


def test_a_newer_dataset_trained_already_is_not_trained_again(registry: Registry) -> None:
    # GIVEN a newer dataset whose own upload run registered v2, which the gate rejected
    second = _record(registry, "v-2", "2026-11-20T00:00:00+00:00", "2")
    registry.register_version(
        "churn", actor="pipeline:training", dataset_version=second.ref(), status="REJECTED", reason="not better"
    )
    sfn = FakeStepFunctions()
    # THEN retraining on it would give v3 with v2's metrics: skipped, naming v2
    result = _retrain(registry, sfn)
    assert result["action"] == "skipped" and sfn.started == []
    assert (
        "datasets/churn/v-2.csv version v-2, uploaded 2026-11-20T00:00:00+00:00 is trained already (v2 REJECTED)"
        in (result["reason"])
    )
    assert registry.get_model("churn").latest_version == 2


def test_the_same_content_under_a_new_version_id_is_not_new(registry: Registry) -> None:
    # GIVEN the champion's file uploaded again (a new S3 version, the same bytes)
    _record(registry, "v-2", "2026-11-20T00:00:00+00:00", "1")
    sfn = FakeStepFunctions()
    result = _retrain(registry, sfn)
    assert result["action"] == "skipped" and "holds the same content as the champion's" in result["reason"]


def test_a_newer_dataset_being_trained_by_its_upload_run_is_left_alone(registry: Registry) -> None:
    # GIVEN a newer dataset whose own upload run is still training (no version registered yet)
    second = _record(registry, "v-2", "2026-11-20T00:00:00+00:00", "2")
    sfn = FakeStepFunctions()
    own_run = execution_name("data", second.key, "v-2", "churn")
    sfn.running.add(own_run)
    # THEN a retrain would register the same model twice: skipped, naming the run
    result = _retrain(registry, sfn)
    assert result["action"] == "skipped" and f"is being trained now ({own_run})" in result["reason"]


def test_the_last_retrain_still_running_on_a_dataset_blocks_a_second_one(registry: Registry) -> None:
    # GIVEN no cooldown, and a retrain started on the newer dataset that is still running
    _record(registry, "v-2", "2026-11-20T00:00:00+00:00", "2")
    sfn = FakeStepFunctions()
    first = _retrain(registry, sfn, cooldown_hours=0)
    sfn.running.add(first["execution_name"])
    # WHEN another run drifts (another run id) THEN it does not start a second run on the same data
    again = maybe_retrain(_services(registry, sfn), "churn", now=NOW, cooldown_hours=0, run={**_run(), "run_id": "m-2"})
    assert again["action"] == "skipped" and f"is being trained now ({first['execution_name']})" in again["reason"]
    assert len(sfn.started) == 1


def test_a_champion_without_lineage_compares_by_when_it_was_registered() -> None:
    # GIVEN a champion registered with no dataset lineage, and datasets from before and after it
    registry = Registry.in_memory(clock=lambda: "2026-11-15T00:00:00.000000+00:00")
    registry.register_version("churn", actor="alice")
    _record(registry, "v-before", "2026-11-10T00:00:00+00:00", "1")
    sfn = FakeStepFunctions()
    assert _retrain(registry, sfn)["action"] == "skipped"
    # WHEN a dataset arrives after the champion THEN it is new to it
    _record(registry, "v-after", "2026-11-20T00:00:00+00:00", "2")
    assert _retrain(registry, sfn)["action"] == "started"
    assert json.loads(sfn.started[0]["input"])["upload"]["version_id"] == "v-after"


# ----------------------------------------------------------------------------- the champion's rows
class _Body(io.BytesIO):
    pass


class _S3:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": _Body(self.data)}


def _base(data: bytes, columns: list[str]) -> tuple[list[list[str]], str | None]:
    services = MonitorServices(bucket="data", registry=Registry.in_memory(), s3=_S3(data))
    champion = ChampionData(1, _dataset("v-1", "2026-11-10T00:00:00+00:00", "1"), None, None)
    return _base_rows(services, champion, columns)


ROWS = [["1", "0.5", "x", ""], ["0", "1e-05", "y, z", "3"], ["1", "-2", '"q"', "4"]]
HEADER = ["target", "score", "plan", "extra"]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(4)), st.permutations(range(3)))
def test_the_champions_rows_are_read_by_name_whatever_the_column_order(
    column_order: list[int], row_order: list[int]
) -> None:
    # GIVEN the champion's file with its columns (and rows) in any order, values needing quotes
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([HEADER[i] for i in column_order])
    for r in row_order:
        writer.writerow([ROWS[r][i] for i in column_order])
    # WHEN its rows are taken for the spec's columns
    rows, note = _base(out.getvalue().encode(), ["plan", "score", "target"])
    # THEN each row's values are the same text, in the spec's order, whatever the file's order
    assert note is None
    assert rows == [[ROWS[r][2], ROWS[r][1], ROWS[r][0]] for r in row_order]


def test_a_champion_file_missing_a_spec_column_is_not_appended() -> None:
    rows, note = _base(b"target,score\n1,0.5\n", ["plan", "score", "target"])
    assert rows == [] and note is not None and "lacks the spec's column(s) plan" in note


# ------------------------------------------------------------------------------------------- the CLI
def _result(retrain: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "churn",
        "version": 1,
        "verdict": "drifted",
        "rows": 200,
        "window": {"start": "a", "end": "b"},
        "mode": "inline",
        "drifted_features": ["tenure_months"],
        "retrain": retrain,
        "bucket": "data",
        "report_key": "reports/x.json",
        "html_key": "reports/x.html",
    }


def test_monitor_run_prints_why_a_retrain_was_skipped(registry: Registry) -> None:
    from mlops_cli.monitor_cmd import _text

    # GIVEN a drifted run whose retrain was skipped for want of new data
    retrain = _retrain(registry, FakeStepFunctions())
    # THEN `mlops monitor run` prints the reason as the run recorded it
    assert f"  retraining skipped: {retrain['reason']}\n" in _text(_result(retrain))


def test_monitor_run_prints_what_a_retrain_trains_on() -> None:
    from mlops_cli.monitor_cmd import _text

    built = {
        "action": "started",
        "execution_name": "churn-abc",
        "data": {
            "source": "captures+labels",
            "base_rows": 350,
            "labelled_rows": 110,
            "key": "datasets/churn/captures-x.csv",
            "version_id": "v-9",
        },
    }
    assert (
        "  retraining started: churn-abc  (mlops runs show churn-abc)\n"
        "    on a new dataset: the champion's 350 row(s) + 110 labelled capture(s), "
        "datasets/churn/captures-x.csv version v-9\n"
    ) in _text(_result(built))


# --------------------------------------------------------------------- a retried run resumes its claim
class _Bucket:
    """Versioned objects with metadata: what the resume path reads (head, get)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, bytes, dict[str, str]]] = {}

    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> str:
        version = f"ver-{len(self.objects) + 1}"
        self.objects[key] = (version, body, metadata)
        return version

    def head_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:
        if Key not in self.objects:
            raise RuntimeError("404 Not Found")
        version, _, metadata = self.objects[Key]
        return {"VersionId": version, "Metadata": metadata, "LastModified": NOW}

    def get_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:
        return {"Body": _Body(self.objects[Key][1])}


def _claimed(registry: Registry, key: str, sha256: str) -> None:
    from mlops.registry.keys import monitor_key
    from mlops.registry.tables import Update

    lineage = {"source": "captures+labels", "labelled_rows": 2, "label_objects": ["labels/churn/x.csv"]}
    registry.store.write(
        Update(
            registry.table,
            monitor_key("churn"),
            set={
                "last_retrain_at": NOW.isoformat(),
                "last_retrain_run": "m-1",
                "last_retrain_build": {"key": key, "sha256": sha256, "lineage": lineage},
            },
        )
    )


def test_a_retried_run_starts_the_dataset_its_claim_wrote(registry: Registry) -> None:
    import hashlib

    from mlops.monitoring.services import get_monitor_state

    # GIVEN a run that claimed a dataset from labelled captures, wrote it, and died before starting it
    bucket, sfn = _Bucket(), FakeStepFunctions()
    body = b"a,churned\n1,0\n2,1\n"
    sha256 = hashlib.sha256(body).hexdigest()
    key = "datasets/churn/captures-20261122T100000Z-abc.csv"
    version = bucket.put(key, body, {"sha256": sha256, "uploaded-by": "pipeline:monitor"})
    _claimed(registry, key, sha256)
    services = MonitorServices(
        bucket="data",
        registry=registry,
        s3=bucket,
        settings=MonitorSettings(training_state_machine_arn=TRAINING),
        sfn=sfn,
    )
    # WHEN Step Functions retries that Analyze
    result = maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run())
    # THEN the written object is recorded with its lineage and started under its upload's name
    assert result["action"] == "started" and result["repeat"] is True
    assert [s["name"] for s in sfn.started] == [execution_name("data", key, version, "churn")]
    assert DatasetCatalog(registry).get("churn", version).extra["lineage"]["labelled_rows"] == 2
    state = get_monitor_state(registry, "churn")
    assert state["last_retrain_execution"] == sfn.started[0]["name"] and "last_retrain_build" not in state


def test_a_retried_run_whose_claim_wrote_nothing_releases_it(registry: Registry) -> None:
    from mlops.monitoring.services import get_monitor_state

    # GIVEN a run that claimed a dataset from labelled captures and died before writing it
    _claimed(registry, "datasets/churn/captures-x.csv", "0" * 64)
    services = MonitorServices(
        bucket="data",
        registry=registry,
        s3=_Bucket(),
        settings=MonitorSettings(training_state_machine_arn=TRAINING),
        sfn=FakeStepFunctions(),
    )
    # WHEN it is retried THEN nothing starts and the claim (and its cooldown) is released, audited
    result = maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run())
    assert result["action"] == "failed" and "before writing its dataset" in result["error"]
    state = get_monitor_state(registry, "churn")
    assert "last_retrain_at" not in state and "last_retrain_build" not in state
