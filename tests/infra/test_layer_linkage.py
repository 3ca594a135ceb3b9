"""Every shared library a function ships can find the libraries it links, as Lambda would load them.

A layer is unpacked into ``/opt``; Lambda puts ``/opt/lib`` (every layer's ``lib/``, merged) and the
function's ``/var/task/lib`` on ``LD_LIBRARY_PATH``. A library's ``DT_NEEDED`` entry is found through
its own ``RPATH``/``RUNPATH`` (``$ORIGIN`` is the library's folder), then those folders, then the
system. A wheel that links a library by a name nothing ships (LightGBM's ``libgomp.so.1``: its wheel
does not bundle it) imports fine on a developer's machine, where the system has it, and fails on
Lambda with ``cannot open shared object file``. This reads the ELF headers of the synthesized
functions' assets (pyelftools), so the failure shows at synth, offline.

The system side is what the Lambda Python 3.12 image (Amazon Linux 2023) is known to provide: glibc,
libgcc, libstdc++ and zlib, the part of the manylinux policy's allowed libraries that a minimal image has
(the policy also allows X11, OpenGL and GLib, which Lambda does not ship: a wheel needing them is
reported). Libraries a module opens with ``dlopen`` at run time are not listed in ``DT_NEEDED`` and
are outside this check.
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from tests.infra.conftest import Synthesized

# glibc, libgcc and libstdc++ on Amazon Linux 2023 (the Lambda python3.12 image), and zlib, which
# the Python runtime's own ``zlib`` module links (numpy's and scipy's aarch64 libgfortran need it).
LAMBDA_SYSTEM_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libutil.so.1",
        "libresolv.so.2",
        "libgcc_s.so.1",
        "libz.so.1",
        "libstdc++.so.6",
        "ld-linux-aarch64.so.1",
        "ld-linux-x86-64.so.2",
    }
)
MACHINES = {"arm64": "EM_AARCH64", "x86_64": "EM_X86_64"}
# Lambda's LD_LIBRARY_PATH, the folders a layer or the function can add to: every layer's lib/ is
# merged into /opt/lib.
LIBRARY_PATH = "/opt/lib"
LD_LIBRARY_PATH = (LIBRARY_PATH, "/var/task/lib")
ELF_MAGIC = b"\x7fELF"


def _function_trees(synthesized: Synthesized) -> list[tuple[str, str, dict[str, Path]]]:
    """(assembly/function, architecture, {'/opt': layer dirs..., '/var/task': code dir}) per function."""
    functions = []
    for template_path in sorted(synthesized.outdir.glob("assembly-*/*.template.json")):
        resources = json.loads(template_path.read_text())["Resources"]

        def asset(resource: dict, base: Path = template_path.parent) -> Path:
            return (base / resource["Metadata"]["aws:asset:path"]).resolve()

        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function" or "aws:asset:path" not in resource.get("Metadata", {}):
                continue
            architecture = (resource["Properties"].get("Architectures") or ["x86_64"])[0]
            roots = {"/var/task": asset(resource)}
            for index, layer in enumerate(resource["Properties"].get("Layers", [])):
                roots[f"/opt#{index}"] = asset(resources[layer["Ref"]])
            functions.append((f"{template_path.parent.name}/{logical_id}", architecture, roots))
    return functions


def _elf_files(roots: dict[str, Path]) -> list[tuple[str, Path]]:
    """(the path the file has on Lambda, the local file) for every ELF shared object in the tree."""
    found = []
    for mount, root in roots.items():
        base = mount.split("#")[0]
        for path in sorted(root.rglob("*.so*")):
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as handle:
                    if handle.read(4) != ELF_MAGIC:
                        continue
                found.append((posixpath.join(base, path.relative_to(root).as_posix()), path))
    return found


@dataclass(frozen=True)
class _Library:
    machine: str
    needed: tuple[str, ...]
    rpath: tuple[str, ...]  # DT_RPATH: also searched for the libraries it loads (when they have no RUNPATH)
    runpath: tuple[str, ...]  # DT_RUNPATH: searched for its own DT_NEEDED only


@functools.cache
def _dynamic(path: Path, lambda_path: str) -> _Library:
    """One ELF file's machine, DT_NEEDED names and search folders ($ORIGIN expanded)."""
    origin = posixpath.dirname(lambda_path)

    def folders(value: str) -> list[str]:
        return [
            posixpath.normpath(entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
            for entry in value.split(":")
            if entry
        ]

    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        for section in elf.iter_sections():
            if not isinstance(section, DynamicSection):
                continue
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag == "DT_RPATH":
                    rpath += folders(tag.rpath)
                elif tag.entry.d_tag == "DT_RUNPATH":
                    runpath += folders(tag.runpath)
        return _Library(elf["e_machine"], tuple(needed), tuple(rpath), tuple(runpath))


def _is_loaded_first(lambda_path: str) -> bool:
    """What Python imports (an extension module) or opens by path (ctypes): not a wheel's vendored
    library (``<package>.libs/``) nor a layer's ``lib/``, which are only loaded as dependencies."""
    folder = posixpath.dirname(lambda_path)
    return not folder.endswith(".libs") and not folder.startswith(LIBRARY_PATH)


def _unresolved(roots: dict[str, Path], architecture: str) -> tuple[int, list[str], list[str]]:
    """Load every extension module as glibc's loader would, breadth first, and list what is not found.

    A name is satisfied by the system, by a library already loaded under that name (the SONAME of a
    wheel's vendored library is its file name), or by a file in the folders the loader searches:
    the DT_RPATH of the object and of the objects that loaded it (when it has no DT_RUNPATH),
    LD_LIBRARY_PATH, then its DT_RUNPATH.
    """
    files = dict(_elf_files(roots))
    problems: list[str] = []
    wrong_machine: list[str] = []
    libraries: dict[str, _Library] = {}
    for lambda_path, local in files.items():
        try:
            libraries[lambda_path] = _dynamic(local, lambda_path)
        except ELFError as exc:  # a file named .so that is not a loadable library: say which
            problems.append(f"{lambda_path}: not a readable ELF file ({exc})")
            continue
        if libraries[lambda_path].machine != MACHINES[architecture]:
            wrong_machine.append(f"{lambda_path}: {libraries[lambda_path].machine}, runs on {architecture}")
    for root in sorted(path for path in libraries if _is_loaded_first(path)):
        loaded = {posixpath.basename(root)}
        queue: list[tuple[str, tuple[str, ...]]] = [(root, ())]
        while queue:
            current, inherited = queue.pop(0)
            library = libraries[current]
            chain = () if library.runpath else library.rpath + inherited
            search = [*chain, *LD_LIBRARY_PATH, *library.runpath]
            for name in library.needed:
                if name in LAMBDA_SYSTEM_LIBRARIES or name in loaded:
                    continue
                found = next((f"{folder}/{name}" for folder in search if f"{folder}/{name}" in libraries), None)
                if found is None:
                    problems.append(f"{current} needs {name}: not in {search} nor the system (loading {root})")
                    continue
                loaded.add(name)
                queue.append((found, chain))
    return len(files), sorted(set(problems)), wrong_machine


def test_every_shipped_library_finds_what_it_links_on_lambda(synthesized: Synthesized) -> None:
    functions = _function_trees(synthesized)
    assert functions
    checked = {}
    problems: list[str] = []
    for name, architecture, roots in functions:
        # functions with the same layers (and no library of their own) give the same answer
        layers = tuple(sorted(str(path) for mount, path in roots.items() if mount != "/var/task"))
        key = (architecture, layers, tuple(_elf_files({"/var/task": roots["/var/task"]})))
        if key not in checked:
            checked[key] = _unresolved(roots, architecture)
        _, unresolved, wrong_machine = checked[key]
        problems += [f"{name}: {p}" for p in unresolved + wrong_machine]
    libraries = max(count for count, _, _ in checked.values())
    assert libraries > 50, "the science layer alone ships numpy's, scipy's and LightGBM's libraries"
    assert not problems, "\n".join(problems[:40])


def test_the_check_finds_a_library_linked_by_a_name_nothing_ships(synthesized: Synthesized) -> None:
    """Without the OpenMP runtime the layer builder adds to lib/, LightGBM's library is reported."""
    for _, architecture, roots in _function_trees(synthesized):
        if not any((root / "lib" / "libgomp.so.1").is_file() for root in roots.values()):
            continue
        # the same function with only each layer's python/ folder: its lib/ left out
        without_lib = {
            mount if mount == "/var/task" else f"/opt/python#{mount}": root if mount == "/var/task" else root / "python"
            for mount, root in roots.items()
        }
        _, unresolved, _ = _unresolved(without_lib, architecture)
        assert any("lightgbm" in p and "needs libgomp.so.1" in p for p in unresolved), unresolved[:5]
        return
    raise AssertionError("no function ships LightGBM with the OpenMP runtime in its layer's lib/")
