"""The monitoring state machine's definition: what moto and Step Functions both run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parents[3] / "statemachines" / "monitoring.asl.json"


def _states() -> dict[str, Any]:
    return dict(json.loads(ASL.read_text())["States"])


def test_large_windows_go_through_a_distributed_map_over_the_shard_list() -> None:
    # GIVEN the definition WHEN its map state is read
    sketch = _states()["SketchShards"]
    # THEN it reads the S3 JSON shard list and runs STANDARD children (what moto supports: no
    # ItemBatcher, no EXPRESS children, no integer ToleratedFailurePercentage)
    assert sketch["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert sketch["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert sketch["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert "ItemBatcher" not in sketch and "ToleratedFailurePercentage" not in sketch


def test_every_task_retries_transient_errors_and_catches_into_the_failure_record() -> None:
    # GIVEN every Task state
    states = _states()
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    nested = states["SketchShards"]["ItemProcessor"]["States"]
    # THEN each function task retries Lambda's transient errors, the notification SNS's, and the
    # main-path ones catch into Failed<step>
    for name, state in {**tasks, **nested}.items():
        sns = state["Resource"].endswith("sns:publish")
        service = "SNS.InternalErrorException" if sns else "Lambda.ServiceException"
        assert service in state["Retry"][0]["ErrorEquals"], name
    for name in ("Plan", "Analyze"):
        assert states[name]["Catch"][0]["Next"] == f"Failed{name}"
        assert states[f"Failed{name}"]["Next"] == "RecordFailure"
    assert states["SketchShards"]["Catch"][0]["Next"] == "FailedSketchShards"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "MonitorFailed" and states["MonitorFailed"]["Type"] == "Fail"


def test_mode_choice_covers_disabled_distributed_and_inline() -> None:
    choice = _states()["ChooseMode"]
    targets = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert targets == {"disabled": "MonitoringDisabled", "distributed": "SketchShards"}
    assert choice["Default"] == "Analyze"
