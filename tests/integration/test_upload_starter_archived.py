"""The upload starter (the S3 event's target) starts no training run for an archived model, and says why."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from mlops.registry.audit import PLATFORM_CHAIN
from mlops.registry.versions import Registry
from mlops.training.import_grants import is_run_model_key, run_model_key
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, dynamodb

__all__ = ["aws", "dynamodb"]

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "start_pipeline" / "handler.py"


class Context:
    function_name = "start_pipeline"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:start_pipeline"
    aws_request_id = "starter-req"


@pytest.fixture
def starter(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, Any, Registry]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="mlops-dev-training",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/mlops-dev-training",
    )["stateMachineArn"]
    for name, value in (
        ("DATA_BUCKET", DATA_BUCKET),
        ("REGISTRY_TABLE", REGISTRY_TABLE),
        ("AUDIT_TABLE", AUDIT_TABLE),
        ("TRAINING_STATE_MACHINE_ARN", machine),
        ("POWERTOOLS_SERVICE_NAME", "mlops-start-pipeline"),
    ):
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("start_pipeline_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    return module, sfn, registry


def uploaded(model: str, version_id: str) -> dict[str, Any]:
    return {
        "detail": {
            "bucket": {"name": DATA_BUCKET},
            "object": {"key": f"datasets/{model}/train.csv", "version-id": version_id, "size": 10},
        }
    }


def test_an_upload_for_an_archived_model_starts_nothing_and_is_audited(starter: tuple[ModuleType, Any, Registry]):
    module, sfn, registry = starter
    # GIVEN an archived model and an active one
    for model in ("old", "new"):
        registry.register_version(model, actor="pipeline")
    registry.archive_model("old", actor="dana", reason="retired")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    # WHEN an object lands under each model's datasets/ prefix
    refused = module.handler(uploaded("old", "v-old"), Context())
    started = module.handler(uploaded("new", "v-new"), Context())
    # THEN only the active model's run starts; the archived one's is ignored, naming why, and audited
    assert refused["started"] is False and refused["ignored"] is True
    assert "model 'old' is archived (retired)" in refused["reason"]
    assert started["started"] is True
    runs = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert runs == [started["execution_name"]]
    events, _ = registry.audit.list_events(PLATFORM_CHAIN)
    [ignored] = [e for e in events if e.action == "dataset.ignored"]
    assert ignored.subject.endswith("/datasets/old/train.csv") and "archived" in ignored.after["reason"]


def test_a_notebook_runs_model_starts_nothing_and_is_never_taken_for_an_import(
    starter: tuple[ModuleType, Any, Registry],
) -> None:
    module, sfn, registry = starter
    registry.register_version("penguins", actor="pipeline")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    # GIVEN a notebook run's logged model arriving in the run's own folder (run_model_key)
    key = f"{run_model_key('penguins', 'nb-0123456789abcdef0123')}model.pkl"
    assert is_run_model_key(key) and not is_run_model_key(f"imports/penguins/{'a' * 64}/model.pkl")
    event = {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": "v1", "size": 10}}}
    # WHEN the upload rule delivers it to the starter
    answer = module.handler(event, Context())
    # THEN nothing starts and no import grant is looked up: its run recorded (and audited) it already
    assert answer == {"started": False, "ignored": True, "reason": f"{key}: a notebook run's logged model"}
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    events, _ = registry.audit.list_events(PLATFORM_CHAIN)
    assert [e for e in events if e.action == "dataset.ignored"] == []
