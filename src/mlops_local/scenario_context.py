"""The demo scenario's vocabulary: its context (cloud, CLI, facts), its errors and the step registry.

Steps drive the platform the way a person would: through the ``mlops`` CLI (in-process, against
the local endpoint) where a command exists, otherwise through the AWS APIs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.settings import discover
from mlops_cli.main import cli
from mlops_local.cloud import identity as local_identity

# The repository root (this file is src/mlops_local/scenario_context.py), else the cwd.
ROOT = next((p for p in (Path(__file__).resolve().parents[2], Path.cwd()) if (p / "examples").is_dir()), Path.cwd())
EXAMPLES = ROOT / "examples"
MODEL = "churn"
EXTENSION_MODULES = ("mlops_local.scenario_lifecycle",)


class ScenarioError(MlopsError):
    """A scenario step did not get the outcome it needs."""


@dataclass
class ScenarioContext:
    cloud: Any
    timeout_s: float = 600
    echo: Callable[[str], None] | None = None
    model: str = MODEL
    facts: dict[str, Any] = field(default_factory=dict)  # what steps learned, for later steps
    phase: Any = None  # the running step's progress line (mlops_cli.progress.Phase), if shown

    def say(self, text: str) -> None:
        if self.echo:
            self.echo(text)

    def status(self, text: str) -> None:
        """What the running step is waiting for now (its progress line)."""
        if self.phase is not None:
            self.phase.update(text)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def cloud_environment(self) -> str:
        """The environment the local cloud runs (``dev`` for ``mlops-dev-...`` stacks)."""
        names = [n for n in getattr(self.cloud, "stack_names", []) if n.startswith("mlops-")]
        return names[0].split("-")[1] if names else "dev"

    def cli(self, *args: str, identity: str = "testing") -> Any:
        """Run ``mlops --local --json ARGS`` in-process as the local principal ``identity``; return its
        parsed JSON output."""
        signer = local_identity(identity)
        env = {
            "AWS_ENDPOINT_URL": self.cloud.endpoint_url,
            "AWS_ACCESS_KEY_ID": signer.access_key_id,
            "AWS_SECRET_ACCESS_KEY": signer.secret_access_key,
            "AWS_DEFAULT_REGION": self.cloud.region,
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                cli.main(args=["--local", "--json", *args], standalone_mode=False, prog_name="mlops")
        except MlopsError as exc:
            raise ScenarioError(f"`mlops {' '.join(args)}` failed: {exc}") from exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        text = out.getvalue().strip()
        return json.loads(text) if text else None

    def platform(self) -> Any:
        if "platform" not in self.facts:
            self.facts["platform"] = discover("dev", self.cloud._session_for_clients())
        return self.facts["platform"]


@dataclass
class Step:
    name: str
    run: Callable[[ScenarioContext], str]


STEPS: list[Step] = []


def step(name: str, after: str | None = None) -> Callable[[Callable[[ScenarioContext], str]], Callable[..., str]]:
    """Register a scenario step (at the end, or right behind step ``after``)."""

    def register(func: Callable[[ScenarioContext], str]) -> Callable[[ScenarioContext], str]:
        new = Step(name, func)
        existing = [i for i, s in enumerate(STEPS) if s.name == name]
        if existing:
            STEPS[existing[0]] = new
        elif after is None:
            STEPS.append(new)
        else:
            index = next((i for i, s in enumerate(STEPS) if s.name == after), len(STEPS) - 1)
            STEPS.insert(index + 1, new)
        return func

    return register
