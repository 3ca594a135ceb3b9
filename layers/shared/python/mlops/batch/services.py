"""What the batch steps use: the data bucket's S3 client, the registry, the loaded models, the knobs.

One :class:`BatchServices` per execution environment (the handlers make it once); tests build one
on moto's clients. The knobs come from the function's environment, which the stack fills from the
deployment's config (``batch_size``, ``batch_max_concurrency``, ``capture_sample_rate``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InputError
from mlops.registry.versions import Registry
from mlops.serving.cache import LoadedModel
from mlops.serving.predictors import S3Artifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.settings import Platform

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_CONCURRENCY = 10


@dataclass(frozen=True)
class BatchSettings:
    """The job's knobs (environment variables ``BATCH_SIZE``, ``BATCH_MAX_CONCURRENCY``, ``CAPTURE_SAMPLE_RATE``)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    capture_rate: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BatchSettings:
        def number(name: str, default: float, low: float, high: float) -> float:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"environment variable {name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise InputError(f"environment variable {name}={raw!r} must be between {low:g} and {high:g}")
            return value

        return cls(
            batch_size=int(number("BATCH_SIZE", DEFAULT_BATCH_SIZE, 1, 100_000)),
            max_concurrency=int(number("BATCH_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, 1, 10_000)),
            capture_rate=number("CAPTURE_SAMPLE_RATE", 0.0, 0, 1),
        )


@dataclass
class BatchServices:
    """The clients and caches of one execution environment."""

    s3: Any
    registry: Registry
    bucket: str
    settings: BatchSettings = field(default_factory=BatchSettings)
    clock: Callable[[], float] | None = None
    _models: InferenceService | None = None

    @classmethod
    def from_env(cls) -> BatchServices:
        import boto3  # here, not at the top: unit tests build the services on their own clients

        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(boto3.client("s3"), registry, platform.data_bucket, BatchSettings.from_env(os.environ))

    def model(self, model: str, version: int) -> LoadedModel:
        """A version's predictor and request models, verified against the registry's sha256 (cached)."""
        if self._models is None:
            # The serving room's loader: the same integrity check, ONNX preferred, one model cache.
            self._models = InferenceService(self.registry, S3Artifacts(self.s3), ServingSettings(), capture_async=False)
        return self._models.loaded(model, version)
