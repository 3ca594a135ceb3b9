"""Run the ``mlops`` console entry point in this process, as a user at a shell would."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from mlops_cli.main import main


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


def console(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``run(*args)``: ``mlops ARGS`` through the entry point; its exit code and output."""

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["mlops", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
