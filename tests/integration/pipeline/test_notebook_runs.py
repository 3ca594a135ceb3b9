"""Notebook runs (``mlops.tracking``) over real signed HTTP: the client signs with the caller's own
credentials, a loopback server checks the SigV4 signature as API Gateway does (the local cloud's
verifier) and hands the request, with the identity it verified, to the import API's real handler,
whose registry is on moto. Then ``mlops runs list --model M`` lists the run beside pipeline runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from mlops import tracking
from mlops.errors import InputError
from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.notebook_runs import get_notebook_run, list_notebook_runs
from mlops.training.steps.services import Services
from mlops_cli.main import cli
from tests.integration.pipeline.test_validate_step import SPEC
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE
from tests.integration.signed_gateway import ACCOUNT, USERS, signed_gateway, signed_post


@pytest.fixture
def api(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The import API's handler behind a loopback HTTP server that verifies SigV4 like API Gateway."""
    for name, value in (
        ("DATA_BUCKET", DATA_BUCKET),
        ("REGISTRY_TABLE", REGISTRY_TABLE),
        ("AUDIT_TABLE", AUDIT_TABLE),
        ("MLOPS_ENVIRONMENT", "dev"),
        ("POWERTOOLS_TRACE_DISABLED", "1"),
    ):
        monkeypatch.setenv(name, value)
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    # Lambda runs one request at a time per execution environment, and concurrent requests in
    # separate ones: four environments here (each a fresh load of the handler), one request each at a time
    with signed_gateway({"/models/{model}/runs": "model_import"}, users=USERS, environments=4) as url:
        yield url


def _as(monkeypatch: pytest.MonkeyPatch, access_key: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", USERS.get(access_key, ("wrong",))[0])


def test_a_notebook_run_is_recorded_as_the_signer_and_audited(
    api: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the scientist's own credentials in the notebook
    _as(monkeypatch, "AKIDSCIENTIST")
    # WHEN a run logs params and metrics (a tag claiming another caller is just a tag)
    with tracking.start_run(model="tiny", api_url=api, region="us-east-1", tags={"caller": "mallory"}) as run:
        run.log_params({"C": 0.5, "columns": ["x", "y"], "penalty": "l2", "fit_intercept": True})
        run.log_metrics({"accuracy": 0.93, "f1": 1})
    # THEN the platform stored it under the identity AWS verified, with its values
    assert run.run_id is not None and run.run_id.startswith("nb-")
    stored = get_notebook_run(services.registry, "tiny", run.run_id)
    assert stored.caller == f"arn:aws:iam::{ACCOUNT}:user/scientist"
    assert stored.params == {"C": 0.5, "columns": ["x", "y"], "penalty": "l2", "fit_intercept": True}
    assert stored.metrics == {"accuracy": 0.93, "f1": 1.0}
    assert stored.tags == {"caller": "mallory", "status": "FINISHED"}
    # AND the recording is in the model's audit chain, by the scientist
    events, _ = services.registry.audit.list_events("tiny", limit=50)
    recorded = [e for e in events if e.action == "run.recorded"]
    assert [e.actor for e in recorded] == [f"arn:aws:iam::{ACCOUNT}:user/scientist"]


def test_the_signer_is_recorded_whoever_signs(api: str, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch, "AKIDCAROL")
    with tracking.start_run(model="tiny", api_url=api, region="us-east-1") as run:
        run.log_metrics({"accuracy": 0.5})
    assert get_notebook_run(services.registry, "tiny", str(run.run_id)).caller.endswith(":user/carol")


def test_a_bad_signature_records_nothing(api: str, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSCIENTIST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    run = tracking.start_run(model="tiny", api_url=api, region="us-east-1")
    run.log_metrics({"accuracy": 0.9})
    with pytest.raises(tracking.TrackingError, match=r"HTTP 403"):
        run.end()
    assert list_notebook_runs(services.registry, "tiny") == []


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (lambda r: r.log_metrics({"auc": float("nan")}), r"metric 'auc': nan is not a finite number"),
        (lambda r: r.log_metrics({"auc": float("inf")}), r"metric 'auc': inf is not a finite number"),
        (lambda r: r.log_metrics({"auc": "0.9"}), r"metric 'auc': '0.9' \(str\) is not a number"),
        (lambda r: r.log_params({"model": object()}), r"param 'model': <object object .*> \(object\) is not a JSON"),
        (lambda r: r.log_params({"alpha": float("nan")}), r"param 'alpha': nan \(float\) is not a JSON value"),
        (lambda r: r.log_model(b""), r"log_model: the ONNX model is empty"),
        (lambda r: r.log_model(object()), r"log_model: object is neither ONNX bytes nor a fitted scikit-learn model"),
        (lambda r: r.log_model("model.pkl"), r"log_model: model.pkl is not an .onnx file"),
    ],
)
def test_bad_values_are_refused_in_the_notebook_with_their_name(log: Any, message: str) -> None:
    run = tracking.start_run(model="tiny", api_url="http://127.0.0.1:9/v1/", region="us-east-1")
    with pytest.raises(InputError, match=message):
        log(run)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"metrics": {"auc": NaN}}', "not valid JSON (NaN is not a JSON number); metrics must be finite"),
        ('{"metrics": {"auc": Infinity}}', "Infinity is not a JSON number"),
        ('{"metrics": {"auc": true}}', "metrics.auc: True is not a number"),
        ('{"params": {"a": {"nested": 1}}}', r"params.a: {'nested': 1} (dict) is not a JSON value"),
        ('{"params": {"bad name": 1}}', "params.bad name: a name is 1-128 characters"),
        ('{"caller": "mallory"}', "body field 'caller' is not accepted"),
    ],
)
def test_the_api_refuses_what_the_client_would_not_send(
    api: str, services: Services, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    # a request made by hand (not through the client's checks), signed as the scientist
    status, answer = signed_post(api + "models/tiny/runs", body.encode(), "AKIDSCIENTIST")
    assert status == 400
    assert message in (answer.get("message") or answer.get("error")), answer
    assert list_notebook_runs(services.registry, "tiny") == []


def test_a_model_without_a_spec_is_named(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch, "AKIDSCIENTIST")
    run = tracking.start_run(model="churn", api_url=api, region="us-east-1")
    with pytest.raises(InputError, match=r"model 'churn' has no spec.*\(HTTP 404\)"):
        run.end()


def test_runs_list_shows_notebook_runs_beside_pipeline_runs(
    api: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a training state machine with no executions, and one notebook run
    _as(monkeypatch, "AKIDSCIENTIST")
    with tracking.start_run(model="tiny", api_url=api, region="us-east-1") as run:
        run.log_params({"C": 0.5})
        run.log_metrics({"accuracy": 0.93})
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
        name="training", definition='{"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}', roleArn=role
    )["stateMachineArn"]
    ssm = boto3.client("ssm", region_name="us-east-1")
    for name, value in (
        ("data-bucket", DATA_BUCKET),
        ("registry-table", REGISTRY_TABLE),
        ("audit-table", AUDIT_TABLE),
        ("training-state-machine-arn", machine),
    ):
        ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
    # WHEN the runs of the model are listed
    text = CliRunner().invoke(cli, ["runs", "list", "--model", "tiny"])
    listed = CliRunner().invoke(cli, ["runs", "list", "--model", "tiny", "--json"])
    # THEN the notebook run is there with who, params and metrics
    assert text.exit_code == 0, text.output
    assert f"FINISHED   {get_notebook_run(services.registry, 'tiny', str(run.run_id)).created_at}" in text.output
    assert f"{run.run_id}  by arn:aws:iam::{ACCOUNT}:user/scientist" in text.output
    assert "params:  C=0.5" in text.output and "metrics: accuracy=0.93" in text.output
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert data["runs"] == []
    assert [(r["run_id"], r["source"], r["metrics"]) for r in data["notebook_runs"]] == [
        (run.run_id, "notebook", {"accuracy": 0.93})
    ]


def test_concurrent_runs_of_two_identities_are_each_recorded_with_their_own_signer(
    api: str, services: Services
) -> None:
    # GIVEN two scientists' sessions and 10 notebook runs started at once (5 each), on a fresh handler
    sessions = {
        name: boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        for key, (secret, name) in USERS.items()
    }
    start = threading.Barrier(10)

    def notebook(index: int) -> tuple[str, str]:
        who = "scientist" if index % 2 else "carol"
        with tracking.start_run(model="tiny", api_url=api, region="us-east-1", session=sessions[who]) as run:
            run.log_params({"index": index})
            run.log_metrics({"accuracy": index / 10})
            start.wait(timeout=30)
        return str(run.run_id), who

    with ThreadPoolExecutor(max_workers=10) as pool:
        done = list(pool.map(notebook, range(10)))
    # THEN all 10 are recorded, each under the identity that signed it, with its own values
    stored = {run.run_id: run for run in list_notebook_runs(services.registry, "tiny")}
    assert sorted(stored) == sorted(run_id for run_id, _ in done) and len(stored) == 10
    for index, (run_id, who) in enumerate(done):
        assert stored[run_id].caller == f"arn:aws:iam::{ACCOUNT}:user/{who}"
        assert stored[run_id].params == {"index": index} and stored[run_id].metrics == {"accuracy": index / 10}
    # AND the audit chain holds one run.recorded per run, by its signer, and still verifies
    events, _ = services.registry.audit.list_events("tiny", limit=100)
    recorded = sorted((e.subject, e.actor) for e in events if e.action == "run.recorded")
    assert recorded == sorted((f"tiny/runs/{r}", f"arn:aws:iam::{ACCOUNT}:user/{w}") for r, w in done)
    assert services.registry.audit.verify("tiny").ok
