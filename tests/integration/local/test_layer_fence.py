"""A local function imports only what Lambda would give it: its code, its layers, the runtime.

The fork server preloads numpy, pandas and scikit-learn, and the worker can see the test
environment's packages; without the fence a handler importing a library its layers lack (the Gate
function's numpy) worked locally and failed on Lambda at its first cold start.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_local.resources_compute import top_level_packages
from mlops_local.runtime import FunctionSpec, LambdaRuntime
from mlops_local.worker import RUNTIME_PACKAGES
from stacks.layers import RUNTIME_PROVIDED

REGION, ACCOUNT = "us-east-1", "123456789012"
HANDLER = """
import importlib

def handler(event, context):
    try:
        importlib.import_module(event["module"])
    except ImportError as exc:
        return {"imported": False, "error": str(exc)}
    return {"imported": True}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    running = LambdaRuntime(endpoint_url="http://127.0.0.1:1", region=REGION, account=ACCOUNT, log_dir=tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _function(runtime: LambdaRuntime, tmp_path: Path, name: str, layer_packages: set[str] | None) -> None:
    code = tmp_path / name
    code.mkdir()
    (code / "handler.py").write_text(HANDLER)
    packages = None if layer_packages is None else top_level_packages(code) | layer_packages
    runtime.register(
        FunctionSpec(
            name=name,
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            handler="handler.handler",
            code_dir=code,
            timeout=60,
            packages=packages,
        )
    )


def _imports(runtime: LambdaRuntime, name: str, module: str) -> dict:
    result = runtime.invoke(name, f'{{"module": "{module}"}}'.encode())
    assert result.function_error is None, result.json()
    return result.json()


def test_a_function_imports_only_what_its_layers_ship(runtime: LambdaRuntime, tmp_path: Path) -> None:
    # GIVEN one function whose layers ship pydantic only, and one whose layers ship numpy too
    _function(runtime, tmp_path, "runtime-only", {"pydantic", "pydantic_core"})
    _function(runtime, tmp_path, "science", {"pydantic", "pydantic_core", "numpy"})
    # THEN the first cannot import numpy (preloaded by the fork server) or pandas, as on Lambda
    refused = _imports(runtime, "runtime-only", "numpy")
    assert refused == {"imported": False, "error": "No module named 'numpy' (not in the function's layers)"}
    assert not _imports(runtime, "runtime-only", "pandas.core.frame")["imported"]
    # AND it can import its layers' packages, the standard library and the runtime's AWS SDK
    for module in ("pydantic", "json", "sqlite3", "boto3", "botocore.session"):
        assert _imports(runtime, "runtime-only", module) == {"imported": True}, module
    # AND the second can import numpy
    assert _imports(runtime, "science", "numpy") == {"imported": True}


def test_onnxruntime_only_where_a_layer_ships_it(runtime: LambdaRuntime, tmp_path: Path) -> None:
    # GIVEN a function on the science layer's packages (scikit-learn, skl2onnx: Evaluate) and one
    # on the inference layer's (numpy, onnxruntime: CheckOnnx, the inference function)
    _function(runtime, tmp_path, "evaluate", {"pydantic", "numpy", "pandas", "scipy", "sklearn", "skl2onnx", "onnx"})
    _function(runtime, tmp_path, "check-onnx", {"pydantic", "numpy", "onnxruntime"})
    # THEN the first cannot import onnxruntime (preloaded by the fork server; no gap is allowed for it)
    refused = _imports(runtime, "evaluate", "onnxruntime")
    assert refused == {"imported": False, "error": "No module named 'onnxruntime' (not in the function's layers)"}
    # AND the second can, but not scikit-learn
    assert _imports(runtime, "check-onnx", "onnxruntime") == {"imported": True}
    assert not _imports(runtime, "check-onnx", "sklearn")["imported"]


def test_a_function_with_layers_from_elsewhere_is_not_fenced(runtime: LambdaRuntime, tmp_path: Path) -> None:
    # Layers whose contents the local cloud does not know (not from this assembly): no fence.
    _function(runtime, tmp_path, "unknown-layers", None)
    assert _imports(runtime, "unknown-layers", "numpy") == {"imported": True}


def test_top_level_packages_are_what_import_finds(tmp_path: Path) -> None:
    for entry in ("numpy", "numpy-2.4.6.dist-info", "bin", "__pycache__"):
        (tmp_path / entry).mkdir()
    for entry in ("typing_extensions.py", "_cffi_backend.cpython-312-aarch64-linux-gnu.so", "distutils-precedence.pth"):
        (tmp_path / entry).write_text("")
    assert top_level_packages(tmp_path) == {"numpy", "typing_extensions", "_cffi_backend"}


def test_the_fence_lets_through_exactly_what_the_layer_builder_leaves_to_the_runtime() -> None:
    """Two lists name the Lambda runtime's own SDK: the layer builder removes those packages from
    the runtime layer, and the fence allows importing them. If they drifted apart, a package the
    builder strips (the runtime provides it) could be refused locally, or one the fence allows
    could be missing on Lambda."""
    stripped = {name.removesuffix(".py") for name in RUNTIME_PROVIDED}
    assert stripped <= RUNTIME_PACKAGES
    # jmespath is the one more: botocore imports it, and the runtime ships it with botocore.
    assert RUNTIME_PACKAGES - stripped == {"jmespath"}


CODE_HANDLER = """
import importlib, sys, tempfile
from pathlib import Path

def handler(event, context):
    folder = Path(tempfile.gettempdir()) / event["folder"]
    (folder / event["package"]).mkdir(parents=True, exist_ok=True)
    (folder / event["package"] / "__init__.py").write_text("VALUE = 7\\n")
    sys.path.append(str(folder))
    try:
        return {"imported": importlib.import_module(event["package"]).VALUE == 7}
    except ImportError as exc:
        return {"imported": False, "error": str(exc)}
"""


def test_a_model_code_package_extracted_to_the_code_folder_imports(runtime: LambdaRuntime, tmp_path: Path) -> None:
    # GIVEN a fenced function that extracts a package, as mlops.training.code.activate_code does
    code = tmp_path / "trainer"
    code.mkdir()
    (code / "handler.py").write_text(CODE_HANDLER)
    runtime.register(
        FunctionSpec(
            name="trainer",
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:trainer",
            handler="handler.handler",
            code_dir=code,
            timeout=60,
            packages=top_level_packages(code) | {"numpy"},
        )
    )

    def invoke(folder: str, package: str) -> dict:
        result = runtime.invoke("trainer", f'{{"folder": "{folder}", "package": "{package}"}}'.encode())
        assert result.function_error is None, result.json()
        return result.json()

    folder = uuid.uuid4().hex * 2  # the shape of a sha256, new each run
    try:
        # THEN a package in <tmp>/mlops-code/<sha256>/ imports (on Lambda it is the function's code in /tmp)
        assert invoke(f"mlops-code/{folder}", "fencecodepkg") == {"imported": True}
        # AND the same put anywhere else is refused, as a package the function does not ship
        refused = invoke(f"mlops-fence-elsewhere/{folder}", "fenceotherpkg")
        assert refused == {
            "imported": False,
            "error": "No module named 'fenceotherpkg' (not in the function's layers)",
        }
    finally:
        shutil.rmtree(Path(tempfile.gettempdir()) / "mlops-code" / folder, ignore_errors=True)
        shutil.rmtree(Path(tempfile.gettempdir()) / "mlops-fence-elsewhere" / folder, ignore_errors=True)
