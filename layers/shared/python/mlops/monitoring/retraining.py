"""What a drift-triggered retrain trains on, so that it can change something.

A monitor run that asks for retraining (``monitoring.retrain_on_drift``) starts the training
pipeline only on data the champion has not learnt from (docs/monitoring.md, "When a retrain
starts"):

1. **a newer dataset version**: the newest recorded version of the model's dataset uploaded after
   the champion's own dataset (or, for a champion without recorded lineage, after the champion was
   registered), with other content (sha256), that no registered version was trained on and that
   no training run is working on now (its upload's own run, or the monitor's last retrain);
2. else **a dataset built from labelled captures**: the requests the inference API captured,
   joined by request id to the labels uploaded in the label lookback, that the champion's dataset
   does not hold yet, appended to the champion's dataset rows (so the model does not forget what
   it knew; the hash split keeps every old row on its side, so this is leakage-safe). It is
   written under ``datasets/<model>/`` as a normal dataset version (validated by the pipeline)
   and recorded with its lineage (``extra.lineage``, :data:`CAPTURES_SOURCE`).

Otherwise the retrain is skipped with a reason that names what was looked at.

Examples
--------
>>> choice = choose_retrain_data(services, "churn", champion_version=3, state={}, now=now)  # doctest: +SKIP
>>> choice.kind, choice.reason  # doctest: +SKIP
(None, "no dataset newer than the champion's (v3: datasets/churn/a.csv ..., uploaded ...) and no ...")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops.data.trigger import execution_name
from mlops.errors import NotFoundError
from mlops.registry.specs import SpecStore
from mlops.storage import read_object

if TYPE_CHECKING:
    from mlops.data.datasets import DatasetVersion
    from mlops.monitoring.services import MonitorServices
    from mlops.spec.model import ModelSpec
from mlops.monitoring.capture_dataset import CAPTURES_SOURCE, CaptureDataset, _recorded_with, build_capture_dataset
from mlops.monitoring.champion import ChampionData, _moment, champion_data, describe_dataset, list_datasets

NEWER_SOURCE = "newer_dataset"


def _execution_status(services: MonitorServices, name: str) -> str | None:
    """The status of the training execution ``name`` (None: there is none; UNKNOWN: cannot tell)."""
    arn = services.settings.training_state_machine_arn
    if not arn or services.sfn is None:
        return "UNKNOWN"
    execution_arn = arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        return str(services.sfn.describe_execution(executionArn=execution_arn)["status"])
    except Exception as exc:
        if "ExecutionDoesNotExist" in type(exc).__name__ or "ExecutionDoesNotExist" in str(exc):
            return None
        return "UNKNOWN"


def _training_now(
    services: MonitorServices, dataset: DatasetVersion, model: str, state: Mapping[str, Any]
) -> str | None:
    """The name of a training run working on ``dataset`` now (its upload's run or the last retrain)."""

    names = []
    if dataset.bucket and dataset.version_id:
        names.append(execution_name(dataset.bucket, dataset.key, dataset.version_id, model))
    last = state.get("last_retrain_upload") or {}
    if state.get("last_retrain_execution") and last.get("version_id") == dataset.version_id:
        names.append(str(state["last_retrain_execution"]))
    for name in dict.fromkeys(names):
        if _execution_status(services, name) == "RUNNING":
            return name
    return None


def _failed_validation(
    services: MonitorServices, model: str, dataset: DatasetVersion, spec: ModelSpec | None
) -> str | None:
    """The failed checks of the dataset's validation against the current spec, if it failed one.

    Validated again under the same spec it fails again: only a changed spec (another
    fingerprint) or no report at all (the run never validated it) makes it worth a run.
    """
    # cold start: every monitor function loads this module; the training steps' modules only when retraining
    from mlops.training.steps.services import report_key

    if spec is None or services.s3 is None or not dataset.version_id:
        return None
    try:
        document = json.loads(
            read_object(services.s3, services.bucket, report_key(model, dataset.version_id, "validation.json"))
        )
    except Exception:
        return None
    if not isinstance(document, dict) or document.get("valid") is not False:
        return None
    if document.get("spec_fingerprint") != spec.fingerprint():
        return None
    failed = [str(c.get("check")) for c in document.get("checks") or [] if c.get("status") == "failed"]
    return ", ".join(dict.fromkeys(failed[:5])) or str(document.get("error") or "invalid")


def newer_datasets(
    services: MonitorServices,
    model: str,
    champion: ChampionData,
    state: Mapping[str, Any],
    spec: ModelSpec | None = None,
) -> tuple[list[DatasetVersion], list[str]]:
    """Recorded dataset versions a retrain can learn something new from (newest first), and notes
    on the newer versions left out (same content as the champion's, trained already, training now,
    invalid under the current ``spec``)."""
    eligible: list[DatasetVersion] = []
    notes: list[str] = []
    datasets = [d for d in list_datasets(services.registry, model) if d.bucket and d.version_id]
    datasets.sort(key=lambda d: (_moment(d.uploaded_at) or datetime.min.replace(tzinfo=UTC), str(d.version_id)))
    own = (champion.ref or {}).get("version_id")
    for dataset in reversed(datasets):
        if own and dataset.version_id == own:
            continue  # the champion's own training data
        when = _moment(dataset.uploaded_at)
        # S3 times are whole seconds: the same second is not older (content and training tell).
        if champion.since is not None and (when is None or when < champion.since):
            continue
        if champion.sha256 and dataset.sha256 == champion.sha256:
            notes.append(f"{describe_dataset(dataset)} holds the same content as the champion's")
            continue
        trained = champion.trained_on(dataset)
        if trained:
            notes.append(f"{describe_dataset(dataset)} is trained already ({trained})")
            continue
        running = _training_now(services, dataset, model, state)
        if running:
            notes.append(f"{describe_dataset(dataset)} is being trained now ({running})")
            continue
        invalid = _failed_validation(services, model, dataset, spec)
        if invalid:
            notes.append(f"{describe_dataset(dataset)} failed validation against the current spec ({invalid})")
            continue
        eligible.append(dataset)
    return eligible, notes


@dataclass(frozen=True)
class RetrainData:
    """What a retrain would train on: a recorded dataset, a dataset to build, or nothing (``reason``)."""

    kind: str | None  # NEWER_SOURCE, CAPTURES_SOURCE or None (skip)
    reason: str
    champion: ChampionData
    dataset: DatasetVersion | None = None
    build: CaptureDataset | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What the audit event and the run item say about the data."""
        if self.kind == NEWER_SOURCE and self.dataset is not None:
            return {
                "source": NEWER_SOURCE,
                "key": self.dataset.key,
                "version_id": self.dataset.version_id,
                "sha256": self.dataset.sha256,
                "rows": self.dataset.rows,
                "uploaded_at": self.dataset.uploaded_at,
                "champion_dataset": describe_dataset(self.champion.dataset or self.champion.ref),
            }
        if self.kind == CAPTURES_SOURCE and self.build is not None:
            lineage = self.build.lineage
            return {
                "source": CAPTURES_SOURCE,
                "sha256": self.build.sha256,
                "rows": self.build.rows,
                "labelled_rows": self.build.labelled_rows,
                "base_rows": self.build.base_rows,
                "base_dataset": lineage.get("base_dataset"),
                "label_objects": len(lineage.get("label_objects") or []),
                "capture_objects": lineage.get("capture_objects"),
                "labels_window": lineage.get("labels_window"),
            }
        return {}


def choose_retrain_data(
    services: MonitorServices,
    model: str,
    *,
    champion_version: int | None,
    state: Mapping[str, Any],
    now: datetime,
    spec: ModelSpec | None = None,
) -> RetrainData:
    """A newer dataset version, else a dataset built from labelled captures, else why neither.

    ``spec`` is the spec the pipeline validates the data against (the latest revision by default).
    """
    champion = champion_data(services.registry, model, champion_version)
    missing_spec = None
    if spec is None:
        try:
            spec = SpecStore(services.registry).get(model).spec()
        except NotFoundError as exc:
            missing_spec = str(exc)
    eligible, notes = newer_datasets(services, model, champion, state, spec)
    if eligible:
        return RetrainData(NEWER_SOURCE, "", champion, dataset=eligible[0], notes=notes)
    newer = f"no dataset newer than the champion's ({champion.describe()})"
    if notes:
        newer += " that a retrain could learn from: " + "; ".join(notes)
    if services.s3 is None:
        return RetrainData(None, f"{newer}; captures are not readable here", champion, notes=notes)
    if spec is None:
        return RetrainData(None, f"{newer}; no spec to build a dataset with ({missing_spec})", champion, notes=notes)
    build, why = build_capture_dataset(services, model, spec, champion, now)
    if build is None:
        return RetrainData(None, f"{newer}, and no dataset from labelled captures: {why}", champion, notes=notes)
    same = _recorded_with(services.registry, model, build.sha256)
    claimed = (state.get("last_retrain_build") or {}).get("sha256")
    if same is not None or claimed == build.sha256:
        where = describe_dataset(same) if same is not None else "by a run still starting it"
        trained = champion.trained_on(same) if same is not None else None
        return RetrainData(
            None,
            f"{newer}, and the dataset the labelled captures make ({build.labelled_rows} labelled row(s)) "
            f"was built before ({where}{'; trained: ' + trained if trained else ''})",
            champion,
            notes=notes,
        )
    return RetrainData(CAPTURES_SOURCE, "", champion, build=build, notes=notes)
