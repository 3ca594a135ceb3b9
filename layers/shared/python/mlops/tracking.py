"""Record a notebook's run of a model in the platform: ``from mlops import tracking``.

::

    from mlops import tracking

    with tracking.start_run(model="penguins") as run:
        run.log_params({"C": 0.5, "columns": ["bill_length_mm", "island"]})
        run.log_metrics({"accuracy": 0.97})
    print(run.run_id)  # nb-...: `mlops runs list --model penguins` lists it

The run is sent when the ``with`` block ends (``tags.status`` is ``FINISHED``, or ``FAILED`` when
the block raised), as one ``POST /models/{model}/runs`` to the platform's API, signed (SigV4) with
the caller's own AWS credentials (botocore's chain: environment, profile, role): the platform
records the identity AWS verified, never a name this client writes. Values are checked when they
are logged, so a bad one fails in the notebook cell that logs it: metrics are finite numbers,
params are strings, finite numbers, booleans, null or lists of those.

``api_url`` defaults to ``$MLOPS_API_URL`` (``mlops status`` prints it), ``region`` to the one in
the API's host name, else ``$AWS_REGION``/``$AWS_DEFAULT_REGION``. Light on purpose: the standard
library and botocore only (no CLI, no science stack).
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from mlops.errors import InputError, MlopsError

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

    def __init__(self, model: str, *, api_url: str, region: str, tags: Mapping[str, str] | None = None) -> None:
        self.model = model
        self.api_url = api_url
        self.region = region
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}
        self.run_id: str | None = None
        self.recorded: dict[str, Any] | None = None
        self.set_tags(tags or {})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add parameters (a later value of the same name replaces the earlier one)."""
        self.params.update({str(k): _check_param(str(k), v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Add metrics: finite numbers (numpy scalars too)."""
        self.metrics.update({str(k): _check_metric(str(k), _plain(v)) for k, v in metrics.items()})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            if not isinstance(value, str):
                raise InputError(f"tag {key!r}: {value!r} is not a string")
            self.tags[str(key)] = value

    def body(self) -> dict[str, Any]:
        """What is sent: never who sends it (the platform takes that from the signature)."""
        return {"params": self.params, "metrics": self.metrics, "tags": self.tags}

    def end(self, status: str = "FINISHED") -> dict[str, Any]:
        """Record the run now (once); answers the run as the platform stored it."""
        if self.recorded is not None:
            return self.recorded
        self.tags["status"] = status
        self.recorded = _post(self.api_url, self.region, f"models/{quote(self.model, safe='')}/runs", self.body())
        self.run_id = str(self.recorded["run_id"])
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
    model: str, *, api_url: str | None = None, region: str | None = None, tags: Mapping[str, str] | None = None
) -> Run:
    """A run of ``model``, recorded when its ``with`` block ends (or at :meth:`Run.end`)."""
    url = api_url or os.environ.get(API_URL_ENV)
    if not url:
        raise InputError(f"no platform API URL: pass api_url=... or set {API_URL_ENV} (`mlops status` prints it)")
    return Run(model, api_url=url, region=_region(url, region), tags=tags)


def _post(base: str, region: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    credentials = botocore.session.get_session().get_credentials()
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
