"""The demo scenario ``mlops local demo`` runs against a started local cloud (runs the steps, settles).

The scenario is a list of steps; each takes the :class:`ScenarioContext` and returns a short line
for the summary. Later parts of the lifecycle add steps from their own modules: a module listed in
``EXTENSION_MODULES`` is imported if it exists, and registers steps with :func:`step` (``after=``
places a step behind an existing one). The context and registry are in
:mod:`mlops_local.scenario_context`, the demo's own steps in :mod:`mlops_local.scenario_steps`.

Steps drive the platform the way a person would: through the ``mlops`` CLI (in-process, against
the local endpoint) where a command exists, otherwise through the AWS APIs.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any

from mlops_local.scenario_context import EXTENSION_MODULES, STEPS, ScenarioContext, ScenarioError
from mlops_local.scenario_steps import wait_for_run

# The functions the demo's steps call, in the order they first run: the candidates' training
# function twice (two candidates at once). One background thread starts their environments one
# after another while earlier steps run (as provisioned concurrency would), so a step meets a cold
# start only when it gets there first; on 2 cores it uses the core the waiting steps leave idle.
WARM_ORDER: tuple[tuple[str, ...], ...] = (
    ("ApiUploads",),
    ("TrainingStarter",),
    ("TrainingValidate",),
    ("TrainingPlanTraining",),
    ("TrainingTrainCandidate", "TrainingTrainCandidate"),
    ("TrainingEvaluate",),
    ("TrainingCheckOnnx",),
    ("TrainingGate",),
    ("TrainingRegister",),
    ("DeploymentStarter",),
    ("DeploymentPrepare",),
    ("DeploymentRequest",),
    ("DeploymentApi",),
    ("DeploymentDeploy",),
    ("Inference",),
    ("Monitoring",),
)


def _warm_in_background(cloud: Any) -> threading.Thread | None:
    """Start the demo's function environments ahead of their first call (a daemon thread), if the
    cloud has a local Lambda runtime."""
    runtime = getattr(cloud, "runtime", None)
    if runtime is None or not hasattr(runtime, "warm"):
        return None
    names = list(getattr(runtime, "functions", {}))

    def run() -> None:
        for group in WARM_ORDER:
            found = [next((n for n in names if f"{fragment}Function" in n), None) for fragment in group]
            wanted = [n for n in found if n is not None]
            if not wanted:  # (an empty list would warm every function)
                continue
            try:
                runtime.warm(wanted)
            except Exception:  # a warm-up is a convenience: the cloud may be stopping
                return

    thread = threading.Thread(target=run, name="demo-warm", daemon=True)
    thread.start()
    return thread


def _load_extensions() -> None:
    for name in EXTENSION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def run_scenario(
    cloud: Any,
    *,
    timeout_s: float = 600,
    echo: Callable[[str], None] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Run every registered step in order; return ``{"steps": [...], "summary": text, "footer": text}``.

    ``echo`` gets each step's line when it ends; ``progress`` (a :class:`mlops_cli.progress.Progress`)
    shows the running step and what it waits for. ``summary`` has every step's line, ``footer`` only
    the totals (what follows the lines already echoed).

    Raises
    ------
    ScenarioError
        A step failed; the message says which and why.
    """
    _load_extensions()
    ctx = ScenarioContext(cloud=cloud, timeout_s=timeout_s, echo=echo)
    started = time.time()
    _warm_in_background(cloud)
    results = []
    for s in STEPS:
        t0 = time.time()
        try:
            if progress is not None:
                with progress.phase(f"step {s.name}", done=False) as ctx.phase:
                    line = s.run(ctx)
            else:
                line = s.run(ctx)
        except ScenarioError as exc:
            raise ScenarioError(f"step {s.name}: {exc}") from exc
        finally:
            ctx.phase = None
        seconds = round(time.time() - t0, 2)
        results.append({"step": s.name, "result": line, "seconds": seconds})
        ctx.say(f"  {s.name:<10} {line}  ({seconds:.1f} s)")
    invocations = cloud.runtime.invocations if cloud.runtime else []
    errors = sum(1 for i in invocations if not i["ok"])
    footer = [
        f"demo finished in {time.time() - started:.1f} s ({len(results)} steps)",
        f"  functions: {len(invocations)} invocations ({errors} errors); event deliveries: "
        f"{len(cloud.dispatcher.deliveries)}",
    ]
    summary = "\n".join([footer[0], *(f"  {r['step']:<10} {r['result']}" for r in results), footer[1]])
    return {
        "steps": results,
        "summary": summary,
        "footer": "\n".join(footer),
        "startup_seconds": round(cloud.startup_seconds, 2),
        "started_runs": list(ctx.facts.get("started_runs", [])),  # what goes on after the demo (settle)
    }


def settle(
    cloud: Any,
    *,
    runs: list[str] | None = None,
    timeout_s: float = 600,
    echo: Callable[[str], None] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Wait for the training runs still going, and for ``runs`` (the retraining the drift check
    started, even if it has ended already); their outcomes, one ``settled`` line each.

    A kept cloud (``mlops local demo --keep``) is handed over once nothing runs in the background,
    so the next version number a person's own upload gets does not depend on a race.
    """
    ctx = ScenarioContext(cloud=cloud, timeout_s=timeout_s, echo=echo)
    arn = ctx.platform().training_state_machine_arn
    running = ctx.client("stepfunctions").list_executions(stateMachineArn=arn, statusFilter="RUNNING")
    names = [*(runs or []), *(e["name"] for e in running.get("executions", []))]
    settled = []
    for name in dict.fromkeys(names):
        if progress is not None:
            with progress.phase("a run still going", done=False) as ctx.phase:
                run = wait_for_run(ctx, name)
        else:
            run = wait_for_run(ctx, name)
        output = run.get("output") or {}
        outcome = output.get("outcome") or run.get("error")
        version = f": version {output['version']} {output.get('status')}" if output.get("version") else ""
        ctx.say(f"  {'settled':<10} run {name} {run['status']} ({outcome}){version}")
        settled.append(run)
    return settled
