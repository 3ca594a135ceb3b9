"""Batch jobs started from uploads: one job per object version, named so a repeated event starts nothing."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.batch.runs import job_model, job_name, parse_uri, start_object_job, upload_job
from mlops.errors import InputError


def event(key: str, version_id: str | None = "v1") -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 10}
    if version_id:
        obj["version-id"] = version_id
    return {"id": "e-1", "detail-type": "Object Created", "detail": {"bucket": {"name": "data"}, "object": obj}}


class FakeStepFunctions:
    """start_execution as Step Functions answers it: a name already used is refused."""

    class exceptions:
        class ExecutionAlreadyExists(Exception):
            pass

    def __init__(self) -> None:
        self.names: list[str] = []

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        if name in self.names:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.names.append(name)
        return {"executionArn": f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"}


def test_an_upload_names_its_model_and_object_version() -> None:
    request = upload_job(event("batch/churn/nightly%20list.csv"))
    assert (request.model, request.key, request.version_id, request.trigger) == (
        "churn",
        "batch/churn/nightly list.csv",
        "v1",
        "upload",
    )
    assert request.job_id is not None and job_model(request.job_id) == "churn"
    # another version of the same key is another job
    assert upload_job(event("batch/churn/nightly%20list.csv", "v2")).job_id != request.job_id


def test_one_job_per_object_version_however_often_the_event_comes() -> None:
    sfn = FakeStepFunctions()
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-batch"
    first = start_object_job(sfn, arn, upload_job(event("batch/churn/a.csv")))
    again = start_object_job(sfn, arn, upload_job(event("batch/churn/a.csv")))
    assert first["started"] is True and again["duplicate"] is True
    assert len(sfn.names) == 1


@pytest.mark.parametrize(
    ("key", "version_id", "message"),
    [
        ("batch/nightly.csv", "v1", "batch/<model>/<file>"),
        ("batch/Not_A_Model/x.csv", "v1", "batch/<model>/<file>"),
        ("batch/churn/", "v1", "batch/<model>/<file>"),
        ("batch/churn/x.csv", None, "names no object version"),
    ],
)
def test_an_upload_outside_the_layout_is_refused_with_the_layout_named(
    key: str, version_id: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("<", ".").replace(">", ".")):
        upload_job(event(key, version_id))


def test_job_names_sort_by_start_and_uris_are_checked() -> None:
    assert job_model(job_name("churn-2")) == "churn-2"
    assert parse_uri("s3://data/batch/churn/x.csv") == ("data", "batch/churn/x.csv")
    with pytest.raises(InputError, match="s3://BUCKET/KEY"):
        parse_uri("data/batch/x.csv")
