"""The parts of a Distributed Map that moto's interpreter lacks: ItemBatcher, JSON Lines, ItemSelector per item.

moto's ASL parser rejects ``ItemBatcher`` and knows only the ``CSV`` and ``JSON`` input types of an
``ItemReader``. When the local cloud creates a state machine, :func:`rewrite` hands moto a
definition it can parse: for each Map state whose ItemReader needs what moto lacks, the state's
``ItemBatcher``, ``ItemSelector`` and ``ReaderConfig`` move, as one JSON string, into an extra
``MlopsLocal`` field of the ItemReader's ``Parameters`` (a literal: moto evaluates nothing in it),
and the ReaderConfig moto sees is ``{"InputType": "JSON"}``. At run time the patched ItemReader
(:mod:`mlops_local.patches`) takes that field out before calling S3 ``GetObject`` with the real
parameters, and :func:`read_items` does what Step Functions does with the object: parse it (CSV with
its header row or given headers, JSON, JSON Lines; ``MaxItems``), apply the ``ItemSelector`` to each
item with ``$$.Map.Item.Index`` and ``$$.Map.Item.Value``, then cut the items into batches of at most
``MaxItemsPerBatch`` items and ``MaxInputBytesPerBatch`` bytes, each ``{"Items": [...],
"BatchInput": ...}``. moto then runs one child execution per batch, as AWS does.

What is read: paths (``$.a.b``, ``$$.Map.Item.Value``) in ItemSelector and BatchInput, and the
``...Path`` forms of MaxItems, MaxItemsPerBatch and MaxInputBytesPerBatch. Intrinsic functions
there are refused with the field named (the platform's definitions use none).

Examples
--------
>>> config = {"ReaderConfig": {"InputType": "JSONL"}, "ItemBatcher": {"MaxItemsPerBatch": 2},
...           "ItemSelector": {"row.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value.x"}}
>>> read_items(config, '{"x": 1}\\n{"x": 2}\\n{"x": 3}\\n', {}, {})
[{'Items': [{'row': 0, 'v': 1}, {'row': 1, 'v': 2}]}, {'Items': [{'row': 2, 'v': 3}]}]
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from typing import Any

from mlops.errors import InputError

FIELD = "MlopsLocal"
NATIVE_INPUT_TYPES = ("CSV", "JSON")
MAX_BATCH_BYTES = 256 * 1024  # Step Functions' limit on a child execution's input


def _needs_emulation(state: dict[str, Any]) -> bool:
    reader = state.get("ItemReader")
    if not isinstance(reader, dict):
        return False
    input_type = (reader.get("ReaderConfig") or {}).get("InputType")
    return "ItemBatcher" in state or (input_type is not None and input_type not in NATIVE_INPUT_TYPES)


def _rewrite_states(states: dict[str, Any]) -> int:
    changed = 0
    for state in states.values():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            changed += _rewrite_states(processor.get("States") or {})
        if state.get("Type") != "Map" or not _needs_emulation(state):
            continue
        reader = state["ItemReader"]
        emulated = {
            "ReaderConfig": reader.get("ReaderConfig") or {},
            "ItemBatcher": state.pop("ItemBatcher", None),
            "ItemSelector": state.pop("ItemSelector", None),
        }
        reader["ReaderConfig"] = {"InputType": "JSON"}
        reader.setdefault("Parameters", {})[FIELD] = json.dumps(emulated)
        changed += 1
    return changed


def rewrite(definition: str) -> str:
    """``definition`` with each Map state moto cannot run made runnable (see the module docstring)."""
    document = json.loads(definition)
    if not isinstance(document, dict) or not _rewrite_states(document.get("States") or {}):
        return definition
    return json.dumps(document)


_DOTTED = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _path(path: str, state_input: Any, context: Any) -> Any:
    data = context if path.startswith("$$") else state_input
    path = path[1:] if path.startswith("$$") else path
    if _DOTTED.match(path):  # a plain $.a.b: walked here (once per item: a parser per item is slow)
        for name in path.split(".")[1:]:
            if not isinstance(data, dict) or name not in data:
                raise InputError(f"States.Runtime: the path {path} does not exist in the input")
            data = data[name]
        return data
    # moto's JSONPath reader (the one its interpreter uses) for the rest, imported when such a path
    # is first read: moto's modules cost seconds and the local cloud's CLI imports this package.
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    return extract_json(path, data)


def evaluate(template: Any, state_input: Any, context: Any, where: str) -> Any:
    """A Parameters-like template (``"key.$": "$.path"``) evaluated against the input and the context."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str) or not value.startswith("$"):
                    raise InputError(f"{where}.{key}: the local cloud evaluates paths only here, not {value!r}")
                out[key[:-2]] = _path(value, state_input, context)
            else:
                out[key] = evaluate(value, state_input, context, f"{where}.{key}")
        return out
    if isinstance(template, list):
        return [evaluate(v, state_input, context, where) for v in template]
    return template


def _number(config: dict[str, Any], name: str, state_input: Any, default: int | None) -> int | None:
    if name in config:
        return int(config[name])
    if f"{name}Path" in config:
        value = _path(str(config[f"{name}Path"]), state_input, {})
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}Path {config[f'{name}Path']} is {value!r}, not an integer") from None
    return default


def _parse(reader: dict[str, Any], content: str, state_input: Any) -> list[Any]:
    kind = reader.get("InputType")
    max_items = _number(reader, "MaxItems", state_input, None)
    if kind == "CSV":
        rows = csv.reader(io.StringIO(content))
        if reader.get("CSVHeaderLocation", "FIRST_ROW") == "GIVEN":
            headers = list(reader.get("CSVHeaders") or [])
        else:
            headers = next(rows, [])
        if len(set(headers)) < len(headers):
            raise InputError("States.ItemReaderFailed: CSV headers cannot repeat a name")
        items: list[Any] = []
        for row in rows:
            if max_items is not None and len(items) >= max_items:
                break
            items.append({h: (row[i] if i < len(row) else "") for i, h in enumerate(headers)})
        return items
    if kind == "JSONL":
        items = []
        for number, line in enumerate(content.splitlines(), start=1):
            if max_items is not None and len(items) >= max_items:
                break
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError:
                    raise InputError(f"States.ItemReaderFailed: line {number} is not JSON") from None
        return items
    if kind == "JSON":
        loaded = json.loads(content)
        if not isinstance(loaded, list):
            raise InputError("States.ItemReaderFailed: the JSON object must hold an array")
        return loaded if max_items is None else loaded[:max_items]
    raise InputError(f"ItemReader InputType {kind!r} is not emulated by the local cloud")


def _batches(items: list[Any], batcher: dict[str, Any], state_input: Any, context: Any) -> list[dict[str, Any]]:
    size = _number(batcher, "MaxItemsPerBatch", state_input, None)
    max_bytes = _number(batcher, "MaxInputBytesPerBatch", state_input, MAX_BATCH_BYTES) or MAX_BATCH_BYTES
    shell: dict[str, Any] = {}
    if "BatchInput" in batcher:
        shell["BatchInput"] = evaluate(batcher["BatchInput"], state_input, context, "ItemBatcher.BatchInput")
    overhead = len(json.dumps({**shell, "Items": []}, separators=(",", ":")))
    batches: list[dict[str, Any]] = []
    current: list[Any] = []
    used = overhead
    for item in items:
        cost = len(json.dumps(item, separators=(",", ":"))) + 1
        if current and ((size is not None and len(current) >= size) or used + cost > max_bytes):
            batches.append({"Items": current, **copy.deepcopy(shell)})
            current, used = [], overhead
        current.append(item)
        used += cost
    if current:
        batches.append({"Items": current, **copy.deepcopy(shell)})
    return batches


def read_items(config: dict[str, Any], content: str, state_input: Any, context: Any) -> list[Any]:
    """The Map's child inputs from the object's ``content`` (see the module docstring)."""
    items = _parse(config.get("ReaderConfig") or {}, content, state_input)
    selector = config.get("ItemSelector")
    if selector is not None:
        selected = []
        for index, value in enumerate(items):
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": value}}}
            selected.append(evaluate(selector, state_input, item_context, "ItemSelector"))
        items = selected
    batcher = config.get("ItemBatcher")
    return _batches(items, batcher, state_input, context) if batcher else items
