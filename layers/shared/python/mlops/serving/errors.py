"""Serving's refusals: each an HTTP status, a stable code and details naming the record and field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.errors import MlopsError


class ServingError(MlopsError):
    """A request the endpoint answers with an error: HTTP ``status``, a stable ``code``, details.

    ``details`` are ``{"record": index, "field": name, "problem": code, "message": text}`` items.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]] = (), code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = [dict(d) for d in details]
        if code is not None:
            self.code = code

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The JSON error body (never internals)."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if request_id:
            body["request_id"] = request_id
        return body


class RequestError(ServingError):
    """The request body is not a valid prediction request (400)."""


class PayloadTooLargeError(ServingError):
    """More records or bytes than the endpoint takes (413)."""

    status = 413
    code = "batch_too_large"


class UnsupportedMediaTypeError(ServingError):
    """The body is not declared as JSON (415)."""

    status = 415
    code = "unsupported_media_type"


class UnknownModelError(ServingError):
    """The registry does not know the model (404)."""

    status = 404
    code = "unknown_model"


class ModelArchivedError(ServingError):
    """The model is archived (410): it serves nothing until ``mlops models unarchive``."""

    status = 410
    code = "model_archived"


class NoChampionError(ServingError):
    """The model exists but nothing serves it yet (409: approve and deploy a version first)."""

    status = 409
    code = "no_champion"


class ArtifactRefusedError(ServingError):
    """The serving version's artifact failed its integrity check and is not loaded (503)."""

    status = 503
    code = "artifact_refused"


class ServingUnavailableError(ServingError):
    """The platform cannot serve right now (503); the message holds no internals."""

    status = 503
    code = "unavailable"
