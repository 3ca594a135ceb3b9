"""The training pipeline's step contracts (``statemachines/training.asl.json``).

Validate -> PlanTraining -> (StageSageMakerInput -> TrainOnSageMaker | TrainCandidates) -> Evaluate
-> CheckOnnx -> Gate -> Register | RegisterRejected -> HandToDeployment; any failure -> RecordFailure.
Loosely shaped documents that only the next step's domain code reads (metrics, the training
summary, the champion's comparison) stay ``dict[str, Any]``: the contract names the fields the
state machine and the handlers pass, not every key a report carries.
"""

from __future__ import annotations

from typing import Any, Literal

from mlops.contracts.base import Contract, Document, Machine, Step

# ------------------------------------------------------------------------------------------ shared


class Upload(Contract):
    """One uploaded object version under ``datasets/<model>/`` (the execution's input)."""

    bucket: str
    key: str
    version_id: str
    model: str
    size: int | None = None
    uploader: str | None = None
    event_time: str | None = None
    imported: dict[str, Any] | None = None  # an imported model evaluated on this dataset version


class SageMakerJob(Contract):
    """A candidate's training-job settings (``backend: sagemaker`` only)."""

    name: str
    image: str
    instance_type: str
    input_uri: str
    output_uri: str
    hyperparameters: dict[str, str]


class Candidate(Contract):
    """One planned candidate: its search parameters, the fixed holdout file, its training job."""

    index: int
    params: dict[str, Any]
    holdout: dict[str, Any] | None = None
    job: SageMakerJob | None = None
    imported: dict[str, Any] | None = None  # the imported model this candidate is (nothing to train)
    code: dict[str, Any] | None = None  # the code version a training.entry_point runs (its lineage)


class StagedInput(Contract):
    """Where StageSageMakerInput copies the dataset version (a job's channel names no version)."""

    bucket: str
    key: str
    copy_source: str


class OnnxExport(Contract):
    """Evaluate's ONNX export: the file and the check's input (each with its sha256), or why there is none."""

    uri: str | None = None
    sha256: str | None = None
    check_uri: str | None = None
    check_sha256: str | None = None
    error: str | None = None
    # the model's library is in no Lambda function (XGBoost): it serves only through this export, so a
    # failed check fails the run instead of registering a version no function could serve
    serves_only_onnx: bool | None = None


class TrainedCandidate(Contract):
    """A trained candidate: its artifact, its metrics on its holdout, the training summary."""

    index: int
    params: dict[str, Any]
    artifact_uri: str
    artifact_sha256: str
    metrics: dict[str, Any]
    training: dict[str, Any]
    holdout: dict[str, Any] | None = None
    onnx: OnnxExport | None = None  # a SageMaker job's own export (CollectCandidate), checked by CheckOnnx


# ----------------------------------------------------------------------------------------- Validate


class ValidateInput(Contract):
    upload: Upload
    execution: str | None = None


class ValidateOutput(Contract):
    valid: bool
    report_uri: str
    summary: str
    dataset: dict[str, Any]
    spec_revision: int | None


# ------------------------------------------------------------------------------------- PlanTraining


class PlanInput(Contract):
    spec_revision: int
    upload: Upload
    execution: str | None = None
    execution_name: str


class PlanOutput(Contract):
    candidates: list[Candidate]
    backend: Literal["lambda", "sagemaker"]
    metric: str
    input: StagedInput | None


# ------------------------------------------------------------------- TrainCandidate, CollectCandidate


class TrainInput(Contract):
    """One item of TrainCandidates: the whole item is the Payload."""

    candidate: Candidate
    upload: Upload
    spec_revision: int
    execution: str | None = None
    execution_name: str


class CollectInput(Contract):
    """One item of TrainOnSageMaker after its training job: the whole item is the Payload."""

    candidate: Candidate
    upload: Upload
    execution_name: str
    job: dict[str, Any]  # DescribeTrainingJob's answer (ModelArtifacts.S3ModelArtifacts is read)


# ----------------------------------------------------------------------------------------- Evaluate


class EvaluateInput(Contract):
    candidates: list[TrainedCandidate]
    spec_revision: int
    upload: Upload
    execution: str | None = None
    execution_name: str


class Evaluation(Contract):
    """The best candidate evaluated, against the champion, with the run's artifacts."""

    best: TrainedCandidate
    metric: str
    metrics: dict[str, Any]
    champion: dict[str, Any] | None
    split: dict[str, Any]
    training_rows: dict[str, Any] | None
    profile_uri: str
    predictions_uri: str | None = None
    evaluation_uri: str
    candidates_trained: int
    onnx: OnnxExport
    # the decision threshold (binary classification): how set, its value on the holdout
    threshold: dict[str, Any] | None = None


class Evaluated(Document):
    result: Evaluation


# ---------------------------------------------------------------------------------------- CheckOnnx


class CheckOnnxInput(Contract):
    onnx: OnnxExport
    model: str
    execution_name: str


class OnnxCheck(Contract):
    """The checked export (what Register records as the version's ``onnx_uri``), or why there is none."""

    uri: str | None = None
    sha256: str | None = None
    max_deltas: dict[str, float] | None = None
    error: str | None = None


class OnnxChecked(Document):
    result: OnnxCheck


# --------------------------------------------------------------------------------------------- Gate


class GateInput(Contract):
    evaluation: Evaluation
    spec_revision: int
    model: str


class GateOutput(Contract):
    passed: bool
    reasons: list[str]
    checks: list[dict[str, Any]]


# ----------------------------------------------------------------------------- Register(Rejected)


class RegisterInput(Contract):
    evaluation: Evaluation
    onnx: OnnxCheck
    gate: GateOutput
    validation: ValidateOutput
    upload: Upload
    execution: str
    execution_name: str
    status: Literal["PENDING_APPROVAL", "REJECTED"]


class Registered(Contract):
    model: str
    version: int
    status: str
    artifact_uri: str | None
    card_uri: str
    metrics: dict[str, Any]


class RegisteredResult(Document):
    result: Registered


# ---------------------------------------------------------------------------------- HandToDeployment


class HandoffInput(Contract):
    model: str
    version: int
    training_execution_name: str


class HandoffOutput(Contract):
    deployment_execution: str
    name: str


# ------------------------------------------------------------------------------------ RecordFailure


class Failure(Contract):
    """What a ``Failed<State>`` Pass state writes at ``$.failure``."""

    step: str
    error: dict[str, Any]  # the Catch's {"Error", "Cause"}


class RecordFailureInput(Contract):
    failure: Failure
    upload: Upload | None = None
    execution: str | None = None
    execution_name: str


class RecordFailureOutput(Contract):
    recorded: bool
    step: str | None = None
    error: str | None = None
    cause: str | None = None
    execution: str | None = None
    dataset: str | None = None
    version_id: str | None = None


# ------------------------------------------------------------------------------------ the documents


class TrainingRun(Document):
    """``$`` between states: the execution input plus each state's result at its ``ResultPath``.

    After ``CandidateRegistered`` (a Pass state without ResultPath) ``$`` is the outcome instead:
    ``model``, ``version`` and the registered version's fields, which HandToDeployment reads.
    """

    upload: Upload
    validation: ValidateOutput | None = None
    plan: PlanOutput | None = None
    candidates: list[TrainedCandidate] | None = None
    evaluation: Evaluated | None = None
    onnx: OnnxChecked | None = None
    gate: GateOutput | None = None
    registered: RegisteredResult | None = None
    failure: Failure | None = None
    error: dict[str, Any] | None = None
    notification_error: dict[str, Any] | None = None
    record_error: dict[str, Any] | None = None
    # the outcome's fields (CandidateRegistered) and the hand-off's result
    outcome: str | None = None
    model: str | None = None
    version: int | None = None
    handoff: dict[str, Any] | None = None
    handoff_error: dict[str, Any] | None = None


class TrainItem(Document):
    """``$`` inside one TrainCandidates item (its ItemSelector)."""

    candidate: Candidate
    upload: Upload
    spec_revision: int
    execution: str | None = None
    execution_name: str


class SageMakerItem(Document):
    """``$`` inside one TrainOnSageMaker item (its ItemSelector, then RunTrainingJob's ``$.job``)."""

    candidate: Candidate
    upload: Upload
    execution_name: str
    job: dict[str, Any] | None = None


MACHINE = Machine(
    asl="training.asl.json",
    document=TrainingRun,
    steps={
        "Validate": Step(ValidateInput, ValidateOutput, "functions/validate/handler.handler"),
        "PlanTraining": Step(PlanInput, PlanOutput, "functions/train/handler.plan"),
        "TrainCandidate": Step(TrainInput, TrainedCandidate, "functions/train/handler.train"),
        "CollectCandidate": Step(CollectInput, TrainedCandidate, "functions/train/handler.collect"),
        "Evaluate": Step(EvaluateInput, Evaluation, "functions/evaluate/handler.handler"),
        "CheckOnnx": Step(CheckOnnxInput, OnnxCheck, "functions/check_onnx/handler.handler"),
        "Gate": Step(GateInput, GateOutput, "functions/gate/handler.handler"),
        "Register": Step(RegisterInput, Registered, "functions/register/handler.handler"),
        "RegisterRejected": Step(RegisterInput, Registered, "functions/register/handler.handler"),
        "HandToDeployment": Step(HandoffInput, HandoffOutput, "functions/start_deployment/handler.handler"),
        "RecordFailure": Step(RecordFailureInput, RecordFailureOutput, "functions/record_failure/handler.handler"),
    },
    items={"TrainOnSageMaker": SageMakerItem, "TrainCandidates": TrainItem},
)
