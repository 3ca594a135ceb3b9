"""Models trained "elsewhere", as a data scientist fits them in a notebook, on the real penguins.

Used by the import tests (unit, moto and local cloud): a plain scikit-learn pipeline on columns of
the data scientist's choosing and order, its ONNX export (skl2onnx, the platform's inputs and
outputs) and an MLflow model directory saved by mlflow itself (mlflow-skinny, a test dependency).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.training.frames import coerce_frame, model_input
from tests.conformance.datasets import PENGUINS

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
COLUMNS = ["island", "flipper_length_mm", "bill_length_mm", "bill_depth_mm"]


def penguins_frame(raw: bytes | None = None) -> pd.DataFrame:
    """The penguins as the pipeline types them (the shipped file unless ``raw`` is given)."""
    return coerce_frame(pd.read_csv(io.BytesIO(raw if raw is not None else PENGUINS.raw())), PENGUINS.spec)


def notebook_pipeline(frame: pd.DataFrame, columns: list[str] = COLUMNS) -> Pipeline:
    """What a data scientist fits in a notebook: their own columns, in their own order."""
    numbers = [c for c in columns if c in NUMBERS]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
            ("cat", OneHotEncoder(handle_unknown="ignore"), [c for c in columns if c == "island"]),
        ]
    )
    pipeline = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])
    x = model_input(frame, PENGUINS.spec)[columns]
    return pipeline.fit(x, frame["species"].astype(str))


def _stamp_run_id(folder: Path, run_id: str) -> Path:
    """Record ``run_id`` in ``MLmodel`` as ``mlflow.<flavor>.log_model`` in an active run would."""
    # here: mlflow loads only for the tests that write an MLflow directory (a heavy test dependency)
    from mlflow.models import Model

    model = Model.load(str(folder))
    model.run_id = run_id
    model.save(str(folder / "MLmodel"))
    return folder


def write_mlflow_sklearn_dir(pipeline: Pipeline, folder: Path, run_id: str = "3f2b9c0d1e") -> Path:
    """An MLflow model directory with the sklearn flavor, saved by ``mlflow.sklearn.save_model`` itself
    (``serialization_format`` ``pickle``: the import reads pickle and cloudpickle), its run id recorded."""
    # here: as above, mlflow loads only when a test writes an MLflow directory
    import mlflow.sklearn

    # pip_requirements given: saving then skips MLflow's requirement inference (a subprocess)
    mlflow.sklearn.save_model(pipeline, str(folder), serialization_format="pickle", pip_requirements=["scikit-learn"])
    return _stamp_run_id(folder, run_id)


def write_mlflow_onnx_dir(data: bytes, folder: Path, run_id: str = "7a6b5c4d3e") -> Path:
    """An MLflow model directory with the onnx flavor, saved by ``mlflow.onnx.save_model`` itself."""
    # here: as above, mlflow and onnx load only when a test writes an MLflow directory
    import mlflow.onnx
    import onnx

    mlflow.onnx.save_model(onnx.load_from_string(data), str(folder), pip_requirements=["onnx"])
    return _stamp_run_id(folder, run_id)
