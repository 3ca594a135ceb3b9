"""The streaming reader: block boundaries, gzip, hashing, row numbers, bounded reads."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pytest

from mlops.data.validation import validate_file, validate_stream
from mlops.spec.model import ModelSpec

DATA = Path(__file__).resolve().parents[2] / "data"


class OnlyRead:
    """A non-seekable body with only read(n), like botocore's StreamingBody; counts the largest read."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)
        self.largest = 0

    def read(self, size: int = -1) -> bytes:
        self.largest = max(self.largest, size)
        return self._buffer.read(size)


def _summary(report) -> list[tuple[str, str | None, str, int, list[int | None]]]:
    return [(c.check, c.column, c.status.value, c.failing_count, [e.row for e in c.examples]) for c in report.checks]


@pytest.mark.parametrize(
    "name",
    [
        "good.csv",
        "bad/quoted_newline.csv",
        "bad/blank_lines.csv",
        "bad/ragged_too_many.csv",
        "bad/latin1.csv",
        "bad/duplicate_ids.csv",
        "bad/unterminated_quote.csv",
        "bad/very_long_line.csv.gz",
    ],
)
def test_tiny_blocks_give_the_same_report_as_one_block(name: str, corpus_spec: ModelSpec) -> None:
    # GIVEN a dataset read once in one block and once in 64-byte blocks (many chunk boundaries)
    whole = validate_file(DATA / name, corpus_spec)
    tiny = validate_file(DATA / name, corpus_spec, block_size=64)
    # THEN every finding, count and example row is the same
    assert _summary(tiny) == _summary(whole)
    assert tiny.rows == whole.rows


def test_stream_is_read_in_bounded_pieces_and_hashed(corpus_spec: ModelSpec) -> None:
    # GIVEN a non-seekable stream of a dataset
    data = (DATA / "good.csv").read_bytes()
    body = OnlyRead(data)
    # WHEN validated with a small block size
    report = validate_stream(body, corpus_spec, "s3://bucket/good.csv", block_size=128)
    # THEN no read asked for more than a block, and size and sha256 describe the stored bytes
    assert report.valid
    assert 0 < body.largest <= 1024 * 1024  # the sniffed head and the final drain are bounded too
    assert report.source.bytes == len(data)
    assert report.source.sha256 == hashlib.sha256(data).hexdigest()
    assert report.source.name == "s3://bucket/good.csv"


def test_gzip_hash_is_of_the_compressed_bytes_and_members_concatenate(corpus_spec: ModelSpec) -> None:
    # GIVEN a gzip file made of two members (as `cat a.gz b.gz` gives)
    text = (DATA / "good.csv").read_bytes()
    head, rest = text.split(b"\n", 1)
    first, second = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    cut = first.rfind(b"\n") + 1
    first, second = first[:cut], first[cut:] + second
    blob = gzip.compress(head + b"\n" + first, mtime=0) + gzip.compress(second, mtime=0)
    # WHEN validated
    report = validate_stream(io.BytesIO(blob), corpus_spec, "two-members.csv.gz", block_size=100)
    # THEN every row of both members is read and the hash is of what is stored
    assert report.valid, report.render_text()
    assert report.rows == 20
    assert report.source.compression == "gzip"
    assert report.source.sha256 == hashlib.sha256(blob).hexdigest()


def test_crlf_line_endings_are_read_like_lf(corpus_spec: ModelSpec) -> None:
    # GIVEN the good dataset with Windows line endings and one bad value
    text = (DATA / "good.csv").read_text().replace(",23,", ",-3,", 1).replace("\n", "\r\n")
    # WHEN validated
    report = validate_stream(io.BytesIO(text.encode()), corpus_spec, "crlf.csv")
    # THEN only the bad value is reported, at the right row
    assert [c.check for c in report.failures] == ["column.min"]
    assert report.failures[0].examples[0].row == 3


def test_nul_byte_after_the_first_block_is_a_row_finding(corpus_spec: ModelSpec) -> None:
    # GIVEN a large file whose NUL byte comes after the sniffed head
    rows = (DATA / "good.csv").read_text().splitlines()
    header, body = rows[0], rows[1:]
    lines = [header]
    for i in range(4000):
        parts = body[i % 20].split(",")
        parts[0] = str(i + 1)
        lines.append(",".join(parts))
    lines[3500] = lines[3500].replace("@", "\x00@", 1) if "@" in lines[3500] else lines[3500] + "\x00"
    spec = corpus_spec.model_copy(update={"row_count": corpus_spec.row_count.model_copy(update={"max": None})})
    # WHEN validated
    report = validate_stream(io.BytesIO("\n".join(lines).encode()), spec, "nul.csv", block_size=4096)
    # THEN the row is named and left out, the rest is still validated
    binary = report.find("file.binary")[0]
    assert binary.examples[0].row == 3500
    assert report.readable
    assert report.rows == 4000


def test_unterminated_quote_in_a_big_file_stops_reading_with_a_finding(corpus_spec: ModelSpec) -> None:
    # GIVEN a quoted field that never closes, followed by much more data than a record may hold
    good = (DATA / "good.csv").read_text()
    tail = "".join(f"{i},30,1.0,basic,x@y.com,true,2024-01-01,north,0\n" for i in range(100, 3000))
    data = (good + '99,30,1.0,basic,"oops,true,2024-01-01,north,0\n' + tail).encode()
    # WHEN read with a small record limit
    from mlops.data.validation.reader import CsvReader

    reader = CsvReader(io.BytesIO(data), "q.csv", ["id"], set(), block_size=1024, max_record_bytes=4096)
    frames = list(reader.chunks())
    # THEN the rows before it were read, and the fatal finding names the row
    assert sum(len(f.frame) for f in frames) == 20
    fatal = [f for f in reader.findings() if f.check == "file.unterminated_quote"]
    assert reader.fatal and fatal
    assert "row 21" in fatal[0].message


def test_missing_file_and_directory_are_findings(tmp_path: Path, corpus_spec: ModelSpec) -> None:
    # GIVEN paths that are not readable files
    # WHEN validated
    missing = validate_file(tmp_path / "nope.csv", corpus_spec)
    directory = validate_file(tmp_path, corpus_spec)
    # THEN each is an unreadable report naming the path, not an exception
    assert not missing.readable and "no such file" in missing.failures[0].message
    assert not directory.readable and missing.failures[0].check == "file.unreadable"
    assert str(tmp_path) in directory.failures[0].message


def test_stray_quote_inside_a_field_keeps_later_rows_aligned(corpus_spec: ModelSpec) -> None:
    # GIVEN a literal quote inside an unquoted field (pandas and csv read it as a character),
    # balanced by a second one, and a bad value two rows later
    lines = (DATA / "good.csv").read_text().splitlines()
    lines[2] = lines[2].replace("user2", 'us"er2', 1)
    lines[3] = lines[3].replace("user3", 'us"er3', 1)
    lines[5] = lines[5].replace(",25,", ",-25,", 1)
    # WHEN validated
    report = validate_stream(io.BytesIO(("\n".join(lines) + "\n").encode()), corpus_spec, "stray.csv")
    # THEN the bad value is still found at its own row
    below = report.find("column.min", "age")[0]
    assert below.failed and below.examples[0].row == 5
