"""Serving's refusals: the platform's errors (:mod:`mlops.errors`) with a stable code and details.

Each class is a subclass of the :mod:`mlops.errors` class it is a case of, so its HTTP status is
that hierarchy's ``http_status`` (the one mapping from error to status; a few refusals that only
an HTTP endpoint makes name their own: 410, 413, 415, 503). :class:`ServingError` adds what the
inference API's JSON body says besides the message: a stable ``code`` and ``details``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError


class ServingError(MlopsError):
    """A request the endpoint answers with an error: ``http_status``, a stable ``code``, details.

    ``details`` are ``{"record": index, "field": name, "problem": code, "message": text}`` items.
    """

    http_status = 400
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


class RequestError(InputError, ServingError):
    """The request body is not a valid prediction request (400)."""

    http_status = 400
    code = "bad_request"


class PayloadTooLargeError(InputError, ServingError):
    """More records or bytes than the endpoint takes (413)."""

    http_status = 413
    code = "batch_too_large"


class UnsupportedMediaTypeError(InputError, ServingError):
    """The body is not declared as JSON (415)."""

    http_status = 415
    code = "unsupported_media_type"


class UnknownModelError(NotFoundError, ServingError):
    """The registry does not know the model (404)."""

    http_status = 404
    code = "unknown_model"


class ModelArchivedError(ServingError):
    """The model is archived (410): it serves nothing until ``mlops models unarchive``."""

    http_status = 410
    code = "model_archived"


class NoChampionError(ServingError):
    """The model exists but nothing serves it yet (409: approve and deploy a version first)."""

    http_status = 409
    code = "no_champion"


class ArtifactRefusedError(CheckFailedError, ServingError):
    """The serving version's artifact failed its integrity check and is not loaded (503)."""

    http_status = 503
    code = "artifact_refused"


class ServingUnavailableError(ServingError):
    """The platform cannot serve right now (503); the message holds no internals."""

    http_status = 503
    code = "unavailable"
