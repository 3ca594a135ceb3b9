"""The demo scenario ``mlops local demo`` runs against a started local cloud.

The scenario is a list of steps; each takes the :class:`ScenarioContext` and returns a short line
for the summary. Later parts of the lifecycle add steps from their own modules: a module listed in
``EXTENSION_MODULES`` is imported if it exists, and registers steps with :func:`step` (``after=``
places a step behind an existing one).

Steps drive the platform the way a person would: through the ``mlops`` CLI (in-process, against
the local endpoint) where a command exists, otherwise through the AWS APIs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError

# The repository root (this file is layers/shared/python/mlops/local/scenario.py), else the cwd.
ROOT = next((p for p in (Path(__file__).resolve().parents[5], Path.cwd()) if (p / "examples").is_dir()), Path.cwd())
EXAMPLES = ROOT / "examples"
MODEL = "churn"
EXTENSION_MODULES = ("mlops.local.scenario_lifecycle",)


class ScenarioError(MlopsError):
    """A scenario step did not get the outcome it needs."""


@dataclass
class ScenarioContext:
    cloud: Any
    timeout_s: float = 600
    echo: Callable[[str], None] | None = None
    model: str = MODEL
    facts: dict[str, Any] = field(default_factory=dict)  # what steps learned, for later steps

    def say(self, text: str) -> None:
        if self.echo:
            self.echo(text)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def cli(self, *args: str) -> Any:
        """Run ``mlops --local --json ARGS`` in-process; return its parsed JSON output."""
        from mlops.cli.main import cli

        env = {
            "AWS_ENDPOINT_URL": self.cloud.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
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
        from mlops.platform import discover

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


# -- the steps that exist so far ----------------------------------------------------------------------
@step("spec")
def put_spec(ctx: ScenarioContext) -> str:
    path = EXAMPLES / "specs" / f"{ctx.model}.yaml"
    result = ctx.cli("spec", "put", str(path))
    revision = result.get("revision") if isinstance(result, dict) else None
    return f"spec {ctx.model} stored (revision {revision}) from {path.relative_to(ROOT)}"


def _example_rows(model: str, rows: int, seed: int) -> bytes:
    spec = importlib.util.spec_from_file_location("mlops_examples_generate", EXAMPLES / "generate.py")
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{EXAMPLES / 'generate.py'} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frame = module.generate(model, rows=rows, seed=seed)
    return str(frame.to_csv(index=False)).encode()


@step("upload")
def upload_dataset(ctx: ScenarioContext) -> str:
    platform = ctx.platform()
    body = _example_rows(ctx.model, rows=2000, seed=7)
    key = f"datasets/{ctx.model}/{ctx.model}-{time.strftime('%Y%m%dT%H%M%S')}.csv"
    out = ctx.client("s3").put_object(Bucket=platform.data_bucket, Key=key, Body=body)
    ctx.facts.update(upload_key=key, upload_version=out.get("VersionId"), uploaded_at=time.time())
    return f"uploaded s3://{platform.data_bucket}/{key} ({len(body):,} bytes, version {out.get('VersionId')})"


@step("pipeline")
def wait_for_pipeline(ctx: ScenarioContext) -> str:
    platform = ctx.platform()
    sfn = ctx.client("stepfunctions")
    arn = platform.training_state_machine_arn
    if not arn:
        raise ScenarioError("the deployment has no training state machine (SSM training-state-machine-arn)")
    deadline = time.time() + ctx.timeout_s
    execution = None
    while time.time() < deadline:
        for item in sfn.list_executions(stateMachineArn=arn)["executions"]:
            described = sfn.describe_execution(executionArn=item["executionArn"])
            if ctx.facts.get("upload_key", "") in described.get("input", ""):
                execution = described
        if execution and execution["status"] != "RUNNING":
            break
        time.sleep(0.25)
        if execution:
            execution = sfn.describe_execution(executionArn=execution["executionArn"])
            if execution["status"] != "RUNNING":
                break
    if execution is None:
        raise ScenarioError(
            f"no training execution started for {ctx.facts.get('upload_key')} within {ctx.timeout_s:.0f} s"
        )
    if execution["status"] == "RUNNING":
        raise ScenarioError(f"execution {execution['name']} still running after {ctx.timeout_s:.0f} s")
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    states = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    seconds = (execution["stopDate"] - execution["startDate"]).total_seconds()
    ctx.facts.update(execution=execution, states=states)
    output = json.loads(execution.get("output") or "{}")
    validation = output.get("validation", {}) if isinstance(output, dict) else {}
    if execution["status"] != "SUCCEEDED":
        failed = [e["taskFailedEventDetails"] for e in history if "taskFailedEventDetails" in e]
        reason = (
            f"; last task failure: {failed[-1].get('error')}: {failed[-1].get('cause', '')[:800]}" if failed else ""
        )
        raise ScenarioError(
            f"training execution {execution['name']} ended {execution['status']}: "
            f"{execution.get('error')} (states: {' -> '.join(states)}){reason}"
        )
    detail = f"; validation valid={validation.get('valid')}" if validation else ""
    return (
        f"training pipeline {execution['name']} {execution['status']} in {seconds:.1f} s: {' -> '.join(states)}{detail}"
    )


def _load_extensions() -> None:
    for name in EXTENSION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def run_scenario(cloud: Any, *, timeout_s: float = 600, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every registered step in order; return ``{"steps": [...], "summary": text}``.

    Raises
    ------
    ScenarioError
        A step failed; the message says which and why.
    """
    _load_extensions()
    ctx = ScenarioContext(cloud=cloud, timeout_s=timeout_s, echo=echo)
    started = time.time()
    results = []
    for s in STEPS:
        t0 = time.time()
        try:
            line = s.run(ctx)
        except ScenarioError as exc:
            raise ScenarioError(f"step {s.name}: {exc}") from exc
        results.append({"step": s.name, "result": line, "seconds": round(time.time() - t0, 2)})
        ctx.say(f"  [{s.name}] {line}")
    invocations = cloud.runtime.invocations if cloud.runtime else []
    errors = sum(1 for i in invocations if not i["ok"])
    summary = "\n".join(
        [
            f"demo finished in {time.time() - started:.1f} s ({len(results)} steps)",
            *(f"  {r['step']:<10} {r['result']}" for r in results),
            f"  functions: {len(invocations)} invocations ({errors} errors); event deliveries: "
            f"{len(cloud.dispatcher.deliveries)}",
        ]
    )
    return {"steps": results, "summary": summary, "startup_seconds": round(cloud.startup_seconds, 2)}
