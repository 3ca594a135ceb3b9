"""The records ``mlops predict`` sends: ``--data`` as JSON, JSON Lines files, and the rows they become."""

from __future__ import annotations

import gzip
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlops.errors import InputError


def read_data(data: str) -> Any:
    """The JSON ``--data`` names: inline, ``@FILE`` (JSON or ``.jsonl``), or ``@-`` (stdin)."""
    source = "--data"
    if data.startswith("@"):
        name = data[1:]
        source = name or "-"
        try:
            text = sys.stdin.read() if name in ("", "-") else Path(name).read_text()
        except OSError as exc:
            raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        if name.endswith(".jsonl"):
            return [row.record for row in jsonl_rows(name, text)]
    else:
        text = data
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from None


def request_body(document: Any) -> dict[str, Any]:
    """A request body from a record, a list of records, or a body that is already shaped."""
    if isinstance(document, list):
        return {"records": document}
    if isinstance(document, dict):
        if set(document) in ({"record"}, {"records"}):
            return document
        return {"record": document}
    raise InputError("--data must be a JSON object (one record), a list of records, or a request body")


@dataclass(frozen=True)
class Row:
    """One input record: its 1-based row, the file line it starts on (None inline) and the record."""

    row: int
    line: int | None
    record: Any

    @property
    def where(self) -> str:
        return f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")


def open_text(path: Path) -> IO[str]:
    raw = path.open("rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def jsonl_rows(name: str, text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{name}, line {number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise InputError(f"{name}, line {number}: a record is a JSON object, not {type(record).__name__}")
        rows.append(Row(len(rows) + 1, number, record))
    return rows
