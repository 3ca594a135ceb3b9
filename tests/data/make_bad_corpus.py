"""Regenerates tests/data/good.csv and the bad-dataset corpus in tests/data/bad/.

Each file breaks one thing (see tests/unit/validation/test_corpus.py for the finding each one
must give). Run from the repository root: ``python tests/data/make_bad_corpus.py``.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
BAD = HERE / "bad"
HEADER = ["id", "age", "income", "plan", "email", "active", "signup", "region", "label"]
PLANS = ["basic", "pro", "team"]
REGIONS = ["north", "south"]


def good_rows(n: int = 20) -> list[list[str]]:
    rows = []
    for i in range(1, n + 1):
        rows.append(
            [
                str(i),
                str(20 + i % 50),
                f"{1000 + 37.5 * i:.2f}" if i % 7 else "",
                PLANS[i % 3],
                f"user{i}@example.com" if i % 5 else "",
                ["true", "false"][i % 2],
                f"2024-01-{1 + i % 28:02d}",
                REGIONS[i % 2],
                str((i // 2) % 2),
            ]
        )
    return rows


def text(rows: list[list[str]], header: list[str] | None = None, sep: str = ",", end: str = "\n") -> str:
    lines = [sep.join(header or HEADER)] + [sep.join(r) for r in rows]
    return end.join(lines) + end


def with_value(row_number: int, column: str, value: str, n: int = 20) -> str:
    rows = good_rows(n)
    rows[row_number - 1][HEADER.index(column)] = value
    return text(rows)


def write(name: str, content: str | bytes) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    (BAD / name).write_bytes(data)


def main() -> None:
    BAD.mkdir(exist_ok=True)
    for old in BAD.iterdir():
        old.unlink()
    (HERE / "good.csv").write_text(text(good_rows()), encoding="utf-8")
    rows = good_rows()

    write("empty.csv", b"")
    write("whitespace_only.csv", "  \n\n \n")
    write("header_only.csv", ",".join(HEADER) + "\n")
    write("binary.csv", bytes(range(256)) * 8)
    body = text(rows).encode()
    cut = body.index(b"\n", len(body) // 2) + 1
    write("nul_bytes.csv", body[:cut] + b"11,30,5.0,basic,a\x00b@example.com,true,2024-01-01,north,0\n" + body[cut:])
    write("latin1.csv", with_value(4, "plan", "caf\u00e9").encode("latin-1"))
    write("utf16.csv", text(rows).encode("utf-16"))
    write("bom_utf8.csv", b"\xef\xbb\xbf" + text(rows).encode())
    ragged = text(rows).splitlines()
    ragged[5] += ",extra"
    write("ragged_too_many.csv", "\n".join(ragged) + "\n")
    ragged = text(rows).splitlines()
    ragged[3] = ragged[3].rsplit(",", 2)[0]
    write("ragged_too_few.csv", "\n".join(ragged) + "\n")
    write("duplicate_columns.csv", text([[*r, r[1]] for r in rows], [*HEADER, "age"]))
    write("semicolon.csv", text(rows, sep=";"))
    write("tab.csv", text(rows, sep="\t"))
    quoted = good_rows()
    quoted[1][HEADER.index("email")] = '"first@example.com\nsecond line"'
    quoted[6][HEADER.index("age")] = "-5"
    write("quoted_newline.csv", text(quoted))
    write("unterminated_quote.csv", text(rows) + '21,40,10.0,basic,"never closed@example.com,true,2024-01-01,north,0\n')
    write("inf_strings.csv", with_value(3, "income", "inf"))
    write("neg_infinity.csv", with_value(6, "income", "-Infinity"))
    write("nan_string.csv", with_value(2, "age", "NaN"))
    long_row = list(rows[0])
    long_row[0] = "21"
    long_row[4] = "x" * (2 * 1024 * 1024) + "@example.com"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(text([*rows, long_row]).encode())
    write("very_long_line.csv.gz", buffer.getvalue())
    wide = HEADER + [f"extra_{i}" for i in range(10_000)]
    write("ten_thousand_columns.csv", text([r + ["0"] * 10_000 for r in rows[:5]], wide))
    write("missing_column.csv", text([r[:2] + r[3:] for r in rows], HEADER[:2] + HEADER[3:]))
    write("missing_target.csv", text([r[:-1] for r in rows], HEADER[:-1]))
    write("unexpected_column.csv", text([[*r, "x"] for r in rows], [*HEADER, "notes"]))
    write("case_mismatch.csv", text(rows, [h if h != "age" else "Age" for h in HEADER]))
    write("mixed_types.csv", with_value(5, "age", "forty"))
    write("not_whole_number.csv", with_value(8, "age", "33.5"))
    write("null_required.csv", with_value(3, "plan", ""))
    write("na_in_category.csv", with_value(9, "plan", "NA"))
    write("below_min.csv", with_value(10, "age", "-1"))
    write("above_max.csv", with_value(11, "age", "130"))
    write("not_allowed.csv", with_value(12, "plan", "enterprise"))
    write("regex_mismatch.csv", with_value(13, "email", "not-an-email"))
    write("duplicate_ids.csv", with_value(14, "id", "3"))
    dup = good_rows()
    dup.append(list(dup[4]))
    write("duplicate_rows.csv", text(dup))
    write("too_few_rows.csv", text(good_rows()[:3]))
    write("too_many_rows.csv", text(good_rows(1001)))
    write("bad_bool.csv", with_value(15, "active", "maybe"))
    write("bad_datetime.csv", with_value(16, "signup", "31/02/2024"))
    write("target_invalid.csv", with_value(17, "label", "2"))
    write("target_null.csv", with_value(18, "label", ""))
    imbalanced = good_rows()
    for r in imbalanced:
        r[-1] = "0"
    imbalanced[0][-1] = "1"
    write("class_imbalance.csv", text(imbalanced))
    unfair = good_rows()
    for r in unfair:
        r[-1] = "1" if r[HEADER.index("region")] == "north" else ("1" if r[0] in ("2", "4") else "0")
    write("disparate_impact.csv", text(unfair))
    whole = gzip.compress(text(rows).encode(), mtime=0)
    write("gzip_truncated.csv.gz", whole[: len(whole) // 2])
    write("gzip_bad_value.csv.gz", gzip.compress(with_value(19, "age", "500").encode(), mtime=0))
    write("parquet.csv", b"PAR1" + b"\x15\x04" * 64 + b"PAR1")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(zipfile.ZipInfo("data.csv", date_time=(2024, 1, 1, 0, 0, 0)), text(rows))
    write("zipped.csv", archive.getvalue())
    write("blank_header.csv", "\n" + text(rows))
    write("cr_line_endings.csv", text(rows, end="\r"))
    shifted = good_rows()
    shifted[6][HEADER.index("age")] = "-20"  # file row 8: the blank line is row 4
    blank = text(shifted).splitlines()
    blank.insert(4, "")
    write("blank_lines.csv", "\n".join(blank) + "\n")


if __name__ == "__main__":
    main()
