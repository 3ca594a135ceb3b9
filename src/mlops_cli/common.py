"""Shared plumbing of the CLI commands: context, output, boto3 session, platform discovery."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import click
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from mlops.errors import InputError, MlopsError, NotFoundError
from mlops.settings import Platform, discover

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LOCAL_ENDPOINT = "http://127.0.0.1:4566"


@dataclass
class AppContext:
    environment: str = "dev"
    local: bool = False
    as_json: bool = False
    profile: str | None = None  # --profile: an AWS named profile (AWS_PROFILE works too)
    _platform: Platform | None = field(default=None, repr=False)

    def session(self) -> boto3.session.Session:
        if self.local:
            os.environ.setdefault("AWS_ENDPOINT_URL", LOCAL_ENDPOINT)
            if not (self.profile or os.environ.get("AWS_PROFILE")):  # a profile names its own keys
                os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
                os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        return boto3.session.Session(profile_name=self.profile)

    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = discover(self.environment, self.session())
        return self._platform


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def emit(app: AppContext, data: Any, text: str | None = None) -> None:
    """Print ``data`` as JSON under ``--json``, else ``text`` (or a readable default)."""
    if app.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text if text is not None else json.dumps(data, indent=2, default=str))


def json_option(func: Any) -> Any:
    """``--json`` on a subcommand (``mlops validate X --json``), same as the global flag."""

    def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.ensure_object(AppContext).as_json = True
        return value

    return click.option(
        "--json", "as_json_flag", is_flag=True, expose_value=False, callback=_set, help="Machine-readable JSON output."
    )(func)


def _api_region(app: AppContext, url: str) -> str:
    host = urlsplit(url).hostname or ""
    if ".execute-api." in host:
        return host.split(".execute-api.", 1)[1].split(".", 1)[0]
    return app.session().region_name or "us-east-1"


def signed_request(
    app: AppContext,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    errors: Mapping[int, type[MlopsError]],
    why_credentials: str,
    timeout: float = 60,
    retry_unavailable: bool = False,
) -> dict[str, Any]:
    """Call the platform API at ``path`` with the caller's credentials (SigV4, ``execute-api``).

    A refusal raises ``errors[status]`` (else :class:`MlopsError`) with the API's message and, for
    invalid records, up to ten ``record N, field F: ...`` lines; ``why_credentials`` says why the
    call needs credentials when there are none. ``retry_unavailable`` (for calls that are safe to
    repeat) tries twice more after a 429, 502, 503 or 504, as the SDK's standard retry mode does
    for AWS's own APIs, 0.5 s and then 1 s (or the answer's ``Retry-After``) later.
    """
    attempt, attempts = 0, 3 if retry_unavailable else 1
    while True:
        try:
            return _signed_request_once(
                app, method, path, body, errors=errors, why_credentials=why_credentials, timeout=timeout
            )
        except _Unavailable as exc:
            attempt += 1
            if attempt == attempts:
                raise errors.get(exc.status, MlopsError)(exc.message) from None
            time.sleep(exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1))


class _Unavailable(Exception):
    """A 429 or 5xx the gateway gave (the call may be repeated)."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


_UNAVAILABLE = (429, 502, 503, 504)


def _signed_request_once(
    app: AppContext,
    method: str,
    path: str,
    body: bytes | None,
    *,
    errors: Mapping[int, type[MlopsError]],
    why_credentials: str,
    timeout: float,
) -> dict[str, Any]:
    base = app.platform().api_url
    if not base:
        raise NotFoundError(f"environment {app.environment!r} has no API deployed (SSM api-url is missing)")
    url = base.rstrip("/") + "/" + path.lstrip("/")
    credentials = app.session().get_credentials()
    if credentials is None:
        raise InputError(f"no AWS credentials: {why_credentials}")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", _api_region(app, url)).add_auth(request)
    outgoing = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as response:  # noqa: S310 - the platform's API URL
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            answer = json.loads(text)
            message = answer.get("message") or answer.get("error") or text
            details = answer.get("details") or []
        except (ValueError, AttributeError):
            message, details = text, []
        lines = [f"{message} (HTTP {exc.code})"]
        lines += [f"  record {d.get('record')}, field {d.get('field')}: {d.get('message')}" for d in details[1:10]]
        if exc.code in _UNAVAILABLE:
            wait = exc.headers.get("Retry-After") if exc.headers else None
            raise _Unavailable(
                exc.code, "\n".join(lines), min(float(wait), 5.0) if wait and wait.isdigit() else None
            ) from None
        raise errors.get(exc.code, MlopsError)("\n".join(lines)) from None
    except urllib.error.URLError as exc:
        raise MlopsError(f"cannot reach the platform API at {base}: {exc.reason}") from None
