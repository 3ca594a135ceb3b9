"""The Evaluate state: the best candidate, scored on its holdout and against the champion on the
rows the champion did not train on; the run's profile, predictions, fingerprints and ONNX export
(with the check's input: the CheckOnnx state runs the export, where onnxruntime is).

A model whose library this function does not have (``mlops.spec.model.SAGEMAKER_ONLY_ESTIMATORS``:
XGBoost, which does not fit beside the science layer) is scored from the ONNX export its SageMaker
training job made, with ``onnx.reference`` as an imported ONNX model is scored
(:class:`mlops.training.imported.OnnxReferenceModel`); as the champion, from its registered ONNX
model. The job's export and the job's own answers on the holdout go on to CheckOnnx.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlops.data.profile import profile_frame
from mlops.data.trigger import DatasetUpload
from mlops.errors import CheckFailedError, MlopsError, NotFoundError
from mlops.registry.origin import IMPORT_FORMATS, imported_of
from mlops.spec.model import LOWER_IS_BETTER, SAGEMAKER_ONLY_ESTIMATORS, ModelSpec
from mlops.training.artifacts import load_artifact, sha256_hex
from mlops.training.code import code_from_tags
from mlops.training.evaluation import evaluate
from mlops.training.export import ONNX_FILE_NAME, check_document, export_onnx
from mlops.training.fingerprints import (
    ROW_HASH_ENCODING,
    fingerprint_bytes,
    hash_kinds,
    load_fingerprints,
    row_fingerprints,
)
from mlops.training.holdout import holdout_document
from mlops.training.imported import OnnxReferenceModel, export_imported_onnx, load_imported
from mlops.training.onnx_check import CHECK_FILE_NAME, CHECK_ROWS
from mlops.training.onnx_model import ONNX_TAG_SHA256, ONNX_TAG_URI
from mlops.training.search import best, leaderboard
from mlops.training.split import prepare_split
from mlops.training.steps.candidates import activate, holdout_file, training_frame
from mlops.training.steps.imports import imported_onnx
from mlops.training.steps.services import (
    Services,
    put,
    read_bytes,
    run_prefix,
    spec_for,
)
from mlops.training.threshold import DecisionThreshold


def holdout_predictions(
    pipeline: Any, holdout: Any, spec: ModelSpec, limit: int = 20_000, threshold: DecisionThreshold | None = None
) -> str:
    """The model's predictions on its holdout as JSON: the reference of prediction drift, and with
    the labels and probabilities, the registered side of performance drift (its uncertainty)."""

    return json.dumps(holdout_document(pipeline, holdout, spec, limit=limit, threshold=threshold))


def candidate_threshold(candidate: Mapping[str, Any], spec: ModelSpec) -> DecisionThreshold | None:
    """The decision threshold training set for a candidate (its training summary's ``threshold``).

    A candidate whose summary records none takes the spec's fixed threshold. An imported model's
    objective threshold is chosen by the import step on the dataset version's training rows and
    recorded in its summary like a trained candidate's
    (:func:`mlops.training.threshold.choose_threshold_for_fitted`).
    """

    recorded = DecisionThreshold.from_dict((candidate.get("training") or {}).get("threshold"))
    fixed = spec.training.threshold
    if recorded is None and isinstance(fixed, float):
        return DecisionThreshold(value=fixed, positive_class=spec.positive_class)
    return recorded


def evaluate_candidates(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Pick the best candidate; evaluate it on its holdout and against the champion; profile the data.

    The candidate's metrics are on its whole holdout. The champion is scored only on holdout rows
    it did not train on (its registered training-row fingerprints say which), and the candidate
    is scored again on exactly those rows, so the gate compares like with like. The training
    rows' fingerprints are stored with the run, for the next run to do the same with this one.
    """

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    spec = spec_for(services, upload.model, int(event["spec_revision"]))
    candidates = event["candidates"]
    search = spec.training.search
    metric = (search.metric if search is not None and search.metric else None) or spec.primary_metric
    chosen = best(candidates, metric, metric in LOWER_IS_BETTER)
    frame = training_frame(services, upload, spec)
    fixed = holdout_file(services, chosen.get("holdout"), spec)
    train_frame, holdout, _, split_info = prepare_split(frame, spec, fixed)
    imported = imported_of(chosen)
    data = read_bytes(services, chosen["artifact_uri"])
    onnx_only = spec.training.estimator in SAGEMAKER_ONLY_ESTIMATORS
    if imported:
        pipeline = load_imported(data, chosen["artifact_sha256"], imported["format"], spec)
    elif onnx_only:
        export = chosen.get("onnx") or {}
        if not export.get("uri"):
            raise CheckFailedError(
                f"candidate {chosen.get('index', 0)}: {spec.training.estimator} is scored from the ONNX export its"
                f" training job made (its library is in no Lambda function), and the job made none:"
                f" {export.get('error') or 'no onnx in its record'}"
            )
        pipeline = onnx_scored(services, export["uri"], export["sha256"], spec)
    else:
        code = (chosen.get("training") or {}).get("code")
        if code:
            activate(services, code)
        pipeline = load_artifact(data, chosen["artifact_sha256"], code_modules=[code["package"]] if code else ())
    threshold = candidate_threshold(chosen, spec)
    scored = evaluate(pipeline, holdout, spec, threshold)
    if threshold is not None:
        threshold = threshold.with_holdout(scored.metrics)
    evaluation = scored.to_dict()
    prefix = run_prefix(upload.model, event["execution_name"])
    # An imported model's training rows are unknown: none are recorded (the next run's champion
    # comparison then says so instead of trusting rows this model may never have seen).
    training_rows = None if imported else _put_training_rows(services, prefix, train_frame, spec)
    holdout_rows_uri = put(
        services,
        f"{prefix}holdout-rows.json",
        json.dumps({"split": split_info.to_dict(), "rows": [int(i) for i in holdout.index]}).encode(),
        "application/json",
    )
    champion = _score_champion(services, upload.model, pipeline, holdout, spec, scored.finite_metrics(), threshold)

    onnx = (
        imported_onnx(chosen)
        or _job_export(chosen, onnx_only)
        or _export_onnx(
            services,
            upload,
            event["execution_name"],
            pipeline,
            holdout,
            spec,
            imported=bool(imported),
            threshold=threshold,
        )
    )
    profile = profile_frame(train_frame, spec)
    profile_json = profile.to_json()
    profile_uri = put(services, f"{prefix}profile.json", profile_json.encode(), "application/json")
    split = {**split_info.to_dict(), "holdout_rows_uri": holdout_rows_uri}
    evaluation_uri = put(
        services,
        f"{prefix}evaluation.json",
        json.dumps(
            {
                "candidate": chosen,
                "evaluation": evaluation,
                "threshold": None if threshold is None else threshold.to_dict(),
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
    predictions_uri = put(
        services,
        f"{prefix}predictions.json",
        holdout_predictions(pipeline, holdout, spec, threshold=threshold).encode(),
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
        "threshold": None if threshold is None else threshold.to_dict(),
    }


def onnx_scored(services: Services, uri: str, sha256: str, spec: ModelSpec) -> OnnxReferenceModel:
    """An ONNX model (sha256-checked) as scikit-learn's interface, run by ``onnx.reference``."""

    data = read_bytes(services, uri)
    if sha256_hex(data) != sha256:
        raise CheckFailedError(f"{uri}: sha256 differs from the one recorded; refusing to score it")
    return OnnxReferenceModel(data, spec)


def _job_export(candidate: Mapping[str, Any], onnx_only: bool) -> dict[str, Any] | None:
    """The training job's own export, for a model only ONNX can serve: CheckOnnx compares it with the
    answers the job recorded with the library itself (there is nothing here to export it from)."""

    if not onnx_only:
        return None
    return {**candidate["onnx"], "serves_only_onnx": True}


def _put_training_rows(services: Services, prefix: str, train_frame: Any, spec: ModelSpec) -> dict[str, Any]:
    """The training rows' fingerprints (sorted distinct uint64, ``.npy``) beside the run's artifacts."""

    kinds = hash_kinds(spec)
    data = fingerprint_bytes(row_fingerprints(train_frame, spec, kinds))
    sha256 = hashlib.sha256(data).hexdigest()
    uri = put(services, f"{prefix}training-rows.npy", data, "application/octet-stream", sha256=sha256)
    return {"uri": uri, "sha256": sha256, "rows": len(train_frame), "columns": kinds, "encoding": ROW_HASH_ENCODING}


def _seen_by_champion(services: Services, champion: Any, holdout: Any, spec: ModelSpec) -> tuple[Any, str | None]:
    """Which holdout rows the champion trained on (a boolean array), or ``None`` and why that is unknown."""

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
        data = read_bytes(services, uri)
    except Exception as exc:  # a missing or unreadable artifact makes the answer unknown, not the run fail
        return None, f"{uri} cannot be read ({exc})"
    if hashlib.sha256(data).hexdigest() != sha256:
        return None, f"{uri}: sha256 differs from the registry's; not used"
    trained = load_fingerprints(data, uri)
    return np.isin(row_fingerprints(holdout, spec, stored), trained), None


def _score_champion(
    services: Services,
    model: str,
    candidate: Any,
    holdout: Any,
    spec: ModelSpec,
    candidate_metrics: dict[str, Any],
    threshold: DecisionThreshold | None = None,
) -> dict[str, Any] | None:
    """The champion and the candidate on the holdout rows the champion did not train on.

    Each labels rows by its own decision threshold (the champion's as registered), as each
    would answer if served.
    """

    try:
        current = services.registry.get_by_alias(model, "champion")
    except NotFoundError:
        return None
    if not (current.artifact_uri and current.artifact_sha256):
        return None
    champion: dict[str, Any] = {"version": current.version, "holdout_rows": len(holdout)}
    tags = current.tags or {}
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
        candidate_metrics if len(rows) == len(holdout) else evaluate(candidate, rows, spec, threshold).finite_metrics()
    )
    champion_threshold = DecisionThreshold.from_tags(current.tags)
    if champion_threshold is not None:
        champion["threshold"] = champion_threshold.value
    try:
        data = read_bytes(services, current.artifact_uri)
        if tags.get("artifact_format") in IMPORT_FORMATS:  # an imported champion (ONNX or its own columns)
            champion_pipeline = load_imported(data, current.artifact_sha256, tags["artifact_format"], spec)
        elif (current.params or {}).get("estimator") in SAGEMAKER_ONLY_ESTIMATORS:  # its library is not here
            if not (tags.get(ONNX_TAG_URI) and tags.get(ONNX_TAG_SHA256)):
                raise CheckFailedError(
                    f"v{current.version} ({current.params['estimator']}) has no ONNX model to be scored from"
                )
            champion_pipeline = onnx_scored(services, tags[ONNX_TAG_URI], tags[ONNX_TAG_SHA256], spec)
        else:
            code = code_from_tags(current.tags)
            if code:
                activate(services, code)
            champion_pipeline = load_artifact(
                data, current.artifact_sha256, code_modules=[code["package"]] if code else ()
            )
        champion["metrics"] = evaluate(champion_pipeline, rows, spec, champion_threshold).finite_metrics()
    except MlopsError as exc:  # a champion that cannot score this holdout is reported, not fatal
        champion["error"] = str(exc)
    return champion


def _export_onnx(
    services: Services,
    upload: DatasetUpload,
    execution_name: str,
    pipeline: Any,
    holdout: Any,
    spec: ModelSpec,
    *,
    imported: bool = False,
    threshold: DecisionThreshold | None = None,
) -> dict[str, Any]:
    """Export the chosen pipeline to ONNX for serving without scikit-learn, with the check's input.

    Both go beside the run's artifacts: ``model.onnx`` and ``onnx-check.json`` (up to
    ``CHECK_ROWS`` holdout rows as request records and scikit-learn's answers for them), each
    with its sha256; the CheckOnnx state compares them. A pipeline skl2onnx cannot convert is
    registered without an ONNX model (the reason is recorded); it is not an error.
    """

    try:
        data = export_imported_onnx(pipeline, spec) if imported else export_onnx(pipeline, spec)
    except MlopsError as exc:
        return {"error": str(exc)}
    prefix = run_prefix(upload.model, execution_name)
    sha256 = sha256_hex(data)
    uri = put(services, f"{prefix}{ONNX_FILE_NAME}", data, "application/octet-stream", sha256=sha256)
    check = json.dumps(check_document(pipeline, holdout, spec, limit=CHECK_ROWS, threshold=threshold)).encode()
    check_sha256 = sha256_hex(check)
    check_uri = put(services, f"{prefix}{CHECK_FILE_NAME}", check, "application/json", sha256=check_sha256)
    return {"uri": uri, "sha256": sha256, "check_uri": check_uri, "check_sha256": check_sha256}
