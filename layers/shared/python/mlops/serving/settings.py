"""The inference service's knobs (limits, alias TTL, cache budget, capture rate), read from the environment."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mlops.errors import InputError

DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_ALIAS_TTL_SECONDS = 30.0
DEFAULT_CAPTURE_RATE = 1.0
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
# Share of the function's memory the model cache may use; the rest is the runtime and requests.
CACHE_MEMORY_SHARE = 0.5
# Deepest JSON nesting a request may have. A valid request is 3 levels deep ({"records": [{...}]});
# the limit is checked by a byte scan before parsing, so no parser ever recurses on a caller's body.
DEFAULT_MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class ServingSettings:
    """Knobs of the inference service.

    Attributes
    ----------
    max_batch_size
        Most records one request may hold (``MAX_BATCH_SIZE``, default 1000).
    alias_ttl_seconds
        How long a model's aliases and rollout are trusted before re-reading (``ALIAS_TTL_SECONDS``).
    cache_bytes
        Budget of the model cache (half of ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` MiB by default).
    capture_rate
        Share of requests captured to S3 (``CAPTURE_SAMPLE_RATE``, 0..1).
    max_body_bytes
        Largest request body accepted (``MAX_BODY_BYTES``).
    max_json_depth
        Deepest nesting of arrays and objects a request body may have (``MAX_JSON_DEPTH``, default 32).
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    alias_ttl_seconds: float = DEFAULT_ALIAS_TTL_SECONDS
    cache_bytes: int = 512 * 1024 * 1024
    capture_rate: float = DEFAULT_CAPTURE_RATE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServingSettings:
        """Settings from environment variables (pass ``os.environ``); bad values are named."""

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"environment variable {name}={raw!r} is not a number") from None
            if not low <= value <= high or not math.isfinite(value):
                raise InputError(f"environment variable {name}={raw!r} must be between {low} and {high}")
            return value

        memory_mib = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 1024, 128, 10240)
        return cls(
            max_batch_size=int(number("MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE, 1, 100_000)),
            alias_ttl_seconds=number("ALIAS_TTL_SECONDS", DEFAULT_ALIAS_TTL_SECONDS, 0, 3600),
            cache_bytes=int(memory_mib * 1024 * 1024 * CACHE_MEMORY_SHARE),
            capture_rate=number("CAPTURE_SAMPLE_RATE", DEFAULT_CAPTURE_RATE, 0, 1),
            max_body_bytes=int(number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 10 * 1024 * 1024)),
            max_json_depth=int(number("MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH, 3, 256)),
        )
