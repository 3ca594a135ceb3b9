"""What serving reads of a stored spec, without pydantic.

A spec is validated once, by :class:`mlops.spec.model.ModelSpec`, when it is stored
(:meth:`mlops.registry.specs.SpecStore.put`); the registry keeps its canonical JSON. The inference
function reads that JSON back on every cold start, and parsing it with pydantic there means
importing pydantic and building the spec's models: about 0.06 s of a cold start
(``benchmarks/bench_inference.py``) spent re-checking a document that was checked when stored.
:class:`SpecView` reads only what serving uses (the features and their constraints, the task, the
target's classes) into frozen dataclasses. The pydantic request models are still built from the
spec, on first use (to explain a refused request, or for the OpenAPI document).

``tests/unit/serving/test_specview.py`` checks that a view reads every example spec as
:class:`~mlops.spec.model.ModelSpec` does (same features, constraints, classes and fingerprint).

This module also holds the two names the registry needs without pydantic: :class:`FeatureType`
and :data:`MODEL_NAME` (:mod:`mlops.spec.model` re-exports both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec

# Lower-case letters, digits and hyphens, starting with a letter: safe in S3 keys, DynamoDB keys,
# Step Functions execution names and URLs.
MODEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class FeatureType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"
    STRING = "string"
    DATETIME = "datetime"


NUMERIC_TYPES = frozenset({FeatureType.FLOAT, FeatureType.INT})


@dataclass(frozen=True)
class FeatureView:
    """One feature as a request is checked against it (see :class:`mlops.spec.model.Feature`)."""

    name: str
    type: FeatureType
    description: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    regex: str | None = None


@dataclass(frozen=True)
class TargetView:
    name: str
    classes: list[Any] | None = None


@dataclass(frozen=True)
class SpecView:
    """The serving side of a stored, already validated spec."""

    name: str
    task: str
    features: tuple[FeatureView, ...]
    target: TargetView
    spec_fingerprint: str
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def fingerprint(self) -> str:
        """:meth:`mlops.spec.model.ModelSpec.fingerprint` of the spec this view was read from."""
        return self.spec_fingerprint

    def model_spec(self) -> ModelSpec:
        """The whole spec, parsed (and checked) by pydantic: for the code that needs more than the view."""
        # Here, not at the top: pydantic stays off the inference cold start (and spec.model imports this module).
        from mlops.spec.model import parse_spec

        return parse_spec(dict(self.document), f"{self.name} spec")

    @classmethod
    def from_document(cls, document: Mapping[str, Any], fingerprint: str) -> SpecView:
        """Read a stored spec's canonical JSON (``SpecRevision.document``, all defaults filled in)."""
        target = document["target"]
        return cls(
            name=document["name"],
            task=document["task"],
            features=tuple(
                FeatureView(
                    name=f["name"],
                    type=FeatureType(f["type"]),
                    description=f.get("description") or "",
                    nullable=bool(f.get("nullable", False)),
                    min=f.get("min"),
                    max=f.get("max"),
                    allowed=f.get("allowed"),
                    regex=f.get("regex"),
                )
                for f in document["features"]
            ),
            target=TargetView(name=target["name"], classes=target.get("classes")),
            spec_fingerprint=fingerprint,
            document=document,
        )
