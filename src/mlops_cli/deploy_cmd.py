"""``mlops deploy M V``: run the approval and deployment pipeline for a registered version."""

from __future__ import annotations

import time

import click

from mlops.deployment.handoff import execution_name, start_deployment
from mlops.deployment.plan import STRATEGIES
from mlops.errors import CheckFailedError, NotFoundError, TransitionError
from mlops.registry.versions import Status
from mlops.training.run_view import render_failure
from mlops.training.runs import describe_run, wait_run
from mlops_cli.common import AppContext, emit, json_option, pass_app
from mlops_cli.models_cmd import actor_option, open_registry, resolve_actor
from mlops_cli.runs_cmd import check_succeeded


def deployment_state_machine(app: AppContext) -> str:
    arn = app.platform().deployment_state_machine_arn
    if not arn:
        raise NotFoundError(f"environment {app.environment!r} has no deployment pipeline deployed")
    return arn


@click.command("deploy")
@click.argument("model")
@click.argument("version", type=click.IntRange(1))
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=None,
    help="Override the spec's deployment strategy for this rollout.",
)
@click.option("--wait/--no-wait", default=False, help="Wait for the pipeline to finish (exit 1 unless deployed).")
@click.option(
    "--timeout",
    default=900.0,
    show_default=True,
    help="Seconds to wait with --wait (then exit 3; the pipeline goes on).",
)
@actor_option
@json_option
@pass_app
def command(
    app: AppContext, model: str, version: int, strategy: str | None, wait: bool, timeout: float, actor: str | None
) -> None:
    """Start the deployment pipeline for MODEL VERSION.

    A PENDING_APPROVAL version waits for `mlops approve` (unless its spec switches approval off);
    an APPROVED one (an old version, or a re-run) is deployed straight away by the spec's
    strategy or --strategy.
    """
    registry = open_registry(app)
    registry.ensure_active(model)  # exit 3: an archived model deploys nothing (says how to unarchive)
    found = registry.get_version(model, version)
    if found.status == Status.REJECTED:
        raise TransitionError(f"model {model!r} version {version} is REJECTED; it can never serve")
    requester = resolve_actor(app, actor)
    sfn = app.session().client("stepfunctions")
    name = execution_name(model, version, f"deploy-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1000000:06d}")
    arn = start_deployment(
        sfn, deployment_state_machine(app), model, version, requested_by=requester, name=name, strategy=strategy
    )
    data = {"model": model, "version": version, "status": found.status.value, "execution": arn}
    if not wait:
        emit(app, data, f"deployment pipeline started for {model} version {version}: {name}")
        return
    run = wait_run(sfn, deployment_state_machine(app), arn, timeout_s=timeout)
    run = describe_run(sfn, deployment_state_machine(app), run.arn)
    data["run"] = run.to_dict()
    outcome = (run.output or {}).get("outcome") if isinstance(run.output, dict) else None
    failure = render_failure(run.failure, model=model) if run.failure is not None else []
    emit(app, data, "\n".join([f"{name}: {run.status}, outcome {outcome}", *failure]))
    check_succeeded(run, "deployment")  # exit 1 naming the failing step, its error and cause
    if outcome != "deployed":
        raise CheckFailedError(f"deployment {name} ended {run.status} with outcome {outcome}")
