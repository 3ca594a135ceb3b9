"""The training state machine's Lambda states each invoke their own function, whose handler is the
one its step contract names (mlops.contracts.training), with only that state's grants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.contracts.training import MACHINE
from tests.infra.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


def _definition(template: dict[str, Any]) -> dict[str, Any]:
    """The training state machine's ASL, each substituted function ARN replaced by ``@<logical id>``."""
    machine = next(
        r
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("TrainingStateMachine")
    )
    text = (ROOT / "statemachines" / MACHINE.asl).read_text()
    for key, value in machine["Properties"]["DefinitionSubstitutions"].items():
        target = f"@{value['Fn::GetAtt'][0]}" if isinstance(value, dict) and "Fn::GetAtt" in value else "@other"
        text = text.replace("${" + key + "}", target)
    return json.loads(text)


def _lambda_states(states: dict[str, Any]) -> dict[str, str]:
    found = {}
    for name, state in states.items():
        if "lambda:invoke" in str(state.get("Resource", "")):
            found[name] = state["Parameters"]["FunctionName"]
        processor = state.get("ItemProcessor")
        if processor:
            found.update(_lambda_states(processor["States"]))
    return found


def test_each_training_state_runs_its_contracts_handler(synthesized: Synthesized) -> None:
    # GIVEN the synthesized platform stack
    template = synthesized.template_json("dev", "platform")
    # WHEN each Lambda state of the training state machine is traced to its function
    invoked = _lambda_states(_definition(template)["States"])
    # THEN every state has a contract, and each function in this stack serves its contract's handler
    assert set(invoked) == set(MACHINE.steps)
    checked = 0
    for state, target in invoked.items():
        logical_id = target.removeprefix("@")
        function = template["Resources"].get(logical_id)
        if function is None:  # the deployment hand-off's function lives in another construct's output
            continue
        expected = MACHINE.steps[state].handler.rsplit("/", 1)[-1]
        assert function["Properties"]["Handler"] == expected, state
        checked += 1
    assert checked >= 9
    # AND no two states that do different work share a function (Register and RegisterRejected do the same)
    functions = {target for state, target in invoked.items() if state != "RegisterRejected"}
    assert len(functions) == len(invoked) - 1


def _statements(template: dict[str, Any], prefix: str) -> str:
    return json.dumps(
        [
            statement
            for k, r in template["Resources"].items()
            if r["Type"] == "AWS::IAM::Policy" and k.startswith(prefix)
            for statement in r["Properties"]["PolicyDocument"]["Statement"]
        ]
    )


def test_planning_and_collecting_cannot_read_datasets(synthesized: Synthesized) -> None:
    # GIVEN the synthesized platform stack
    template = synthesized.template_json("dev", "platform")
    # THEN only the function that trains a candidate reads the uploaded datasets
    assert "/datasets/*" in _statements(template, "TrainingTrainCandidate")
    assert "/datasets/*" not in _statements(template, "TrainingPlanTraining")
    assert "/datasets/*" not in _statements(template, "TrainingCollectCandidate")
    # AND the collector touches neither the registry nor the holdout files
    collect = _statements(template, "TrainingCollectCandidate")
    assert "dynamodb:" not in collect and "/holdouts/" not in collect
