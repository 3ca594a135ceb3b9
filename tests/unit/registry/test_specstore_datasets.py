"""Spec revisions and dataset version records (in-memory fake; S3 streaming is in integration)."""

from __future__ import annotations

import hashlib
import io
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion, describe_file, scan_csv
from mlops.data.validation import schema_fingerprint
from mlops.errors import ConflictError, InputError, NotFoundError
from mlops.registry.specs import SpecStore, spec_key
from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry
from mlops.spec.model import load_spec
from tests.unit.registry.helpers import audit_items

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "examples" / "specs" / "churn.yaml"


def test_spec_revisions_count_up_and_identical_puts_store_nothing(registry: Registry) -> None:
    # GIVEN the churn spec and a changed copy
    specs = SpecStore(registry)
    spec = load_spec(CHURN)
    changed = spec.model_copy(update={"description": "v2"})
    # WHEN it is put, put again unchanged, then put changed
    first = specs.put(spec, actor="alice", source="churn.yaml")
    again = specs.put(spec, actor="alice")
    second = specs.put(changed, actor="bob")
    # THEN revisions are 1 and 2, the repeat stored nothing, and each revision reads back
    assert (first.revision, again.revision, again.changed, second.revision) == (1, 1, False, 2)
    assert specs.get("churn").revision == 2
    assert specs.get("churn", 1).spec() == spec
    assert specs.get("churn", 2).document["description"] == "v2"
    assert [r.revision for r in specs.list("churn").items] == [2, 1]
    assert registry.get_model("churn").latest_spec_revision == 2
    # AND each stored revision wrote one audit event, before/after naming the revisions
    events = [i for i in audit_items(registry, "churn") if i["action"] == "spec.put"]
    assert len(events) == 2
    assert '"revision":1' in events[1]["before"] and '"revision":2' in events[1]["after"]


def test_a_spec_revision_is_never_overwritten(registry: Registry) -> None:
    # GIVEN revision 1
    SpecStore(registry).put(load_spec(CHURN), actor="alice")
    # WHEN anything tries to write revision 1 again the way the store writes
    with pytest.raises(ConditionFailedError):
        registry.store.write(
            Put(registry.table, {**spec_key("churn", 1), "document": "{}"}, Condition(item_exists=False))
        )
    # THEN the original is intact
    assert SpecStore(registry).get("churn", 1).document["name"] == "churn"


def test_missing_specs_are_not_found(registry: Registry) -> None:
    # GIVEN no specs, WHEN / THEN reading one names what is missing
    specs = SpecStore(registry)
    with pytest.raises(NotFoundError, match="has no spec"):
        specs.get("churn")
    specs.put(load_spec(CHURN), actor="alice")
    with pytest.raises(NotFoundError, match="no spec revision 9"):
        specs.get("churn", 9)


CSV = b'id,score,label,flag,note\n1,0.5,a,true,"line one\nline two"\n2,,b,false,x\n3,1.25,a,true,\n'


def test_a_csv_scan_counts_hashes_and_types_columns() -> None:
    # GIVEN a CSV with a quoted newline, an empty cell and mixed types
    # WHEN scanned
    scan = scan_csv(io.BytesIO(CSV))
    # THEN rows are records (not lines), the hash is of the exact bytes, types are inferred
    assert scan.rows == 3
    assert scan.size == len(CSV)
    assert scan.sha256 == hashlib.sha256(CSV).hexdigest()
    assert scan.columns == ["id", "score", "label", "flag", "note"]
    assert scan.column_types == {"id": "int", "score": "float", "label": "string", "flag": "bool", "note": "string"}
    assert len(scan.schema_fingerprint) == 64


def test_types_merge_across_chunks_and_whole_floats_with_gaps_are_ints() -> None:
    # GIVEN a column that is whole numbers early and fractional later, and one with gaps
    body = b"a,b\n" + b"".join(f"{i},{'' if i % 3 else i}\n".encode() for i in range(10)) + b"0.5,1\n"
    # WHEN scanned two rows at a time
    scan = scan_csv(io.BytesIO(body), chunk_rows=2)
    # THEN a is float (int + float), b is int (whole numbers with gaps), all rows counted
    assert scan.column_types == {"a": "float", "b": "int"}
    assert scan.rows == 11


def test_the_same_columns_give_the_same_fingerprint_whatever_the_rows_or_their_order() -> None:
    # GIVEN two files with the same header and different rows, one with another column order,
    # and one with another column
    one = scan_csv(io.BytesIO(b"a,b\n1,2\n"))
    two = scan_csv(io.BytesIO(b"a,b\n3,4\n5,6\n"))
    reordered = scan_csv(io.BytesIO(b"b,a\n2,1\n"))
    other = scan_csv(io.BytesIO(b"a,c\n1,2\n"))
    # THEN the fingerprint follows the set of column names (columns are matched by name), not the data
    assert one.schema_fingerprint == two.schema_fingerprint == reordered.schema_fingerprint
    assert one.schema_fingerprint != other.schema_fingerprint
    assert reordered.columns == ["b", "a"]  # the file's own order is still recorded


def test_a_repeated_column_name_is_recorded_as_written_with_validations_fingerprint() -> None:
    # GIVEN a file whose header names a column twice (pandas would read it as "a", "a.1")
    body = b"a,a,b\n1,x,2\n3,4,5\n"
    # WHEN it is scanned as a dataset version
    scan = scan_csv(io.BytesIO(body))
    # THEN the record keeps the header as written, the repeated name's type covers both of its
    # columns, and the schema fingerprint is the one a validation report of the file carries
    assert scan.columns == ["a", "a", "b"]
    assert scan.column_types == {"a": "string", "b": "int"}
    assert scan.schema_fingerprint == schema_fingerprint(["a", "a", "b"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"a,b\n1,2\n3,4,5,6\n", "not a well-formed CSV"),
        (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_unreadable_data_is_an_input_error_naming_the_source(body: bytes, message: str) -> None:
    # GIVEN bad bytes, WHEN scanned, THEN the error names the source and the problem
    with pytest.raises(InputError, match=message) as caught:
        scan_csv(io.BytesIO(body), source_name="datasets/churn/x.csv")
    assert str(caught.value).startswith("datasets/churn/x.csv: ")


class _NoReadAll(io.RawIOBase):
    """A stream that refuses to hand over everything at once."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("read everything at once")
        self.largest = max(self.largest, size)
        return self._data.read(size)


def test_a_stream_is_read_in_bounded_chunks() -> None:
    # GIVEN a 3 MB stream that fails if read whole
    stream = _NoReadAll(b"x,y\n" + b"1,2\n" * 750_000)
    # WHEN scanned, THEN it is read in chunks of at most 1 MiB and every row is counted
    assert scan_csv(stream).rows == 750_000
    assert 0 < stream.largest <= 1 << 20


def _generated_chunks(rows: int) -> Iterator[bytes]:
    yield b"id,value,label\n"
    block = 10_000
    for start in range(0, rows, block):
        yield b"".join(b"%d,%d.5,label-%d\n" % (i, i % 997, i % 13) for i in range(start, min(rows, start + block)))


def test_memory_stays_bounded_on_a_large_stream() -> None:
    # GIVEN ~32 MB of CSV produced chunk by chunk (never held whole)
    rows = 1_500_000
    # WHEN scanned while tracing Python allocations
    tracemalloc.start()
    try:
        scan = scan_csv(_generated_chunks(rows))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN all rows were counted and the peak is a small fraction of the data's size
    assert scan.rows == rows
    assert scan.size > 30_000_000
    assert peak < scan.size / 2, f"peak {peak / 1e6:.1f} MB for {scan.size / 1e6:.1f} MB of data"


def test_a_local_file_is_described_and_missing_files_are_input_errors(tmp_path: Path) -> None:
    # GIVEN a CSV file
    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    # WHEN described, THEN it has no S3 version id but every other field
    described = describe_file(path, uploaded_by="alice", model="churn")
    assert (described.version_id, described.rows, described.uploaded_by) == (None, 3, "alice")
    with pytest.raises(InputError, match="no such file"):
        describe_file(tmp_path / "missing.csv")


def _dataset(sha: str = "b" * 64, version_id: str = "v1") -> DatasetVersion:
    return DatasetVersion(
        bucket="data",
        key="datasets/churn/a.csv",
        version_id=version_id,
        sha256=sha,
        size=10,
        rows=2,
        columns=["a"],
        column_types={"a": "int"},
        schema_fingerprint="c" * 64,
        uploaded_by="carol",
        uploaded_at="2026-11-01T00:00:00+00:00",
    )


def test_dataset_versions_are_recorded_once_and_audited(registry: Registry) -> None:
    # GIVEN a dataset version
    catalog = DatasetCatalog(registry)
    # WHEN recorded twice with the same content
    first = catalog.record("churn", _dataset(), actor="pipeline")
    again = catalog.record("churn", _dataset(), actor="pipeline")
    # THEN it is stored once, creates the model, and writes one audit event
    assert first == again and first.model == "churn"
    assert catalog.get("churn", "v1").sha256 == "b" * 64
    assert [d.version_id for d in catalog.list("churn").items] == ["v1"]
    assert registry.get_model("churn").name == "churn"
    assert [i["action"] for i in audit_items(registry, "churn")] == ["dataset.record"]
    # AND the same version id with other content is a conflict, never an overwrite
    with pytest.raises(ConflictError, match="never overwritten"):
        catalog.record("churn", _dataset(sha="d" * 64), actor="pipeline")
    with pytest.raises(InputError, match="no version id"):
        catalog.record("churn", _dataset(version_id=""), actor="pipeline")
    with pytest.raises(NotFoundError):
        catalog.get("churn", "v2")


def test_example_data_is_deterministic_meets_its_spec_and_is_learnable() -> None:
    # GIVEN the example generators
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from generate import generate
    finally:
        sys.path.pop(0)
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from mlops.data.validation import validate_frame

    for model, seed in (("churn", 7), ("house-prices", 11)):
        # WHEN the same data is generated twice
        frame = generate(model, 1500, seed)
        assert frame.equals(generate(model, 1500, seed))
        # THEN it passes validation against its spec
        report = validate_frame(frame, load_spec(ROOT / "examples" / "specs" / f"{model}.yaml"))
        assert report.valid, [c.message for c in report.failures]
    # AND a plain model learns it
    churn = generate("churn", 2000, 7)
    features = churn[["tenure_months", "monthly_charges", "support_calls"]].assign(
        monthly=(churn["contract"] == "month-to-month").astype(float)
    )
    a, b, ya, yb = train_test_split(features, churn["churned"], test_size=0.25, random_state=0)
    assert roc_auc_score(yb, LogisticRegression(max_iter=500).fit(a, ya).predict_proba(b)[:, 1]) > 0.8
    houses = generate("house-prices", 2000, 11)
    x = houses[["living_area_sqm", "condition", "year_built", "bathrooms"]].assign(
        **{h: (houses["neighborhood"] == h).astype(float) for h in houses["neighborhood"].unique()}
    )
    a, b, ya, yb = train_test_split(x, houses["price"], test_size=0.2, random_state=0)
    assert r2_score(yb, RandomForestRegressor(n_estimators=50, random_state=0).fit(a, ya).predict(b)) > 0.75
