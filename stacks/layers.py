"""Lambda layers built without Docker.

Dependency layers are built by pip for the Lambda platform (manylinux wheels for the function's
architecture and Python version), pruned of tests, caches and type stubs, and cached under
``.build/layers/<name>-<hash>``: the hash covers the requirements, the shared constraints, the
platform and this builder, so a second synth reuses the directory and the asset hash is stable.

Layers on the inference path (``shared``, ``runtime``, ``inference``) ship bytecode compiled by
Python 3.12 in ``unchecked-hash`` mode: ``/opt`` is read-only on Lambda, so without it every cold
start compiles every module it imports again, and the zip's fixed timestamps would make ordinary
(timestamp-checked) bytecode look stale. The shared layer is staged the same way, keyed by the hash
of its sources, so an edit gives a new directory and never a stale ``.pyc``. When the build
interpreter is not 3.12, nothing is compiled (Lambda's 3.12 could not use the bytecode).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MLOPS_LAYER_CACHE", ROOT / ".build" / "layers"))
CONSTRAINTS = ROOT / "constraints.txt"
PYTHON_VERSION = "3.12"
BUILDER_REVISION = "4"  # bump when the build or pruning steps change
# Layers whose modules are imported on a latency-sensitive cold start ship compiled bytecode.
COMPILED_LAYERS = frozenset({"shared", "runtime", "inference"})

PLATFORM_TAGS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}
# Removed after install: none of it is imported at run time. Shared objects are never stripped
# (stripping breaks numpy).
PRUNE_DIRS = frozenset({"tests", "__pycache__"})
# Type stubs, bytecode, and the C, C++ and Cython sources and headers some wheels ship for building
# other extensions against them (onnx's .cc files, numpy's headers, scipy's .pyx): nothing imports
# them at run time. About 6.5 MiB of the science layer, which is what lets LightGBM fit beside it.
PRUNE_SUFFIXES = (".pyi", ".pyc", ".c", ".cc", ".cpp", ".h", ".hpp", ".pyx", ".pxd", ".pxi", ".tp")
# Test data shipped inside packages under other names (onnx's backend test cases: 15 MiB).
PRUNE_PATHS = ("onnx/backend/test",)
# What the Lambda Python runtime already ships (the AWS SDK and its dependencies), pulled into the
# runtime layer only as aws-xray-sdk's dependency: a layer copy would shadow the runtime's own,
# pairing its boto3 with another botocore, and add 25 MiB. Removed from that layer after install.
WITHOUT_RUNTIME_PROVIDED = frozenset({"runtime"})
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six.py")
RUNTIME_PROVIDED_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "urllib3", "python_dateutil", "six")


class LayerBuildError(RuntimeError):
    """pip could not build a dependency layer."""


@dataclass(frozen=True)
class BuiltLayer:
    name: str
    path: Path  # contains python/<packages>
    asset_hash: str


def compiles_bytecode() -> bool:
    """Whether this interpreter writes bytecode Lambda's Python can load (same minor version)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION


def layer_hash(requirements: Path, architecture: str, compiled: bool = False) -> str:
    digest = hashlib.sha256()
    for part in (
        requirements.read_bytes(),
        CONSTRAINTS.read_bytes(),
        architecture.encode(),
        PYTHON_VERSION.encode(),
        BUILDER_REVISION.encode(),
        b"compiled" if compiled else b"source",
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def compile_tree(tree: Path) -> None:
    """Write ``unchecked-hash`` bytecode next to every module below ``tree`` (Python 3.12 only)."""
    result = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:  # a module that does not compile would fail on import too: say which
        raise LayerBuildError(f"compiling {tree} failed:\n{(result.stdout + result.stderr)[-4000:]}")


def _prune_runtime_provided(tree: Path, name: str) -> None:
    if name not in WITHOUT_RUNTIME_PROVIDED:
        return
    for module in RUNTIME_PROVIDED:
        path = tree / module
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()
    for distribution in RUNTIME_PROVIDED_DISTRIBUTIONS:
        for info in tree.glob(f"{distribution}-*.dist-info"):
            shutil.rmtree(info)


def _add_openmp_runtime(work: Path, name: str) -> None:
    """Give LightGBM the OpenMP runtime it links by name (``libgomp.so.1``) in the layer's ``lib/``.

    LightGBM's wheel does not bundle it (scikit-learn's and XGBoost's do, under mangled names) and
    Lambda's Python image is not known to ship it; ``/opt/lib`` is on Lambda's library path, after
    the system's own directories, so a system copy still wins. The copy is scikit-learn's own
    (same wheel tag as the layer).
    """
    if name != "science" or not (work / "python" / "lightgbm").is_dir():
        return
    bundled = sorted((work / "python" / "scikit_learn.libs").glob("libgomp*.so*"))
    if bundled:
        (work / "lib").mkdir(exist_ok=True)
        shutil.copyfile(bundled[0], work / "lib" / "libgomp.so.1")


def _prune(tree: Path) -> None:
    for relative in PRUNE_PATHS:
        shutil.rmtree(tree / relative, ignore_errors=True)
    for path in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in PRUNE_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in PRUNE_SUFFIXES:
            path.unlink()


def build_dependency_layer(name: str, requirements: Path, architecture: str) -> BuiltLayer:
    """Install ``requirements`` for Lambda into a cached directory and return it.

    Safe to call from several processes at once: each builds in a private directory and the
    first to finish renames it into place.
    """
    compiled = name in COMPILED_LAYERS and compiles_bytecode()
    asset_hash = layer_hash(requirements, architecture, compiled)
    target = CACHE / f"{name}-{asset_hash[:16]}"
    if (target / ".complete").exists():
        return BuiltLayer(name, target, asset_hash)
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(work / "python"),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "-r",
        str(requirements),
        "-c",
        str(CONSTRAINTS),
    ]
    for tag in PLATFORM_TAGS[architecture]:
        command += ["--platform", tag]
    print(f"building Lambda layer {name} for {architecture} (cached afterwards in {target}) ...", file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own argv
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise LayerBuildError(f"pip failed building layer {name} from {requirements}:\n{result.stderr[-4000:]}")
    _prune(work / "python")
    _prune_runtime_provided(work / "python", name)
    _add_openmp_runtime(work, name)
    return _publish(work, target, asset_hash, name, compiled=compiled)


def _publish(work: Path, target: Path, asset_hash: str, name: str, *, compiled: bool) -> BuiltLayer:
    """Compile (if asked) the private build directory ``work``, then move it into place as ``target``."""
    if compiled:
        try:
            compile_tree(work / "python")
        except LayerBuildError:
            shutil.rmtree(work, ignore_errors=True)
            raise
    (work / ".complete").write_text(asset_hash)
    try:
        work.rename(target)
    except OSError:  # another process won the race; its result is identical
        shutil.rmtree(work, ignore_errors=True)
    return BuiltLayer(name, target, asset_hash)


def stage_shared_layer(source: Path) -> BuiltLayer:
    """Copy the shared package into a cached directory, with bytecode.

    The directory is keyed by the hash of every file copied, so the staged code is always the
    source's: an edit gives a new directory (and a new asset) instead of stale bytecode.
    """
    python = source / "python"
    files = sorted(
        p
        for p in python.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
        and not any(part.endswith(".egg-info") for part in p.parts)
    )
    compiled = compiles_bytecode()
    digest = hashlib.sha256(f"{BUILDER_REVISION}:{PYTHON_VERSION}:{compiled}".encode())
    for path in files:
        digest.update(path.relative_to(python).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    asset_hash = digest.hexdigest()
    target = CACHE / f"shared-{asset_hash[:16]}"
    if (target / ".complete").exists():
        (target / ".complete").touch()  # in use: not old
        return BuiltLayer("shared", target, asset_hash)
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".shared-", dir=CACHE))
    for path in files:
        destination = work / "python" / path.relative_to(python)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    _forget_old_shared_layers(keep=target)
    return _publish(work, target, asset_hash, "shared", compiled=compiled)


def _forget_old_shared_layers(keep: Path, days: float = 7.0) -> None:
    """Each edit of the package stages a new copy; remove copies nobody staged for ``days``."""
    cutoff = time.time() - days * 86_400
    for old in CACHE.glob("shared-*"):
        marker = old / ".complete"
        if old != keep and marker.exists() and marker.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def directory_size(path: Path) -> int:
    """Bytes of all regular files below ``path`` (what a layer or function unzips to)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


SHARED_SOURCE = ROOT / "layers" / "shared"  # the domain only: the CLI and the local cloud live under src/


class PlatformLayers:
    """Creates the three layers every function draws from.

    - ``shared``: the ``mlops`` domain package from ``layers/shared/python`` (what the tests import);
    - ``runtime``: Powertools (with the X-Ray SDK its Tracer needs), pydantic, PyYAML;
    - ``science``: numpy, pandas, scipy, scikit-learn, skl2onnx, LightGBM and onnxmltools (functions
      that compute on data);
    - ``inference``: numpy and onnxruntime only (the inference function: no scikit-learn to import).
    """

    def __init__(self, scope: Construct, *, architecture: str) -> None:
        arch = lambda_.Architecture.ARM_64 if architecture == "arm64" else lambda_.Architecture.X86_64
        runtimes = [lambda_.Runtime.PYTHON_3_12]
        shared = stage_shared_layer(SHARED_SOURCE)
        self.built: dict[str, BuiltLayer] = {"shared": shared}
        self.sources: dict[str, Path] = {"shared": shared.path}
        self.shared = lambda_.LayerVersion(
            scope,
            "SharedLayer",
            code=lambda_.Code.from_asset(
                str(shared.path),
                exclude=[".complete"],
                asset_hash=shared.asset_hash,
                asset_hash_type=AssetHashType.CUSTOM,
            ),
            compatible_runtimes=runtimes,
            compatible_architectures=[arch],
            description="mlops domain package (registry, audit, validation, training, drift)",
        )
        layers = {}
        for name, description in (
            ("inference", "numpy, onnxruntime (serving without scikit-learn)"),
            ("runtime", "Powertools, aws-xray-sdk, pydantic, PyYAML"),
            ("science", "numpy, pandas, scipy, scikit-learn, joblib, skl2onnx, lightgbm, onnxmltools"),
        ):
            built = build_dependency_layer(name, ROOT / "layers" / "deps" / name / "requirements.txt", architecture)
            self.built[name] = built
            self.sources[name] = built.path
            layers[name] = lambda_.LayerVersion(
                scope,
                f"{name.capitalize()}Layer",
                code=lambda_.Code.from_asset(
                    str(built.path),
                    exclude=[".complete"],
                    asset_hash=built.asset_hash,
                    asset_hash_type=AssetHashType.CUSTOM,
                ),
                compatible_runtimes=runtimes,
                compatible_architectures=[arch],
                description=description,
            )
        self.runtime = layers["runtime"]
        self.science = layers["science"]
        self.inference = layers["inference"]
