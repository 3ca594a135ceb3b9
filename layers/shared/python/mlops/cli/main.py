"""Entry point of the ``mlops`` command.

Exit codes: 0 success, 1 a check failed, 2 bad usage or unreadable input, 3 a cloud or resource
error. Every deliberate error (:class:`mlops.errors.MlopsError`) prints one clear message, never a
traceback; ``--json`` makes every command print machine-readable output.
"""

from __future__ import annotations

import importlib
import sys

import click
from botocore.exceptions import BotoCoreError, ClientError

from mlops import __version__
from mlops.cli.common import CONTEXT_SETTINGS, AppContext
from mlops.errors import MlopsError

# Subcommand modules; each defines a click command or group named ``command``.
COMMAND_MODULES = (
    "mlops.cli.spec_cmd",
    "mlops.cli.models_cmd",
    "mlops.cli.audit_cmd",
    "mlops.cli.validate_cmd",
    "mlops.cli.drift_cmd",
    "mlops.cli.data_cmd",
    "mlops.cli.runs_cmd",
    "mlops.cli.local_cmd",
    "mlops.cli.approve_cmd",
    "mlops.cli.reject_cmd",
    "mlops.cli.deploy_cmd",
    "mlops.cli.rollback_cmd",
    "mlops.cli.rollouts_cmd",
    "mlops.cli.predict_cmd",
    "mlops.cli.monitor_cmd",
    "mlops.cli.labels_cmd",
)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="mlops")
@click.option(
    "--env",
    "environment",
    default="dev",
    show_default=True,
    envvar="MLOPS_ENV",
    help="Deployment environment whose resources to use (its SSM prefix /mlops/<env>/).",
)
@click.option(
    "--local",
    is_flag=True,
    envvar="MLOPS_LOCAL",
    help="Talk to the local cloud (AWS_ENDPOINT_URL, default http://127.0.0.1:4566).",
)
@click.option(
    "--profile",
    default=None,
    help="AWS named profile whose credentials sign every call (default: the SDK's chain, AWS_PROFILE).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx: click.Context, environment: str, local: bool, profile: str | None, as_json: bool) -> None:
    """Serverless MLOps platform: specs, data, pipelines, registry, approvals, predictions, drift."""
    ctx.obj = AppContext(environment=environment, local=local, as_json=as_json, profile=profile)


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet; every other import error is a real bug
                continue
            raise
        cli.add_command(module.command)


_register()


def main(args: list[str] | None = None) -> None:
    """Run the command line (``args`` defaults to ``sys.argv[1:]``) and exit with its code."""
    try:
        cli.main(args=args, prog_name="mlops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MlopsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (ClientError, BotoCoreError) as exc:
        click.echo(f"error: AWS call failed: {exc}", err=True)
        sys.exit(3)
    except SystemExit:
        raise
    else:
        sys.exit(0)


if __name__ == "__main__":
    main()
