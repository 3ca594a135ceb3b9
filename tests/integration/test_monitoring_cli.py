"""``mlops labels upload`` and ``mlops monitor`` through the real entry point against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.capture import capture_key
from mlops.spec.model import load_spec
from tests.integration.console import console
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, deployed, dynamodb

__all__ = ["aws", "deployed", "dynamodb"]  # moto fixtures, tables as the stacks declare them

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mlops(deployed: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    registry = Registry.for_dynamodb(deployed, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    SpecStore(registry).put(load_spec(ROOT / "examples" / "specs" / "churn.yaml"), actor="alice")

    return console(monkeypatch, capsys)


def test_labels_upload_checks_stores_and_matches_captures(mlops: Any, tmp_path: Path) -> None:
    # GIVEN two captured requests and a label file for one of them and for an unknown request
    s3 = boto3.client("s3", region_name="us-east-1")
    now = datetime.now(UTC)
    for request_id in ("req-1", "req-2"):
        s3.put_object(Bucket=DATA_BUCKET, Key=capture_key("churn", request_id, now), Body=b"{}\n")
    path = tmp_path / "truth.csv"
    path.write_text("request_id,churned\nreq-1,1\nreq-9,0\n")
    # WHEN uploaded
    result = mlops("--json", "labels", "upload", str(path), "--model", "churn", "--actor", "dana")
    # THEN it is stored under labels/<model>/<date>/ and one of two request ids matched a capture
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["labels"] == 2 and answer["matched_request_ids"] == 1
    assert answer["key"].startswith(f"labels/churn/{now:%Y/%m/%d}/") and answer["key"].endswith(".csv")
    stored = s3.get_object(Bucket=DATA_BUCKET, Key=answer["key"])
    assert stored["Body"].read() == path.read_bytes() and stored["Metadata"]["uploaded-by"] == "dana"


def test_bad_label_file_exits_2_naming_row_and_field(mlops: Any, tmp_path: Path) -> None:
    # GIVEN a label with a class the spec does not have
    path = tmp_path / "truth.csv"
    path.write_text("request_id,churned\nreq-1,maybe\n")
    # WHEN uploaded THEN exit 2, the message names file, row and field, and nothing is stored
    result = mlops("labels", "upload", str(path), "--model", "churn")
    assert result.code == 2
    assert f"{path}: row 2: field 'churned'" in result.err and "Traceback" not in result.err
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=DATA_BUCKET, Prefix="labels/")
    assert listed["KeyCount"] == 0


def test_missing_label_file_exits_2(mlops: Any, tmp_path: Path) -> None:
    result = mlops("labels", "upload", str(tmp_path / "nope.csv"), "--model", "churn")
    assert result.code == 2 and "nope.csv: cannot be read" in result.err


def test_monitor_run_without_a_monitoring_pipeline_exits_3(mlops: Any) -> None:
    # GIVEN an environment whose discovery parameters name no monitor state machine
    result = mlops("monitor", "run", "churn")
    # THEN a clear message, exit 3
    assert result.code == 3 and "no monitoring pipeline deployed" in result.err


def test_monitor_runs_lists_nothing_yet(mlops: Any) -> None:
    result = mlops("monitor", "runs", "churn")
    assert result.code == 0 and "no drift checks yet" in result.out
