"""The run's outcome: the Gate's verdict, the Register state's version (idempotent per run) with its
model card, or the failed run recorded (RecordFailure)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlops.data.trigger import DatasetUpload
from mlops.errors import CheckFailedError
from mlops.registry.audit import PLATFORM_CHAIN
from mlops.registry.failures import failure_fields
from mlops.registry.failures import record_failure as record_run_failure
from mlops.registry.keys import training_run_key
from mlops.registry.origin import origin_tags
from mlops.registry.serving_path import ONNX_ERROR_TAG, SERVING_PATH_TAG, describe_serving
from mlops.training.code import code_tags
from mlops.training.steps.services import (
    PIPELINE_ACTOR,
    Services,
    code_revision,
    put,
    read_bytes,
    spec_for,
    version_prefix,
)


def _training_rows_tags(training_rows: dict[str, Any] | None) -> dict[str, str]:
    if not training_rows:
        return {}
    return {
        "training_rows_uri": training_rows["uri"],
        "training_rows_sha256": training_rows["sha256"],
        "training_rows_columns": json.dumps(training_rows["columns"], sort_keys=True, separators=(",", ":")),
        "training_rows_encoding": str(training_rows["encoding"]),
    }


def gate_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """The spec's gates on the evaluated candidate (thresholds, beat the champion by delta, fairness)."""
    # here, not at the top: RecordFailure also imports this module, on a function without the science layer
    from mlops.training.gate import gate

    services = services or Services.from_env()
    evaluation = event["evaluation"]
    spec = spec_for(services, event["model"], int(event["spec_revision"]))
    champion = evaluation.get("champion") or {}
    fairness = None
    if spec.fairness.protected_attributes and evaluation.get("evaluation_uri"):
        # The disparate impact of the candidate's predictions is in the stored evaluation, not in
        # the state's payload (kept small).
        stored = json.loads(read_bytes(services, evaluation["evaluation_uri"]))
        fairness = (stored.get("evaluation") or {}).get("fairness")
    result = gate(
        evaluation["metrics"],
        spec,
        champion.get("metrics"),
        fairness=fairness,
        compared_metrics=champion.get("candidate_metrics"),
        decision_threshold=evaluation.get("threshold"),
    )
    return result.to_dict()


def _threshold_tags(threshold: dict[str, Any] | None) -> dict[str, str]:
    """The decision threshold the inference function and monitoring read (JSON, see mlops.training.threshold)."""
    if not threshold:
        return {}
    # mlops.training.threshold.THRESHOLD_TAG, not imported: it loads numpy, and RecordFailure imports this module
    return {"decision_threshold": json.dumps(threshold, sort_keys=True, separators=(",", ":"), default=str)}


def _onnx_tags(onnx: dict[str, Any]) -> dict[str, str]:
    """The version's serving path and ONNX tags from CheckOnnx's result: the checked export (``onnx``),
    or why it has none (``python``: served by the fallback function, mlops.registry.serving_path)."""
    if onnx.get("uri"):
        return {"onnx_uri": onnx["uri"], "onnx_sha256": onnx["sha256"], SERVING_PATH_TAG: "onnx"}
    # Not a failure: the pickled pipeline is served by the fallback function (mlops.registry.serving_path).
    return {ONNX_ERROR_TAG: str(onnx.get("error", "not exported"))[:500], SERVING_PATH_TAG: "python"}


def _existing_version(services: Services, model: str, execution: str) -> Any:
    """The version this execution already registered (a retried Register must not register twice)."""
    page = services.registry.list_versions(model, limit=20)
    return next((v for v in page.items if v.pipeline_execution == execution), None)


def register_candidate(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Register the evaluated candidate with its lineage, then write its model card next to it.

    The artifact's sha256 is checked before anything is written: no version without its artifact.
    Idempotent per execution, so a retried Register returns the version it already made. Its ONNX
    model is CheckOnnx's result (``event["onnx"]``): the checked export, or ``onnx_error`` and why.
    """
    # here, not at the top: only Register renders a card (Gate and RecordFailure import this module too)
    from mlops.registry.modelcard import render_model_card

    services = services or Services.from_env()
    upload = DatasetUpload(**event["upload"])
    evaluation, gate_result, validation = event["evaluation"], event["gate"], event["validation"]
    status = event["status"]
    execution = event["execution"]
    best_candidate = evaluation["best"]
    artifact = read_bytes(services, best_candidate["artifact_uri"])
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
            code_revision=code_revision(),
            pipeline_execution=execution,
            artifact_uri=best_candidate["artifact_uri"],
            artifact_sha256=best_candidate["artifact_sha256"],
            tags={
                **_onnx_tags(event.get("onnx") or {}),
                "profile_uri": evaluation["profile_uri"],
                # the reference of prediction drift (older evaluations have none)
                **({"predictions_uri": evaluation["predictions_uri"]} if evaluation.get("predictions_uri") else {}),
                "evaluation_uri": evaluation["evaluation_uri"],
                "validation_report": validation["report_uri"],
                # what the next run's evaluation leaves out of this version's holdout
                **_training_rows_tags(evaluation.get("training_rows")),
                # a model trained elsewhere: its format, sha256, source, verified uploader, source run
                **origin_tags(best_candidate),
                # how a probability becomes a label, for serving, monitoring and the next champion comparison
                **_threshold_tags(evaluation.get("threshold")),
                # the code package a training.entry_point ran: version, sha256, entry point (lineage)
                **code_tags(training.get("code")),
            },
            status=status,
            reason="; ".join(gate_result.get("reasons") or []) or None,
            request_id=request_id,
        )
    spec = spec_for(services, upload.model, int(validation["spec_revision"]))
    full = json.loads(read_bytes(services, evaluation["evaluation_uri"]))["evaluation"]
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
            # which function serves it, its measured cold start, and why not ONNX when not
            **describe_serving(version.tags),
        },
        gate_result,
        evaluation.get("champion"),
        notes=full.get("notes"),
        confusion_matrix=full.get("confusion_matrix"),
        fairness=full.get("fairness"),
        threshold=evaluation.get("threshold"),
    )
    card_uri = put(
        services, f"{version_prefix(upload.model, version.version)}model-card.md", card.encode(), "text/markdown"
    )
    # the gate's verdict and every check it made, beside the card (`mlops models diff`)
    put(
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


def record_failure(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """A failed run: one RUN item in the registry and one audit event, written together, once per run."""
    services = services or Services.from_env()
    upload = event.get("upload") or {}
    model = upload.get("model") or PLATFORM_CHAIN
    failure = event.get("failure") or {}
    record = {
        "step": failure.get("step"),
        **failure_fields(failure.get("error"), cause_limit=4000),
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
    return record_run_failure(
        services.registry,
        model,
        actor=PIPELINE_ACTOR,
        action="pipeline.failed",
        subject=f"run/{event.get('execution_name')}",
        record=record,
        item=run,
        request_id=request_id,
    )
