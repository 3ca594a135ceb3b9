"""Fixtures of the conformance suite: the ``mlops`` command and one local cloud.

Fixtures
--------
mlops
    Runs the ``mlops`` command through its real entry point (:func:`mlops_cli.main.main`), in this
    process: the same argument parsing, output and exit codes as the installed console script,
    without a second of interpreter start-up per call.
conformance_cloud
    A local cloud of the freshly synthesized dev stage, started once per session in a child
    process; every test that uses it is in the xdist group ``conformance-cloud`` (one worker).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_cli.main import main
from mlops_local.testing import LocalCloudProcess, synthesize_once

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Mlops = Callable[..., Result]


def run_mlops(*args: str, env: dict[str, str] | None = None, json_output: bool = True) -> Result:
    """``mlops [--json] ARGS`` with ``env`` set for this call only (never left behind for other tests)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        try:
            main([*(["--json"] if json_output else []), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def mlops() -> Mlops:
    return run_mlops


@pytest.fixture(scope="session")
def conformance_cloud() -> Iterator[LocalCloudProcess]:
    cloud = LocalCloudProcess(synthesize_once("dev", ROOT), "--no-schedules")
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()
