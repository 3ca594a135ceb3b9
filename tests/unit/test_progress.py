"""Progress lines (mlops_cli.progress): every wait says what it is doing and for how long."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from mlops_cli.progress import Progress, run_command


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_change_is_a_line_and_the_end_says_how_long() -> None:
    # GIVEN progress written to a log (not a terminal)
    out = io.StringIO()
    progress = Progress(out, interval=0.2)
    # WHEN a phase moves through two steps and waits on the second
    with progress.phase("pipeline") as phase:
        phase.update("run churn-1: Validate")
        phase.update("run churn-1: Validate")  # unchanged: no new line
        phase.update("run churn-1: TrainCandidate x4")
        time.sleep(1.3)
    lines = out.getvalue().splitlines()
    # THEN each current step is printed once when it changes, repeated while the wait goes on
    assert lines[0] == "  ... pipeline: run churn-1: Validate"
    assert lines[1] == "  ... pipeline: run churn-1: TrainCandidate x4"
    assert any(line.startswith("  ... pipeline: run churn-1: TrainCandidate x4 (still, ") for line in lines[2:-1])
    # AND the closing line gives the elapsed time
    assert lines[-1].startswith("  ok pipeline (1.") and lines[-1].endswith(" s)")


def test_on_a_terminal_one_line_is_rewritten_with_the_elapsed_time() -> None:
    out = _Terminal()
    with Progress(out).phase("starting the local cloud", done=False) as phase:
        phase.update("materializing")
        time.sleep(0.7)
    text = out.getvalue()
    assert "\r\033[K  ... starting the local cloud  0." in text and "  materializing" in text
    assert "\n" not in text  # rewritten in place, cleared at the end; done=False: no closing line
    assert text.endswith("\r\033[K")


def test_a_failed_phase_says_so_and_the_error_goes_on() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), Progress(out).phase("step upload"):
        raise RuntimeError("boom")
    assert out.getvalue().splitlines()[-1].startswith("  xx step upload failed after ")


def test_disabled_progress_prints_nothing() -> None:
    out = io.StringIO()
    with Progress(out, enabled=False).phase("x") as phase:
        phase.update("y")
    assert out.getvalue() == ""


def test_a_command_shows_its_last_line_and_hides_success_noise(tmp_path: Path) -> None:
    # GIVEN a command that prints what cdk synth prints on success
    script = "print('building Lambda layer science'); print('Supply a stack id () to display its template.')"
    out = io.StringIO()
    code = run_command("synth", [sys.executable, "-c", script], log_dir=tmp_path, progress=Progress(out))
    text = out.getvalue()
    # THEN its progress is what it is doing; the line that reads like an error is not shown
    assert code == 0
    assert "  ... synth: building Lambda layer science" in text
    assert "Supply a stack id" not in text
    assert text.splitlines()[-1].startswith("  ok synth (")
    # AND the whole output is kept in the log
    assert "Supply a stack id" in (tmp_path / "synth.log").read_text()


def test_a_failed_command_prints_its_last_lines_and_its_log(tmp_path: Path) -> None:
    script = (
        "import sys; print('resolving');"
        "print('ERROR: no matching distribution for numpy==0', file=sys.stderr); sys.exit(3)"
    )
    out = io.StringIO()
    code = run_command(
        "installing Python packages", [sys.executable, "-c", script], log_dir=tmp_path, progress=Progress(out)
    )
    text = out.getvalue()
    assert code == 3
    assert "  xx installing Python packages failed (exit 3) after " in text
    assert "     ERROR: no matching distribution for numpy==0" in text
    assert f"full output: {tmp_path / 'installing-python-packages.log'}" in text
