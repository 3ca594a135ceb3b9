"""Model artifacts: a fitted pipeline as bytes with a sha256, and back, refusing anything else.

Format: a pickle (protocol 5) of the fitted scikit-learn pipeline. Pickle bytes depend only on
the object graph, so the same data, spec and code give byte-identical artifacts (the training
is deterministic, see :mod:`mlops.training.fit`) and the sha256 identifies the model.

Loading is where pickle is dangerous (a pickle can name any importable callable), so
:func:`load_artifact` has two locks:

1. the bytes must hash to the sha256 the registry recorded, or nothing is unpickled;
2. the unpickler resolves only what a scikit-learn model needs: classes from scikit-learn, numpy,
   scipy.sparse and pandas' core, numpy's array and random-state reconstructors, a handful of
   harmless builtins, and six named classes of LightGBM and XGBoost (their estimators and
   Boosters, ``ALLOWED_LIBRARY_CLASSES``). Every name is checked three times: the module it names must be allowed (or
   nothing is imported: importing a module can itself run code), the name must be a plain name (a
   dotted name is a walk of attributes: ``numpy`` + ``f2py.subprocess.Popen`` reaches
   ``subprocess.Popen``), and what it resolves to must be a class defined in an allowed module (a
   re-export such as ``pandas.core.frame.StringIO`` is ``_io``'s) and not ``numpy.memmap`` or a
   subclass of it, or one of the listed functions, checked by identity. Test, build and
   foreign-code submodules (``numpy.f2py``, ``numpy.testing``, ``*.tests``,
   ``pandas.core.computation``, ...) are refused even inside an allowed package.

A model trained from the user's own code (``training.entry_point``) is made of the classes and
functions of its code package too: the caller names that package's top-level module
(``code_modules``, recorded on the version) after :func:`mlops.training.code.activate_code` made
the sha256-checked package importable, and only names defined in it are added to the list.

Why not skops' secure format: it loads without running code, but its files are zip archives whose
entries carry the time they were written and whose arrays are named by their object ids, so two
trainings of the same data, spec and code give different bytes and the sha256 no longer
identifies the model. Serving prefers the ONNX export (no code on load) anyway, and this
unpickler is what reads the pickles stored so far.

Examples
--------
>>> data, sha256 = dump_artifact(result.pipeline)  # doctest: +SKIP
>>> pipeline = load_artifact(data, sha256)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from collections.abc import Iterable
from typing import Any

from mlops.errors import CheckFailedError

ARTIFACT_FORMAT = "sklearn-pickle-5"
ARTIFACT_FILE_NAME = "model.pkl"
ARTIFACT_CONTENT_TYPE = "application/octet-stream"
PICKLE_PROTOCOL = 5

# Classes may come from these modules (a prefix ends in "." or is a whole module name). Classes
# only: a function is a way to run code, a class from these packages is a data structure.
# These lists (and ALLOWED_FUNCTIONS below) are names a pickle may ask for, compared as strings:
# no code here imports or reads the private modules they name (numpy._core, pandas._libs,
# numpy.random._pickle); those are where the libraries themselves put what they pickle.
# "_loss" is the module name scikit-learn's compiled loss classes report.
ALLOWED_CLASS_MODULES = (
    "sklearn.",
    "numpy",
    "numpy._core.",
    "numpy.core.",
    "numpy.random.",
    "numpy.dtypes",
    "scipy.sparse.",
    "pandas.core.",
    "pandas._libs.",
    "_loss",
    "collections",
)
# Parts of a module path that are never model data, even inside an allowed package: test helpers,
# build tools, bridges to foreign code, expression evaluators, file formats.
DENIED_MODULE_PARTS = frozenset(
    {"tests", "testing", "_testing", "conftest", "f2py", "distutils", "ctypeslib", "_pytesttester"}
    | {"externals", "computation", "lib", "io", "compat"}
)
# Classes in the allowed modules that touch the file system or run code anyway (a subclass of
# one is refused too: every base of a resolved class is checked).
DENIED = frozenset({("numpy", "memmap"), ("numpy._core.memmap", "memmap"), ("numpy.core.memmap", "memmap")})
# Functions a pickled numpy array, scalar or random state is rebuilt with. A resolved function
# must be the one listed: its own (module, name) is in this set too.
ALLOWED_FUNCTIONS = frozenset(
    {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        # A multiclass gradient-boosting model's loss (Cython's generated unpickler for one class,
        # sklearn._loss._loss.CyHalfMultinomialLoss; the extension registers itself as ``_loss``).
        ("_loss", "__pyx_unpickle_CyHalfMultinomialLoss"),
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),
    }
)
# The gradient-boosting libraries' model classes, by exact name (their modules also hold data
# loaders that read files, so no prefix of theirs is allowed): the scikit-learn estimator and its
# Booster, which unpickles from the library's own model text (LightGBM) or bytes (XGBoost).
ALLOWED_LIBRARY_CLASSES = frozenset(
    {
        ("lightgbm.sklearn", "LGBMClassifier"),
        ("lightgbm.sklearn", "LGBMRegressor"),
        ("lightgbm.basic", "Booster"),
        ("xgboost.sklearn", "XGBClassifier"),
        ("xgboost.sklearn", "XGBRegressor"),
        ("xgboost.core", "Booster"),
    }
)
ALLOWED_BUILTINS = frozenset(
    {"slice", "set", "frozenset", "complex", "bytearray", "range", "list", "dict", "tuple"}
    | {"int", "float", "bool", "str", "bytes", "object", "NoneType"}
)


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def dump_artifact(pipeline: Any) -> tuple[bytes, str]:
    """Serialize a fitted pipeline.

    Parameters
    ----------
    pipeline
        A fitted scikit-learn estimator or pipeline.

    Returns
    -------
    tuple of (bytes, str)
        The artifact and its sha256 (hex). Equal models give equal bytes.
    """
    data = pickle.dumps(pipeline, protocol=PICKLE_PROTOCOL)
    return data, sha256_hex(data)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names a scikit-learn model is made of.

    Every global (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ``, the copyreg extension codes)
    goes through :meth:`find_class`; nothing else in a pickle can reach a callable.
    """

    def __init__(self, stream: Any, code_modules: frozenset[str] = frozenset()) -> None:
        super().__init__(stream, fix_imports=False)
        self.code_modules = code_modules

    def find_class(self, module: str, name: str) -> Any:
        if not name or "." in name or not module:
            # A dotted name is resolved as a walk of attributes from the module: it could end anywhere.
            raise _refused(module, name)
        if module == "builtins":
            if name in ALLOWED_BUILTINS:
                return super().find_class(module, name)
            raise _refused(module, name)
        if (module, name) in ALLOWED_FUNCTIONS:
            found = super().find_class(module, name)
            if (getattr(found, "__module__", None), getattr(found, "__name__", None)) not in ALLOWED_FUNCTIONS:
                raise _refused(module, name)
            return found
        if _in_code(module, self.code_modules):
            # The model's own code package (sha256-checked and activated by the caller): its classes
            # and functions, defined there (not a re-export of something else).
            found = super().find_class(module, name)
            owner = getattr(found, "__module__", None)
            if not isinstance(owner, str) or not _in_code(owner, self.code_modules) or not callable(found):
                raise _refused(module, name, f"{owner}.{getattr(found, '__qualname__', '?')}")
            return found
        if (module, name) in ALLOWED_LIBRARY_CLASSES:
            found = super().find_class(module, name)
            if not isinstance(found, type) or (found.__module__, found.__qualname__) != (module, name):
                raise _refused(module, name)
            return found
        if (module, name) in DENIED or not _allowed_module(module):
            # Refused before importing: importing a module can itself run code.
            raise _refused(module, name)
        found = super().find_class(module, name)
        if not isinstance(found, type):
            raise _refused(module, name)
        # Where the class really comes from: a name re-exported by an allowed module (numpy's own
        # ``numpy.f2py`` holds ``subprocess``) must still be defined in an allowed module.
        owner = getattr(found, "__module__", None)
        if not isinstance(owner, str) or not _allowed_module(owner):
            raise _refused(module, name, f"{owner}.{getattr(found, '__qualname__', '?')}")
        for cls in found.__mro__:  # memmap, or a subclass of it anywhere
            if (getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)) in DENIED:
                raise _refused(module, name, f"a {cls.__module__}.{cls.__qualname__}")
        return found


def _in_code(module: str, code_modules: frozenset[str]) -> bool:
    return module.partition(".")[0] in code_modules


def _allowed_module(module: str) -> bool:
    if DENIED_MODULE_PARTS.intersection(module.split(".")):
        return False
    for prefix in ALLOWED_CLASS_MODULES:
        if prefix.endswith("."):
            if module.startswith(prefix):
                return True
        elif module == prefix:
            return True
    return False


def _refused(module: str, name: str, resolved: str | None = None) -> CheckFailedError:
    really = f" (which is {resolved})" if resolved else ""
    return CheckFailedError(
        f"model artifact refers to {module}.{name}{really}, which a model artifact may not use; refusing to load it"
    )


def load_artifact(
    data: bytes, expected_sha256: str, *, strict_versions: bool = True, code_modules: Iterable[str] = ()
) -> Any:
    """Load an artifact, but only if it is the one the registry recorded and only model parts.

    Parameters
    ----------
    data
        The artifact bytes.
    expected_sha256
        The sha256 recorded for this model version (hex; case is ignored).
    strict_versions
        Refuse an artifact pickled by another scikit-learn version (its predictions could differ).
    code_modules
        Top-level modules of the model's code package (the version's ``code_package``), already
        made importable by :func:`mlops.training.code.activate_code`; empty for spec-built models.

    Returns
    -------
    Any
        The fitted pipeline.

    Raises
    ------
    CheckFailedError
        The sha256 does not match (both hashes are named), the pickle names anything outside the
        allow-list, the bytes are not a pickle, or (``strict_versions``) scikit-learn versions differ.
    """
    actual = sha256_hex(data)
    expected = (expected_sha256 or "").strip().lower()
    if actual != expected:
        raise CheckFailedError(
            f"model artifact sha256 mismatch: expected {expected or '(none recorded)'}, got {actual};"
            " refusing to load it"
        )
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        if strict_versions:
            warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            model = _RestrictedUnpickler(io.BytesIO(data), frozenset(code_modules)).load()
        except CheckFailedError:
            raise
        except InconsistentVersionWarning as exc:
            raise CheckFailedError(
                f"model artifact was saved by scikit-learn {exc.original_sklearn_version}, this is"
                f" {exc.current_sklearn_version}; refusing to load it"
            ) from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
            raise CheckFailedError(f"model artifact {actual[:12]} cannot be loaded: {exc}") from None
    if not hasattr(model, "predict"):
        raise CheckFailedError(f"model artifact {actual[:12]} holds a {type(model).__name__}, not a model")
    return model
