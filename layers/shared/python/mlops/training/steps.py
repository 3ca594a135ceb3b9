"""The training pipeline's steps as plain functions: the Lambda handlers only parse and call these.

Each step takes its AWS clients and the deployment's names explicitly (``Platform``), so tests and
the local cloud run exactly this code against moto.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, replace
from typing import Any

from mlops.data.datasets import DatasetCatalog, DatasetVersion, describe_s3_object, verified_uploader
from mlops.data.trigger import DatasetUpload, parse_key
from mlops.data.validation.api import validate_stream
from mlops.errors import CheckFailedError, ConfigError, InputError, MlopsError, NotFoundError
from mlops.registry.audit import PLATFORM_CHAIN
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform, training_job_prefix
from mlops.spec.model import ModelSpec
from mlops.storage import read_uri

PIPELINE_ACTOR = "pipeline:training"
# Where fixed holdout files live in the data bucket (training.split.method: holdout_dataset): the
# training functions may read them, and writing one starts nothing.
HOLDOUT_PREFIX = "holdouts/"


@dataclass(frozen=True)
class Services:
    """The clients and names one step needs (built from the function's environment by default)."""

    platform: Platform
    s3: Any
    registry: Registry

    @classmethod
    def from_env(cls) -> Services:
        import boto3

        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(platform=platform, s3=boto3.client("s3"), registry=registry)


def report_key(model: str, version_id: str, name: str) -> str:
    """Where a dataset version's reports live: apart from datasets/, so writing one starts nothing."""
    return f"reports/{model}/datasets/{version_id}/{name}"


def _write_json(services: Services, key: str, document: Any) -> str:
    body = document if isinstance(document, str) else json.dumps(document, indent=2, default=str)
    services.s3.put_object(
        Bucket=services.platform.data_bucket, Key=key, Body=body.encode(), ContentType="application/json"
    )
    return f"s3://{services.platform.data_bucket}/{key}"


def champion_profile(services: Services, model: str) -> Any:
    """The reference profile of the champion's training data (None without a champion or profile)."""
    from mlops.data.profile import ReferenceProfile

    try:
        champion = services.registry.get_by_alias(model, "champion")
    except NotFoundError:
        return None
    uri = champion.tags.get("profile_uri")
    if not uri:
        return None
    return ReferenceProfile.from_json(_read_bytes(services, uri), source=uri)


def with_verified_uploader(
    registry: Registry, model: str, dataset: DatasetVersion, *, requester: str | None = None
) -> DatasetVersion:
    """``dataset`` with its uploader as the platform can prove it (``unverified`` and why, else)."""
    from datetime import datetime

    modified = datetime.fromisoformat(dataset.uploaded_at) if dataset.uploaded_at else None
    found = verified_uploader(registry, model, dataset.key, dataset.sha256, modified)
    extra = dict(dataset.extra)
    if requester:
        extra["event_requester"] = requester  # the S3 event's requester (an account or principal id), kept for reading
    if found.note:
        extra["uploader_note"] = found.note
    return replace(dataset, uploaded_by=found.identity, uploader_source=found.source, extra=extra)


def validate_upload(
    upload: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Record and validate one uploaded dataset version; never raises for bad data.

    The result says ``valid`` and where the report is. A model with no spec, an unreadable or
    invalid file all give ``valid: False`` with a report and an audit event; the uploaded object
    is never changed (it is the evidence).

    Returns
    -------
    dict
        ``valid``, ``report_uri``, ``summary`` (one line), ``dataset`` (the version reference),
        ``spec_revision`` (or None).
    """
    services = services or Services.from_env()
    item = DatasetUpload(**upload)
    model, _ = parse_key(item.key)
    actor = f"{PIPELINE_ACTOR}:{request_id}" if request_id else PIPELINE_ACTOR
    key = report_key(model, item.version_id, "validation.json")

    # The uploader is the caller the upload API recorded for this key and content (or the platform
    # actor that wrote it), never the object's metadata nor the event's requester: see mlops.data.datasets.
    dataset = describe_s3_object(services.s3, item.bucket, item.key, version_id=item.version_id, model=model)
    dataset = with_verified_uploader(services.registry, model, dataset, requester=item.uploader)
    DatasetCatalog(services.registry).record(model, dataset, actor=actor, request_id=request_id)
    reference = dataset.ref()

    try:
        revision = SpecStore(services.registry).get(model)
    except NotFoundError as exc:
        summary = f"no spec for model {model!r}: {exc}"
        report_uri = _write_json(
            services,
            key,
            {"valid": False, "readable": None, "error": "no_spec", "message": summary, "dataset": reference},
        )
        services.registry.audit.append(
            model,
            actor=actor,
            action="dataset.rejected",
            subject=f"dataset/{model}/{item.version_id}",
            after={"reason": "no_spec", "report": report_uri},
            request_id=request_id,
        )
        return {
            "valid": False,
            "report_uri": report_uri,
            "summary": summary,
            "dataset": reference,
            "spec_revision": None,
        }

    profile = champion_profile(services, model)
    body = services.s3.get_object(Bucket=item.bucket, Key=item.key, VersionId=item.version_id)["Body"]
    try:
        report = validate_stream(
            body, revision.spec(), f"s3://{item.bucket}/{item.key}?versionId={item.version_id}", reference=profile
        )
    finally:
        body.close()
    report_uri = _write_json(services, key, report.to_json())
    failed = [c.check for c in report.checks if c.failed]
    warned = [c.check for c in report.warnings]
    summary = ("valid: " if report.valid else "invalid: ") + (
        f"{report.rows} rows, " + ("no check failed" if warned else "all checks passed")
        if report.valid
        else f"{len(failed)} failed checks ({', '.join(failed[:5])})"
    )
    if warned:  # warnings (spec.validation, label fairness) never fail an upload; they are named
        summary += f"; {len(warned)} warning(s) ({', '.join(warned[:5])})"
    services.registry.audit.append(
        model,
        actor=actor,
        action="dataset.validated" if report.valid else "dataset.rejected",
        subject=f"dataset/{model}/{item.version_id}",
        after={
            "valid": report.valid,
            "rows": report.rows,
            "failed_checks": failed,
            "warning_checks": warned,
            "report": report_uri,
            "spec_revision": revision.revision,
        },
        request_id=request_id,
    )
    return {
        "valid": report.valid,
        "report_uri": report_uri,
        "summary": summary,
        "dataset": reference,
        "spec_revision": revision.revision,
    }


def record_ignored_upload(key: str, reason: str, *, services: Services, request_id: str | None = None) -> None:
    """An object under datasets/ outside the layout: nothing to train, but the platform says so."""
    from mlops.registry.audit import PLATFORM_CHAIN

    services.registry.audit.append(
        PLATFORM_CHAIN,
        actor=PIPELINE_ACTOR,
        action="dataset.ignored",
        subject=f"s3://{services.platform.data_bucket}/{key}",
        after={"reason": reason},
        request_id=request_id,
    )


# ------------------------------------------------------------------------------------------- training
def run_prefix(model: str, execution_name: str) -> str:
    """Where one run's candidates, evaluation and profile go (artifacts/, never datasets/)."""
    return f"artifacts/{model}/runs/{execution_name}/"


def version_prefix(model: str, version: int) -> str:
    """Where a registered version's model card lives."""
    return f"artifacts/{model}/versions/{version}/"


def _s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _read_bytes(services: Services, uri: str) -> bytes:
    return read_uri(services.s3, uri)


def _put(services: Services, key: str, data: bytes, content_type: str, **metadata: str) -> str:
    services.s3.put_object(
        Bucket=services.platform.data_bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
    )
    return _s3_uri(services.platform.data_bucket, key)


def _spec_for(services: Services, model: str, revision: int) -> ModelSpec:
    return SpecStore(services.registry).get(model, revision).spec()


def _training_frame(services: Services, upload: DatasetUpload, spec: ModelSpec) -> Any:
    from mlops.training.frames import load_training_frame

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
    uri = _s3_uri(bucket, key)
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
    report_uri = _write_json(services, f"{run_prefix(model, execution_name)}holdout-validation.json", report.to_json())
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


def _holdout_file(services: Services, source: dict[str, Any] | None, spec: ModelSpec) -> Any:
    """The holdout file PlanTraining validated (``None`` unless the split is ``holdout_dataset``)."""
    from mlops.training.split import HoldoutFile

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


def _code_revision() -> str:
    return os.environ.get("CODE_REVISION", "unknown")


def plan_training(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """The candidates to train (one, or a search space's), the backend and the ranking metric.

    For ``backend: sagemaker`` each candidate also carries its training job's settings; the
    dataset version is first copied to the run's input prefix, because a training job's S3
    channel cannot name an object version.
    """
    from urllib.parse import quote

    from mlops.training.sagemaker import HOLDOUT_FOLDER, job_hyperparameters
    from mlops.training.search import candidates

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    revision = SpecStore(services.registry).get(upload.model, int(event["spec_revision"]))
    spec = revision.spec()
    search = spec.training.search
    metric = (search.metric if search is not None and search.metric else None) or spec.primary_metric
    planned: list[dict[str, Any]] = [{"index": i, "params": params} for i, params in enumerate(candidates(spec))]
    holdout = _holdout_source(services, spec, upload.model, event["execution_name"])
    if holdout is not None:
        for item in planned:
            item["holdout"] = holdout
    plan: dict[str, Any] = {"candidates": planned, "backend": spec.training.backend, "metric": metric, "input": None}
    if spec.training.backend == "sagemaker":
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
                "input_uri": _s3_uri(services.platform.data_bucket, input_prefix),
                "output_uri": _s3_uri(services.platform.data_bucket, f"{prefix}sagemaker/"),
                "hyperparameters": job_hyperparameters(revision.document, item, _code_revision()),
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
    from mlops.training.artifacts import dump_artifact
    from mlops.training.evaluation import evaluate
    from mlops.training.fit import train

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    spec = _spec_for(services, upload.model, int(event["spec_revision"]))
    candidate = event["candidate"]
    frame = _training_frame(services, upload, spec)
    holdout = _holdout_file(services, candidate.get("holdout"), spec)
    result = train(
        frame, spec, params_override=candidate.get("params"), code_revision=_code_revision(), holdout=holdout
    )
    data, sha256 = dump_artifact(result.pipeline)
    key = f"{run_prefix(upload.model, event['execution_name'])}candidate-{candidate['index']}/model.pkl"
    uri = _put(services, key, data, "application/octet-stream", sha256=sha256)
    metrics = evaluate(result.pipeline, result.holdout, spec).finite_metrics()
    return {
        "index": candidate["index"],
        "params": candidate.get("params") or {},
        "artifact_uri": uri,
        "artifact_sha256": sha256,
        "metrics": metrics,
        "training": result.summary(),
        **({"holdout": candidate["holdout"]} if candidate.get("holdout") else {}),
    }


def holdout_predictions(pipeline: Any, holdout: Any, spec: ModelSpec, limit: int = 20_000) -> str:
    """The model's predictions on its holdout as JSON: the reference of prediction drift, and with
    the labels and probabilities, the registered side of performance drift (its uncertainty)."""
    from mlops.training.holdout import holdout_document

    return json.dumps(holdout_document(pipeline, holdout, spec, limit=limit))


def evaluate_candidates(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Pick the best candidate; evaluate it on its holdout and against the champion; profile the data.

    The candidate's metrics are on its whole holdout. The champion is scored only on holdout rows
    it did not train on (its registered training-row fingerprints say which), and the candidate
    is scored again on exactly those rows, so the gate compares like with like. The training
    rows' fingerprints are stored with the run, for the next run to do the same with this one.
    """
    from mlops.data.profile import profile_frame
    from mlops.spec.model import LOWER_IS_BETTER
    from mlops.training.artifacts import load_artifact
    from mlops.training.evaluation import evaluate
    from mlops.training.search import best, leaderboard
    from mlops.training.split import prepare_split

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    spec = _spec_for(services, upload.model, int(event["spec_revision"]))
    candidates = event["candidates"]
    search = spec.training.search
    metric = (search.metric if search is not None and search.metric else None) or spec.primary_metric
    chosen = best(candidates, metric, metric in LOWER_IS_BETTER)
    frame = _training_frame(services, upload, spec)
    fixed = _holdout_file(services, chosen.get("holdout"), spec)
    train_frame, holdout, _, split_info = prepare_split(frame, spec, fixed)
    pipeline = load_artifact(_read_bytes(services, chosen["artifact_uri"]), chosen["artifact_sha256"])
    scored = evaluate(pipeline, holdout, spec)
    evaluation = scored.to_dict()
    prefix = run_prefix(upload.model, event["execution_name"])
    training_rows = _put_training_rows(services, prefix, train_frame, spec)
    holdout_rows_uri = _put(
        services,
        f"{prefix}holdout-rows.json",
        json.dumps({"split": split_info.to_dict(), "rows": [int(i) for i in holdout.index]}).encode(),
        "application/json",
    )
    champion = _score_champion(services, upload.model, pipeline, holdout, spec, scored.finite_metrics())

    onnx = _export_onnx(services, upload, event["execution_name"], pipeline, holdout, spec)
    profile = profile_frame(train_frame, spec)
    profile_json = profile.to_json()
    profile_uri = _put(services, f"{prefix}profile.json", profile_json.encode(), "application/json")
    split = {**split_info.to_dict(), "holdout_rows_uri": holdout_rows_uri}
    evaluation_uri = _put(
        services,
        f"{prefix}evaluation.json",
        json.dumps(
            {
                "candidate": chosen,
                "evaluation": evaluation,
                "champion": champion,
                "split": split,
                # every search candidate, best first, the losers' scores included (`mlops runs show`)
                "search": {"metric": metric, "lower_is_better": metric in LOWER_IS_BETTER},
                "candidates": leaderboard(candidates, metric, metric in LOWER_IS_BETTER, chosen.get("index")),
            },
            default=str,
            indent=2,
        ).encode(),
        "application/json",
    )
    predictions_uri = _put(
        services,
        f"{prefix}predictions.json",
        holdout_predictions(pipeline, holdout, spec).encode(),
        "application/json",
    )
    return {
        "best": chosen,
        "metric": metric,
        "metrics": scored.finite_metrics(),
        "champion": champion,
        "split": {k: v for k, v in split.items() if k != "notes"},
        "training_rows": training_rows,
        "profile_uri": profile_uri,
        "predictions_uri": predictions_uri,
        "evaluation_uri": evaluation_uri,
        "candidates_trained": len(candidates),
        "onnx": onnx,
    }


def _put_training_rows(services: Services, prefix: str, train_frame: Any, spec: ModelSpec) -> dict[str, Any]:
    """The training rows' fingerprints (sorted distinct uint64, ``.npy``) beside the run's artifacts."""
    from mlops.training.fingerprints import ROW_HASH_ENCODING, fingerprint_bytes, hash_kinds, row_fingerprints

    kinds = hash_kinds(spec)
    data = fingerprint_bytes(row_fingerprints(train_frame, spec, kinds))
    sha256 = hashlib.sha256(data).hexdigest()
    uri = _put(services, f"{prefix}training-rows.npy", data, "application/octet-stream", sha256=sha256)
    return {"uri": uri, "sha256": sha256, "rows": len(train_frame), "columns": kinds, "encoding": ROW_HASH_ENCODING}


def _training_rows_tags(training_rows: dict[str, Any] | None) -> dict[str, str]:
    if not training_rows:
        return {}
    return {
        "training_rows_uri": training_rows["uri"],
        "training_rows_sha256": training_rows["sha256"],
        "training_rows_columns": json.dumps(training_rows["columns"], sort_keys=True, separators=(",", ":")),
        "training_rows_encoding": str(training_rows["encoding"]),
    }


def _seen_by_champion(services: Services, champion: Any, holdout: Any, spec: ModelSpec) -> tuple[Any, str | None]:
    """Which holdout rows the champion trained on (a boolean array), or ``None`` and why that is unknown."""
    import numpy as np

    from mlops.training.fingerprints import ROW_HASH_ENCODING, hash_kinds, load_fingerprints, row_fingerprints

    tags = champion.tags or {}
    uri, sha256 = tags.get("training_rows_uri"), tags.get("training_rows_sha256")
    if not uri or not sha256:
        return None, f"v{champion.version} was registered without the fingerprints of its training rows"
    if tags.get("training_rows_encoding") != str(ROW_HASH_ENCODING):
        return None, f"v{champion.version}'s training-row fingerprints use another encoding"
    stored = json.loads(tags.get("training_rows_columns") or "{}")
    columns = set(spec.feature_names) | {spec.target.name}
    current = hash_kinds(spec, [name for name in stored if name in columns])
    changed = sorted(name for name in stored if current.get(name) != stored[name])
    if changed:
        return None, (
            f"v{champion.version} was trained on column(s) {', '.join(changed)} that this spec no longer has,"
            " or types differently, so its training rows cannot be recognized"
        )
    try:
        data = _read_bytes(services, uri)
    except Exception as exc:  # a missing or unreadable artifact makes the answer unknown, not the run fail
        return None, f"{uri} cannot be read ({exc})"
    if hashlib.sha256(data).hexdigest() != sha256:
        return None, f"{uri}: sha256 differs from the registry's; not used"
    trained = load_fingerprints(data, uri)
    return np.isin(row_fingerprints(holdout, spec, stored), trained), None


def _score_champion(
    services: Services, model: str, candidate: Any, holdout: Any, spec: ModelSpec, candidate_metrics: dict[str, Any]
) -> dict[str, Any] | None:
    """The champion and the candidate on the holdout rows the champion did not train on."""
    from mlops.training.artifacts import load_artifact
    from mlops.training.evaluation import evaluate

    try:
        current = services.registry.get_by_alias(model, "champion")
    except NotFoundError:
        return None
    if not (current.artifact_uri and current.artifact_sha256):
        return None
    champion: dict[str, Any] = {"version": current.version, "holdout_rows": len(holdout)}
    seen, unknown = _seen_by_champion(services, current, holdout, spec)
    if seen is None:
        rows = holdout
        champion.update(seen_check="unknown", seen_note=unknown, seen_rows_excluded=None, seen_rows_scored=None)
    else:
        rows = holdout.loc[~seen]
        champion.update(seen_check="fingerprints", seen_rows_excluded=int(seen.sum()), seen_rows_scored=0)
    champion["rows_scored"] = len(rows)
    if rows.empty:
        champion["error"] = (
            f"all {len(holdout)} holdout rows were in v{current.version}'s training data: the champion cannot be"
            " scored fairly on this holdout"
        )
        return champion
    champion["candidate_metrics"] = (
        candidate_metrics if len(rows) == len(holdout) else evaluate(candidate, rows, spec).finite_metrics()
    )
    try:
        champion_pipeline = load_artifact(_read_bytes(services, current.artifact_uri), current.artifact_sha256)
        champion["metrics"] = evaluate(champion_pipeline, rows, spec).finite_metrics()
    except MlopsError as exc:  # a champion that cannot score this holdout is reported, not fatal
        champion["error"] = str(exc)
    return champion


def _export_onnx(
    services: Services, upload: DatasetUpload, execution_name: str, pipeline: Any, holdout: Any, spec: ModelSpec
) -> dict[str, Any]:
    """Export the chosen pipeline to ONNX for serving without scikit-learn, checked on the holdout.

    A pipeline skl2onnx cannot convert, or whose ONNX predictions differ beyond the stated
    tolerance, is registered without an ONNX model (the reason is recorded); it is not an error.
    """
    from mlops.training.artifacts import sha256_hex
    from mlops.training.export import ONNX_FILE_NAME, check_onnx, export_onnx

    try:
        data = export_onnx(pipeline, spec)
        deltas = check_onnx(data, pipeline, holdout, spec)
    except MlopsError as exc:
        return {"error": str(exc)}
    key = f"{run_prefix(upload.model, execution_name)}{ONNX_FILE_NAME}"
    sha256 = sha256_hex(data)
    uri = _put(services, key, data, "application/octet-stream", sha256=sha256)
    return {"uri": uri, "sha256": sha256, "max_deltas": deltas}


def gate_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """The spec's gates on the evaluated candidate (thresholds, beat the champion by delta, fairness)."""
    from mlops.training.gate import gate

    services = services or Services.from_env()
    evaluation = event["evaluation"]
    spec = _spec_for(services, event["model"], int(event["spec_revision"]))
    champion = evaluation.get("champion") or {}
    fairness = None
    if spec.fairness.protected_attributes and evaluation.get("evaluation_uri"):
        # The disparate impact of the candidate's predictions is in the stored evaluation, not in
        # the state's payload (kept small).
        stored = json.loads(_read_bytes(services, evaluation["evaluation_uri"]))
        fairness = (stored.get("evaluation") or {}).get("fairness")
    result = gate(
        evaluation["metrics"],
        spec,
        champion.get("metrics"),
        fairness=fairness,
        compared_metrics=champion.get("candidate_metrics"),
    )
    return result.to_dict()


def _onnx_tags(onnx: dict[str, Any]) -> dict[str, str]:
    if onnx.get("uri"):
        return {"onnx_uri": onnx["uri"], "onnx_sha256": onnx["sha256"]}
    return {"onnx_error": str(onnx.get("error", "not exported"))[:500]}


def _existing_version(services: Services, model: str, execution: str) -> Any:
    """The version this execution already registered (a retried Register must not register twice)."""
    page = services.registry.list_versions(model, limit=20)
    return next((v for v in page.items if v.pipeline_execution == execution), None)


def register_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Register the evaluated candidate with its lineage, then write its model card next to it.

    The artifact's sha256 is checked before anything is written: no version without its artifact.
    Idempotent per execution, so a retried Register returns the version it already made.
    """
    from mlops.registry.modelcard import render_model_card

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    evaluation, gate_result, validation = event["evaluation"], event["gate"], event["validation"]
    status = event["status"]
    execution = event["execution"]
    best_candidate = evaluation["best"]
    artifact = _read_bytes(services, best_candidate["artifact_uri"])
    if hashlib.sha256(artifact).hexdigest() != best_candidate["artifact_sha256"]:
        raise CheckFailedError(
            f"{best_candidate['artifact_uri']}: sha256 differs from the trained artifact's; refusing to register it"
        )
    version = _existing_version(services, upload.model, execution)
    if version is None:
        training = best_candidate.get("training", {})
        version = services.registry.register_version(
            upload.model,
            actor=f"{PIPELINE_ACTOR}:{event.get('execution_name', '')}",
            metrics=evaluation["metrics"],
            params={"estimator": training.get("estimator"), **(training.get("params") or {})},
            spec_revision=int(validation["spec_revision"]),
            dataset_version=validation["dataset"],
            code_revision=_code_revision(),
            pipeline_execution=execution,
            artifact_uri=best_candidate["artifact_uri"],
            artifact_sha256=best_candidate["artifact_sha256"],
            tags={
                **_onnx_tags(evaluation.get("onnx") or {}),
                "profile_uri": evaluation["profile_uri"],
                # the reference of prediction drift (older evaluations have none)
                **({"predictions_uri": evaluation["predictions_uri"]} if evaluation.get("predictions_uri") else {}),
                "evaluation_uri": evaluation["evaluation_uri"],
                "validation_report": validation["report_uri"],
                # what the next run's evaluation leaves out of this version's holdout
                **_training_rows_tags(evaluation.get("training_rows")),
            },
            status=status,
            reason="; ".join(gate_result.get("reasons") or []) or None,
            request_id=request_id,
        )
    spec = _spec_for(services, upload.model, int(validation["spec_revision"]))
    full = json.loads(_read_bytes(services, evaluation["evaluation_uri"]))["evaluation"]
    training = best_candidate.get("training", {})
    card = render_model_card(
        spec,
        version.version,
        full["metrics"],
        full.get("slices", []),
        validation["dataset"],
        {
            "code_revision": version.code_revision,
            "pipeline_execution": execution,
            "artifact_uri": version.artifact_uri,
            "artifact_sha256": version.artifact_sha256,
            "spec_revision": version.spec_revision,
            "status": version.status.value,
            "candidates": evaluation.get("candidates_trained", 1),
            **training,
        },
        gate_result,
        evaluation.get("champion"),
        notes=full.get("notes"),
        confusion_matrix=full.get("confusion_matrix"),
        fairness=full.get("fairness"),
    )
    card_uri = _put(
        services, f"{version_prefix(upload.model, version.version)}model-card.md", card.encode(), "text/markdown"
    )
    # the gate's verdict and every check it made, beside the card (`mlops models diff`)
    _put(
        services,
        f"{version_prefix(upload.model, version.version)}gate.json",
        json.dumps(gate_result, default=str, indent=2).encode(),
        "application/json",
    )
    return {
        "model": upload.model,
        "version": version.version,
        "status": version.status.value,
        "artifact_uri": version.artifact_uri,
        "card_uri": card_uri,
        "metrics": version.metrics,
    }


def collect_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """A finished SageMaker training job -> the candidate record a Lambda-trained one has."""
    from mlops.training.sagemaker import collect_training_job

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    candidate = event["candidate"]
    artifact, record = collect_training_job(_read_bytes(services, event["job"]["ModelArtifacts"]["S3ModelArtifacts"]))
    key = f"{run_prefix(upload.model, event['execution_name'])}candidate-{candidate['index']}/model.pkl"
    uri = _put(services, key, artifact, "application/octet-stream", sha256=record["artifact_sha256"])
    return {**record, "index": candidate["index"], "artifact_uri": uri}


def record_failure(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """A failed run: one RUN item in the registry and one audit event, written together."""
    import contextlib

    from mlops.registry.keys import training_run_key
    from mlops.registry.tables import Condition, ConditionFailedError, Put

    services = services or Services.from_env()
    upload = event.get("upload") or {}
    model = upload.get("model") or PLATFORM_CHAIN
    failure = event.get("failure") or {}
    error = failure.get("error") or {}
    record = {
        "step": failure.get("step"),
        "error": error.get("Error"),
        "cause": str(error.get("Cause"))[:4000],
        "execution": event.get("execution"),
        "dataset": upload.get("key"),
        "version_id": upload.get("version_id"),
    }
    run = {
        **training_run_key(model, str(event.get("execution_name", request_id))),
        "kind": "run",
        "status": "FAILED",
        **{k: v for k, v in record.items() if v is not None},
    }
    # one RUN item per execution: a retried RecordFailure (its answer lost) writes nothing twice
    with contextlib.suppress(ConditionFailedError):
        services.registry.audit.append(
            model,
            actor=PIPELINE_ACTOR,
            action="pipeline.failed",
            subject=f"run/{event.get('execution_name')}",
            after=record,
            request_id=request_id,
            with_ops=[Put(services.registry.table, run, Condition(item_exists=False))],
        )
    return {"recorded": True, **record}
