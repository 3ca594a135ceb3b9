"""What ``mlops models import`` uploads: a model trained elsewhere, checked and converted on your machine.

The trust boundary is here, on purpose. An MLflow model directory with the sklearn flavor holds a
pickle, and loading a pickle runs whatever code it names: it is loaded here, on the user's own
machine, from the user's own artifact, and re-serialized into the platform's restricted artifact
format (:mod:`mlops.training.artifacts`), which the platform then loads only through its
allow-listed unpickler after checking the sha256. The platform itself never unpickles
user-supplied bytes any other way. ONNX files (alone or as MLflow's onnx flavor) run no code on
load; skl2onnx's default output names are renamed to the platform's.

Every input is checked against the model's spec before anything is uploaded: the columns, their
types and the task (:mod:`mlops.training.imported`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import CheckFailedError, InputError
from mlops.registry.origin import ONNX_FORMAT, SKLEARN_FORMAT
from mlops.spec.model import ModelSpec
from mlops.training.artifacts import dump_artifact, load_artifact, sha256_hex
from mlops.training.imported import check_onnx_import, check_sklearn_import, rename_outputs

SKL2ONNX_OUTPUTS = {"output_label": "label", "output_probability": "probabilities"}


@dataclass(frozen=True)
class PreparedImport:
    """The bytes to upload, their format and where they came from."""

    data: bytes
    format: str
    source: str
    source_sha256: str
    run_id: str | None
    columns: list[str]

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    def request(self, dataset_version: str) -> dict[str, Any]:
        """The import API's body (the importer is never in it: AWS verifies who signs the request)."""
        return {
            "format": self.format,
            "sha256": self.sha256,
            "size": len(self.data),
            "dataset_version": dataset_version,
            "source": self.source,
            **({"source_sha256": self.source_sha256} if self.source_sha256 != self.sha256 else {}),
            **({"run_id": self.run_id} if self.run_id else {}),
        }


def prepare_import(path: Path, spec: ModelSpec) -> PreparedImport:
    """Read ``path`` (an ONNX file, a restricted-format pickle or an MLflow model directory) for ``spec``.

    Raises
    ------
    InputError
        No such file, an MLflow directory without an sklearn or onnx flavor, or a model that does
        not fit the spec (the message names the file and the column, output or class).
    CheckFailedError
        A pickle file that names something outside the restricted format's allow-list.
    """
    if path.is_dir():
        return _mlflow(path, spec)
    if not path.is_file():
        raise InputError(f"{path}: no such file or directory")
    data = path.read_bytes()
    if path.suffix.lower() == ".onnx":
        return _onnx(data, spec, str(path), "onnx-file", None)
    # A plain file that is not ONNX is read only as the restricted format: never a plain unpickle.
    model = load_artifact(data, sha256_hex(data))
    columns = check_sklearn_import(model, spec, source=str(path))
    return PreparedImport(data, SKLEARN_FORMAT, "sklearn-file", sha256_hex(data), None, columns)


def _onnx(data: bytes, spec: ModelSpec, name: str, source: str, run_id: str | None) -> PreparedImport:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # DecodeError and friends: not an ONNX file
        raise InputError(f"{name}: not an ONNX model ({type(exc).__name__})") from None
    outputs = {o.name for o in model.graph.output}
    rename = {k: v for k, v in SKL2ONNX_OUTPUTS.items() if k in outputs and v not in outputs}
    if spec.task == "regression" and "variable" not in outputs and len(outputs) == 1:
        rename = {next(iter(outputs)): "variable"}
    stored = data
    if rename:
        rename_outputs(model, rename)
        stored = bytes(model.SerializeToString())
    shape = check_onnx_import(stored, spec, source=name)
    return PreparedImport(stored, ONNX_FORMAT, source, sha256_hex(data), run_id, list(shape["columns"]))


def _mlflow(folder: Path, spec: ModelSpec) -> PreparedImport:
    """An MLflow model directory (``MLmodel`` + the flavor's files), sklearn or onnx flavor."""
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise InputError(f"{folder}: a directory is read as an MLflow model, but it has no MLmodel file")
    try:
        document = yaml.safe_load(mlmodel.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{mlmodel}: not valid YAML ({exc})") from None
    flavors = (document or {}).get("flavors") or {}
    run_id = (document or {}).get("run_id")
    if "onnx" in flavors:
        file = folder / str(flavors["onnx"].get("data") or "model.onnx")
        return _onnx(_read(file), spec, str(file), "mlflow-onnx", run_id)
    if "sklearn" in flavors:
        flavor = flavors["sklearn"]
        file = folder / str(flavor.get("pickled_model") or "model.pkl")
        serialization = flavor.get("serialization_format", "cloudpickle")
        if serialization not in ("pickle", "cloudpickle"):
            raise InputError(
                f"{mlmodel}: sklearn flavor serialization_format {serialization!r} is not read here"
                " (pickle or cloudpickle; or export the model to ONNX and import the .onnx file)"
            )
        raw = _read(file)
        # The one plain unpickle: the user's own artifact, on the user's own machine (see the module's docstring).
        try:
            model = pickle.loads(raw)  # noqa: S301
        except Exception as exc:  # a pickle can fail in any way (a missing module: cloudpickle's own code)
            raise InputError(f"{file}: cannot be loaded here ({type(exc).__name__}: {exc})") from None
        columns = check_sklearn_import(model, spec, source=str(file))
        data, sha256 = dump_artifact(model)
        try:
            load_artifact(data, sha256)  # what the platform will do: it must accept it
        except CheckFailedError as exc:
            raise CheckFailedError(
                f"{file}: the model cannot be stored in the platform's restricted format ({exc}); export it to"
                " ONNX (skl2onnx) and import the .onnx file instead"
            ) from None
        return PreparedImport(data, SKLEARN_FORMAT, "mlflow-sklearn", hashlib.sha256(raw).hexdigest(), run_id, columns)
    raise InputError(
        f"{mlmodel}: flavors {', '.join(sorted(flavors)) or '(none)'}; an import needs the sklearn or onnx flavor"
    )


def _read(file: Path) -> bytes:
    if not file.is_file():
        raise InputError(f"{file}: named by MLmodel, but there is no such file")
    return file.read_bytes()


def describe(prepared: PreparedImport) -> str:
    return json.dumps({"format": prepared.format, "source": prepared.source, "columns": prepared.columns})
