"""Training on SageMaker: the same training code, for data beyond a Lambda function's limits.

A spec with ``training.backend: sagemaker`` sends its candidate to a SageMaker training job
(Step Functions' ``createTrainingJob.sync``). The job runs :func:`run_training_job` inside the
training image (``containers/sagemaker-training``), reading the dataset version the pipeline
copied to the run's input prefix, and writes ``model.pkl`` and ``result.json`` to
``/opt/ml/model``; SageMaker packs them into ``model.tar.gz``. :func:`collect_training_job`
turns that into the same candidate record a Lambda-trained candidate has.

The split is :func:`mlops.training.fit.train`'s, as on Lambda. For ``training.split.method:
holdout_dataset`` the pipeline copies the holdout file version it validated into the channel's
``holdout/`` folder, and the job checks its sha256 against the one in the candidate.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from mlops.errors import CheckFailedError, InputError

ARTIFACT_NAME = "model.pkl"
RESULT_NAME = "result.json"
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
    from mlops.spec.model import parse_spec
    from mlops.training.artifacts import dump_artifact
    from mlops.training.evaluation import evaluate
    from mlops.training.fit import train
    from mlops.training.frames import load_training_frame

    input_dir = input_dir or Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    model_dir = model_dir or Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    config_dir = config_dir or Path("/opt/ml/input/config")
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
        **({"holdout": candidate["holdout"]} if candidate.get("holdout") else {}),
    }
    (model_dir / RESULT_NAME).write_text(json.dumps(record, sort_keys=True))
    return record


def _holdout_file(folder: Path, source: dict[str, Any] | None, spec: Any) -> Any:
    """The holdout file the pipeline staged (``None`` unless the candidate names one), sha256 checked."""
    import hashlib

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


def collect_training_job(model_tar_gz: bytes) -> tuple[bytes, dict[str, Any]]:
    """Unpack a job's ``model.tar.gz``: the artifact bytes and the candidate record (sha256 checked)."""
    import hashlib

    try:
        with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as archive:
            members = {m.name.lstrip("./"): m for m in archive.getmembers() if m.isfile()}
            missing = [name for name in (ARTIFACT_NAME, RESULT_NAME) if name not in members]
            if missing:
                raise CheckFailedError(f"model.tar.gz lacks {missing} (has {sorted(members)})")
            artifact = archive.extractfile(members[ARTIFACT_NAME]).read()  # type: ignore[union-attr]
            record = json.loads(archive.extractfile(members[RESULT_NAME]).read())  # type: ignore[union-attr]
    except (tarfile.TarError, OSError) as exc:
        raise CheckFailedError(f"model.tar.gz is not a readable gzip tar archive: {exc}") from None
    if hashlib.sha256(artifact).hexdigest() != record.get("artifact_sha256"):
        raise CheckFailedError("model.tar.gz: model.pkl does not match the sha256 the training job recorded")
    return artifact, record


if __name__ == "__main__":  # the training image's entry point: python -m mlops.training.sagemaker
    run_training_job()
