"""Reference profile: exact statistics, streaming equals in-memory, JSON round trip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.data.profile import ProfileBuilder, ReferenceProfile, profile_file, profile_frame, profile_stream
from mlops.errors import InputError
from mlops.spec.model import ModelSpec

DATA = Path(__file__).resolve().parents[2] / "data"


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 100, rows),
            "spend": np.where(rng.random(rows) < 0.2, np.nan, rng.normal(50, 10, rows)),
            "plan": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
            "code": [f"AB{i}" for i in range(rows)],
            "churned": rng.integers(0, 2, rows),
        }
    )


def test_numeric_statistics_are_exact(small_spec: ModelSpec) -> None:
    # GIVEN training data
    data = frame(5000)
    # WHEN profiled
    profile = profile_frame(data, small_spec)
    # THEN moments, extremes, quantiles and null rate match numpy exactly
    spend = profile.columns["spend"]
    values = data["spend"].dropna().to_numpy()
    assert spend.numeric is not None
    assert spend.null_count == int(data["spend"].isna().sum())
    assert spend.null_rate == pytest.approx(spend.null_count / 5000)
    assert spend.numeric.mean == pytest.approx(values.mean(), rel=1e-12)
    assert spend.numeric.std == pytest.approx(values.std(ddof=1), rel=1e-9)
    assert spend.numeric.min == values.min() and spend.numeric.max == values.max()
    assert len(spend.numeric.quantiles) == 1001
    assert spend.numeric.quantiles[500] == pytest.approx(np.median(values))
    assert spend.numeric.exact_quantiles
    assert sum(spend.numeric.histogram.counts) == len(values)
    assert spend.numeric.sample == sorted(spend.numeric.sample)
    assert len(spend.numeric.sample) == 4000 or len(spend.numeric.sample) == len(values)


def test_categories_and_target(small_spec: ModelSpec) -> None:
    # GIVEN training data
    data = frame(3000)
    # WHEN profiled
    profile = profile_frame(data, small_spec)
    # THEN category frequencies and class counts are exact
    plan = profile.columns["plan"].categorical
    assert plan is not None and plan.frequencies == data["plan"].value_counts().to_dict()
    assert not plan.truncated
    target = profile.columns["churned"]
    assert target.role == "target" and target.categorical is not None
    assert set(target.categorical.frequencies) == {"0", "1"}
    # AND an identifier-like column keeps only the top categories and says so
    assert profile.columns["code"].categorical is not None
    assert profile.columns["code"].categorical.truncated
    assert len(profile.columns["code"].categorical.frequencies) == 1000


def test_streamed_profile_matches_in_memory(small_spec: ModelSpec) -> None:
    # GIVEN the same data in memory and as a CSV read in many small blocks
    data = frame(2000)
    csv = data.to_csv(index=False).encode()
    # WHEN both are profiled
    in_memory = profile_frame(data, small_spec)
    builder_profile = profile_stream(io.BytesIO(csv), small_spec, "train.csv")
    # THEN the statistics agree
    a, b = in_memory.columns["spend"].numeric, builder_profile.columns["spend"].numeric
    assert a is not None and b is not None
    assert b.count == a.count and b.mean == pytest.approx(a.mean) and b.std == pytest.approx(a.std)
    assert b.quantiles == pytest.approx(a.quantiles)
    assert builder_profile.columns["plan"].categorical == in_memory.columns["plan"].categorical


def test_reservoir_bounds_memory_and_keeps_quantiles_close(small_spec: ModelSpec) -> None:
    # GIVEN more values than the reservoir holds, fed in chunks
    builder = ProfileBuilder(small_spec, reservoir_size=2000, sample_size=100)
    data = frame(20_000, seed=5)
    for start in range(0, 20_000, 3000):
        builder.update(data.iloc[start : start + 3000])
    # WHEN finished
    spend = builder.finish("chunks").columns["spend"].numeric
    # THEN moments are still exact, quantiles approximate and flagged as such
    values = data["spend"].dropna().to_numpy()
    assert spend is not None
    assert spend.count == len(values) and spend.mean == pytest.approx(values.mean())
    assert not spend.exact_quantiles and spend.sampled_from == 2000
    assert spend.quantiles[500] == pytest.approx(np.median(values), abs=1.5)
    assert len(spend.sample) == 100


def test_save_load_round_trip(tmp_path: Path, small_spec: ModelSpec) -> None:
    # GIVEN a profile saved to disk
    profile = profile_frame(frame(500), small_spec, source="s3://b/train.csv")
    path = tmp_path / "reference.json"
    profile.save(path)
    # WHEN loaded
    loaded = ReferenceProfile.load(path)
    # THEN it is identical, and tied to the spec that made it
    assert loaded == profile
    assert loaded.spec_fingerprint == small_spec.fingerprint()
    assert loaded.row_count == 500


def test_bad_profile_files_raise_input_error(tmp_path: Path) -> None:
    # GIVEN files that are not profiles
    not_json = tmp_path / "a.json"
    not_json.write_text("name: x")
    wrong = tmp_path / "b.json"
    wrong.write_text('{"model": 1}')
    # WHEN / THEN loading names the file and the problem
    with pytest.raises(InputError, match=r"a\.json: not a reference profile: Invalid JSON"):
        ReferenceProfile.load(not_json)
    with pytest.raises(InputError, match="row_count: required field is missing"):
        ReferenceProfile.load(wrong)
    with pytest.raises(InputError, match="cannot be read"):
        ReferenceProfile.load(tmp_path / "missing.json")


def test_profile_file_and_unreadable_input(corpus_spec: ModelSpec) -> None:
    # GIVEN the corpus good file and an empty file
    # WHEN profiled
    profile = profile_file(DATA / "good.csv", corpus_spec)
    # THEN every column is there (datetime as a range)
    assert set(profile.columns) == {*corpus_spec.feature_names, "label"}
    assert profile.columns["signup"].datetime is not None
    assert profile.columns["active"].categorical is not None
    assert set(profile.columns["active"].categorical.frequencies) == {"true", "false"}
    with pytest.raises(InputError, match="the file is empty"):
        profile_file(DATA / "bad" / "empty.csv", corpus_spec)
