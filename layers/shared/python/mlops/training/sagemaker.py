"""Training on SageMaker: the same training code, for data beyond a Lambda function's limits.

A spec with ``training.backend: sagemaker`` sends its candidate to a SageMaker training job
(Step Functions' ``createTrainingJob.sync``). The job runs :func:`run_training_job` inside the
training image (``containers/sagemaker-training``), reading the dataset version the pipeline
copied to the run's input prefix, and writes ``model.pkl`` and ``result.json`` to
``/opt/ml/model``; SageMaker packs them into ``model.tar.gz``. :func:`collect_training_job`
turns that into the same candidate record a Lambda-trained candidate has.

The job also exports the fitted pipeline to ONNX (:func:`mlops.training.export.export_onnx`, the
export Evaluate makes on the Lambda path) and writes the ONNX check's input
(:func:`mlops.training.export.check_document`: holdout rows and what the library itself answered
for them) as ``model.onnx`` and ``onnx-check.json`` beside ``model.pkl``, their sha256s in
``result.json`` (``onnx``; or ``onnx.error`` and why there is none). For an estimator whose library
the Evaluate function does not have (XGBoost: it does not fit beside the science layer), Evaluate
scores that export with ``onnx.reference`` and CheckOnnx compares it with the job's answers.

The split is :func:`mlops.training.fit.train`'s, as on Lambda. For ``training.split.method:
holdout_dataset`` the pipeline copies the holdout file version it validated into the channel's
``holdout/`` folder, and the job checks its sha256 against the one in the candidate.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any, NamedTuple

from mlops.errors import CheckFailedError, InputError, MlopsError

ARTIFACT_NAME = "model.pkl"
RESULT_NAME = "result.json"
# Beside the artifact: the job's ONNX export and the check's input (names as Evaluate writes them).
ONNX_NAME = "model.onnx"
ONNX_CHECK_NAME = "onnx-check.json"
# The folder of the training channel that holds the fixed holdout file (holdout_dataset only).
HOLDOUT_FOLDER = "holdout"


def job_hyperparameters(spec_document: dict[str, Any], candidate: dict[str, Any], code_revision: str) -> dict[str, str]:
    """SageMaker hyperparameters are strings: the spec, the candidate and the code revision as JSON."""
    return {
        "spec": json.dumps(spec_document, sort_keys=True),
        "candidate": json.dumps(candidate, sort_keys=True),
        "code_revision": code_revision,
    }


def _hyperparameters(config_dir: Path) -> dict[str, str]:
    path = config_dir / "hyperparameters.json"
    if not path.is_file():
        raise InputError(f"{path}: missing (not inside a SageMaker training job?)")
    values = json.loads(path.read_text())
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def run_training_job(
    *,
    input_dir: Path | None = None,
    model_dir: Path | None = None,
    config_dir: Path | None = None,
) -> dict[str, Any]:
    """The training job's entry point: train one candidate exactly as the Lambda backend does."""
    # Imports here: the module is also imported by CollectCandidate, which needs none of them.
    from mlops.spec.model import parse_spec
    from mlops.training.artifacts import dump_artifact
    from mlops.training.evaluation import evaluate
    from mlops.training.fit import train
    from mlops.training.frames import load_training_frame

    input_dir = input_dir or Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    model_dir = model_dir or Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    config_dir = config_dir or Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    hyper = _hyperparameters(config_dir)
    spec = parse_spec(json.loads(hyper["spec"]), "training job spec")
    candidate = json.loads(hyper["candidate"])
    files = sorted(p for p in input_dir.iterdir() if p.is_file())
    if len(files) != 1:
        raise InputError(f"{input_dir}: expected exactly one dataset file, found {[p.name for p in files]}")
    frame = load_training_frame(files[0], spec)
    holdout = _holdout_file(input_dir / HOLDOUT_FOLDER, candidate.get("holdout"), spec)
    result = train(
        frame,
        spec,
        params_override=candidate.get("params"),
        code_revision=hyper.get("code_revision"),
        holdout=holdout,
    )
    data, sha256 = dump_artifact(result.pipeline)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / ARTIFACT_NAME).write_bytes(data)
    record = {
        "index": candidate.get("index", 0),
        "params": candidate.get("params") or {},
        "artifact_sha256": sha256,
        "metrics": evaluate(result.pipeline, result.holdout, spec, result.threshold).finite_metrics(),
        "training": {**result.summary(), "backend": "sagemaker"},
        "onnx": _write_onnx_export(model_dir, result, spec),
        **({"holdout": candidate["holdout"]} if candidate.get("holdout") else {}),
    }
    (model_dir / RESULT_NAME).write_text(json.dumps(record, sort_keys=True))
    return record


def _write_onnx_export(model_dir: Path, result: Any, spec: Any) -> dict[str, Any]:
    """``model.onnx`` and ``onnx-check.json`` in the model directory; their sha256s, or why none."""
    # skl2onnx and onnxmltools load here, in the job, not in CollectCandidate (see run_training_job)
    from mlops.training.export import check_document, export_onnx
    from mlops.training.onnx_check import CHECK_ROWS

    try:
        data = export_onnx(result.pipeline, spec)
    except MlopsError as exc:  # registered without ONNX on the Lambda path too; Evaluate decides
        return {"error": str(exc)}
    check = json.dumps(
        check_document(result.pipeline, result.holdout, spec, limit=CHECK_ROWS, threshold=result.threshold)
    ).encode()
    (model_dir / ONNX_NAME).write_bytes(data)
    (model_dir / ONNX_CHECK_NAME).write_bytes(check)
    return {"sha256": hashlib.sha256(data).hexdigest(), "check_sha256": hashlib.sha256(check).hexdigest()}


def _holdout_file(folder: Path, source: dict[str, Any] | None, spec: Any) -> Any:
    """The holdout file the pipeline staged (``None`` unless the candidate names one), sha256 checked."""
    from mlops.training.split import HoldoutFile

    if not source:
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if len(files) != 1:
        raise InputError(f"{folder}: expected the holdout file {source.get('uri')}, found {[p.name for p in files]}")
    data = files[0].read_bytes()
    if hashlib.sha256(data).hexdigest() != source.get("sha256"):
        raise CheckFailedError(f"{files[0]}: sha256 differs from the holdout file the pipeline validated")
    extra = {k: v for k, v in source.items() if k not in ("uri", "sha256", "rows")}
    return HoldoutFile.from_bytes(data, spec, source["uri"], **extra)


class CollectedJob(NamedTuple):
    """What a finished training job left: the artifact, its record, and its ONNX export (or ``None``)."""

    artifact: bytes
    record: dict[str, Any]
    onnx: bytes | None
    onnx_check: bytes | None


def collect_training_job(model_tar_gz: bytes) -> CollectedJob:
    """Unpack a job's ``model.tar.gz``: the artifact, the candidate record and the ONNX export, each
    checked against the sha256 the job recorded."""
    try:
        with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as archive:
            members = {m.name.lstrip("./"): m for m in archive.getmembers() if m.isfile()}
            missing = [name for name in (ARTIFACT_NAME, RESULT_NAME) if name not in members]
            if missing:
                raise CheckFailedError(f"model.tar.gz lacks {missing} (has {sorted(members)})")
            files = {
                name: archive.extractfile(members[name]).read()  # type: ignore[union-attr]
                for name in (ARTIFACT_NAME, RESULT_NAME, ONNX_NAME, ONNX_CHECK_NAME)
                if name in members
            }
    except (tarfile.TarError, OSError) as exc:
        raise CheckFailedError(f"model.tar.gz is not a readable gzip tar archive: {exc}") from None
    artifact, record = files[ARTIFACT_NAME], json.loads(files[RESULT_NAME])
    if hashlib.sha256(artifact).hexdigest() != record.get("artifact_sha256"):
        raise CheckFailedError("model.tar.gz: model.pkl does not match the sha256 the training job recorded")
    export = record.get("onnx") or {}
    if not export.get("sha256"):
        return CollectedJob(artifact, record, None, None)
    for name, key in ((ONNX_NAME, "sha256"), (ONNX_CHECK_NAME, "check_sha256")):
        if name not in files:
            raise CheckFailedError(f"model.tar.gz lacks {name}, which the training job recorded")
        if hashlib.sha256(files[name]).hexdigest() != export.get(key):
            raise CheckFailedError(f"model.tar.gz: {name} does not match the sha256 the training job recorded")
    return CollectedJob(artifact, record, files[ONNX_NAME], files[ONNX_CHECK_NAME])


def main() -> int:
    """The training image's entry point: run the job; on failure write why to ``/opt/ml/output/failure``
    (SageMaker reports that file's text as the job's ``FailureReason``) and exit 1."""
    try:
        run_training_job()
    except Exception as exc:  # every failure is the job's: its reason goes where SageMaker reads it
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MlopsError) else str(exc)
        output = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
        output.mkdir(parents=True, exist_ok=True)
        (output / "failure").write_text(reason[:1024])
        print(f"training job failed: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # the training image's entry point: python -m mlops.training.sagemaker
    sys.exit(main())
