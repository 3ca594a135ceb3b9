"""Layer packaging: pins agree everywhere, the build is cached, the shared layer is the tested source."""

from __future__ import annotations

import re
import time
from importlib import metadata
from pathlib import Path

from stacks.layers import (
    CACHE,
    SHARED_SOURCE,
    build_dependency_layer,
    compiles_bytecode,
    layer_hash,
    stage_shared_layer,
)

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line.strip())
        if match:
            pins[re.sub(r"\[.*\]", "", match[1]).lower().replace("_", "-")] = match[2]
    return pins


def test_layer_pins_match_the_installed_versions() -> None:
    # An artifact trained in a Lambda must load in the CLI and tests: same library versions.
    for layer in ("science", "runtime", "inference"):
        for name, version in _pins(ROOT / "layers" / "deps" / layer / "requirements.txt").items():
            assert metadata.version(name) == version, f"{layer} layer pins {name}=={version}"


def test_constraints_cover_every_requirement() -> None:
    constraints = _pins(ROOT / "constraints.txt")
    for name, version in _pins(ROOT / "requirements.txt").items():
        assert constraints.get(name) == version, name


def test_layer_hash_changes_with_platform_and_requirements(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    first = layer_hash(requirements, "arm64")
    assert first == layer_hash(requirements, "arm64")
    assert first != layer_hash(requirements, "x86_64")
    requirements.write_text("six==1.16.0\n")
    assert first != layer_hash(requirements, "arm64")


def test_second_build_reuses_the_cached_layer() -> None:
    # GIVEN the runtime layer built once (by synth or here)
    requirements = ROOT / "layers" / "deps" / "runtime" / "requirements.txt"
    first = build_dependency_layer("runtime", requirements, "arm64")
    marker = first.path / ".complete"
    stamp = marker.stat().st_mtime_ns
    # WHEN it is asked for again
    started = time.perf_counter()
    second = build_dependency_layer("runtime", requirements, "arm64")
    # THEN nothing is rebuilt: same directory, same hash, untouched marker, no pip run
    assert second.path == first.path and second.asset_hash == first.asset_hash
    assert marker.stat().st_mtime_ns == stamp
    assert time.perf_counter() - started < 1.0
    assert first.path.parent == CACHE
    # and the layer holds Lambda-platform wheels, pruned of tests
    assert (first.path / "python" / "pydantic_core").is_dir()
    assert any(p.name.endswith("aarch64-linux-gnu.so") for p in (first.path / "python" / "pydantic_core").iterdir())
    assert not list((first.path / "python").rglob("tests"))
    # and, built by Python 3.12, bytecode Lambda can use from a read-only /opt: unchecked-hash pycs
    pycs = list((first.path / "python").rglob("*.cpython-312.pyc"))
    assert bool(pycs) == compiles_bytecode()
    assert all(_unchecked_hash(p) for p in pycs[:50])


def _unchecked_hash(pyc: Path) -> bool:
    # PEP 552: the flags word after the magic number; 0b01 = hash-based, 0b10 = check the source
    return int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01


def test_shared_layer_is_staged_by_content_with_bytecode(tmp_path: Path) -> None:
    # GIVEN a package with a module and a stale pyc
    source = tmp_path / "shared"
    (source / "python" / "mlops" / "__pycache__").mkdir(parents=True)
    (source / "python" / "mlops" / "__init__.py").write_text("VALUE = 1\n")
    (source / "python" / "mlops" / "__pycache__" / "old.cpython-312.pyc").write_bytes(b"stale")
    # WHEN it is staged twice, then after an edit
    first = stage_shared_layer(source)
    again = stage_shared_layer(source)
    (source / "python" / "mlops" / "__init__.py").write_text("VALUE = 2\n")
    edited = stage_shared_layer(source)
    # THEN the same content is one directory, an edit is another (never stale bytecode)
    assert again.path == first.path and edited.path != first.path and edited.asset_hash != first.asset_hash
    staged = first.path / "python" / "mlops"
    assert (staged / "__init__.py").read_text() == "VALUE = 1\n"
    assert not (staged / "__pycache__" / "old.cpython-312.pyc").exists()
    compiled = list(staged.rglob("*.pyc"))
    assert [p.name for p in compiled] == (["__init__.cpython-312.pyc"] if compiles_bytecode() else [])
    assert all(_unchecked_hash(p) for p in compiled)


def test_shared_layer_is_the_source_the_tests_import() -> None:
    import mlops
    import mlops_cli
    import mlops_local

    assert Path(mlops.__file__).resolve().parent == (SHARED_SOURCE / "python" / "mlops").resolve()
    # Only what ships to Lambda lives in the layer's source tree: the CLI and the local cloud are
    # their own packages beside it.
    shipped = {p.name for p in (SHARED_SOURCE / "python").iterdir() if not p.name.endswith(".egg-info")}
    assert shipped <= {"mlops", "__pycache__"}, shipped
    for package in (mlops_cli, mlops_local):
        assert (SHARED_SOURCE / "python") not in Path(package.__file__).resolve().parents


def test_sagemaker_training_image_copies_files_that_exist() -> None:
    # The image cannot be built here (no Docker); what it copies must at least exist, and it must
    # run the same entry point the pipeline names.
    dockerfile = (ROOT / "containers" / "sagemaker-training" / "Dockerfile").read_text()
    sources = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
    asl = (ROOT / "statemachines" / "training.asl.json").read_text()
    assert '"python", "-m", "mlops.training.sagemaker"' in dockerfile
    assert '"ContainerEntrypoint": [\n' in asl or '"mlops.training.sagemaker"' in asl
