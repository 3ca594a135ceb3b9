"""The holdout split on real data (scikit-learn's bundled diabetes set): hash, time and a fixed file.

What must hold between dataset versions: a row's side depends on its content and the seed only,
so appending rows, reordering rows or reordering columns never moves an existing row, and a
champion's training rows can be recognized (and left out) in any later holdout.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.errors import CheckFailedError, InputError
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.fingerprints import fingerprint_bytes, load_fingerprints, row_fingerprints
from mlops.training.fit import train
from mlops.training.frames import coerce_frame, load_training_frame
from mlops.training.split import HoldoutFile, prepare_split, split_frame

NUMBERS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
START = pd.Timestamp("2020-01-01")


def _diabetes() -> pd.DataFrame:
    """The 442 rows as scikit-learn ships them, plus columns of every other type derived from each row.

    ``patient`` (string) identifies a row, ``sex_label`` (category), ``smoker`` (bool) and
    ``visit`` (datetime) exercise every hash encoding; each is a value of its row, so it travels
    with the row when rows are shuffled.
    """
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.insert(0, "patient", [f"P{i:04d}" for i in range(len(frame))])
    frame["sex_label"] = np.where(frame["sex"] > 0, "male", "female")
    frame["smoker"] = frame["s4"] > frame["s4"].median()
    frame["visit"] = [(START + pd.Timedelta(days=int(i))).isoformat() for i in range(len(frame))]
    return frame


DIABETES = _diabetes()


def diabetes_spec(split: dict[str, Any] | None = None, **training: Any) -> ModelSpec:
    features = [
        {"name": "patient", "type": "string"},
        *({"name": name, "type": "float"} for name in NUMBERS),
        {"name": "sex_label", "type": "category"},
        {"name": "smoker", "type": "bool"},
        {"name": "visit", "type": "datetime"},
    ]
    return parse_spec(
        {
            "name": "diabetes",
            "task": "regression",
            "target": {"name": "target"},
            "features": features,
            "training": {
                "estimator": "sklearn.linear_model.Ridge",
                "test_size": 0.2,
                "seed": 42,
                **training,
                **({"split": split} if split else {}),
            },
        }
    )


SPEC = diabetes_spec()


def sides(frame: pd.DataFrame, spec: ModelSpec = SPEC) -> dict[str, bool]:
    """Patient to held out (True) or trained on (False), through the split training makes."""
    train_df, holdout_df, _, _ = prepare_split(frame, spec)
    return {**dict.fromkeys(train_df["patient"], False), **dict.fromkeys(holdout_df["patient"], True)}


# ------------------------------------------------------------------------------------------- hash
def test_hash_split_holds_out_about_test_size_and_is_reproducible() -> None:
    # GIVEN the diabetes rows
    # WHEN split twice
    first, second = sides(DIABETES), sides(DIABETES)
    # THEN every row is on one side, the same side both times
    assert first == second and len(first) == len(DIABETES)
    # AND about 20% are held out (binomial sd for 442 rows is 8.4; allow 4 sd)
    held = sum(first.values())
    assert abs(held - 0.2 * 442) <= 34, held
    # AND another seed deals other rows
    assert sides(DIABETES, diabetes_spec(seed=43)) != first


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kept=st.integers(min_value=40, max_value=441),
    row_order=st.randoms(use_true_random=False),
    column_order=st.randoms(use_true_random=False),
)
def test_appending_and_reordering_never_moves_a_row(kept: int, row_order: Any, column_order: Any) -> None:
    # GIVEN dataset v1 (the first rows) and v2 = v1 plus the remaining rows, rows shuffled and columns permuted
    v1 = DIABETES.iloc[:kept]
    rows = list(range(len(DIABETES)))
    row_order.shuffle(rows)
    columns = list(DIABETES.columns)
    column_order.shuffle(columns)
    v2 = DIABETES.iloc[rows][columns]
    # WHEN both are split
    before, after = sides(v1), sides(v2)
    # THEN every v1 row is on the same side in v2: none of v1's training rows is in v2's holdout
    assert all(after[patient] == held for patient, held in before.items())


def test_identical_rows_share_a_side_and_a_key_groups_rows() -> None:
    # GIVEN every row twice (a dataset with exact duplicates)
    doubled = pd.concat([DIABETES, DIABETES], ignore_index=True)
    train_df, holdout_df, _, _ = prepare_split(doubled, SPEC)
    # THEN no row is on both sides (a duplicate cannot leak its twin into the holdout)
    assert set(train_df["patient"]).isdisjoint(holdout_df["patient"])
    # AND with split.key [sex_label] every row of a group is on one side
    grouped = diabetes_spec(split={"key": ["sex_label"]}, test_size=0.5)
    train_df, holdout_df, info = split_frame(load_csv(DIABETES, grouped), grouped)
    assert set(train_df["sex_label"]).isdisjoint(holdout_df["sex_label"])
    assert info.key == ["sex_label"]


def test_hash_is_the_typed_value_not_its_spelling() -> None:
    # GIVEN the same rows written two ways: as shipped, and with numbers padded, booleans and dates
    # spelled otherwise
    plain = DIABETES.head(60)
    spelled = plain.copy()
    spelled["smoker"] = np.where(plain["smoker"], "yes", "no")
    spelled["visit"] = [f"{v}+00:00" for v in plain["visit"]]
    spelled["target"] = [f"{v:.3f}" for v in plain["target"]]  # 151.0 -> "151.000"
    # WHEN both are read and fingerprinted
    a = row_fingerprints(load_csv(plain, SPEC), SPEC)
    b = row_fingerprints(load_csv(spelled, SPEC), SPEC)
    # THEN the fingerprints are equal row for row
    assert (a == b).all()
    # AND reading from text gives what the values in memory give (the parser's last digits aside)
    assert (row_fingerprints(coerce_frame(plain, SPEC), SPEC) == a).all()
    # AND the columns' order plays no part (they are taken by name)
    typed = load_csv(plain, SPEC)
    assert (row_fingerprints(typed[list(reversed(typed.columns))], SPEC) == a).all()
    # AND changing one value changes that row's fingerprint only
    changed = plain.copy()
    changed.loc[changed.index[3], "bmi"] += 0.001
    c = row_fingerprints(load_csv(changed, SPEC), SPEC)
    assert (a != c).tolist() == [i == 3 for i in range(60)]


def test_row_fingerprints_are_pinned() -> None:
    # GIVEN two fixed rows, one with every value missing
    frame = coerce_frame(DIABETES.head(2), SPEC)
    frame.iloc[1, :] = np.nan
    frame["visit"] = frame["visit"].astype("datetime64[ns]")
    # WHEN fingerprinted
    values = [int(v) for v in row_fingerprints(frame, SPEC)]
    # THEN they are exactly what registered versions stored: a change here would make every stored
    # fingerprint unrecognizable (bump ROW_HASH_ENCODING instead)
    assert values == PINNED


PINNED = [15868492394100815634, 13376173225825326475]


def test_a_split_that_leaves_a_side_empty_is_refused_with_the_reason() -> None:
    # GIVEN three rows and a tiny holdout share
    spec = diabetes_spec(test_size=0.001)
    # WHEN split THEN the message says what happened and what to do
    with pytest.raises(InputError, match=r"none of the 3 rows in the holdout.*larger training.test_size"):
        prepare_split(DIABETES.head(3), spec)
    with pytest.raises(InputError, match="1 row"):
        prepare_split(DIABETES.head(1), SPEC)


def test_fingerprint_artifact_round_trips_and_refuses_other_bytes() -> None:
    values = row_fingerprints(load_csv(DIABETES, SPEC), SPEC)
    stored = load_fingerprints(fingerprint_bytes(np.concatenate([values, values[:5]])))
    assert stored.dtype == np.uint64 and list(stored) == sorted(set(values.tolist()))
    with pytest.raises(CheckFailedError, match="not a readable"):
        load_fingerprints(b"not numpy", "s3://b/k")
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3, dtype=np.int64))
    with pytest.raises(CheckFailedError, match="uint64"):
        load_fingerprints(buffer.getvalue())


# ------------------------------------------------------------------------------------------- time
TIME = diabetes_spec(split={"method": "time", "time_column": "visit"})


def test_time_split_holds_out_the_newest_rows_with_ties_and_trains_untimed_rows() -> None:
    # GIVEN rows one day apart, the newest 5 sharing a day, and one row without a date
    frame = DIABETES.head(100).copy()
    frame.loc[95:, "visit"] = frame.loc[95, "visit"]
    frame.loc[0, "visit"] = None
    # WHEN split by time (test_size 0.2 of 99 dated rows -> the 20 newest)
    train_df, holdout_df, info = split_frame(load_csv(frame, TIME), TIME)
    # THEN the holdout is every row from the cutoff on, ties included, and nothing older
    cutoff = pd.Timestamp(info.cutoff)
    assert cutoff == START + pd.Timedelta(days=80)
    assert (holdout_df["visit"] >= cutoff).all() and (train_df["visit"].dropna() < cutoff).all()
    assert len(holdout_df) == 20 and info.time_column == "visit"
    # AND the undated row trains, and the split says so
    assert train_df["visit"].isna().sum() == 1 and any("without a visit" in n for n in info.notes)
    # AND when every row has one time there is nothing older to train on
    same = frame.assign(visit=frame.loc[1, "visit"])
    with pytest.raises(InputError, match="every row is at or after the time split's cutoff"):
        split_frame(load_csv(same, TIME), TIME)


@settings(max_examples=30, deadline=None)
@given(
    days=st.lists(st.integers(min_value=0, max_value=60), min_size=20, max_size=120),
    newer=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=120),
)
def test_appending_newer_rows_never_moves_a_training_row_into_the_time_holdout(
    days: list[int], newer: list[int]
) -> None:
    # GIVEN v1 with arbitrary dates (ties included) and v2 = v1 plus rows no older than v1's newest
    v1 = DIABETES.head(len(days)).assign(visit=[(START + pd.Timedelta(days=d)).isoformat() for d in days])
    last = max(days)
    appended = DIABETES.iloc[len(days) : len(days) + len(newer)].assign(
        visit=[(START + pd.Timedelta(days=last + d)).isoformat() for d in newer]
    )
    v2 = pd.concat([v1, appended])
    # WHEN both are split by time
    try:
        before, after = sides(v1, TIME), sides(v2, TIME)
    except InputError:
        return  # the ties at the cutoff took every row: refused, not mis-split (tested above)
    # THEN no v1 training row is held out in v2
    assert not any(after[p] for p, held in before.items() if not held)


# ------------------------------------------------------------------------------- holdout dataset
def test_fixed_holdout_file_is_the_holdout_and_every_other_row_trains(tmp_path: Path) -> None:
    # GIVEN a holdout file of 100 rows, and a dataset of the other rows plus 3 rows copied from the holdout
    holdout_path = tmp_path / "holdout.csv"
    DIABETES.iloc[:100][[*SPEC.feature_names, "target"]].to_csv(holdout_path, index=False)
    dataset = pd.concat([DIABETES.iloc[100:], DIABETES.iloc[:3]])
    spec = diabetes_spec(split={"method": "holdout_dataset", "holdout": str(holdout_path)})
    # WHEN trained offline (the spec's holdout is a local path)
    result = train(dataset, spec)
    # THEN the holdout is the file, and every dataset row trains except the 3 copies of holdout rows
    assert result.holdout_rows == 100 and sorted(result.holdout["patient"]) == sorted(DIABETES["patient"][:100])
    assert result.train_rows == len(DIABETES) - 100
    info = result.summary()["split"]
    assert info["method"] == "holdout_dataset" and info["holdout_file"]["rows"] == 100
    assert info["holdout_file"]["uri"] == str(holdout_path)
    assert info["holdout_file"]["sha256"] == __import__("hashlib").sha256(holdout_path.read_bytes()).hexdigest()
    assert any("3 dataset row(s) identical to a holdout row" in note for note in info["notes"])
    # AND the same file given as a HoldoutFile (as the pipeline does) splits the same way
    given_file = HoldoutFile.from_bytes(holdout_path.read_bytes(), spec, "s3://data/holdouts/d.csv", version_id="v9")
    train_df, holdout_df, _, split = prepare_split(dataset, spec, given_file)
    assert len(train_df) == result.train_rows and len(holdout_df) == 100
    assert split.holdout_file is not None and split.holdout_file["version_id"] == "v9"


def test_a_missing_holdout_file_is_named(tmp_path: Path) -> None:
    spec = diabetes_spec(split={"method": "holdout_dataset", "holdout": str(tmp_path / "nope.csv")})
    with pytest.raises(InputError, match=r"training.split.holdout: .*nope.csv cannot be read"):
        train(DIABETES, spec)


# ------------------------------------------------------------------------------------------ leakage
def test_a_champion_s_training_rows_are_recognized_in_a_later_holdout() -> None:
    # GIVEN a champion trained on v1 (300 rows), with its training rows' fingerprints
    v1 = DIABETES.iloc[:300]
    champion_train, _, _, _ = prepare_split(v1, SPEC)
    trained = load_fingerprints(fingerprint_bytes(row_fingerprints(champion_train, SPEC)))
    v2 = DIABETES  # v1 plus 142 new rows
    # WHEN v2 is split with the same spec
    _, holdout, _, _ = prepare_split(v2, SPEC)
    # THEN none of its holdout rows is a champion training row (by content and by patient)
    assert not np.isin(row_fingerprints(holdout, SPEC), trained).any()
    assert set(holdout["patient"]).isdisjoint(champion_train["patient"])
    # AND after a seed change some are, and the fingerprints find exactly those
    _, reseeded, _, _ = prepare_split(v2, diabetes_spec(seed=7))
    seen = np.isin(row_fingerprints(reseeded, SPEC), trained)
    assert seen.any()
    assert set(reseeded.loc[seen, "patient"]) == set(reseeded["patient"]) & set(champion_train["patient"])


def load_csv(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The frame as the pipeline reads it: written to CSV (columns in spec order), read back for training."""
    columns = [*spec.feature_names, spec.target.name]
    return load_training_frame(io.BytesIO(frame[columns].to_csv(index=False).encode()), spec, "frame.csv")
