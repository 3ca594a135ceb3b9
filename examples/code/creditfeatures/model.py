"""``build(spec, params)`` for ISLP's Default data: a debt-to-income feature, then a ColumnTransformer.

The platform calls :func:`build` in the training function with the model's spec and the
candidate's parameters (the spec's ``training.params``, or one search candidate's); it returns an
unfitted scikit-learn pipeline, and the platform splits, fits, evaluates, gates and registers it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


class DebtToIncome(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Adds ``debt_to_income``: the card balance over the yearly income (0 where income is 0)."""

    def fit(self, frame: pd.DataFrame, y: Any = None) -> DebtToIncome:
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        income = frame["income"].astype(float)
        ratio = np.where(income > 0, frame["balance"].astype(float) / income.where(income > 0, 1.0), 0.0)
        return frame.assign(debt_to_income=ratio)


def build(spec: Any, params: dict[str, Any]) -> Pipeline:
    numeric = ["balance", "income", "debt_to_income"]
    prepare = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            ("student", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["student"]),
        ],
        remainder="drop",
    )
    model = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=1000, random_state=spec.training.seed)
    return Pipeline([("derive", DebtToIncome()), ("prepare", prepare), ("model", model)])
