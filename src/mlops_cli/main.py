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
from mlops.errors import MlopsError
from mlops_cli.common import CONTEXT_SETTINGS, AppContext

# Each command's module (it defines a click command or group named ``command``). A module is
# imported only when its command runs (or for ``--help``), so a command pays for its own imports
# alone: the click documentation's "lazily loading subcommands".
COMMANDS = {
    "spec": "mlops_cli.spec_cmd",
    "models": "mlops_cli.models_cmd",
    "audit": "mlops_cli.audit_cmd",
    "validate": "mlops_cli.validate_cmd",
    "drift": "mlops_cli.drift_cmd",
    "data": "mlops_cli.data_cmd",
    "code": "mlops_cli.code_cmd",
    "runs": "mlops_cli.runs_cmd",
    "local": "mlops_cli.local_cmd",
    "approve": "mlops_cli.approve_cmd",
    "reject": "mlops_cli.reject_cmd",
    "deploy": "mlops_cli.deploy_cmd",
    "rollback": "mlops_cli.rollback_cmd",
    "rollouts": "mlops_cli.rollouts_cmd",
    "predict": "mlops_cli.predict_cmd",
    "monitor": "mlops_cli.monitor_cmd",
    "labels": "mlops_cli.labels_cmd",
    "batch": "mlops_cli.batch_cmd",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from :data:`COMMANDS` when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            command = importlib.import_module(COMMANDS[cmd_name]).command
            if command.name != cmd_name:
                raise RuntimeError(f"{COMMANDS[cmd_name]} defines command {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
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
