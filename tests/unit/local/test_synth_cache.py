"""The test processes of a run share one synthesized assembly, and an edit gives a new one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mlops_local import testing


def _tree(root: Path) -> Path:
    for name in ("stacks", "functions/train", "layers/shared/python", "statemachines"):
        (root / name).mkdir(parents=True)
    (root / "app.py").write_text("app")
    (root / "cdk.json").write_text("{}")
    (root / "constraints.txt").write_text("")
    (root / "functions/train/handler.py").write_text("def handler(event, context): ...\n")
    return root


@pytest.fixture
def synths(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Stands in for the CDK synthesis (40 s of CPU): records each call and writes a manifest."""
    calls: list[Path] = []

    def fake(outdir: Path, environment: str = "dev", root: Path | None = None) -> Path:
        calls.append(outdir)
        time.sleep(0.2)  # long enough for a second process to arrive while the first synthesizes
        (outdir / "manifest.json").write_text("{}")
        return outdir

    monkeypatch.setattr(testing, "synthesize", fake)
    monkeypatch.setattr(testing, "_SYNTHESIZED", {})
    return calls


def test_concurrent_callers_share_one_synthesis(tmp_path: Path, synths: list[Path]) -> None:
    # GIVEN a checkout and four callers at once (as the workers of `pytest -n`)
    root = _tree(tmp_path)
    results: list[Path] = []

    def call() -> None:
        testing._SYNTHESIZED.clear()  # each stands for its own process
        results.append(testing.synthesize_once("dev", root))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN one synthesized, all got its assembly, under .build/synth, with nothing partial left
    assert len(synths) == 1
    assert len(set(results)) == 1 and (results[0] / "manifest.json").is_file()
    assert results[0].parent == root / ".build" / "synth"
    assert not list((root / ".build" / "synth").glob(".dev-*"))


def test_an_edited_input_gives_a_new_assembly_and_bytecode_does_not(tmp_path: Path, synths: list[Path]) -> None:
    root = _tree(tmp_path)
    first = testing.synthesize_once("dev", root)
    # WHEN only bytecode appears, the assembly is the same one
    (root / "functions/train/__pycache__").mkdir()
    (root / "functions/train/__pycache__/handler.cpython-312.pyc").write_bytes(b"\0")
    testing._SYNTHESIZED.clear()
    assert testing.synthesize_once("dev", root) == first and len(synths) == 1
    # WHEN a handler changes, a new assembly is synthesized
    (root / "functions/train/handler.py").write_text("def handler(event, context): return 1\n")
    testing._SYNTHESIZED.clear()
    second = testing.synthesize_once("dev", root)
    assert second != first and len(synths) == 2
    # AND another environment is its own assembly
    testing._SYNTHESIZED.clear()
    assert testing.synthesize_once("prod", root).name.startswith("prod-")


def test_old_assemblies_are_pruned_to_the_newest(tmp_path: Path, synths: list[Path]) -> None:
    root = _tree(tmp_path)
    made = []
    for revision in range(4):
        (root / "stacks/platform.py").write_text(f"revision = {revision}\n")
        testing._SYNTHESIZED.clear()
        made.append(testing.synthesize_once("dev", root))
    kept = sorted(p for p in (root / ".build" / "synth").glob("dev-*") if p.is_dir())
    assert len(kept) == testing.SYNTH_KEEP
    assert made[-1] in kept
