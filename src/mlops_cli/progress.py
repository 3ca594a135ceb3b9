"""Progress lines for waits: what is happening and for how long.

On a terminal one line is rewritten in place (``  ... synthesizing  14 s  building Lambda layer
science``); elsewhere (a log, a pipe, a test) a line is printed when the detail changes and every
``interval`` seconds while nothing changes, so a log shows what a slow step was doing. Standard
library only: ``make install`` runs it before the virtual environment exists::

    python -m mlops_cli.progress "installing Python packages" -- pip install -r requirements.txt

runs the command with its output captured to a log file, shows the command's last output line as
the detail, prints one line when it ends, and on failure the output's last lines and the log's path.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> with Progress(out, tty=False).phase("pipeline") as phase:
...     phase.update("Validate")
>>> out.getvalue().splitlines()[0]
'  ... pipeline: Validate'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__ = ["Phase", "Progress", "run_command"]


def _seconds(elapsed: float) -> str:
    return f"{elapsed:.1f} s" if elapsed < 10 else f"{elapsed:.0f} s"


class Phase:
    """One wait in progress; :meth:`update` says what it is doing now."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.label = label
        self.detail = ""
        self.started = time.monotonic()
        self._printed_at = self.started

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, detail: str) -> None:
        """Set what the phase is doing (printed at once when it changed, off a terminal)."""
        detail = " ".join(detail.split())
        if detail == self.detail:
            return
        self.detail = detail
        if not self.progress.tty:
            self._line()

    def _line(self, *, repeat: bool = False) -> None:
        if self.progress.tty:
            text = f"  ... {self.label}  {_seconds(self.elapsed)}" + (f"  {self.detail}" if self.detail else "")
            width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
            self.progress.write("\r\033[K" + text[:width])
            return
        text = f"  ... {self.label}" + (f": {self.detail}" if self.detail else "")
        if self.elapsed >= 1:
            text += f" ({'still, ' if repeat else ''}{_seconds(self.elapsed)})"
        self.progress.write(text + "\n")
        self._printed_at = time.monotonic()

    def _tick(self) -> None:
        if self.progress.tty:
            self._line()
        elif time.monotonic() - self._printed_at >= self.progress.interval:
            self._line(repeat=True)


class Progress:
    """Progress lines on ``stream`` (standard error by default).

    Parameters
    ----------
    stream
        Where the lines go.
    tty
        Rewrite one line in place (default: whether ``stream`` is a terminal).
    interval
        Off a terminal, repeat an unchanged line after this many seconds.
    enabled
        ``False`` prints nothing (``--json`` output).
    """

    def __init__(
        self, stream: TextIO | None = None, *, tty: bool | None = None, interval: float = 10.0, enabled: bool = True
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self.interval = interval
        self.enabled = enabled
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    @contextmanager
    def phase(self, label: str, *, done: bool = True) -> Iterator[Phase]:
        """A wait: a ticker keeps its line current; one closing line when it ends.

        ``done=False`` leaves the closing line to the caller (only the live line is cleared).
        """
        current = Phase(self, label)
        stop = threading.Event()

        def ticker() -> None:
            while not stop.wait(0.5 if self.tty else 1.0):
                current._tick()

        thread = threading.Thread(target=ticker, name=f"progress-{label}", daemon=True)
        if self.tty:
            current._line()
        thread.start()
        try:
            yield current
        except BaseException:
            stop.set()
            thread.join()
            if self.tty:
                self.write("\r\033[K")
            self.write(f"  xx {label} failed after {_seconds(current.elapsed)}\n")
            raise
        stop.set()
        thread.join()
        if self.tty:
            self.write("\r\033[K")
        if done:
            self.write(f"  ok {label} ({_seconds(current.elapsed)})\n")


# Output lines that are not worth showing as what a command is doing (noise on success).
QUIET = re.compile(
    r"^(WARNING: Location '.*' is ignored|Supply a stack id|Successfully synthesized to|added \d+ packages? in|$)"
)


def run_command(label: str, argv: Sequence[str], *, log_dir: Path, progress: Progress | None = None) -> int:
    """Run ``argv`` with its output in ``log_dir/<label>.log``; show its progress; its exit code.

    On failure the last 40 lines of its output are printed with the log's path.
    """
    progress = progress or Progress()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60] + ".log")
    lines: list[str] = []
    with log.open("w") as sink, progress.phase(label, done=False) as phase:
        process = subprocess.Popen(  # noqa: S603 - the Makefile's own command lines
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            lines.append(line.rstrip("\n"))
            del lines[:-200]
            if not QUIET.match(line.strip()):
                phase.update(line.strip()[:160])
        code = process.wait()
        elapsed = phase.elapsed
    if code == 0:
        progress.write(f"  ok {label} ({_seconds(elapsed)})\n")
    else:
        shown = [line for line in lines if not QUIET.match(line.strip()) or not line.strip().startswith("WARNING")]
        progress.write(f"  xx {label} failed (exit {code}) after {_seconds(elapsed)}; its last lines:\n")
        progress.write("".join(f"     {line}\n" for line in shown[-40:]))
        progress.write(f"     full output: {log}\n")
    return code


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if "--" not in args or args.index("--") != 1 or len(args) < 3:
        print("usage: python -m mlops_cli.progress LABEL -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    log_dir = Path(os.environ.get("MLOPS_PROGRESS_LOGS", ".build/logs"))
    return run_command(args[0], args[2:], log_dir=log_dir)


if __name__ == "__main__":
    sys.exit(main())
