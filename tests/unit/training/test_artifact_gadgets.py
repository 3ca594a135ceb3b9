"""The restricted unpickler against a corpus of known pickle gadgets, and every real model kind.

Each gadget is written opcode by opcode (the way an attacker writes one, not through ``__reduce__``)
and would, if any of its globals resolved, create a marker file (or directory) under ``tmp_path``.
Each must be refused with a message naming what it refers to, and the marker must not exist. The
sha256 is recorded too: the unpickler is the lock that still holds when the registry and the
bucket were both tampered with.
"""

from __future__ import annotations

import copyreg
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops.errors import CheckFailedError
from mlops.spec.model import ESTIMATORS, SAGEMAKER_ONLY_ESTIMATORS, ModelSpec
from mlops.training.artifacts import dump_artifact, load_artifact, sha256_hex
from mlops.training.fit import train
from mlops.training.frames import model_input
from tests.unit.training.helpers import example_frame, example_spec, spec_with

PROTO = b"\x80\x05"
STOP = b"."
MARK = b"("
REDUCE = b"R"
BUILD = b"b"
TUPLE = b"t"
TUPLE1 = b"\x85"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"
STACK_GLOBAL = b"\x93"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"
INST = b"i"
OBJ = b"o"
SETITEM = b"s"
EXT1 = b"\x82"


def text(value: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE when long)."""
    data = value.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + len(data).to_bytes(4, "little") + data


def glob(module: str, name: str) -> bytes:
    """GLOBAL: module and name on one line each (protocols 0 to 3 write this)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    """STACK_GLOBAL: module and name as strings on the stack (protocol 4 and 5 write this)."""
    return text(module) + text(name) + STACK_GLOBAL


def args(*values: str) -> bytes:
    return MARK + b"".join(text(v) for v in values) + TUPLE


def call(target: bytes, *values: str) -> bytes:
    """``target(*values)`` with REDUCE."""
    return target + args(*values) + REDUCE


def memmap_args(marker: Path) -> bytes:
    """``(filename, "uint8", "w+", 0, (1,))``: a one-byte file-backed array, created on construction."""
    return MARK + text(str(marker)) + text("uint8") + text("w+") + b"K\x00" + b"K\x01" + TUPLE1 + TUPLE


def shell(marker: Path) -> str:
    return f"touch {marker}"


def python(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


# name -> a function of the marker path that returns the pickle bytes
Gadget = Callable[[Path], bytes]
GADGETS: dict[str, Gadget] = {
    # the one the review found: an allowed module, a dotted name that walks to subprocess.Popen
    "numpy dotted f2py.subprocess.Popen": lambda m: (
        PROTO
        + stack_glob("numpy", "f2py.subprocess.Popen")
        + MARK
        + MARK
        + text("touch")
        + text(str(m))
        + TUPLE
        + TUPLE
        + REDUCE
        + STOP
    ),
    "numpy dotted testing os.system": lambda m: PROTO + call(stack_glob("numpy", "testing.os.system"), shell(m)) + STOP,
    "sklearn dotted base.os.system (GLOBAL)": lambda m: call(glob("sklearn.base", "os.system"), shell(m)) + STOP,
    "collections dotted _sys.modules": lambda m: PROTO + stack_glob("collections", "_sys.modules") + STOP,
    "copyreg dotted _reconstructor.__globals__": lambda m: (
        PROTO + stack_glob("copyreg", "_reconstructor.__globals__") + STOP
    ),
    # builtins that run code, import or reach attributes
    "builtins.eval": lambda m: PROTO + call(stack_glob("builtins", "eval"), python(m)) + STOP,
    "builtins.exec": lambda m: PROTO + call(stack_glob("builtins", "exec"), python(m)) + STOP,
    "builtins.compile": lambda m: PROTO + call(stack_glob("builtins", "compile"), python(m), "x", "exec") + STOP,
    "builtins.open": lambda m: PROTO + call(stack_glob("builtins", "open"), str(m), "w") + STOP,
    "builtins.getattr(__import__('os'), 'system')": lambda m: (
        PROTO
        + stack_glob("builtins", "getattr")
        + MARK
        + call(stack_glob("builtins", "__import__"), "os")
        + text("system")
        + TUPLE
        + REDUCE
        + args(shell(m))
        + REDUCE
        + STOP
    ),
    "builtins.__import__": lambda m: PROTO + call(stack_glob("builtins", "__import__"), "os") + STOP,
    "builtins.type": lambda m: PROTO + call(stack_glob("builtins", "type"), "x") + STOP,
    "builtins.setattr": lambda m: PROTO + stack_glob("builtins", "setattr") + STOP,
    "builtins.breakpoint": lambda m: PROTO + call(stack_glob("builtins", "breakpoint")) + STOP,
    "__builtin__.eval (python 2 name)": lambda m: call(glob("__builtin__", "eval"), python(m)) + STOP,
    # the operating system
    "os.system": lambda m: PROTO + call(stack_glob("os", "system"), shell(m)) + STOP,
    "os.popen": lambda m: PROTO + call(stack_glob("os", "popen"), shell(m)) + STOP,
    "posix.system": lambda m: PROTO + call(stack_glob("posix", "system"), shell(m)) + STOP,
    "nt.system": lambda m: PROTO + call(stack_glob("nt", "system"), shell(m)) + STOP,
    "subprocess.Popen": lambda m: (
        PROTO
        + stack_glob("subprocess", "Popen")
        + MARK
        + MARK
        + text("touch")
        + text(str(m))
        + TUPLE
        + TUPLE
        + REDUCE
        + STOP
    ),
    "subprocess.getoutput": lambda m: PROTO + call(stack_glob("subprocess", "getoutput"), shell(m)) + STOP,
    "ctypes.CDLL": lambda m: PROTO + call(stack_glob("ctypes", "CDLL"), "libc.so.6") + STOP,
    "_ctypes.dlopen": lambda m: PROTO + call(stack_glob("_ctypes", "dlopen"), "libc.so.6") + STOP,
    "io.FileIO": lambda m: PROTO + call(stack_glob("io", "FileIO"), str(m), "w") + STOP,
    "importlib.import_module": lambda m: PROTO + call(stack_glob("importlib", "import_module"), "os") + STOP,
    # numpy internals: a file-backed array, a code runner, a shared-library loader, file formats
    "numpy.memmap (creates its file)": lambda m: PROTO + stack_glob("numpy", "memmap") + memmap_args(m) + REDUCE + STOP,
    "numpy._core.memmap.memmap": lambda m: (
        PROTO + stack_glob("numpy._core.memmap", "memmap") + memmap_args(m) + REDUCE + STOP
    ),
    "numpy.testing._private.utils.runstring": lambda m: (
        PROTO
        + stack_glob("numpy.testing._private.utils", "runstring")
        + MARK
        + text(python(m))
        + EMPTY_DICT
        + TUPLE
        + REDUCE
        + STOP
    ),
    "numpy.f2py.crackfortran (module)": lambda m: PROTO + stack_glob("numpy.f2py", "crackfortran") + STOP,
    "numpy.ctypeslib.load_library": lambda m: (
        PROTO + call(stack_glob("numpy.ctypeslib", "load_library"), "c", "/") + STOP
    ),
    "numpy.lib.format.read_array": lambda m: PROTO + stack_glob("numpy.lib.format", "read_array") + STOP,
    "numpy.load (a function of an allowed module)": lambda m: PROTO + call(stack_glob("numpy", "load"), str(m)) + STOP,
    "numpy.testing (a module, not a class)": lambda m: PROTO + stack_glob("numpy", "testing") + STOP,
    # a foreign class re-exported by an allowed module (creates a directory under the marker's folder)
    "sklearn.datasets._covtype.TemporaryDirectory (tempfile)": lambda m: (
        PROTO
        + stack_glob("sklearn.datasets._covtype", "TemporaryDirectory")
        + MARK
        + text("")
        + text("marker")
        + text(str(m.parent))
        + TUPLE
        + REDUCE
        + STOP
    ),
    "sklearn.utils._param_validation.Integral (numbers)": lambda m: (
        PROTO + stack_glob("sklearn.utils._param_validation", "Integral") + STOP
    ),
    "pandas.core.frame.StringIO (_io)": lambda m: PROTO + call(stack_glob("pandas.core.frame", "StringIO"), "x") + STOP,
    "pandas.core.computation.eval.eval": lambda m: (
        PROTO + call(stack_glob("pandas.core.computation.eval", "eval"), "1+1") + STOP
    ),
    "sklearn.utils._testing (test helpers)": lambda m: (
        PROTO + stack_glob("sklearn.utils._testing", "TempMemmap") + STOP
    ),
    # callables that call what they are given
    "operator.attrgetter": lambda m: PROTO + call(stack_glob("operator", "attrgetter"), "system") + STOP,
    "operator.methodcaller": lambda m: PROTO + call(stack_glob("operator", "methodcaller"), "system", shell(m)) + STOP,
    "functools.partial(os.system, cmd)": lambda m: (
        PROTO
        + stack_glob("functools", "partial")
        + MARK
        + stack_glob("os", "system")
        + text(shell(m))
        + TUPLE
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    ),
    # pickle inside pickle, and code objects built from parts
    "pickle.loads": lambda m: PROTO + stack_glob("pickle", "loads") + STOP,
    "_pickle.loads": lambda m: PROTO + stack_glob("_pickle", "loads") + STOP,
    "types.FunctionType": lambda m: PROTO + stack_glob("types", "FunctionType") + STOP,
    "types.CodeType": lambda m: PROTO + stack_glob("types", "CodeType") + STOP,
    # the same callables through every opcode that resolves a global
    "INST os.system": lambda m: MARK + text(shell(m)) + INST + b"os\nsystem\n" + STOP,
    "OBJ os.system": lambda m: PROTO + MARK + stack_glob("os", "system") + text(shell(m)) + OBJ + STOP,
    "NEWOBJ subprocess.Popen": lambda m: (
        PROTO
        + stack_glob("subprocess", "Popen")
        + MARK
        + MARK
        + text("touch")
        + text(str(m))
        + TUPLE
        + TUPLE1
        + NEWOBJ
        + STOP
    ),
    "NEWOBJ_EX numpy.memmap": lambda m: (
        PROTO
        + stack_glob("numpy", "memmap")
        + MARK
        + text(str(m))
        + TUPLE
        + EMPTY_DICT
        + text("mode")
        + text("w+")
        + SETITEM
        + text("shape")
        + b"K\x01"
        + SETITEM
        + NEWOBJ_EX
        + STOP
    ),
    "BUILD state holding os.system": lambda m: (
        PROTO
        + stack_glob("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + EMPTY_DICT
        + text("x")
        + call(stack_glob("os", "system"), shell(m))
        + SETITEM
        + BUILD
        + STOP
    ),
    "copyreg._reconstructor with a foreign base": lambda m: (
        PROTO
        + stack_glob("copyreg", "_reconstructor")
        + MARK
        + stack_glob("collections", "OrderedDict")
        + stack_glob("io", "FileIO")
        + text(str(m))
        + TUPLE
        + REDUCE
        + STOP
    ),
    "EXT1 code registered for os.system": lambda m: PROTO + EXT1 + bytes([0xF1]) + args(shell(m)) + REDUCE + STOP,
}


@pytest.fixture
def extension_registered() -> Iterator[None]:
    """copyreg's extension registry maps code 0xF1 to os.system for the EXT1 gadget."""
    copyreg.add_extension("os", "system", 0xF1)
    try:
        yield
    finally:
        copyreg.remove_extension("os", "system", 0xF1)


@pytest.mark.parametrize("name", sorted(GADGETS))
def test_known_gadget_pickles_are_refused_without_side_effects(
    name: str, tmp_path: Path, extension_registered: None
) -> None:
    # GIVEN a hand-written gadget pickle whose sha256 was recorded too
    marker = tmp_path / "marker"
    data = GADGETS[name](marker)
    # WHEN it is loaded
    with pytest.raises(CheckFailedError) as refused:
        load_artifact(data, sha256_hex(data))
    # THEN it is refused by name (not by accident of a failing call), and nothing happened
    assert "may not use; refusing to load it" in str(refused.value), str(refused.value)
    assert not marker.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_the_corpus_is_live_without_the_restrictions(tmp_path: Path) -> None:
    # GIVEN a few of the gadgets  WHEN plain pickle loads them
    for name in ("builtins.open", "numpy.memmap (creates its file)", "INST os.system"):
        marker = tmp_path / name.replace(" ", "_")
        pickle.loads(GADGETS[name](marker))  # the point: what the restriction stops
        # THEN each really creates its marker: the refusals above are not refusals of broken bytes
        assert marker.exists(), name


def test_dotted_names_and_foreign_classes_are_named_in_the_refusal(tmp_path: Path) -> None:
    data = GADGETS["numpy dotted f2py.subprocess.Popen"](tmp_path / "m")
    with pytest.raises(CheckFailedError, match=r"numpy\.f2py\.subprocess\.Popen, which a model artifact may not use"):
        load_artifact(data, sha256_hex(data))
    data = GADGETS["pandas.core.frame.StringIO (_io)"](tmp_path / "m")
    with pytest.raises(CheckFailedError, match=r"pandas\.core\.frame\.StringIO \(which is _io\.StringIO\)"):
        load_artifact(data, sha256_hex(data))


# A small but real fit of every allow-listed estimator (a few trees, shallow), on the example data.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "sklearn.ensemble.RandomForestClassifier": {"n_estimators": 5, "max_depth": 4},
    "sklearn.ensemble.RandomForestRegressor": {"n_estimators": 5, "max_depth": 4},
    "sklearn.ensemble.GradientBoostingClassifier": {"n_estimators": 5, "max_depth": 2},
    "sklearn.ensemble.GradientBoostingRegressor": {"n_estimators": 5, "max_depth": 2},
    "sklearn.ensemble.HistGradientBoostingClassifier": {"max_iter": 5},
    "sklearn.ensemble.HistGradientBoostingRegressor": {"max_iter": 5},
    "sklearn.tree.DecisionTreeClassifier": {"max_depth": 4},
    "sklearn.tree.DecisionTreeRegressor": {"max_depth": 4},
    "sklearn.linear_model.LogisticRegression": {"max_iter": 200},
}


def _spec_for(estimator: str) -> ModelSpec:
    base = example_spec("churn" if ESTIMATORS[estimator] == "classification" else "house-prices")
    training = base.training.model_dump(mode="json")
    training.update(estimator=estimator, params=FAST_PARAMS.get(estimator, {}))
    training["search"] = None  # the example search space is for the example estimator
    if estimator in SAGEMAKER_ONLY_ESTIMATORS:
        training["backend"] = "sagemaker"
    return spec_with(base, training=training)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_allow_listed_estimator_still_loads_and_predicts_the_same(estimator: str) -> None:
    # GIVEN a real training of the estimator in the platform's preprocessing pipeline
    spec = _spec_for(estimator)
    frame = example_frame(spec.name, rows=400)
    result = train(frame, spec, code_revision="r1")
    data, sha = dump_artifact(result.pipeline)
    # WHEN its artifact is loaded through the restricted unpickler
    loaded = load_artifact(data, sha)
    # THEN it predicts exactly what the fitted pipeline predicts
    features = model_input(result.holdout, spec)
    assert list(loaded.predict(features)) == list(result.pipeline.predict(features))
