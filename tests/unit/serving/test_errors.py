"""Serving's refusals are the platform's errors: one mapping from error to HTTP status and exit code."""

from __future__ import annotations

import json

import pytest

from mlops.apierrors import error_response
from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError
from mlops.serving import errors
from mlops.serving.errors import ServingError

# Each refusal: the platform error it is a case of, its status and code (the inference API's contract).
REFUSALS = [
    (errors.RequestError, InputError, 400, 2, "bad_request"),
    (errors.PayloadTooLargeError, InputError, 413, 2, "batch_too_large"),
    (errors.UnsupportedMediaTypeError, InputError, 415, 2, "unsupported_media_type"),
    (errors.UnknownModelError, NotFoundError, 404, 3, "unknown_model"),
    (errors.ModelArchivedError, MlopsError, 410, 3, "model_archived"),
    (errors.NoChampionError, MlopsError, 409, 3, "no_champion"),
    (errors.ArtifactRefusedError, CheckFailedError, 503, 1, "artifact_refused"),
    (errors.ServingUnavailableError, MlopsError, 503, 3, "unavailable"),
]


@pytest.mark.parametrize(("kind", "base", "status", "exit_code", "code"), REFUSALS)
def test_each_refusal_is_a_platform_error_with_one_status(
    kind: type[ServingError], base: type[MlopsError], status: int, exit_code: int, code: str
) -> None:
    # GIVEN a serving refusal
    error = kind("what went wrong", details=[{"record": 0, "field": "x", "problem": "p", "message": "m"}])
    # THEN it is the platform error it is a case of, with its exit code and one HTTP status
    assert isinstance(error, base) and isinstance(error, MlopsError)
    assert error.http_status == status and error.exit_code == exit_code and error.code == code
    assert not hasattr(error, "status"), "the HTTP status has one name: http_status"
    # AND the control APIs' answer for it has the same status as the inference API's
    assert error_response(error).status_code == status
    assert json.loads(json.dumps(error.body("r1"))) == {
        "error": code,
        "message": "what went wrong",
        "details": [{"record": 0, "field": "x", "problem": "p", "message": "m"}],
        "request_id": "r1",
    }


def test_every_serving_refusal_is_listed() -> None:
    # GIVEN every refusal class the serving package defines THEN each is pinned above
    defined = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, ServingError)}
    assert defined - {ServingError} == {r[0] for r in REFUSALS}
