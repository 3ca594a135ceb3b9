"""PlanTraining, TrainCandidate and CollectCandidate: the candidates to train, one trained on Lambda,
one collected from a finished SageMaker training job; and the fixed holdout file they all read."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any
from urllib.parse import quote

from mlops.contracts.names import training_job_prefix
from mlops.data.trigger import DatasetUpload
from mlops.data.validation.api import validate_stream
from mlops.errors import CheckFailedError, ConfigError, InputError, NotFoundError, SpecError
from mlops.registry.code_versions import resolve_code_version
from mlops.registry.specs import SpecStore
from mlops.spec.model import ModelSpec, pipeline_problems
from mlops.storage import read_uri_if_any
from mlops.training.artifacts import dump_artifact
from mlops.training.code import activate_code, entry_point_package
from mlops.training.evaluation import evaluate
from mlops.training.fit import train
from mlops.training.frames import load_training_frame
from mlops.training.sagemaker import (
    HOLDOUT_FOLDER,
    ONNX_CHECK_NAME,
    ONNX_NAME,
    collect_training_job,
    job_hyperparameters,
)
from mlops.training.search import candidates
from mlops.training.split import HoldoutFile
from mlops.training.steps.imports import import_candidate
from mlops.training.steps.services import (
    HOLDOUT_PREFIX,
    Services,
    code_revision,
    put,
    read_bytes,
    run_prefix,
    s3_uri,
    spec_for,
    write_json,
)


def training_frame(services: Services, upload: DatasetUpload, spec: ModelSpec) -> Any:

    body = services.s3.get_object(Bucket=upload.bucket, Key=upload.key, VersionId=upload.version_id)["Body"]
    try:
        return load_training_frame(body, spec, source_name=f"s3://{upload.bucket}/{upload.key}")
    finally:
        body.close()


def _holdout_source(services: Services, spec: ModelSpec, model: str, execution_name: str) -> dict[str, Any] | None:
    """The fixed holdout file's current version, validated against the spec (``holdout_dataset`` only).

    Resolved once, in PlanTraining: every candidate and the evaluation then read this object
    version, even if the file is replaced while the run trains. Its validation report is written
    beside the run's artifacts; a file that fails a check (the row-count bounds, which are the
    training dataset's, aside) fails the run with the checks named.
    """
    settings = spec.training.split
    if settings.method != "holdout_dataset" or settings.holdout is None:
        return None
    bucket, key = services.platform.data_bucket, settings.holdout
    if not key.startswith(HOLDOUT_PREFIX):
        raise InputError(
            f"training.split.holdout: {key!r} is not under {HOLDOUT_PREFIX} in the data bucket; the pipeline"
            f" reads fixed holdout files from there (for example {HOLDOUT_PREFIX}{model}/holdout.csv)"
        )
    uri = s3_uri(bucket, key)
    try:
        response = services.s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore's ClientError: the domain names no botocore class
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise NotFoundError(
                f"training.split.holdout: {uri} does not exist; upload the holdout file there (outside datasets/,"
                " so that it starts no training run)"
            ) from None
        raise
    body = response["Body"]
    try:
        data = bytes(body.read())
    finally:
        body.close()
    version_id = response.get("VersionId")
    name = f"{uri}?versionId={version_id}" if version_id else uri
    report = validate_stream(io.BytesIO(data), spec, name)
    report_uri = write_json(services, f"{run_prefix(model, execution_name)}holdout-validation.json", report.to_json())
    failed = [
        c.check + (f"[{c.column}]" if c.column else "")
        for c in report.checks
        if c.failed and c.check != "dataset.row_count"
    ]
    if not report.readable or failed:
        problems = ", ".join(failed[:5]) if failed else "not readable"
        raise CheckFailedError(
            f"training.split.holdout: {name} fails validation against the spec ({problems}); report: {report_uri}"
        )
    return {
        "uri": uri,
        "bucket": bucket,
        "key": key,
        "version_id": version_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": report.rows,
        "validation_report": report_uri,
    }


def holdout_file(services: Services, source: dict[str, Any] | None, spec: ModelSpec) -> Any:
    """The holdout file PlanTraining validated (``None`` unless the split is ``holdout_dataset``)."""

    if not source:
        return None
    version = {"VersionId": source["version_id"]} if source.get("version_id") else {}
    body = services.s3.get_object(Bucket=source["bucket"], Key=source["key"], **version)["Body"]
    try:
        data = bytes(body.read())
    finally:
        body.close()
    if hashlib.sha256(data).hexdigest() != source["sha256"]:
        raise CheckFailedError(f"{source['uri']}: the holdout file's sha256 differs from the one validated; not used")
    extra = {k: v for k, v in source.items() if k not in ("uri", "sha256", "rows")}
    return HoldoutFile.from_bytes(data, spec, source["uri"], **extra)


def code_for_run(services: Services, model: str, spec: ModelSpec) -> dict[str, Any] | None:
    """The code version a run of ``spec`` trains with (its pin, or the latest now), as lineage; None without one."""
    entry_point = spec.training.entry_point
    if entry_point is None:
        return None
    record = resolve_code_version(
        services.registry, model, spec.training.code_version, lambda uri: read_uri_if_any(services.s3, uri)
    )
    package = entry_point_package(entry_point)
    if record.package != package:
        raise SpecError(
            f"training.entry_point: {entry_point!r} is in package {package!r}, but code version {record.version} of "
            f"{model!r} is package {record.package!r}"
        )
    return record.lineage(entry_point)


def activate(services: Services, code: dict[str, Any]) -> None:
    """Make a run's code version importable here (sha256-checked against the registry's record)."""
    activate_code(lambda uri: read_bytes(services, uri), code["uri"], code["sha256"])


def plan_training(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """The candidates to train (one, or a search space's), the backend and the ranking metric.

    For ``backend: sagemaker`` each candidate also carries its training job's settings; the
    dataset version is first copied to the run's input prefix, because a training job's S3
    channel cannot name an object version.
    """

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    revision = SpecStore(services.registry).get(upload.model, int(event["spec_revision"]))
    spec = revision.spec()
    problems = [] if upload.imported else pipeline_problems(spec)
    if problems:  # a spec stored before the check existed fails here, with the same message
        raise SpecError("; ".join(problems))
    search = spec.training.search
    metric = (search.metric if search is not None and search.metric else None) or spec.primary_metric
    planned: list[dict[str, Any]] = [{"index": i, "params": params} for i, params in enumerate(candidates(spec))]
    backend = spec.training.backend
    if upload.imported:
        # An imported model is the run's one candidate; nothing is trained, so no SageMaker job.
        planned, backend = [{"index": 0, "params": {}, "imported": upload.imported}], "lambda"
    holdout = _holdout_source(services, spec, upload.model, event["execution_name"])
    if holdout is not None:
        for item in planned:
            item["holdout"] = holdout
    code = code_for_run(services, upload.model, spec)
    if code is not None:
        for item in planned:
            item["code"] = code  # resolved once: every candidate runs the same code version
    plan: dict[str, Any] = {"candidates": planned, "backend": backend, "metric": metric, "input": None}
    if backend == "sagemaker":
        image = os.environ.get("SAGEMAKER_TRAINING_IMAGE", "")
        if not image:
            raise ConfigError(
                f"model {upload.model!r} asks for training.backend: sagemaker, but this deployment has no "
                "training image: set sagemaker_training_image for the environment in cdk.json and redeploy"
            )
        prefix = run_prefix(upload.model, event["execution_name"])
        input_prefix = f"{prefix}input/"
        digest = hashlib.sha256(event["execution_name"].encode()).hexdigest()[:16]
        job_prefix = training_job_prefix(services.platform.environment)  # at most 23 characters
        for item in planned:
            item["job"] = {
                "name": f"{job_prefix}{upload.model[:16]}-{digest}-{item['index']}",
                "image": image,
                "instance_type": spec.training.instance_type,
                "input_uri": s3_uri(services.platform.data_bucket, input_prefix),
                "output_uri": s3_uri(services.platform.data_bucket, f"{prefix}sagemaker/"),
                "hyperparameters": job_hyperparameters(revision.document, item, code_revision()),
            }
        if holdout is not None:
            # Beside the dataset, in a folder of the same channel: the job reads it from there.
            services.s3.copy_object(
                Bucket=services.platform.data_bucket,
                Key=f"{input_prefix}{HOLDOUT_FOLDER}/{holdout['key'].rsplit('/', 1)[-1]}",
                CopySource={
                    "Bucket": holdout["bucket"],
                    "Key": holdout["key"],
                    **({"VersionId": holdout["version_id"]} if holdout.get("version_id") else {}),
                },
            )
        plan["input"] = {
            "bucket": services.platform.data_bucket,
            "key": f"{input_prefix}{upload.key.rsplit('/', 1)[-1]}",
            "copy_source": f"{upload.bucket}/{quote(upload.key)}?versionId={upload.version_id}",
        }
    return plan


def train_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Train one candidate on the dataset version; its artifact and sha256 go to S3."""

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    spec = spec_for(services, upload.model, int(event["spec_revision"]))
    candidate = event["candidate"]
    frame = training_frame(services, upload, spec)
    holdout = holdout_file(services, candidate.get("holdout"), spec)
    if candidate.get("imported"):
        return import_candidate(services, upload, spec, candidate, frame, holdout, event["execution_name"])
    code = candidate.get("code")
    if code:
        activate(services, code)
    result = train(frame, spec, params_override=candidate.get("params"), code_revision=code_revision(), holdout=holdout)
    data, sha256 = dump_artifact(result.pipeline)
    key = f"{run_prefix(upload.model, event['execution_name'])}candidate-{candidate['index']}/model.pkl"
    uri = put(services, key, data, "application/octet-stream", sha256=sha256)
    metrics = evaluate(result.pipeline, result.holdout, spec, result.threshold).finite_metrics()
    return {
        "index": candidate["index"],
        "params": candidate.get("params") or {},
        "artifact_uri": uri,
        "artifact_sha256": sha256,
        "metrics": metrics,
        "training": {**result.summary(), **({"code": code} if code else {})},
        **({"holdout": candidate["holdout"]} if candidate.get("holdout") else {}),
    }


def collect_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """A finished SageMaker training job -> the candidate record a Lambda-trained one has."""

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    candidate = event["candidate"]
    job = collect_training_job(read_bytes(services, event["job"]["ModelArtifacts"]["S3ModelArtifacts"]))
    folder = f"{run_prefix(upload.model, event['execution_name'])}candidate-{candidate['index']}/"
    record = job.record
    uri = put(
        services, f"{folder}model.pkl", job.artifact, "application/octet-stream", sha256=record["artifact_sha256"]
    )
    export = record.get("onnx") or {"error": "the training job made no ONNX export"}
    if job.onnx is not None and job.onnx_check is not None:
        # the job's export and the library's own answers on the holdout, for Evaluate and CheckOnnx
        export = {
            "uri": put(services, f"{folder}{ONNX_NAME}", job.onnx, "application/octet-stream", sha256=export["sha256"]),
            "sha256": export["sha256"],
            "check_uri": put(
                services,
                f"{folder}{ONNX_CHECK_NAME}",
                job.onnx_check,
                "application/json",
                sha256=export["check_sha256"],
            ),
            "check_sha256": export["check_sha256"],
        }
    return {**record, "index": candidate["index"], "artifact_uri": uri, "onnx": export}
