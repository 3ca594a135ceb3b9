"""The toolkit every resource creator shares: the registry of creators, their context, generated names, code zips."""

from __future__ import annotations

import hashlib
import io
import json
import os
import string
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from mlops.errors import MlopsError
from mlops_local.assembly import Stack
from mlops_local.intrinsics import Resolver

if TYPE_CHECKING:
    from mlops_local.materialize import Materializer


class MaterializeError(MlopsError):
    """A resource of the template could not be created locally (names stack, resource and cause)."""


_ALPHABET = string.ascii_uppercase + string.digits


def physical_name(stack: str, logical: str, *, max_length: int = 64, lower: bool = False, suffix: str = "") -> str:
    """A CloudFormation-style generated name ``<stack>-<logical>-<SUFFIX>``, stable across restarts."""
    digest = int(hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest(), 16)
    rand = ""
    for _ in range(12):
        digest, index = divmod(digest, len(_ALPHABET))
        rand += _ALPHABET[index]
    room = max_length - len(rand) - 2 - len(suffix)
    stack_part = stack[: max(1, room // 2)] if len(stack) + len(logical) > room else stack
    logical_part = logical[: max(1, room - len(stack_part))]
    name = f"{stack_part}-{logical_part}-{rand}{suffix}"
    return name.lower() if lower else name


@dataclass
class Created:
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    physical_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # what the local cloud derived (for checks)


Handler: TypeAlias = "Callable[[Materializer, Context, dict[str, Any]], Created]"
HANDLERS: dict[str, tuple[Handler, frozenset[str]]] = {}


def handles(type_: str, *props: str) -> Callable[[Handler], Handler]:
    """Register a creator for ``type_``; ``props`` are the properties it honours (others are reported)."""

    def register(func: Handler) -> Handler:
        HANDLERS[type_] = (func, frozenset(props))
        return func

    return register


@dataclass
class Context:
    stack: Stack
    logical_id: str
    type: str
    resolver: Resolver

    def name(self, given: Any, **kwargs: Any) -> str:
        return str(given) if given else physical_name(self.stack.name, self.logical_id, **kwargs)


def tag_list(tags: Any, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{key: k, value: str(v)} for k, v in tags.items()]
    return [{key: t["Key"], value: str(t["Value"])} for t in tags or []]


def json_text(doc: Any) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


def pick(props: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: props[n] for n in names if n in props}


def files_in_order(directory: Path) -> Iterator[Path]:
    """The files under ``directory`` in sorted path order, found as they are needed (not all at once)."""
    with os.scandir(directory) as found:
        entries = sorted(found, key=lambda e: e.name)
    for entry in entries:
        if entry.name == "__pycache__":
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from files_in_order(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def zip_dir(directory: Path, limit: int = 20 * 1024 * 1024) -> bytes:
    """The directory as a zip (stored, not compressed) for moto's function and layer records.

    The local runtime runs code from the directory itself; the zip only gives the resource its
    code size and hash, so a big tree (a dependency layer) is cut off at ``limit`` bytes without
    walking the rest of it.
    """
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in files_in_order(directory):
            total += path.stat().st_size
            if total > limit:
                break
            archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def stub_zip(note: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("LOCAL.txt", note)
    return buffer.getvalue()
