"""Training code as a versioned input: the package a spec's ``training.entry_point`` names.

A code package is a zip of one Python package (``mypkg/__init__.py``, ``mypkg/features.py``, ...)
built by :func:`package_code` so that the same source gives the same bytes (sorted entries, a
fixed timestamp and mode, no ``__pycache__``): its sha256 identifies the code, as a dataset
version's identifies the data. ``mlops code upload`` stores it under ``code/<model>/`` and the
registry records its version, sha256, size and uploader (:mod:`mlops.registry.code_versions`).

Every function that runs or loads the model's code calls :func:`activate_code` first: it reads the
package, refuses it unless its sha256 is the recorded one, extracts it once per sha256 under
``<tmp>/mlops-code/<sha256>/`` (``/tmp`` on Lambda) and puts that folder on ``sys.path``. The
training function then calls :func:`build_estimator`; Evaluate, Register and serving load the
fitted artifact with the package's top-level module added to the unpickler's allow-list
(:func:`mlops.training.artifacts.load_artifact` ``code_modules``).

Examples
--------
>>> data, sha256, package = package_code("features/churnfeatures")  # doctest: +SKIP
>>> activate_code(lambda uri: data, "s3://bucket/code/churn/1/x.zip", sha256)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib
import io
import keyword
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic_core import PydanticCustomError

from mlops.errors import CheckFailedError, InputError, SpecError
from mlops.spec.params import param_value

# Where packages are extracted, under the temporary folder; the local cloud's import fence lets a
# function import from here (src/mlops_local/worker.py reads the same name).
CODE_DIR_NAME = "mlops-code"
MAX_CODE_BYTES = 50 * 1024**2  # a code package, zipped; data belongs in datasets
MAX_CODE_FILES = 2000
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry: the same for every build
ZIP_FILE_MODE = 0o644 << 16
ENTRY_POINT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):([A-Za-z_][A-Za-z0-9_]*)$")
# Top-level names a code package may not take: it would shadow what the platform imports.
RESERVED_PACKAGES = frozenset(
    {"mlops", "mlops_cli", "mlops_local", "sklearn", "numpy", "pandas", "scipy", "joblib", "threadpoolctl"}
    | {"skl2onnx", "onnx", "onnxruntime", "boto3", "botocore", "pydantic", "aws_lambda_powertools", "yaml"}
)
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")

ReadBytes = Callable[[str], bytes]


def check_package_name(name: str, where: str = "package") -> str:
    """``name`` if it can be a code package's top-level module, else :class:`InputError` saying why."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InputError(f"{where}: {name!r} is not a Python package name (letters, digits and '_')")
    if name in RESERVED_PACKAGES or name in sys.stdlib_module_names:
        raise InputError(
            f"{where}: {name!r} would shadow a module the platform imports (the standard library, the "
            "platform or its scientific stack); rename the package"
        )
    return name


def parse_entry_point(text: str, where: str = "training.entry_point") -> tuple[str, str]:
    """``"package.module:build"`` -> (module path, function name); :class:`SpecError` otherwise."""
    found = ENTRY_POINT.match(text or "")
    if not found:
        raise SpecError(
            f"{where}: {text!r} is not an entry point; write package.module:function "
            "(for example churnfeatures.model:build)"
        )
    module, function = found.group(1), found.group(2)
    try:
        check_package_name(module.partition(".")[0], where)
    except InputError as exc:
        raise SpecError(str(exc)) from None
    return module, function


def entry_point_package(text: str) -> str:
    """The top-level package an entry point lives in (what the code package must contain)."""
    return parse_entry_point(text)[0].partition(".")[0]


def package_code(directory: str | Path) -> tuple[bytes, str, str]:
    """Zip a Python package directory deterministically.

    Parameters
    ----------
    directory
        The package's folder (it holds ``__init__.py``); its name is the package's import name.

    Returns
    -------
    tuple of (bytes, str, str)
        The zip, its sha256 (hex) and the package name. Entries are ``<package>/<path>``, sorted,
        with a fixed timestamp and mode; ``__pycache__``, compiled files, version-control folders
        and symbolic links are left out, so the same source gives the same bytes.

    Raises
    ------
    InputError
        Not a directory, not a package (no ``__init__.py``), a name that is not a package name or
        would shadow a platform module, or more than the size or file-count limit.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; give the folder of a Python package (the one with __init__.py)")
    root = root.resolve()
    name = check_package_name(root.name, f"{directory}")
    if not (root / "__init__.py").is_file():
        raise InputError(
            f"{directory}: not a Python package (no __init__.py in it); give the package's folder, for example "
            f"src/{name}/ with src/{name}/__init__.py"
        )
    files: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts) or path.is_symlink():
            continue
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIXES):
            files.append((str(PurePosixPath(name, *relative.parts)), path))
    if len(files) > MAX_CODE_FILES:
        raise InputError(f"{directory}: {len(files)} files; a code package holds at most {MAX_CODE_FILES}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname, path in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_TIMESTAMP)
            info.external_attr = ZIP_FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    data = buffer.getvalue()
    if len(data) > MAX_CODE_BYTES:
        raise InputError(f"{directory}: the package zips to {len(data):,} bytes; at most {MAX_CODE_BYTES:,}")
    return data, hashlib.sha256(data).hexdigest(), name


def code_root() -> Path:
    """The folder packages are extracted under (``/tmp/mlops-code`` on Lambda)."""
    return Path(tempfile.gettempdir()) / CODE_DIR_NAME


def activate_code(read_bytes: ReadBytes, uri: str, sha256: str) -> Path:
    """Make one code version importable: fetch, check its sha256, extract once, add to ``sys.path``.

    Parameters
    ----------
    read_bytes
        Reads an object by URI (``s3://bucket/key``), for example the training steps' ``read_bytes``.
    uri
        Where the code package is stored (the registry's record).
    sha256
        The sha256 the registry recorded for it; nothing is extracted unless the bytes match.

    Returns
    -------
    Path
        The folder on ``sys.path`` (it holds the package's folder).

    Raises
    ------
    CheckFailedError
        The bytes do not hash to ``sha256`` (tampered or replaced), the zip is not one package
        (absolute paths, ``..``, several top-level names), or its package name is already taken by
        another importable module.
    """
    expected = (sha256 or "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise CheckFailedError(f"{uri}: no valid sha256 recorded for this code package ({sha256!r}); not used")
    target = code_root() / expected
    if not (target / ".complete").is_file():
        data = read_bytes(uri)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CheckFailedError(
                f"{uri}: code package sha256 mismatch: the registry recorded {expected}, the stored bytes hash to "
                f"{actual}; refusing to run it (upload the code again with `mlops code upload`)"
            )
        _extract(data, uri, target)
    _put_on_path(target, uri)
    return target


def _extract(data: bytes, uri: str, target: Path) -> None:
    """Extract a package zip to ``target`` (atomically: another process may be doing the same)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CheckFailedError(f"{uri}: the code package is not a zip archive") from None
    with archive:
        names = archive.namelist()
        tops = {PurePosixPath(n).parts[0] for n in names if n}
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith("/") or "\\" in name or ".." in parts or not parts:
                raise CheckFailedError(f"{uri}: entry {name!r} would be extracted outside its folder; not used")
        if len(tops) != 1:
            raise CheckFailedError(f"{uri}: a code package holds one top-level package, this one {sorted(tops)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:12]}-", dir=target.parent))
        try:
            archive.extractall(staging)
            (staging / ".complete").write_text(target.name)
            try:
                os.replace(staging, target)
            except OSError:
                if not (target / ".complete").is_file():  # not another process that finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _put_on_path(target: Path, uri: str) -> None:
    """Put ``target`` on ``sys.path``; another version of the same package, activated before, gives way.

    Two versions of one package can be needed in one process (Evaluate scores the candidate built by
    code version 2 and the champion built by version 1): the package's modules are forgotten and the
    other version's folder leaves ``sys.path``, so the next import finds this one. Objects already
    made from the other version keep their classes. A package of the same name from anywhere else
    (an installed library) is refused: code must never shadow or be shadowed.
    """
    root = code_root().resolve()
    packages = [p.name for p in target.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for package in packages:
        existing = sys.modules.get(package)
        origin = getattr(existing, "__file__", None) if existing is not None else None
        if existing is None:
            continue
        where = Path(origin).resolve() if origin else None
        if where is not None and where.is_relative_to(target.resolve()):
            continue  # this version, already imported
        if where is None or not where.is_relative_to(root):
            raise CheckFailedError(
                f"{uri}: package {package!r} is already imported from {origin or 'elsewhere'}; a code package "
                "must not take the name of another module"
            )
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
        sys.path[:] = [e for e in sys.path if not (Path(e).resolve().parent == root and (Path(e) / package).is_dir())]
    entry = str(target)
    if entry not in sys.path:
        sys.path.append(entry)  # after everything else: the platform's own modules are never shadowed
    importlib.invalidate_caches()


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """Import ``package.module:function`` from the activated code; :class:`SpecError` naming what is missing."""
    module_name, function = parse_entry_point(entry_point)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SpecError(
            f"training.entry_point: {entry_point!r}: module {exc.name or module_name!r} is not in the code package"
            " (or imports a module the training function does not ship)"
        ) from None
    except Exception as exc:  # the user's module failed while importing: say where, not a traceback
        raise SpecError(
            f"training.entry_point: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, function, None)
    if not callable(found):
        raise SpecError(f"training.entry_point: {module_name!r} has no function {function!r}")
    return found


def check_build_params(params: Mapping[str, Any], where: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A fresh copy of ``params`` checked as JSON-like values (:func:`mlops.spec.params.param_value`).

    ``where(name)`` is the spec path of parameter ``name`` (``training.params.C`` by default; a
    search candidate's comes from ``training.search.space``). A value that is not text, a number, a
    boolean, null, or a list or mapping of them is refused there, with the path inside the value.
    The copy keeps ``build`` from changing what the run records.

    Examples
    --------
    >>> check_build_params({"C": 0.5, "weights": {"yes": 2}})
    {'C': 0.5, 'weights': {'yes': 2}}
    """
    path = where or (lambda name: f"training.params.{name}")
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise SpecError(f"training.params: parameter name {name!r} is not text")
        try:
            checked[name] = param_value(value, name)
        except PydanticCustomError as exc:
            reason = str(exc.context.get("reason")) if exc.context else exc.message()
            inner = str(exc.context.get("path")) if exc.context else name
            raise SpecError(f"{path(name)}{inner[len(name) :]}: {reason}") from None
    return checked


class MissingParamError(KeyError):
    """``params[name]`` in a ``build`` for a parameter the spec does not set."""


class BuildParams(dict[str, Any]):
    """The parameters ``build`` receives: a plain dict whose missing key says it is a parameter."""

    def __missing__(self, key: Any) -> Any:
        raise MissingParamError(key)

    def __reduce__(self) -> tuple[Any, ...]:
        # kept inside a fitted model (a transformer's kw_args): pickled, copied and loaded as a plain
        # dict, which the restricted unpickler allows (this class is not on its allow-list)
        return (dict, (dict(self),))


def _build_failure(entry_point: str, exc: Exception, params: Mapping[str, Any], where: Callable[[str], str]) -> str:
    """What a ``build(spec, params)`` error means for the spec: a parameter's path, or the entry point."""
    text = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, MissingParamError):
        return (
            f"training.params: {entry_point}(spec, params) read parameter {exc.args[0]!r}, which the spec does "
            f"not set (it sets: {', '.join(sorted(params)) or 'none'}); add it under training.params"
        )
    if isinstance(exc, TypeError | ValueError):
        # scikit-learn: "The 'C' parameter of LogisticRegression must be ..."; others quote the name
        named = re.match(r"The '(\w+)' parameter", text)
        quoted = [n for n in params if f"'{n}'" in text or f'"{n}"' in text]
        # "could not convert string to float: 'abc'": the one text value the message quotes
        quoted = quoted or [n for n, v in params.items() if isinstance(v, str) and v and repr(v) in text]
        name = named.group(1) if named and named.group(1) in params else quoted[0] if len(quoted) == 1 else None
        if name is not None:
            return f"{where(name)}: {entry_point}(spec, params) refused its value {params[name]!r}: {detail}"
        if isinstance(exc, TypeError) and "positional argument" in text:
            return f"training.entry_point: {entry_point} must take two arguments, build(spec, params): {detail}"
    return f"training.entry_point: {entry_point}(spec, params) raised {detail}"


def build_estimator(
    entry_point: str, spec: Any, params: Mapping[str, Any], where: Callable[[str], str] | None = None
) -> Any:
    """Call the entry point's ``build(spec, params)``: an unfitted scikit-learn-compatible estimator.

    ``params`` are checked as JSON-like values first (:func:`check_build_params`) and ``build``
    gets its own copy; ``where(name)`` names a parameter's spec path in messages.

    Raises
    ------
    SpecError
        A parameter value that is not JSON-like (``training.params.<name>...``); ``build`` refused a
        parameter's value (``training.params.<name>``, when its error names one the spec sets) or
        read one the spec does not set; the entry point cannot be imported, raised another error,
        or returned something that is not an estimator (no ``fit``/``predict``/``get_params``).
        Never the user's traceback: the message is the run's reason.
    """
    path = where or (lambda name: f"training.params.{name}")
    checked = check_build_params(params, path)
    build = load_entry_point(entry_point)
    try:
        estimator = build(spec, BuildParams(checked))
    except Exception as exc:  # the user's build failed: name what it means, never a traceback
        raise SpecError(_build_failure(entry_point, exc, check_build_params(params, path), path)) from None
    missing = [m for m in ("fit", "predict", "get_params") if not callable(getattr(estimator, m, None))]
    if missing:
        raise SpecError(
            f"training.entry_point: {entry_point} returned a {type(estimator).__name__}, not a scikit-learn"
            f" estimator (it has no {', '.join(missing)})"
        )
    return estimator


# A registered version's tags that hold its code lineage (strings, as every tag).
CODE_TAGS = ("version", "sha256", "uri", "package", "entry_point", "uploader", "uploaded_at")


def code_tags(code: Mapping[str, Any] | None) -> dict[str, str]:
    """A run's code lineage as version tags (``code_version``, ``code_sha256``, ...); empty without code."""
    if not code:
        return {}
    return {f"code_{name}": str(code[name]) for name in CODE_TAGS if code.get(name) is not None}


def code_from_tags(tags: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The code lineage a version's tags record (what :func:`activate_code` needs), or None for a spec-built model.

    Examples
    --------
    >>> code_from_tags({"code_version": "2", "code_sha256": "ab", "code_package": "p"})["version"]
    2
    >>> code_from_tags({"profile_uri": "s3://b/k"}) is None
    True
    """
    if not tags or not tags.get("code_sha256"):
        return None
    code: dict[str, Any] = {name: tags[f"code_{name}"] for name in CODE_TAGS if f"code_{name}" in tags}
    if "version" in code:
        code["version"] = int(code["version"])
    return code
