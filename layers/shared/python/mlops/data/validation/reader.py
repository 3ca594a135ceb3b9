"""Streaming CSV reading with bounded memory, where every reading problem becomes a finding.

The bytes are read in blocks (``block_size``, 16 MiB by default). Each block is cut at the last
record end outside a quoted field, scanned with numpy for record boundaries, field counts,
blank lines, over-long lines, NUL bytes and invalid UTF-8, and then parsed by pandas' C parser
(only the columns the spec uses). A block pandas parses differently from the scan (stray quotes
in the middle of a field, for example) is re-parsed with the standard ``csv`` module, so row
numbers always stay right. Only the current block and its frame are in memory at a time.

Row numbers are 1-based record numbers after the header: row 1 is the first data record. They
equal ``line - 1`` unless a quoted field holds a line break.

Kept as one module (:class:`CsvReader` is about 450 lines): the block loop, the record scan, the
header, the UTF-8 check and the two parsers share one state (the carried-over tail, the row
counter, the findings) and one invariant (row numbers stay right across blocks and parsers);
split across modules, each piece would need that state passed in and the invariant would have no
single place to read. The byte streams under it (sha256 as read, gzip undone) are in
:mod:`.streams`.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.data.validation.report import CheckResult, Example, SourceInfo, Status
from mlops.data.validation.streams import GZIP_MAGIC, GunzipStream, HashingStream

# Values read as missing (NA_STRINGS, kept in mlops.values). Deliberately narrower than pandas'
# defaults (which also treat "n/a", "#N/A N/A", "-1.#IND" and friends as missing) so a category
# called "NA" stays a value only if the spec allows it; documented in docs/validation.md.
from mlops.values import NA_STRINGS

DEFAULT_BLOCK_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
# A record may not grow beyond this while we look for its end; beyond it the file is unreadable
# (an unterminated quote or a file without line breaks) and reading stops with a finding.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024

_NL, _CR, _QUOTE, _COMMA = 10, 13, 34, 44


@dataclass
class Chunk:
    """One parsed block: ``frame`` holds the spec's columns (by name), ``rows`` their row numbers."""

    frame: pd.DataFrame
    rows: np.ndarray


@dataclass
class _Problem:
    """A reading problem gathered across blocks (count plus the first examples)."""

    check: str
    message: str
    count: int = 0
    examples: list[Example] = field(default_factory=list)


class CsvReader:
    """Read a CSV (or gzip CSV) byte stream block by block, collecting reading findings.

    Parameters
    ----------
    raw:
        A binary file-like object with ``read(n)`` (an open file, an S3 ``StreamingBody``).
    source_name:
        Named in messages and in the report.
    wanted:
        Column names to parse (the spec's features and target); other columns are only counted.
    string_columns:
        Columns read as text (categories, strings, booleans, datetimes, a classification
        target); every other wanted column is parsed as a number where possible.
    """

    def __init__(
        self,
        raw: IO[bytes],
        source_name: str,
        wanted: list[str],
        string_columns: set[str],
        max_examples: int = 5,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self._hashing = HashingStream(raw)
        self._stream: Any = self._hashing
        self.source = SourceInfo(name=source_name)
        self._wanted = wanted
        self._string_columns = string_columns
        self._max_examples = max_examples
        self._block_size = max(block_size, 1)
        self._max_line_bytes = max_line_bytes
        self._max_record_bytes = max(max_record_bytes, self._block_size)
        self.header: list[str] | None = None
        self.used: dict[str, int] = {}
        self.records = 0  # data records seen, blank lines excluded
        self.fatal = False
        self.results: list[CheckResult] = []
        self._problems: dict[str, _Problem] = {}
        self._row_base = 0  # records (blank lines included) before the current block

    # ---------------------------------------------------------------------------------- public
    def finish_source(self) -> SourceInfo:
        """Drain what is left of the stream so size and sha256 cover every byte."""
        try:
            while self._hashing.read(1024 * 1024):
                pass
        except OSError:
            pass
        self.source.bytes = self._hashing.bytes
        self.source.sha256 = self._hashing.sha256.hexdigest()
        return self.source

    def findings(self) -> list[CheckResult]:
        """Every reading finding: fatal ones, then the problems gathered across blocks."""
        out = list(self.results)
        for problem in self._problems.values():
            status = Status.WARNING if problem.check in ("file.blank_lines",) else Status.FAILED
            out.append(
                CheckResult(
                    check=problem.check,
                    status=status,
                    message=problem.message.format(count=problem.count, s="" if problem.count == 1 else "s"),
                    failing_count=problem.count,
                    examples=problem.examples,
                )
            )
        return out

    def chunks(self) -> Iterator[Chunk]:
        """Parsed blocks, in order. Reading stops (``fatal``) when the rest cannot be read."""
        try:
            first = self._open()
            if first is None:
                return
            yield from self._blocks(first)
        except (zlib.error, EOFError, OSError) as exc:
            self._fatal("file.unreadable", f"reading stopped after {self.records:,} rows: {exc}")

    # ---------------------------------------------------------------------------- the format
    def _fatal(self, check: str, message: str, examples: list[Example] | None = None) -> None:
        self.fatal = True
        self.results.append(
            CheckResult(check=check, status=Status.FAILED, message=message, failing_count=1, examples=examples or [])
        )

    def _read(self, size: int) -> bytes:
        data: bytes = self._stream.read(size)
        return data

    def _open(self) -> bytes | None:
        head = self._hashing.read(65536)
        if not head:
            self._fatal("file.empty", "the file is empty (0 bytes)")
            return None
        if head.startswith(GZIP_MAGIC):
            self.source.compression = "gzip"
            self._stream = GunzipStream(self._hashing, head)
            head = self._read(65536)
            if not head:
                self._fatal("file.empty", "the gzip file holds no data (0 bytes once decompressed)")
                return None
        if head.startswith(b"PAR1"):
            self._fatal(
                "file.format",
                "this is a Parquet file; Parquet is not supported (the layer has no pyarrow): upload CSV or gzip CSV",
            )
            return None
        if head.startswith(b"PK\x03\x04"):
            self._fatal("file.format", "this is a zip archive (or an .xlsx workbook): upload CSV or gzip CSV")
            return None
        for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
            if head.startswith(bom):
                self._fatal(
                    "file.encoding", f"the file is {name} encoded (byte order mark {bom.hex(' ')}): save it as UTF-8"
                )
                return None
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
            self.source.encoding = "utf-8-sig"
            self.results.append(
                CheckResult(
                    check="file.bom",
                    status=Status.WARNING,
                    message="the file starts with a UTF-8 byte order mark; it was ignored",
                )
            )
        if b"\x00" in head:
            offset = head.index(b"\x00")
            self._fatal("file.binary", f"binary data, not CSV text (NUL byte at byte {offset:,})")
            return None
        controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 13))
        if controls > len(head) * 0.1:
            self._fatal(
                "file.binary", f"binary data, not CSV text ({controls:,} control bytes in the first {len(head):,})"
            )
            return None
        if not head.strip():
            self._fatal("file.empty", "the file holds only whitespace")
            return None
        if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
            self._fatal("file.line_endings", "the file uses old Mac line endings (CR only): save it with LF or CRLF")
            return None
        return head

    # ------------------------------------------------------------------------------ blocks
    def _blocks(self, buffer: bytes) -> Iterator[Chunk]:
        eof = False
        ends = _record_ends(buffer)
        while not len(ends) and not eof:  # the header may span blocks (10k columns)
            if len(buffer) > self._max_record_bytes:
                self._fatal("file.header", f"no line break in the first {len(buffer):,} bytes")
                return
            data = self._read(self._block_size)
            eof = not data
            buffer += data
            ends = _record_ends(buffer)
        cut = int(ends[0]) + 1 if len(ends) else len(buffer)
        if not self._parse_header(buffer[:cut]):
            return
        buffer = buffer[cut:]
        while True:
            while not eof and len(buffer) < self._block_size:
                data = self._read(self._block_size - len(buffer))
                eof = not data
                buffer += data
            ends = _record_ends(buffer)
            if eof:
                if not buffer:
                    return
                if _quote_parity(buffer) == 0:
                    yield from self._block(buffer)
                    return
                last = int(ends[-1]) + 1 if len(ends) else 0
                if last:
                    yield from self._block(buffer[:last])
                self._unterminated_tail(buffer[last:])
                return
            if not len(ends):
                if len(buffer) >= self._max_record_bytes:
                    quoted = _quote_parity(buffer) == 1
                    self._fatal(
                        "file.unterminated_quote" if quoted else "file.long_lines",
                        f"row {self._row_base + 1} runs past {len(buffer):,} bytes "
                        f"({'a quoted field never ends' if quoted else 'no line break'}); reading stopped",
                        [Example(row=self._row_base + 1, value=_short(buffer[:60].decode("utf-8", "replace")))],
                    )
                    return
                data = self._read(self._block_size)
                eof = not data
                buffer += data
                continue
            cut = int(ends[-1]) + 1
            block, buffer = buffer[:cut], buffer[cut:]
            yield from self._block(block)

    def _unterminated_tail(self, tail: bytes) -> None:
        row = self._row_base + 1
        self.records += 1
        self._add_problem(
            "file.unterminated_quote",
            "{count} row{s} with a quoted field that never ends (the rest of the file was not validated)",
            [row],
            [tail[:60].decode("utf-8", "replace")],
        )

    def _parse_header(self, raw: bytes) -> bool:
        text = raw.decode("utf-8", "replace")
        if "\ufffd" in text:
            self._add_problem(
                "file.encoding",
                "{count} row{s} with bytes that are not UTF-8 (read with U+FFFD replacement; save the file as UTF-8)",
                [0],
                [text[:60]],
                ["the header"],
            )
        try:
            names = next(csv.reader(io.StringIO(text.rstrip("\r\n"))), [])
        except csv.Error as exc:
            self._fatal("file.header", f"the header row cannot be parsed: {exc}")
            return False
        if not names or all(not n.strip() for n in names):
            self._fatal("file.header", "the first line (the header) is empty: the file must start with column names")
            return False
        if len(names) == 1 and names[0] not in self._wanted:
            for delimiter, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
                parts = names[0].split(delimiter)
                if len(parts) > 1:
                    self._fatal(
                        "file.delimiter",
                        f"the header is one column {_short(names[0])!r}: the file looks {label}-separated "
                        f"({len(parts)} columns on {delimiter!r}); save it comma-separated",
                    )
                    return False
        self.header = names
        seen: dict[str, int] = {}
        duplicates: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            if name in seen:
                duplicates.setdefault(name, [seen[name] + 1]).append(index + 1)
            else:
                seen[name] = index
        if duplicates:
            listed = "; ".join(f"{n!r} at positions {', '.join(map(str, p))}" for n, p in duplicates.items())
            self.results.append(
                CheckResult(
                    check="file.duplicate_columns",
                    status=Status.FAILED,
                    message=f"{len(duplicates)} column name(s) appear more than once ({_short(listed, 300)}); "
                    "only the first of each is validated",
                    failing_count=len(duplicates),
                    details={"duplicates": dict(list(duplicates.items())[:50])},
                )
            )
        self.used = {name: seen[name] for name in self._wanted if name in seen}
        return True

    def _add_problem(
        self,
        check: str,
        message: str,
        rows: list[int],
        values: list[str],
        notes: list[str] | None = None,
        count: int | None = None,
    ) -> None:
        problem = self._problems.setdefault(check, _Problem(check, message))
        problem.count += len(rows) if count is None else count
        room = self._max_examples - len(problem.examples)
        for i in range(min(room, len(rows))):
            note = notes[i] if notes else None
            problem.examples.append(Example(row=rows[i], value=_short(values[i]), note=note))

    def _block(self, block: bytes) -> Iterator[Chunk]:
        ncols = len(self.header or [])
        data = np.frombuffer(block, dtype=np.uint8)
        ends = _record_ends(block)
        if len(ends) == 0 or int(ends[-1]) != len(block) - 1:
            ends = np.append(ends, len(block))  # the last record has no line break (end of file)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        stops = ends.copy()
        has_cr = (stops > starts) & (data[np.minimum(stops - 1, len(data) - 1)] == _CR)
        stops -= has_cr
        lengths = stops - starts
        n = len(starts)
        rows = self._row_base + np.arange(1, n + 1, dtype=np.int64)
        self._row_base += n
        blank = lengths == 0
        if blank.any() and ncols > 0:
            idx = np.flatnonzero(blank)
            self._add_problem("file.blank_lines", "{count} blank line{s} ignored", rows[idx].tolist(), [""] * len(idx))
        commas = np.flatnonzero(data == _COMMA)
        quotes = np.flatnonzero(data == _QUOTE) if b'"' in block else None
        if quotes is not None and len(quotes):
            commas = commas[(np.searchsorted(quotes, commas) & 1) == 0]
        fields = np.searchsorted(commas, stops) - np.searchsorted(commas, starts) + 1
        ragged = ~blank & (fields != ncols)
        too_long = ~blank & (lengths > self._max_line_bytes)
        ragged &= ~too_long
        if too_long.any():
            idx = np.flatnonzero(too_long)
            self._add_problem(
                "file.long_lines",
                f"{{count}} row{{s}} longer than {self._max_line_bytes:,} bytes (not validated)",
                rows[idx].tolist(),
                [block[starts[i] : starts[i] + 40].decode("utf-8", "replace") for i in idx[: self._max_examples]],
                [f"{int(lengths[i]):,} bytes" for i in idx[: self._max_examples]],
            )
        if ragged.any():
            idx = np.flatnonzero(ragged)
            self._add_problem(
                "file.ragged_rows",
                f"{{count}} row{{s}} with a number of fields other than the header's {ncols} (not validated)",
                rows[idx].tolist(),
                [block[starts[i] : stops[i]].decode("utf-8", "replace") for i in idx[: self._max_examples]],
                [f"{int(fields[i])} fields" for i in idx[: self._max_examples]],
            )
        if b"\x00" in block:
            idx = np.unique(np.searchsorted(starts, np.flatnonzero(data == 0), side="right") - 1)
            self._add_problem(
                "file.binary",
                "{count} row{s} with NUL bytes (binary data; not validated)",
                rows[idx].tolist(),
                ["\\x00"] * len(idx),
            )
            ragged[idx] = True
        if not block.isascii():
            self._check_utf8(block, starts, rows)
        self.records += int(n - blank.sum())
        good = ~blank & ~ragged & ~too_long
        if not good.any():
            return
        frame = self._parse(block, blank, ragged & (fields > ncols), good)
        yield Chunk(frame=frame, rows=rows[good])

    def _check_utf8(self, block: bytes, starts: np.ndarray, rows: np.ndarray) -> None:
        offset = 0
        bad: list[int] = []
        texts: list[str] = []
        values: list[str] = []
        count = 0
        last_record = -1
        while offset < len(block):
            try:
                block[offset:].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                position = offset + exc.start
                record = int(np.searchsorted(starts, position, side="right") - 1)
                if record != last_record:
                    last_record = record
                    count += 1
                    if len(bad) < self._max_examples:
                        start = int(starts[record])
                        bad.append(int(rows[record]))
                        texts.append(block[start : start + 60].split(b"\n")[0].decode("utf-8", "replace"))
                        values.append(f"byte 0x{block[position]:02x} at byte {position - start + 1} of the row")
                offset = position + max(exc.end - exc.start, 1)
                if count > 100_000:
                    break
        if count:
            self._add_problem(
                "file.encoding",
                "{count} row{s} with bytes that are not UTF-8 (read with U+FFFD replacement; save the file as UTF-8)",
                bad,
                texts,
                values,
                count=count,
            )

    def _parse(self, block: bytes, blank: np.ndarray, too_many: np.ndarray, good: np.ndarray) -> pd.DataFrame:
        names = list(self.used)
        positions = [self.used[name] for name in names]
        ncols = len(self.header or [])
        if not names:
            return pd.DataFrame(index=pd.RangeIndex(int(good.sum())))
        dtypes = {self.used[name]: str for name in names if name in self._string_columns}
        frame: pd.DataFrame | None = None
        try:
            frame = pd.read_csv(
                io.BytesIO(block),
                header=None,
                names=list(range(ncols)),
                index_col=False,
                usecols=positions,
                dtype=dtypes,
                keep_default_na=False,
                na_values=list(NA_STRINGS),
                on_bad_lines="skip",
                skip_blank_lines=True,
                encoding="utf-8",
                encoding_errors="replace",
                low_memory=False,
                engine="c",
            )
        except (ValueError, pd.errors.ParserError, UnicodeError):
            frame = None
        keep: np.ndarray | None = None
        if frame is not None:
            # pandas keeps rows with too many fields when usecols is given, and skips them
            # otherwise; any other disagreement with our scan means a record structure pandas
            # reads differently (a stray quote mid-field), and the csv module decides.
            parsed = ~blank
            if len(frame) != int(parsed.sum()):
                parsed &= ~too_many
            if len(frame) == int(parsed.sum()):
                keep = good[parsed]
        if frame is None or keep is None:
            return self._parse_with_csv(block, positions, names, good)
        if not keep.all():
            frame = frame.loc[keep]
        # pandas returns ``usecols`` in file order whatever the order asked for: select the
        # columns by their position label, in the order of ``names``, before naming them.
        frame = frame[positions].reset_index(drop=True)
        frame.columns = names
        return frame

    def _parse_with_csv(self, block: bytes, positions: list[int], names: list[str], good: np.ndarray) -> pd.DataFrame:
        ncols = len(self.header or [])
        text = block.decode("utf-8", "replace")
        records = list(csv.reader(io.StringIO(text, newline="")))
        expected = len(good)
        if len(records) != expected:
            # Even the csv module sees another record structure: validate the rows that agree.
            records = (records + [[]] * expected)[:expected]
        na = set(NA_STRINGS)
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for ok, record in zip(good.tolist(), records, strict=True):
            if not ok:
                continue
            if len(record) != ncols:
                record = (record + [""] * ncols)[:ncols]
            for name, position in zip(names, positions, strict=True):
                value = record[position]
                columns[name].append(None if value in na else value)
        frame = pd.DataFrame(
            {
                name: pd.Series(values, dtype="str" if name in self._string_columns else object)
                for name, values in columns.items()
            }
        )
        return frame


def _record_ends(buffer: bytes) -> np.ndarray:
    """Offsets of the line breaks that end a record (those outside quoted fields)."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(data == _NL)
    if len(ends) and b'"' in buffer:
        quotes = np.flatnonzero(data == _QUOTE)
        ends = ends[(np.searchsorted(quotes, ends) & 1) == 0]
    return ends


def _quote_parity(buffer: bytes) -> int:
    return buffer.count(b'"') & 1


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."
