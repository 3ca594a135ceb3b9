"""Typed step contracts: what each state of the three state machines passes to the next.

One submodule per state machine (``training``, ``deployment``, ``monitoring``) declares:

- the models of each Lambda state's ``Payload`` (its input) and of what the handler returns
  (its output, read by the state's ``ResultSelector`` as ``$.Payload...``);
- the model of the execution's state document (``$`` between states: the execution input plus
  each state's result at its ``ResultPath``), and of one item inside each ``Map`` state;
- ``MACHINE``: a :class:`Machine` tying these to the ASL file, so one test
  (``tests/unit/test_step_contracts.py``) checks every ``$.path`` the ASL reads against them.

A handler parses its event into the input model, makes one call into its capability, and returns
the output model dumped to JSON (:func:`mlops.observability.step_handler`). This package is the
only part of the domain that ``stacks/`` may import; it imports nothing else of the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A payload between states: unknown fields are refused, so a renamed field fails loudly."""

    model_config = ConfigDict(extra="forbid")


class Document(BaseModel):
    """A state machine's state document: grows as states write their results (extra keys kept)."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Step:
    """The contract of one Lambda state: the handler's input and output models."""

    input: type[BaseModel]
    output: type[BaseModel]
    handler: str = ""  # "functions/<dir>/handler.<function>": which code serves this state


@dataclass(frozen=True)
class Machine:
    """One state machine's contracts, checked against its ASL file."""

    asl: str  # the file name under statemachines/
    document: type[BaseModel]  # ``$`` between states
    steps: Mapping[str, Step]  # Lambda state name -> its contract
    items: Mapping[str, type[BaseModel]] = field(default_factory=dict)  # Map state name -> ``$`` of one item
