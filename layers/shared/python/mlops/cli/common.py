"""Shared plumbing of the CLI commands: context, output, boto3 session, platform discovery."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import boto3
import click

from mlops.platform import Platform, discover

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LOCAL_ENDPOINT = "http://127.0.0.1:4566"


@dataclass
class AppContext:
    environment: str = "dev"
    local: bool = False
    as_json: bool = False
    _platform: Platform | None = field(default=None, repr=False)

    def session(self) -> boto3.session.Session:
        if self.local:
            os.environ.setdefault("AWS_ENDPOINT_URL", LOCAL_ENDPOINT)
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        return boto3.session.Session()

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
