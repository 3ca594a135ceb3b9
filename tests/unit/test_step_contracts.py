"""Every ``$.path`` the state machines read exists in the typed step contracts (mlops.contracts).

For each state of each ASL file: the paths its ``InputPath``, ``ItemsPath``, ``Parameters``,
``ItemSelector`` and ``Choice`` rules read resolve in the state document's model (or, inside a
``Map``, in the model of one item); the paths its ``ResultSelector`` reads resolve in
``{"Payload": <the handler's output model>}``; every ``ResultPath`` writes a field the document
declares; and the ``Payload`` a Lambda state sends names exactly the input model's fields (all the
required ones, nothing unknown).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import mlops.contracts as contracts
from mlops.contracts.base import Machine

ROOT = Path(__file__).resolve().parents[2]
PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\$(?![.$A-Za-z])")
READ_KEYS = ("InputPath", "ItemsPath", "Variable")


def machines() -> list[Machine]:
    found = []
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"mlops.contracts.{info.name}")
        machine = getattr(module, "MACHINE", None)
        if isinstance(machine, Machine):
            found.append(machine)
    return found


class Schema:
    """A pydantic model's JSON schema, walked by field names."""

    def __init__(self, model: type[BaseModel] | dict[str, Any]) -> None:
        self.root = model.model_json_schema() if isinstance(model, type) else model
        self.defs = self.root.get("$defs", {})

    def _deref(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in node:
            return self._deref(self.defs[node["$ref"].rsplit("/", 1)[-1]])
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                return [n for option in node[key] for n in self._deref(option)]
        return [node]

    def resolves(self, path: str) -> bool:
        """Whether ``$.a.b`` names a field (any ``Any``-typed node accepts everything below it)."""
        nodes = [self.root]
        for name in [p for p in path.split(".")[1:] if p]:
            following = []
            for node in (n for start in nodes for n in self._deref(start)):
                if node.get("type") == "null":
                    continue
                props = node.get("properties")
                if props is None and node.get("type") in (None, "object") and "items" not in node:
                    extra = node.get("additionalProperties", True)
                    following.append(extra if isinstance(extra, dict) else {})
                elif props is not None and name in props:
                    following.append(props[name])
                elif props is not None and isinstance(node.get("additionalProperties"), dict):
                    following.append(node["additionalProperties"])
            if not following:
                return False
            nodes = following
        return True

    def fields(self) -> tuple[set[str], set[str]]:
        node = self._deref(self.root)[0]
        return set(node.get("properties", {})), set(node.get("required", []))


def _paths(value: Any) -> list[str]:
    """The ``$.paths`` a Parameters-like template reads (``$$`` context paths excluded)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(".$") and isinstance(item, str):
                found += [p for p in PATH.findall(item) if not item.startswith("$$")]
            else:
                found += _paths(item)
    elif isinstance(value, list):
        for item in value:
            found += _paths(item)
    return found


def _choice_paths(rule: dict[str, Any]) -> list[str]:
    found = [rule["Variable"]] if isinstance(rule.get("Variable"), str) else []
    for key in ("And", "Or"):
        for sub in rule.get(key, []):
            found += _choice_paths(sub)
    if "Not" in rule:
        found += _choice_paths(rule["Not"])
    found += [v for k, v in rule.items() if k.endswith("Path") and isinstance(v, str) and k != "Variable"]
    return found


def problems(machine: Machine, asl: dict[str, Any]) -> list[str]:
    """Every path the ASL reads or writes that the contracts do not declare."""
    found: list[str] = []
    lambda_states: set[str] = set()

    def check(states: dict[str, Any], scope: Schema, where: str) -> None:
        for name, state in states.items():
            at = f"{where}{name}"

            def read(path: str, schema: Schema, what: str, at: str = at) -> None:
                if path.startswith("$$") or schema.resolves(path):
                    return
                found.append(f"{at}: {what} reads {path}, not in the contract")

            for key in READ_KEYS:
                if isinstance(state.get(key), str):
                    read(state[key], scope, key)
            for rule in state.get("Choices", []):
                for path in _choice_paths(rule):
                    read(path, scope, "Choice")
            for key in ("Parameters", "ItemSelector", "Arguments"):
                for path in _paths(state.get(key)):
                    read(path, scope, key)
            result_path = state.get("ResultPath")
            if isinstance(result_path, str) and result_path != "$" and not scope.resolves(result_path):
                found.append(f"{at}: ResultPath {result_path} is not a field of the state document")
            for catch in state.get("Catch", []):
                path = catch.get("ResultPath")
                if isinstance(path, str) and path != "$" and not scope.resolves(path):
                    found.append(f"{at}: Catch ResultPath {path} is not a field of the state document")
            step = machine.steps.get(name)
            resource = str(state.get("Resource", ""))
            if "lambda:invoke" in resource:
                lambda_states.add(name)
                if step is None:
                    found.append(f"{at}: a Lambda state without a contract in {machine.asl}")
                else:
                    output = Schema({"type": "object", "properties": {"Payload": step.output.model_json_schema()}})
                    output.defs = output.root["properties"]["Payload"].get("$defs", {})
                    for path in _paths(state.get("ResultSelector")):
                        read(path, output, "ResultSelector")
                    parameters = state.get("Parameters") or state.get("Arguments") or {}
                    payload = parameters.get("Payload", {})
                    sent = {key.removesuffix(".$") for key in payload} if isinstance(payload, dict) else set()
                    if parameters.get("Payload.$") == "$":  # the whole state document (a Map item) is sent
                        sent = scope.fields()[0]
                    declared, required = Schema(step.input).fields()
                    model = step.input.__name__
                    if sent - declared:
                        found.append(f"{at}: Payload sends {sorted(sent - declared)}, unknown to {model}")
                    if required - sent:
                        found.append(f"{at}: Payload lacks {sorted(required - sent)}, required by {model}")
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                item = machine.items.get(name)
                if item is None:
                    found.append(f"{at}: a Map state without an item model")
                else:
                    check(processor["States"], Schema(item), f"{at}/")
            for branch in state.get("Branches", []):
                check(branch["States"], scope, f"{at}/")

    check(asl["States"], Schema(machine.document), "")
    found += [f"{name}: a contract for a state the ASL does not have" for name in set(machine.steps) - lambda_states]
    return found


@pytest.mark.parametrize("machine", machines(), ids=lambda m: m.asl)
def test_every_path_the_state_machine_reads_is_in_its_contract(machine: Machine) -> None:
    asl = json.loads((ROOT / "statemachines" / machine.asl).read_text())
    assert problems(machine, asl) == []


def test_every_state_machine_has_contracts() -> None:
    declared = {m.asl for m in machines()}
    assert declared == {p.name for p in (ROOT / "statemachines").glob("*.asl.json")}


def test_a_path_the_contract_lacks_is_found() -> None:
    # The checker itself: a document, one step, and an ASL that reads one wrong path in each place.
    from mlops.contracts.base import Contract, Document, Step

    class Plan(Contract):
        model: str
        version: int | None = None

    class Planned(Contract):
        strategy: str

    class Run(Document):
        model: str
        plan: dict[str, Any] | None = None
        error: dict[str, Any] | None = None

    machine = Machine(asl="x.asl.json", document=Run, steps={"Plan": Step(Plan, Planned)})
    asl = {
        "States": {
            "Plan": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f", "Payload": {"model.$": "$.model", "modle.$": "$.modle"}},
                "ResultSelector": {"strategy.$": "$.Payload.strategy", "bake.$": "$.Payload.bake"},
                "ResultPath": "$.plan",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure"}],
            },
            "Which": {"Type": "Choice", "Choices": [{"Variable": "$.plan.strategy", "StringEquals": "x"}]},
        }
    }
    assert problems(machine, asl) == [
        "Plan: Parameters reads $.modle, not in the contract",
        "Plan: Catch ResultPath $.failure is not a field of the state document",
        "Plan: ResultSelector reads $.Payload.bake, not in the contract",
        "Plan: Payload sends ['modle'], unknown to Plan",
    ]
