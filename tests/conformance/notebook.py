"""Models trained "elsewhere", as a data scientist fits them in a notebook, on the real penguins.

Used by the import tests (unit, moto and local cloud): a plain scikit-learn pipeline on columns of
the data scientist's choosing and order, its ONNX export (skl2onnx, the platform's inputs and
outputs) and an MLflow model directory written by hand in MLflow's documented layout.
"""

from __future__ import annotations

import io
import pickle
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


def write_mlflow_sklearn_dir(pipeline: Pipeline, folder: Path, run_id: str = "3f2b9c0d1e") -> Path:
    """An MLflow model directory with the sklearn flavor, as ``mlflow.sklearn.save_model`` lays it out.

    Written by hand from MLflow's documented layout (an ``MLmodel`` YAML file naming the flavors,
    ``model.pkl`` pickled with ``serialization_format: pickle``): mlflow itself is not a test
    dependency (43 more packages for one test, see docs/import-a-model.md).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(pipeline, protocol=5))
    (folder / "MLmodel").write_text(
        f"""artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.12.0
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: pickle
    sklearn_version: 1.8.0
mlflow_version: 2.19.0
model_size_bytes: {(folder / "model.pkl").stat().st_size}
model_uuid: 0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f
run_id: {run_id}
utc_time_created: '2026-12-06 10:00:00.000000'
"""
    )
    (folder / "requirements.txt").write_text("mlflow==2.19.0\nscikit-learn==1.8.0\n")
    return folder


def write_mlflow_onnx_dir(data: bytes, folder: Path, run_id: str = "7a6b5c4d3e") -> Path:
    """An MLflow model directory with the onnx flavor (``mlflow.onnx.save_model``'s layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(data)
    (folder / "MLmodel").write_text(
        f"""artifact_path: model
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.20.0
    providers:
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    loader_module: mlflow.onnx
    python_version: 3.12.0
mlflow_version: 2.19.0
run_id: {run_id}
"""
    )
    return folder
