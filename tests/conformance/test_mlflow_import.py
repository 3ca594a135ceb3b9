"""MLflow model directories saved by mlflow itself (``mlflow.sklearn.save_model``,
``mlflow.onnx.save_model``) of a notebook pipeline on the real penguins, read by the import's
preparation as ``mlops models import M --artifact DIR`` reads them: flavor, run id, columns."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from mlops.registry.origin import ONNX_FORMAT, SKLEARN_FORMAT
from mlops.training.imported import export_imported_onnx
from mlops_cli.import_prep import prepare_import
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import (
    COLUMNS,
    notebook_pipeline,
    penguins_frame,
    write_mlflow_onnx_dir,
    write_mlflow_sklearn_dir,
)


def test_an_mlflow_sklearn_directory_is_prepared_with_its_run_id_and_columns(tmp_path: Path) -> None:
    # GIVEN a notebook pipeline saved by mlflow.sklearn.save_model, its run id recorded in MLmodel
    folder = write_mlflow_sklearn_dir(notebook_pipeline(penguins_frame()), tmp_path / "model", run_id="run-42")
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "pickle"
    # WHEN the import prepares it
    prepared = prepare_import(folder, PENGUINS.spec)
    # THEN it is stored in the restricted format, its source and run id kept, the pickle's sha256 as source
    assert (prepared.format, prepared.source, prepared.run_id) == (SKLEARN_FORMAT, "mlflow-sklearn", "run-42")
    raw = (folder / flavor["pickled_model"]).read_bytes()
    assert prepared.source_sha256 == hashlib.sha256(raw).hexdigest()
    assert sorted(prepared.columns) == sorted(COLUMNS)


def test_an_mlflow_onnx_directory_is_imported_as_the_very_onnx_file(tmp_path: Path) -> None:
    data = export_imported_onnx(notebook_pipeline(penguins_frame()), PENGUINS.spec)
    folder = write_mlflow_onnx_dir(data, tmp_path / "model", run_id="run-43")
    prepared = prepare_import(folder, PENGUINS.spec)
    assert (prepared.format, prepared.source, prepared.run_id) == (ONNX_FORMAT, "mlflow-onnx", "run-43")
    stored = (folder / yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["onnx"]["data"]).read_bytes()
    assert hashlib.sha256(prepared.data).hexdigest() == hashlib.sha256(stored).hexdigest()


def test_mlflow_is_a_test_dependency_only() -> None:
    # mlflow writes the tests' directories; the CLI reads MLmodel with PyYAML, and no Lambda layer ships it
    root = Path(__file__).resolve().parents[2]
    assert "mlflow-skinny==" in (root / "requirements-dev.txt").read_text()
    shipped = [root / "requirements.txt", *sorted((root / "layers" / "deps").glob("*/requirements.txt"))]
    assert shipped[1:] and not [p for p in shipped if "mlflow" in p.read_text().lower()]
