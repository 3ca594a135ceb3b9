"""``mlops local up|demo|fire|status``: the synthesized app running on moto, on this machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from mlops.errors import MlopsError
from mlops_cli.common import LOCAL_ENDPOINT, AppContext, emit, json_option, pass_app
from mlops_cli.progress import Progress
from mlops_local.assembly import load_assembly


def _stack_prefix(assembly: Path, environment: str) -> str | None:
    """``mlops-<env>-`` when the assembly has that stage (``make synth`` writes every stage), else all."""
    prefix = f"mlops-{environment}-"
    return prefix if any(s.name.startswith(prefix) for s in load_assembly(assembly)) else None


def _options(
    assembly: Path,
    port: int,
    api_port: int | None,
    real_time: bool,
    time_scale: float,
    schedules: bool,
    warm: bool,
    log_dir: Path | None,
) -> Any:
    # The local cloud (0.3 s; moto once started): only when a command needs it, not for --help.
    from mlops_local.cloud import LocalCloudOptions

    return LocalCloudOptions(
        assembly=assembly,
        port=port,
        api_port=api_port,
        real_time=real_time,
        time_scale=time_scale,
        schedules=schedules,
        warm=warm,
        log_dir=log_dir,
    )


@click.group("local")
def command() -> None:
    """The embedded local cloud: the synthesized stacks on moto, with handlers, events and API."""


_assembly = click.option(
    "--assembly",
    type=click.Path(path_type=Path),
    default=Path("cdk.out"),
    show_default=True,
    help="Synthesized cloud assembly (run `make synth` first).",
)
_real_time = click.option(
    "--real-time", is_flag=True, help="Keep real time for Step Functions Retry back-off and Wait states."
)
_time_scale = click.option(
    "--time-scale",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Factor applied to Retry back-off and Wait states (each capped at 2 s).",
)


@command.command("up")
@_assembly
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4566,
    show_default=True,
    help="AWS endpoint port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--api-port", type=click.IntRange(0, 65535), default=None, help="API Gateway port (default: --port + 1).")
@_real_time
@_time_scale
@click.option("--no-schedules", is_flag=True, help="Do not run scheduled rules on their schedule.")
@click.option("--warm", is_flag=True, help="Start every function's environment before reporting ready.")
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where function logs go (<function>.log); default: a temporary directory.",
)
@pass_app
def up(
    app: AppContext,
    assembly: Path,
    port: int,
    api_port: int | None,
    real_time: bool,
    time_scale: float,
    no_schedules: bool,
    warm: bool,
    log_dir: Path | None,
) -> None:
    """Start the local cloud and serve until Ctrl-C.

    Prints one JSON line once ready: endpoint_url, api_url, region, stacks, emulated and
    not_emulated resource types. Use it with `AWS_ENDPOINT_URL=<endpoint_url>` or `mlops --local`.
    """
    # The local cloud (0.3 s; moto once started): only when a command needs it, not for --help.
    from mlops_local.cloud import LocalCloud

    options = _options(assembly, port, api_port, real_time, time_scale, not no_schedules, warm, log_dir)
    options.stack_prefix = _stack_prefix(assembly, app.environment)
    cloud = LocalCloud(options)

    def ready(info: dict[str, Any]) -> None:
        for warning in cloud.warnings:
            click.echo(f"warning: {warning}", err=True)
        if info["not_emulated"]:
            click.echo(f"not emulated (created nowhere): {', '.join(info['not_emulated'])}", err=True)
        click.echo(json.dumps(info))
        sys.stdout.flush()
        profiles = info.get("profiles") or {}
        if profiles:  # several principals, e.g. to try four-eyes: upload as one, approve as another
            files = " ".join(f"{k}={v}" for k, v in sorted(profiles.items()))
            click.echo(
                f"identities: {', '.join(info.get('identities') or {})}; to act as one: export {files}, then "
                "`mlops --local --profile scientist data upload ...` or `aws --profile approver ...`",
                err=True,
            )

    cloud.serve_forever(on_ready=ready)


def _endpoint(endpoint: str | None) -> str:
    return (endpoint or os.environ.get("AWS_ENDPOINT_URL") or LOCAL_ENDPOINT).rstrip("/")


def _control(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310
        f"{endpoint}/_mlops/{path}",
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310 - a local endpoint
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        message = json.loads(exc.read() or b"{}").get("message", str(exc))
        raise MlopsError(f"local cloud at {endpoint}: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise MlopsError(f"no local cloud answers at {endpoint} ({exc}); start one with `mlops local up`") from exc


_endpoint_option = click.option(
    "--endpoint", default=None, help=f"Local cloud endpoint (default: $AWS_ENDPOINT_URL or {LOCAL_ENDPOINT})."
)


@command.command("fire")
@click.argument("rule")
@_endpoint_option
@json_option
@pass_app
def fire(app: AppContext, rule: str, endpoint: str | None) -> None:
    """Deliver a scheduled event to RULE's targets now (RULE: rule name or template logical id)."""
    result = _control(_endpoint(endpoint), "fire", {"rule": rule})
    deliveries = result["deliveries"]
    lines = []
    for d in deliveries:
        outcome = d["error"] or json.dumps(d["result"])[:300]
        lines.append(f"{d['rule']} -> {d['target_arn']}: {outcome}")
    emit(app, result, "\n".join(lines) or f"rule {rule} has no targets")
    if any(d["error"] or (d["result"] or {}).get("FunctionError") for d in deliveries):
        raise MlopsError(f"a target of rule {rule} failed")


@command.command("status")
@_endpoint_option
@json_option
@pass_app
def status(app: AppContext, endpoint: str | None) -> None:
    """What the running local cloud created, delivered and invoked."""
    result = _control(_endpoint(endpoint), "status")
    created = sum(1 for r in result["resources"] if r["status"] == "created")
    text = (
        f"endpoint {result['endpoint_url']}  api {result['api_url']}  region {result['region']}\n"
        f"stacks: {', '.join(result['stacks'])}\n"
        f"resources: {created} created; not emulated: {', '.join(result['not_emulated']) or 'none'}\n"
        f"event deliveries: {len(result['deliveries'])}; invocations: {len(result['invocations'])}; "
        f"API requests: {len(result['requests'])}"
    )
    emit(app, result, text)


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# Where a kept demo cloud says how to reach it (relative to the directory `make demo` runs in).
KEPT_DIR = Path(".build") / "local"


def _write_kept(cloud: Any, directory: Path) -> Path:
    """``env.sh`` (PATH, endpoint, keys, named profiles) and ``cloud.json`` (pid) for other shells."""
    # The local cloud (0.3 s; moto once started): only when a command needs it, not for --help.
    from mlops_local.cloud import CREDENTIALS, write_profiles

    directory.mkdir(parents=True, exist_ok=True)
    profiles = write_profiles(directory / "aws", endpoint_url=cloud.endpoint_url, region=cloud.region)
    env = {
        "AWS_ENDPOINT_URL": cloud.endpoint_url,
        "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
        "AWS_DEFAULT_REGION": cloud.region,
        **profiles,
    }
    script = directory / "env.sh"
    script.write_text(
        "# Written by `mlops local demo --keep`: `source` it to use the kept local cloud from another shell.\n"
        f'export PATH="{Path(sys.executable).parent}:$PATH"\n' + "".join(f"export {k}={v}\n" for k, v in env.items())
    )
    (directory / "cloud.json").write_text(
        json.dumps({"pid": os.getpid(), "endpoint_url": cloud.endpoint_url, "api_url": cloud.api_url, "env": env})
    )
    return script


def _kept_help(cloud: Any, script: Path, model: str) -> str:
    local = "" if cloud.endpoint_url == LOCAL_ENDPOINT else f" (or: export AWS_ENDPOINT_URL={cloud.endpoint_url})"
    return "\n".join(
        [
            "",
            f"The local cloud keeps running with the demo's state at {cloud.endpoint_url} (API {cloud.api_url}).",
            "In another shell, from this directory:",
            f"  source {script}    # puts `mlops` on PATH and points it at this cloud{local}",
            f"  mlops runs list --model {model}",
            f"  mlops models show {model}",
            f"  mlops audit verify --model {model}",
            f"  mlops --profile scientist data upload FILE.csv --model {model} --wait"
            "   # profiles: scientist, approver, operator",
            'The README\'s "First hour" section walks through the rest.',
            "Stop it with Ctrl-C here, or `mlops local down` from another shell.",
        ]
    )


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (Ctrl-C here, or `mlops local down`)."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@command.command("demo")
@_assembly
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="AWS endpoint port (default: a free one; with --keep 4566 when it is free).",
)
@_real_time
@click.option(
    "--timeout",
    "timeout_s",
    type=click.IntRange(10),
    default=600,
    show_default=True,
    help="Give up waiting for the pipeline after this many seconds.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the local cloud running with the demo's state until Ctrl-C (or `mlops local down`).",
)
@json_option
@pass_app
def demo(app: AppContext, assembly: Path, port: int | None, real_time: bool, timeout_s: int, keep: bool) -> None:
    """Start the local cloud, run the scenario with the example spec and print what happened.

    Progress (what is being waited for, for how long) goes to standard error; each step's result
    and the closing summary to standard output.
    """
    # The local cloud and its demo scenario (0.5 s, moto on start): only for this command, not for --help.
    from mlops_local.cloud import LocalCloud
    from mlops_local.scenario import run_scenario, settle
    from mlops_local.scenario_context import MODEL, ScenarioError

    if port is None:
        port = 4566 if keep and _free("127.0.0.1", 4566) and _free("127.0.0.1", 4567) else 0
    progress = Progress(enabled=not app.as_json)
    options = _options(assembly, port, None, real_time, 0.01, False, False, None)
    options.stack_prefix = _stack_prefix(assembly, app.environment)
    cloud = LocalCloud(options)
    try:
        with progress.phase("starting the local cloud (the synthesized stacks on moto)", done=False):
            cloud.start()
        if not app.as_json:
            click.echo(
                f"local cloud up in {cloud.startup_seconds:.1f} s at {cloud.endpoint_url} "
                f"(API {cloud.api_url}); stacks: {', '.join(cloud.stack_names)}"
            )
        try:
            report = run_scenario(
                cloud, timeout_s=timeout_s, echo=None if app.as_json else click.echo, progress=progress
            )
        except ScenarioError as exc:
            raise MlopsError(f"demo failed: {exc}") from exc
        emit(app, report, report.get("footer", report.get("summary", "")))
        if keep:
            settle(
                cloud,
                runs=report.get("started_runs"),
                timeout_s=timeout_s,
                echo=None if app.as_json else click.echo,
                progress=progress,
            )
            script = _write_kept(cloud, KEPT_DIR.resolve())
            if not app.as_json:
                click.echo(_kept_help(cloud, KEPT_DIR / script.name, MODEL))
            sys.stdout.flush()
            _wait_for_signal()
            click.echo("stopping the local cloud", err=True)
    finally:
        cloud.stop()
        if keep:
            for name in ("cloud.json", "env.sh"):
                (KEPT_DIR / name).unlink(missing_ok=True)


@command.command("down")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for it to stop (it stops every function environment first: long on a busy machine).",
)
@pass_app
def down(app: AppContext, timeout_s: float) -> None:
    """Stop the local cloud that `mlops local demo --keep` (or `make demo KEEP=1`) left running here."""
    state = KEPT_DIR / "cloud.json"
    if not state.is_file():
        raise MlopsError(f"no kept local cloud here ({state} is missing); `mlops local demo --keep` writes it")
    found = json.loads(state.read_text())
    pid = int(found["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        state.unlink(missing_ok=True)
        click.echo(f"the kept local cloud (pid {pid}) had already stopped")
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # The demo removes cloud.json as the last thing it does (after stopping the cloud); a
        # process that ended stays visible to kill(0) until its parent reaps it (a zombie).
        try:
            os.kill(pid, 0)
            gone = not state.exists()
        except ProcessLookupError:
            gone = True
        if gone:
            click.echo(f"stopped the local cloud at {found['endpoint_url']} (pid {pid})")
            return
        time.sleep(0.2)
    raise MlopsError(f"the local cloud (pid {pid}) did not stop within {timeout_s:.0f} s")
