"""The batch state machine's Start and Finish states: parse the Payload, one call, dump.

``start`` and ``finish`` are deployed as two functions from this one code asset (stacks/batch.py),
each with its own role.
"""

from __future__ import annotations

import functools
from typing import Any

from mlops.batch import jobs
from mlops.batch.services import BatchServices
from mlops.contracts.batch import FinishRequest, StartRequest
from mlops.observability import logger, step_handler


@functools.cache
def services() -> BatchServices:
    """The clients, made once per execution environment (warm invocations reuse them)."""
    return BatchServices.from_env()


@step_handler
def start(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    job = jobs.start(StartRequest.model_validate(event), services())
    logger.info("batch job pinned", extra={"job": job.job_id, "model": job.model, "version": job.version})
    return job.model_dump(mode="json")


@step_handler
def finish(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    manifest = jobs.finish(FinishRequest.model_validate(event), services(), request_id=request_id)
    logger.info(
        "batch job finished", extra={"job": manifest.job_id, "rows": manifest.rows, "refused": manifest.refused}
    )
    return manifest.model_dump(mode="json")
