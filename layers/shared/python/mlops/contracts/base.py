"""The base classes of the step contracts (see :mod:`mlops.contracts`)."""

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
