"""`mlops local demo --keep` (what `make demo KEEP=1` runs) and the README's "First hour" walkthrough.

One kept demo per module: the demo runs the lifecycle and exits nothing (it keeps serving); its
summary says what happened, its progress lines (standard error) name the pipeline's current step,
the README's walkthrough runs command by command from another process against the kept cloud and
prints what the README shows (modulo ids, times, hashes and numbers), and `mlops local down` stops it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_local.testing import synthesize_once

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.xdist_group("local-cloud")


@dataclass
class KeptDemo:
    process: subprocess.Popen[str]
    workdir: Path
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return "".join(self.stdout)


def _drain(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptDemo]:
    assembly = synthesize_once("dev", ROOT)
    workdir = tmp_path_factory.mktemp("kept")
    (workdir / "examples").symlink_to(ROOT / "examples")
    process = subprocess.Popen(
        [str(BIN / "mlops"), "local", "demo", "--keep", "--port", "0", "--assembly", str(assembly)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    demo = KeptDemo(process, workdir)
    threading.Thread(target=_drain, args=(process.stdout, demo.stdout), daemon=True).start()
    threading.Thread(target=_drain, args=(process.stderr, demo.stderr), daemon=True).start()
    # A guard against a hang, not a speed target: on a 2-core machine at load ~19 one demo took 825 s.
    deadline = time.monotonic() + 1800
    state = workdir / ".build" / "local" / "cloud.json"
    try:
        while not (state.is_file() and "Stop it with Ctrl-C" in demo.text()):
            assert process.poll() is None, f"the demo exited {process.returncode}:\n{demo.text()[-3000:]}" + "".join(
                demo.stderr[-40:]
            )
            assert time.monotonic() < deadline, "the kept demo did not get ready"
            time.sleep(0.5)
        demo.env = json.loads(state.read_text())["env"]
        yield demo
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_the_demo_runs_the_lifecycle(kept: KeptDemo) -> None:
    text = kept.text()
    summary = text[text.index("  spec ") :]
    assert "outcome registered: version 1 PENDING_APPROVAL" in summary
    assert "run FAILED (DatasetInvalid)" in summary
    assert "chain intact" in summary
    assert "is champion" in summary
    assert "from version 1" in summary and "field 'tenure_months'" in summary
    assert "(0 errors)" in summary
    assert "demo finished in " in summary
    # AND it ends with a drift check: clean traffic passes, shifted traffic is flagged with its features
    monitor_line = next(line for line in summary.splitlines() if line.strip().startswith("monitor "))
    drift_line = next(line for line in summary.splitlines() if line.strip().startswith("drift "))
    assert "no_drift" in monitor_line
    assert "drifted over" in drift_line and "tenure_months" in drift_line and "monthly_charges" in drift_line
    assert "mlops-dev-drift -> ALARM" in drift_line and "retraining started" in drift_line
    # (on the champion's rows and the shifted requests, whose outcomes the demo uploads as labels)
    assert "+ 400 labelled captures" in drift_line
    html = Path(drift_line.split("--html ", 1)[1].split("`", 1)[0])
    assert html.is_file() and "<html" in html.read_text()[:500].lower()
    # AND it ends by scoring a file in batch (the upload starts the job, the CLI joins it)
    batch_line = next(line for line in summary.splitlines() if line.strip().startswith("batch "))
    assert "2000 rows scored by version" in batch_line and "0 refused" in batch_line
    # AND the kept cloud is handed over once the retraining it started has finished
    assert re.search(r"^  settled    run churn-[0-9a-f]{32} (SUCCEEDED|FAILED) ", text, re.M), text[-2000:]


def test_progress_names_what_is_waited_for(kept: KeptDemo) -> None:
    # Standard error is not a terminal here: one line each time the current step changes.
    progress = "".join(kept.stderr)
    # Off a terminal an unchanged wait is repeated every 10 s: the cloud's start shows once it took that long.
    up = re.search(r"^local cloud up in ([\d.]+) s", kept.text(), re.M)
    assert up, kept.text()[:500]
    # (the "up in" time counts from before the progress line's 10 s timer starts: within a second
    # of 10 s either may come first)
    assert float(up[1]) < 11 or "  ... starting the local cloud" in progress, progress
    steps = re.findall(r"^  \.\.\. step pipeline: run churn-[0-9a-f]{12}\.\.\.: (\w+)", progress, re.M)
    assert "Validate" in steps and "TrainCandidates" in steps and "Evaluate" in steps, progress
    assert steps.index("Validate") < steps.index("Evaluate")


def test_the_kept_cloud_says_how_to_use_it(kept: KeptDemo) -> None:
    text = kept.text()
    assert "source .build/local/env.sh" in text and "mlops local down" in text
    script = (kept.workdir / ".build" / "local" / "env.sh").read_text()
    assert f'export PATH="{BIN}:$PATH"' in script
    assert f"export AWS_ENDPOINT_URL={kept.env['AWS_ENDPOINT_URL']}" in script
    # AND the named profiles it points at sign as the local principals
    config = Path(kept.env["AWS_CONFIG_FILE"]).read_text()
    assert "[profile scientist]" in config and f"endpoint_url = {kept.env['AWS_ENDPOINT_URL']}" in config


# -- the README's walkthrough ------------------------------------------------------------------------
SECTION = re.compile(r"^## First hour.*?(?=^## )", re.M | re.S)
FENCE = re.compile(r"^```console\n(.*?)^```", re.M | re.S)
RUN_NAME = re.compile(r"\b[a-z][a-z0-9-]*-[0-9a-f]{32}\b")
NORMALIZE = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (RUN_NAME, "<run>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|\+00:00)?"), "<time>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b"), "<hex>"),
    (re.compile(r"(/[\w.+-]+)+"), "<path>"),
    (re.compile(r"\d+(\.\d+)?(e-?\d+)?"), "<n>"),
)


@dataclass
class Command:
    line: str
    expected: list[str]
    exit_code: int = 0


def walkthrough() -> list[Command]:
    """The commands of the README's "First hour" blocks (``$ `` lines) with the output shown under each."""
    section = SECTION.search((ROOT / "README.md").read_text())
    assert section, 'README.md has no "## First hour" section'
    commands: list[Command] = []
    for block in FENCE.findall(section.group(0)):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                code = re.search(r"#\s*exit (\d+)\s*$", command)
                commands.append(Command(command, [], int(code[1]) if code else 0))
            elif commands and line.strip() and line.strip() != "...":
                commands[-1].expected.append(line)
            i += 1
    assert len(commands) >= 6, commands
    return commands


def normalize(line: str) -> list[str]:
    for pattern, token in NORMALIZE:
        line = pattern.sub(token, line)
    return line.split()


def _match(expected: list[str], actual: list[str], names: dict[str, str]) -> list[str]:
    """Every expected line's first words in ``actual`` in order; README run names mapped to the real ones."""
    misses = []
    position = 0
    for want in expected:
        key = normalize(want)[:4]
        for j in range(position, len(actual)):
            if normalize(actual[j])[: len(key)] == key:
                names.update(zip(RUN_NAME.findall(want), RUN_NAME.findall(actual[j]), strict=False))
                position = j + 1
                break
        else:
            misses.append(want)
    return misses


def test_the_readme_walkthrough_runs_against_the_kept_cloud(kept: KeptDemo) -> None:
    env = {**os.environ, **kept.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("AWS_PROFILE", None)
    names: dict[str, str] = {}
    for command in walkthrough():
        if command.line.startswith(("source ", "mlops local down")):
            continue  # the test sets what env.sh exports; the last test stops the cloud
        line = command.line
        for readme_name, real_name in names.items():
            line = line.replace(readme_name, real_name)
        result = subprocess.run(
            ["bash", "-c", line], cwd=kept.workdir, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        shown = f"$ {line}\n{result.stdout}{result.stderr}"
        assert result.returncode == command.exit_code, shown
        misses = _match(command.expected, (result.stdout + result.stderr).splitlines(), names)
        assert not misses, f"README lines not printed by `{line}`:\n" + "\n".join(misses) + f"\n---\n{shown}"


def test_local_down_stops_the_kept_cloud(kept: KeptDemo) -> None:
    # runs last in this module: the walkthrough above needs the cloud
    result = subprocess.run(
        [str(BIN / "mlops"), "local", "down"], cwd=kept.workdir, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"stopped the local cloud at {kept.env['AWS_ENDPOINT_URL']}")
    assert kept.process.wait(timeout=60) == 0
    assert not (kept.workdir / ".build" / "local" / "cloud.json").exists()
