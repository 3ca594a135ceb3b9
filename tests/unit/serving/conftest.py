"""Fixtures: an in-memory registry with trained churn versions, artifacts in a dict, a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.predictors import MemoryArtifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.spec.model import ModelSpec
from mlops.training.artifacts import dump_artifact
from mlops.training.fit import TrainResult, train
from mlops.training.onnx_model import records_from_frame
from tests.unit.training.helpers import example_frame, example_spec, spec_with

MODEL = "churn"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListSink:
    """Captures in memory; ``fail`` makes every write raise."""

    def __init__(self, *, fail: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = fail

    def put(self, key: str, body: bytes) -> None:
        if self.fail:
            raise OSError("capture bucket unreachable")
        self.objects[key] = body


@dataclass
class World:
    registry: Registry
    artifacts: MemoryArtifacts
    spec: ModelSpec
    trained: list[TrainResult]
    records: list[dict[str, Any]]
    clock: FakeClock = field(default_factory=FakeClock)
    sink: ListSink = field(default_factory=ListSink)

    def register(self, index: int, *, model: str = MODEL, approve: bool = True, **tags: str) -> int:
        data, sha256 = dump_artifact(self.trained[index].pipeline)
        uri = f"s3://bucket/artifacts/{model}/{index}/model.pkl"
        self.artifacts.objects[uri] = data
        version = self.registry.register_version(
            model, actor="pipeline", spec_revision=1, artifact_uri=uri, artifact_sha256=sha256, tags=tags
        )
        if approve:
            self.registry.approve(model, version.version, actor="alice")
        return version.version

    def champion(self, version: int, model: str = MODEL) -> None:
        self.registry.set_alias(model, "champion", version, actor="alice")

    def service(self, on_refused: Callable[[str, int, str], None] | None = None, **settings: Any) -> InferenceService:
        return InferenceService(
            self.registry,
            self.artifacts,
            ServingSettings(**settings),
            capture=self.sink,
            clock=self.clock,
            rng=random.Random(42),
            capture_async=False,
            on_refused=on_refused,
        )


@pytest.fixture(scope="session")
def churn_models() -> tuple[ModelSpec, list[TrainResult]]:
    base = example_spec("churn")
    frame = example_frame("churn", rows=1200)
    results = []
    for trees, seed in ((20, 1), (20, 2)):
        spec = spec_with(
            base,
            training={
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": trees, "max_depth": 6},
                "seed": seed,
                "search": None,
            },
        )
        results.append(train(frame, spec))
    return spec, results


@pytest.fixture
def world(churn_models: tuple[ModelSpec, list[TrainResult]]) -> World:
    spec, trained = churn_models
    registry = Registry.in_memory()
    SpecStore(registry).put(spec, actor="alice")
    records = records_from_frame(trained[0].holdout.head(50), spec)
    return World(registry, MemoryArtifacts(), spec, trained, records)


Factory = Callable[..., InferenceService]
