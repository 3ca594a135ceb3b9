"""Record a notebook's run of a model in the platform: ``from mlops import tracking``.

::

    from mlops import tracking

    with tracking.start_run(model="penguins") as run:
        run.log_params({"C": 0.5, "columns": ["bill_length_mm", "island"]})
        run.log_metrics({"accuracy": 0.97})
        run.log_model(onnx_bytes)  # or a fitted scikit-learn pipeline
    print(run.run_id)  # nb-...: `mlops runs list --model penguins` lists it

The run is sent when the ``with`` block ends (``tags.status`` is ``FINISHED``, or ``FAILED`` when
the block raised), as one ``POST /models/{model}/runs`` to the platform's API, signed (SigV4) with
the caller's own AWS credentials (botocore's chain: environment, profile, role): the platform
records the identity AWS verified, never a name this client writes. Values are checked when they
are logged, so a bad one fails in the notebook cell that logs it: metrics are finite numbers,
params are strings, finite numbers, booleans, null or lists of those.

A logged model (ONNX bytes, or a fitted scikit-learn model stored in the platform's restricted
format) is uploaded with the presigned PUT the API answers, of exactly its sha256, under
``imports/<model>/<sha256>/``; it starts nothing until ``mlops models import M --run RUN_ID
--dataset VERSION`` imports it (checked against the spec there, as any import).

``api_url`` defaults to ``$MLOPS_API_URL`` (``mlops status`` prints it), ``region`` to the one in
the API's host name, else ``$AWS_REGION``/``$AWS_DEFAULT_REGION``. Light on purpose: the standard
library and botocore only (no CLI, no science stack).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from mlops.errors import InputError, MlopsError
from mlops.registry.origin import ONNX_FORMAT, SKLEARN_FORMAT

API_URL_ENV = "MLOPS_API_URL"


class TrackingError(MlopsError):
    """The platform did not record the run (its answer, with the HTTP status, is the message)."""


def _check_metric(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"metric {name!r}: {value!r} ({type(value).__name__}) is not a number")
    if not math.isfinite(value):
        raise InputError(f"metric {name!r}: {value!r} is not a finite number")
    return float(value)


def _check_param(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    for item in value if isinstance(value, list) else [value]:
        if item is None or isinstance(item, str | bool):
            continue
        if isinstance(item, int | float) and math.isfinite(item):
            continue
        raise InputError(
            f"param {name!r}: {item!r} ({type(item).__name__}) is not a JSON value a run can record"
            " (a string, a finite number, a boolean, null, or a list of those)"
        )
    return value


def _region(url: str, region: str | None) -> str:
    if region:
        return region
    host = urlsplit(url).hostname or ""
    if ".execute-api." in host:
        return host.split(".execute-api.", 1)[1].split(".", 1)[0]
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        raise InputError("no AWS region: pass region=... or set AWS_REGION")
    return found


class Run:
    """One run of ``model``: log parameters and metrics, then leave the ``with`` block to record it."""

    def __init__(
        self,
        model: str,
        *,
        api_url: str,
        region: str,
        tags: Mapping[str, str] | None = None,
        session: Any = None,
    ) -> None:
        self.model = model
        self.session = session
        self.api_url = api_url
        self.region = region
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}
        self.run_id: str | None = None
        self.recorded: dict[str, Any] | None = None
        self.model_data: bytes | None = None
        self.model_format: str | None = None
        self.set_tags(tags or {})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add parameters (a later value of the same name replaces the earlier one)."""
        self.params.update({str(k): _check_param(str(k), v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Add metrics: finite numbers (numpy scalars too)."""
        self.metrics.update({str(k): _check_metric(str(k), _plain(v)) for k, v in metrics.items()})

    def log_model(self, model: Any) -> None:
        """The run's model: ONNX bytes or an ``.onnx`` file's path, or a fitted scikit-learn estimator or pipeline."""
        if isinstance(model, str | os.PathLike):
            path = Path(model)
            if path.suffix.lower() != ".onnx" or not path.is_file():
                raise InputError(f"log_model: {path} is not an .onnx file (log a fitted scikit-learn model as itself)")
            model = path.read_bytes()
        if isinstance(model, bytes | bytearray):
            if not model:
                raise InputError("log_model: the ONNX model is empty")
            self.model_data, self.model_format = bytes(model), ONNX_FORMAT
            return
        if not callable(getattr(model, "predict", None)):
            raise InputError(f"log_model: {type(model).__name__} is neither ONNX bytes nor a fitted scikit-learn model")
        # here: the science stack loads only when a scikit-learn model is logged (an optional heavy dependency)
        from mlops.training.artifacts import dump_artifact

        self.model_data, _ = dump_artifact(model)
        self.model_format = SKLEARN_FORMAT

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            if not isinstance(value, str):
                raise InputError(f"tag {key!r}: {value!r} is not a string")
            self.tags[str(key)] = value

    def body(self) -> dict[str, Any]:
        """What is sent: never who sends it (the platform takes that from the signature)."""
        body: dict[str, Any] = {"params": self.params, "metrics": self.metrics, "tags": self.tags}
        if self.model_data is not None:
            sha256 = hashlib.sha256(self.model_data).hexdigest()
            body["model"] = {"format": self.model_format, "sha256": sha256, "size": len(self.model_data)}
        return body

    def end(self, status: str = "FINISHED") -> dict[str, Any]:
        """Record the run now (once); answers the run as the platform stored it."""
        if self.recorded is not None:
            return self.recorded
        self.tags["status"] = status
        path = f"models/{quote(self.model, safe='')}/runs"
        self.recorded = _post(self.api_url, self.region, path, self.body(), session=self.session)
        self.run_id = str(self.recorded["run_id"])
        if self.model_data is not None:
            _put(self.recorded["upload"], self.model_data)
        return self.recorded

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.end("FAILED" if kind is not None else "FINISHED")


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python number (duck-typed: numpy is not a dependency here)."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, int | float) and getattr(value, "shape", None) == ():
        return item()
    return value


def start_run(
    model: str,
    *,
    api_url: str | None = None,
    region: str | None = None,
    tags: Mapping[str, str] | None = None,
    session: Any = None,
) -> Run:
    """A run of ``model``, recorded when its ``with`` block ends (or at :meth:`Run.end`).

    ``session``: a boto3 or botocore session whose credentials sign the run (for instance
    ``boto3.Session(profile_name="ml")``); by default the environment's, as the AWS CLI finds them."""
    url = api_url or os.environ.get(API_URL_ENV)
    if not url:
        raise InputError(f"no platform API URL: pass api_url=... or set {API_URL_ENV} (`mlops status` prints it)")
    return Run(model, api_url=url, region=_region(url, region), tags=tags, session=session)


def _put(upload: dict[str, Any], data: bytes) -> None:
    """The presigned PUT of exactly the logged model (S3 checks its SHA-256)."""
    # Content-Type named: urllib's default for a body (application/x-www-form-urlencoded) would be
    # stored on the object, and a server that parses forms (moto's) reads the model as one
    headers = {
        **{str(k): str(v) for k, v in (upload.get("headers") or {}).items()},
        "Content-Length": str(len(data)),
        "Content-Type": "application/octet-stream",
    }
    request = urllib.request.Request(upload["url"], data=data, headers=headers, method="PUT")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=600):  # noqa: S310 - the presigned URL the API answered
            pass
    except urllib.error.HTTPError as exc:
        raise TrackingError(f"S3 refused the run's model (HTTP {exc.code}: {exc.read()[:200]!r})") from None
    except urllib.error.URLError as exc:
        raise TrackingError(f"cannot reach S3 for the run's model: {exc.reason}") from None


def _post(base: str, region: str, path: str, body: dict[str, Any], *, session: Any = None) -> dict[str, Any]:
    credentials = (session or botocore.session.get_session()).get_credentials()
    if credentials is None:
        raise InputError("no AWS credentials: the platform records who ran the notebook from the signature")
    url = base.rstrip("/") + "/" + path
    data = json.dumps(body, allow_nan=False).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    outgoing = urllib.request.Request(url, data=data, headers=dict(request.headers.items()), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(outgoing, timeout=60) as response:  # noqa: S310 - the platform's API URL
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("message") or json.loads(text).get("error") or text
        except (ValueError, AttributeError):
            message = text
        error = InputError if exc.code in (400, 404) else TrackingError
        raise error(f"the platform refused the run of {path.split('/')[1]!r}: {message} (HTTP {exc.code})") from None
    except urllib.error.URLError as exc:
        raise TrackingError(f"cannot reach the platform API at {base}: {exc.reason}") from None
