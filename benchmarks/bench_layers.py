"""Cold import of the inference function from its layers: bytecode shipped vs source only.

On Lambda, ``/opt`` (the layers) is read-only, so a layer without ``.pyc`` files makes every cold
start compile every module it imports, and never keeps the result. This benchmark builds the
inference function's layers for this machine's architecture the way synth does (``shared``,
``runtime``, ``inference``: with ``unchecked-hash`` bytecode), makes a copy of each without any
``.pyc``, and times fresh interpreters importing what the function's first request imports
(the handler, the serving module, its AWS client ``mlops.serving.awsapi``, onnxruntime), with ``-B``
(nothing written, as on a read-only ``/opt``) and ``-S``: the layers come first on the path, and
only what Lambda's runtime itself provides would be found after them, in this virtual environment.
Runs alternate between the two variants; the ratio is source-only over compiled, medians of the
same run.

    python benchmarks/bench_layers.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stacks.layers import (  # noqa: E402
    SHARED_SOURCE,
    build_dependency_layer,
    compiles_bytecode,
    stage_shared_layer,
)

ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages"))
FIRST_REQUEST_IMPORTS = "import handler, mlops.serving.service, mlops.serving.awsapi, onnxruntime, numpy"


def source_only(tree: Path, into: Path) -> Path:
    """A copy of ``tree`` without bytecode."""
    shutil.copytree(tree, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def cold_import(paths: list[Path]) -> float:
    code = (
        "import sys, time; t = time.perf_counter(); "
        f"sys.path[:0] = {[str(p) for p in paths]!r}; "
        # What Lambda's runtime provides (compiled there), not a layer: last on the path
        f"sys.path.append({SITE_PACKAGES!r}); "
        f"{FIRST_REQUEST_IMPORTS}; print(time.perf_counter() - t)"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench", "TZ": "UTC"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-B", "-S", "-c", code],
        cwd=ROOT / "functions" / "inference",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    float(out.stdout.strip())  # the imports succeeded and said how long they took
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if not compiles_bytecode():
        raise SystemExit("this benchmark needs Python 3.12 (the layers' bytecode is for Lambda's 3.12)")
    requirements = ROOT / "layers" / "deps"
    compiled = [
        ROOT / "functions" / "inference",
        stage_shared_layer(SHARED_SOURCE).path / "python",
        build_dependency_layer("runtime", requirements / "runtime" / "requirements.txt", ARCH).path / "python",
        build_dependency_layer("inference", requirements / "inference" / "requirements.txt", ARCH).path / "python",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as tmp:
        plain = [compiled[0]] + [source_only(p, Path(tmp) / f"layer{i}") for i, p in enumerate(compiled[1:])]
        pycs = sum(1 for p in compiled[1:] for _ in p.rglob("*.pyc"))
        print(f"layers for {ARCH}: {pycs} .pyc files shipped; {args.runs} runs per variant, alternating")
        cold_import(compiled)  # warm the page cache for both variants' shared files
        cold_import(plain)
        with_pyc: list[float] = []
        without: list[float] = []
        for _ in range(args.runs):
            with_pyc.append(cold_import(compiled))
            without.append(cold_import(plain))
    a, b = statistics.median(with_pyc), statistics.median(without)
    print(f"cold import ({FIRST_REQUEST_IMPORTS}), fresh interpreter, nothing written:")
    print(f"  layers with bytecode:  median {a:.3f} s (min {min(with_pyc):.3f}, max {max(with_pyc):.3f})")
    print(f"  layers source only:    median {b:.3f} s (min {min(without):.3f}, max {max(without):.3f})")
    print(f"  ratio source-only / with bytecode: {b / a:.2f}x")


if __name__ == "__main__":
    main()
