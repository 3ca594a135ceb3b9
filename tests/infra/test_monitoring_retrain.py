"""What the monitor function may do to retrain: read and write datasets/, ask whether a run is training."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized


def _monitor_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of the policies attached to the monitor function's role."""
    resources = template["Resources"]
    function = next(
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == "mlops-dev-monitor"
    )
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"].get("Roles", [])
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _allows(statements: list[dict[str, Any]], action: str, resource_part: str) -> list[dict[str, Any]]:
    found = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and action in actions and resource_part in json.dumps(statement["Resource"]):
            found.append(statement)
    return found


def test_the_monitor_may_write_and_read_datasets_for_a_retrain_on_labelled_captures(
    synthesized: Synthesized,
) -> None:
    # GIVEN the monitor function's permissions
    statements = _monitor_statements(synthesized.template_json("dev", "platform"))
    # THEN it may put objects under datasets/ (a built dataset) and read the champion's dataset
    assert _allows(statements, "s3:PutObject", "/datasets/*")
    assert [s for s in statements if "/datasets/*" in json.dumps(s["Resource"]) and "s3:GetObject*" in s["Action"]]
    # AND it may put nothing else outside reports/ and datasets/
    for statement in _allows(statements, "s3:PutObject", ""):
        resource = json.dumps(statement["Resource"])
        assert "/datasets/*" in resource or "/reports/*" in resource


def test_the_monitor_may_ask_whether_a_training_run_is_running(synthesized: Synthesized) -> None:
    statements = _monitor_statements(synthesized.template_json("dev", "platform"))
    describe = _allows(statements, "states:DescribeExecution", ":execution:")
    # THEN only on the training state machine's executions
    assert describe and all("mlops-dev-monitoring" not in json.dumps(s["Resource"]) for s in describe)
