"""Reading, typing, splitting and fitting: what the model sees and that every allowed estimator trains."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.errors import InputError, SpecError
from mlops.spec.model import ESTIMATORS, SAGEMAKER_ONLY_ESTIMATORS, ModelSpec
from mlops.training.fit import TrainResult, build_pipeline, estimator_class, train
from mlops.training.frames import coerce_frame, load_training_frame, model_input
from mlops.training.split import split, split_for_training, split_frame
from tests.unit.training.helpers import example_frame, example_spec, spec_with

SMALL_PARAMS = {
    "RandomForestClassifier": {"n_estimators": 5},
    "RandomForestRegressor": {"n_estimators": 5},
    "GradientBoostingClassifier": {"n_estimators": 10},
    "GradientBoostingRegressor": {"n_estimators": 10},
    "HistGradientBoostingClassifier": {"max_iter": 10},
    "HistGradientBoostingRegressor": {"max_iter": 10},
    "LogisticRegression": {"max_iter": 500},
}


def test_csv_and_gzip_csv_load_to_the_same_typed_frame(churn_spec: ModelSpec) -> None:
    # GIVEN example data written as CSV and as gzip CSV
    frame = example_frame("churn", rows=300)
    text = frame.to_csv(index=False).encode()
    # WHEN both are loaded for training
    plain = load_training_frame(io.BytesIO(text), churn_spec, "churn.csv")
    zipped = load_training_frame(io.BytesIO(gzip.compress(text)), churn_spec, "churn.csv.gz")
    # THEN they are equal and typed per the spec
    pd.testing.assert_frame_equal(plain, zipped)
    assert len(plain) == 300
    assert plain["tenure_months"].dtype == np.float64
    assert plain["senior"].dtype == np.float64 and set(plain["senior"].unique()) <= {0.0, 1.0}
    assert plain["contract"].dtype == object and set(plain["contract"]) == {"month-to-month", "one-year", "two-year"}
    assert plain["signup_date"].dtype == "datetime64[ns]"
    assert plain["total_charges"].isna().sum() == int((frame["tenure_months"] == 0).sum())
    assert set(plain["churned"]) == {0, 1}
    # AND typing the in-memory frame gives the same values
    pd.testing.assert_frame_equal(plain, coerce_frame(frame, churn_spec), check_dtype=False)


def test_load_names_the_missing_column_and_unreadable_input(churn_spec: ModelSpec, tmp_path: Path) -> None:
    # GIVEN a CSV without the target column, and a file that does not exist
    frame = example_frame("churn", rows=50).drop(columns=["churned"])
    path = tmp_path / "no-target.csv"
    frame.to_csv(path, index=False)
    # WHEN / THEN loading names the column and the file
    with pytest.raises(InputError, match=r"no-target\.csv: column\(s\) churned"):
        load_training_frame(path, churn_spec)
    with pytest.raises(InputError, match=r"absent\.csv: cannot be read"):
        load_training_frame(tmp_path / "absent.csv", churn_spec)
    with pytest.raises(InputError, match=r"empty\.csv: cannot be read for training"):
        load_training_frame(io.BytesIO(b""), churn_spec, "empty.csv")


def test_coerce_is_idempotent_and_invalid_values_become_missing(churn_spec: ModelSpec) -> None:
    # GIVEN raw rows with a bad number, a bad boolean, a bad date and a label outside the classes
    raw = example_frame("churn", rows=5).astype(object)
    raw.loc[0, "tenure_months"] = "abc"
    raw.loc[1, "senior"] = "maybe"
    raw.loc[2, "signup_date"] = "not a date"
    raw.loc[3, "churned"] = 7
    # WHEN typed twice
    once = coerce_frame(raw, churn_spec)
    twice = coerce_frame(once, churn_spec)
    # THEN invalid values are missing and the second pass changes nothing
    assert np.isnan(once.loc[0, "tenure_months"])
    assert np.isnan(once.loc[1, "senior"])
    assert pd.isna(once.loc[2, "signup_date"])
    assert pd.isna(once.loc[3, "churned"])
    pd.testing.assert_frame_equal(once, twice)


def test_model_input_drops_strings_and_expands_datetimes(churn_spec: ModelSpec) -> None:
    # GIVEN one raw row as an inference request would carry it (JSON values)
    row = pd.DataFrame(
        [
            {
                "customer_id": "C000001",
                "tenure_months": 3,
                "monthly_charges": 70.5,
                "total_charges": None,
                "contract": "one-year",
                "internet_service": "dsl",
                "payment_method": "card",
                "region": "us-east",
                "support_calls": 0,
                "senior": True,
                "signup_date": "2026-03-15",
            }
        ]
    )
    # WHEN turned into model input
    features = model_input(row, churn_spec)
    # THEN the identifier is gone and the date is days since 1970 and its month
    assert "customer_id" not in features.columns
    assert features.loc[0, "signup_date__days"] == pytest.approx((pd.Timestamp("2026-03-15") - pd.Timestamp(0)).days)
    assert features.loc[0, "signup_date__month"] == 3
    assert features.loc[0, "senior"] == 1.0 and np.isnan(features.loc[0, "total_charges"])
    # AND a request without a used feature is refused by name
    with pytest.raises(InputError, match="contract"):
        model_input(row.drop(columns=["contract"]), churn_spec)


def test_split_is_deterministic_disjoint_and_near_the_test_share(churn_spec: ModelSpec) -> None:
    # GIVEN a typed example frame
    frame = coerce_frame(example_frame("churn", rows=1000), churn_spec)
    # WHEN split twice (hash split, the default)
    train_a, holdout_a = split(frame, churn_spec)
    train_b, holdout_b = split(frame, churn_spec)
    # THEN the same rows go to the same side, nothing overlaps, every row is somewhere
    assert list(holdout_a.index) == list(holdout_b.index) and list(train_a.index) == list(train_b.index)
    assert set(train_a.index).isdisjoint(holdout_a.index) and len(train_a) + len(holdout_a) == 1000
    # AND the holdout share is test_size (0.25) up to binomial noise: 4 standard deviations is ±55 rows
    assert abs(len(holdout_a) - 250) <= 55
    # AND another seed gives another holdout
    other = spec_with(churn_spec, training={"seed": 8})
    assert list(split(frame, other)[1].index) != list(holdout_a.index)


def test_split_notes_a_missing_class_and_refuses_what_it_cannot_split(churn_spec: ModelSpec) -> None:
    # GIVEN a frame where one class has a single row
    frame = coerce_frame(example_frame("churn", rows=40), churn_spec)
    frame["churned"] = [0] * 39 + [1]
    # WHEN split
    train_df, holdout_df, info = split_frame(frame, churn_spec)
    # THEN it still splits, and says which side lacks the class
    assert len(train_df) + len(holdout_df) == 40
    side = "holdout" if (train_df["churned"] == 1).any() else "training"
    assert any(f"class `1` has no {side} row" in note for note in info.notes), info.notes
    # AND a frame too small to split is refused with the count
    with pytest.raises(InputError, match="1 row"):
        split(frame.iloc[:1], churn_spec)


def test_train_records_dropped_features_rows_and_versions(churn_trained: TrainResult) -> None:
    # GIVEN the churn example trained (fixture)
    result = churn_trained
    # THEN the identifier is dropped with a reason and everything else is used
    assert set(result.dropped_features) == {"customer_id"}
    assert "identifier" in result.dropped_features["customer_id"]
    assert "customer_id" not in result.features and "signup_date" in result.features
    assert result.feature_columns[-2:] == ["signup_date__days", "signup_date__month"]
    assert result.train_rows + result.holdout_rows == 2000 and len(result.holdout_index) == result.holdout_rows
    assert abs(result.holdout_rows - 500) <= 80  # test_size 0.25 of 2000 rows, up to binomial noise (4 sd)
    assert result.params["random_state"] == 7 and result.params["max_iter"] == 150
    assert result.classes == [0, 1]
    versions = result.library_versions
    assert versions["code_revision"] == "test-rev"
    assert {"python", "scikit-learn", "numpy", "pandas", "scipy"} <= set(versions)
    summary = result.summary()
    assert summary["holdout_rows"] == result.holdout_rows and summary["dropped_features"] == result.dropped_features
    assert summary["split"]["method"] == "hash" and summary["split"]["holdout_rows"] == result.holdout_rows


def test_rows_without_a_target_and_empty_features_are_left_out(churn_spec: ModelSpec) -> None:
    # GIVEN data where some targets are missing and one feature never has a value
    frame = example_frame("churn", rows=400)
    frame.loc[:9, "churned"] = np.nan
    frame["total_charges"] = np.nan
    spec = spec_with(churn_spec, training={"params": {"max_iter": 10}, "search": None})
    # WHEN trained
    result = train(frame, spec)
    # THEN the rows are counted and the feature is dropped with its reason
    assert result.rows_dropped == {"target missing or not a class": 10}
    assert result.train_rows + result.holdout_rows == 390
    assert result.dropped_features["total_charges"] == "no value in any training row"
    assert "total_charges" not in result.feature_columns


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_allow_listed_estimator_trains_and_predicts(estimator: str) -> None:
    # GIVEN an example spec switched to this estimator, on a small frame
    model = "churn" if ESTIMATORS[estimator] == "classification" else "house-prices"
    params = SMALL_PARAMS.get(estimator.rsplit(".", 1)[1], {})
    backend = "sagemaker" if estimator in SAGEMAKER_ONLY_ESTIMATORS else "lambda"
    training = {"estimator": estimator, "params": params, "search": None, "backend": backend}
    spec = spec_with(example_spec(model), training=training)
    # WHEN trained
    result = train(example_frame(model, rows=200), spec)
    # THEN it predicts one value per holdout row
    predictions = result.pipeline.predict(model_input(result.holdout, spec))
    assert len(predictions) == result.holdout_rows
    if "random_state" in result.pipeline.named_steps["model"].get_params():
        assert result.params["random_state"] == spec.training.seed


def test_linear_models_scale_and_trees_do_not(churn_spec: ModelSpec) -> None:
    # GIVEN the churn spec with a linear and with a tree estimator
    linear = spec_with(
        churn_spec, training={"estimator": "sklearn.linear_model.LogisticRegression", "params": {}, "search": None}
    )
    hist = churn_spec
    # WHEN the pipelines are built
    linear_steps = build_pipeline(linear).named_steps["preprocess"].transformers[0][1]
    hist_numeric = build_pipeline(hist).named_steps["preprocess"].transformers[0][1]
    # THEN only the linear one standardizes, and histogram boosting gets raw numbers (native missing values)
    assert "scale" in linear_steps.named_steps
    assert hist_numeric == "passthrough"


def test_unknown_parameter_and_unlisted_estimator_are_refused(churn_spec: ModelSpec) -> None:
    # GIVEN a parameter the estimator does not take
    spec = spec_with(churn_spec, training={"params": {"n_trees": 5}})
    # WHEN / THEN building names it and the field
    with pytest.raises(SpecError, match=r"^training\.params\.n_trees: not a parameter of"):
        build_pipeline(spec)
    with pytest.raises(SpecError, match=r"^training\.search\.space\.bogus: not a parameter"):
        build_pipeline(churn_spec, {"bogus": 1})
    # AND an invalid value is a spec error at fit time naming its path, not a traceback
    with pytest.raises(SpecError, match=r"^training\.params\.max_depth: The 'max_depth' parameter"):
        train(example_frame("churn", rows=100), spec_with(churn_spec, training={"params": {"max_depth": -3}}))
    # AND an import path outside the allow-list is never imported
    with pytest.raises(SpecError, match="allow-list"):
        estimator_class("os.system")


def test_many_valued_category_is_capped(churn_spec: ModelSpec) -> None:
    # GIVEN a region column with 80 distinct values
    frame = example_frame("churn", rows=600)
    frame["region"] = [f"xx-r{i % 80}" for i in range(600)]
    spec = spec_with(churn_spec, training={"params": {"max_iter": 5}, "search": None})
    # WHEN trained
    result = train(frame, spec)
    # THEN region gets a capped encoder (at most 50 columns) and the other categories a plain one
    transformers = {name: columns for name, _, columns in result.pipeline.named_steps["preprocess"].transformers}
    assert transformers["category_capped"] == ["region"]
    assert "region" not in transformers["category"]
    encoded = result.pipeline.named_steps["preprocess"].named_transformers_["category_capped"]
    assert len(encoded.get_feature_names_out()) <= 50


def test_split_for_training_reproduces_the_holdout_of_train(churn_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN the dataset the churn fixture was trained on
    frame = example_frame("churn")
    # WHEN split again, as a later step does to score the champion
    train_df, holdout_df = split_for_training(frame, churn_spec)
    # THEN the rows and values are the candidate's own
    pd.testing.assert_frame_equal(holdout_df, churn_trained.holdout)
    assert len(train_df) == churn_trained.train_rows
