"""The batch-scoring state machine's step contracts (``statemachines/batch.asl.json``).

One job scores one input object with one pinned model version: ``Start`` (:class:`StartRequest`
-> :class:`Job`) pins the version and the input's VersionId and sha256 (and stages a gzip input
uncompressed); ``ChooseReader`` picks the Distributed Map whose ItemReader reads the input's format
(``ScoreCsv`` or ``ScoreJsonl``); its ItemBatcher hands ``Score`` (:class:`ScoreRequest` ->
:class:`Scored`) a batch of rows (:class:`BatchItem`, each :class:`Row` numbered by its place in
the input); ``Finish`` (:class:`FinishRequest` -> :class:`Manifest`) assembles the batches' result
objects in input order. :class:`BatchRun` is the state document. Standard library and pydantic only.
"""

from __future__ import annotations

from typing import Any, Literal

from mlops.contracts.base import Contract, Document, Machine, Step

InputFormat = Literal["csv", "csv.gz", "jsonl"]
ReaderFormat = Literal["CSV", "JSONL"]


class BatchInput(Contract):
    """The execution input (``mlops batch start``, an upload under ``batch/<model>/``, a schedule)."""

    model: str
    bucket: str
    key: str
    version_id: str | None = None  # the object version to score (default: the newest at start)
    version: int | None = None  # the model version (default: the champion at start)
    output_prefix: str | None = None  # where the results go (default: batch-jobs/<model>/<job id>/)
    job_id: str | None = None
    trigger: str | None = None  # cli | upload | schedule
    # Who or what started the job, written by the starter only (the batch API's function: the IAM
    # identity API Gateway verified; the upload starter: upload:<key>@<VersionId>; the scheduler:
    # schedule:<expression>@<due time>). Only those three roles may start the batch machine.
    started_by: str | None = None
    # The API request that started it: two requests are two inputs, so of concurrent starts of one
    # job (same name) exactly one starts it (Step Functions returns a running execution to a second
    # start with the same name and the same input, as if it had started it).
    request_id: str | None = None


class StartRequest(Contract):
    """The ``Start`` state's Payload: the execution input and the execution's id and name."""

    input: BatchInput
    execution: str | None = None
    execution_name: str | None = None


class Job(Contract):
    """What ``Start`` pinned (``$.job``): version, input object version, where results go."""

    job_id: str
    model: str
    version: int
    spec_revision: int | None = None
    bucket: str
    key: str
    version_id: str | None = None
    sha256: str
    size: int
    format: InputFormat
    reader: ReaderFormat  # the ItemReader's InputType
    reader_key: str  # the object the ItemReader reads (the input, or its uncompressed copy)
    reader_version_id: str
    prefix: str  # batch-jobs/<model>/<job id> (no trailing slash)
    output_bucket: str
    started_at: str
    trigger: str
    actor: str  # the audit actor: started_by, or pipeline:<execution name> when the input names none
    started_by: str | None = None
    execution: str | None = None
    batch_size: int  # the ItemBatcher's MaxItemsPerBatchPath (config: batch_size)
    max_concurrency: int  # the Distributed Map's MaxConcurrencyPath (config: batch_max_concurrency)
    capture_rate: float = 0.0


class Row(Contract):
    """One input row of a batch: its 0-based place in the input (header excluded) and its values."""

    row: int
    values: Any


class BatchJob(Contract):
    """The ItemBatcher's BatchInput: the pinned job, the same for every batch."""

    job: Job


class BatchItem(Contract):
    """``$`` of one Distributed Map child: a batch of rows (ItemBatcher) and the job."""

    Items: list[Row]
    BatchInput: BatchJob


class ScoreRequest(Contract):
    """The ``Score`` state's Payload (inside the Map)."""

    items: list[Row]
    job: Job


class Scored(Contract):
    """A batch's result object, written to ``<prefix>/parts/<first row>.json`` (idempotent)."""

    first_row: int
    rows: int
    scored: int
    refused: int
    key: str


class FinishRequest(Contract):
    """The ``Finish`` state's Payload."""

    job: Job
    execution: str | None = None


class Manifest(Contract):
    """The job's manifest (``<prefix>/manifest.json``, and ``$.manifest``)."""

    job_id: str
    model: str
    version: int
    spec_revision: int | None = None
    input: dict[str, Any]  # {uri, bucket, key, version_id, sha256, size, format}
    rows: int
    scored: int
    refused: int
    batches: int
    output: dict[str, Any]  # {uri, key, sha256, rows}
    errors: dict[str, Any]  # {uri, key, sha256, rows}
    manifest_key: str
    started_at: str
    finished_at: str
    duration_s: float
    trigger: str
    actor: str
    started_by: str | None = None
    execution: str | None = None
    captured: int = 0


class BatchRun(Document):
    """The state document: the execution input, then ``{"job"}`` from Start on, then the manifest."""

    model: str | None = None
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    version: int | None = None
    output_prefix: str | None = None
    job_id: str | None = None
    trigger: str | None = None
    started_by: str | None = None
    request_id: str | None = None
    job: Job | None = None
    manifest: Manifest | None = None


MACHINE = Machine(
    asl="batch.asl.json",
    document=BatchRun,
    steps={
        "Start": Step(StartRequest, Job, handler="functions/batch_steps/handler.start"),
        "Score": Step(ScoreRequest, Scored, handler="functions/batch_score/handler.score"),
        "Finish": Step(FinishRequest, Manifest, handler="functions/batch_steps/handler.finish"),
    },
    items={"ScoreCsv": BatchItem, "ScoreJsonl": BatchItem},
)
