"""The `mlops` console command: installed by the setup, with --help, --version and clean errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mlops import __version__

MLOPS = shutil.which("mlops") or str(Path(sys.executable).parent / "mlops")


def test_version() -> None:
    result = subprocess.run([MLOPS, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mlops, version {__version__}"


def test_help_lists_commands() -> None:
    result = subprocess.run([MLOPS, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in ("spec", "models", "audit", "validate"):
        assert command in result.stdout


def test_unknown_command_is_usage_error() -> None:
    result = subprocess.run([MLOPS, "frobnicate"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_loads_lazily_under_its_own_name() -> None:
    # A command's module is imported only when the command runs; each one must still load and
    # define the command its name in COMMANDS promises.
    code = (
        "import sys, click; from mlops_cli.main import COMMANDS, cli;"
        "assert not any(m in sys.modules for m in COMMANDS.values()), 'imported before use';"
        "ctx = click.Context(cli);"
        "print(sorted(n for n in COMMANDS if cli.get_command(ctx, n).name == n))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    from mlops_cli.main import COMMANDS

    assert result.stdout.strip() == str(sorted(COMMANDS))
    listed = subprocess.run([MLOPS, "--help"], capture_output=True, text=True, check=False).stdout
    assert all(f"  {name} " in listed for name in COMMANDS)
