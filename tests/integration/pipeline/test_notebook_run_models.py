"""A notebook run's logged model, then imported with ``mlops models import M --run RUN_ID``, all over real
HTTP: moto as a server (so the presigned PUTs are real HTTP too), the import API's real handler behind a
loopback server that checks SigV4 as API Gateway does, and the CLI. The import's grant carries the run
id as its source run (``tracking-run``), which is what the pipeline's starter reads."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mlops import tracking
from mlops.data.trigger import upload_from_event
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.training.import_grants import import_grant_for, import_upload
from mlops.training.imported import export_imported_onnx
from mlops.training.notebook_runs import get_notebook_run
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import notebook_pipeline, penguins_frame
from tests.integration.console import Result, console
from tests.integration.pipeline.test_import_steps import run_import
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, create_tables
from tests.integration.signed_gateway import ACCOUNT, USERS, signed_gateway

MODEL = PENGUINS.spec.name


@pytest.fixture
def mlops(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    return console(monkeypatch, capsys)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto as a server in this process (one per module): presigned URLs are then real HTTP too."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def cloud(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """moto over HTTP: every boto3 client (ours, the handler's, the CLI's) and every presigned URL."""
    # every test starts from empty backends (the server lives for the module, its backends in-process)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    for name, value in (
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "AKIDSCIENTIST"),
        ("AWS_SECRET_ACCESS_KEY", USERS["AKIDSCIENTIST"][0]),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("DATA_BUCKET", DATA_BUCKET),
        ("REGISTRY_TABLE", REGISTRY_TABLE),
        ("AUDIT_TABLE", AUDIT_TABLE),
        ("MLOPS_ENVIRONMENT", "dev"),
        ("POWERTOOLS_TRACE_DISABLED", "1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(dynamodb)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    platform = Platform(
        environment="dev", data_bucket=DATA_BUCKET, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE
    )
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    yield Services(platform=platform, s3=s3, registry=registry)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).read()


@pytest.fixture
def api(cloud: Services) -> Iterator[str]:
    with signed_gateway({"/models/{model}/runs": "model_import", "/models/{model}/imports": "model_import"}) as url:
        ssm = boto3.client("ssm", region_name="us-east-1")
        for name, value in (
            ("data-bucket", DATA_BUCKET),
            ("registry-table", REGISTRY_TABLE),
            ("audit-table", AUDIT_TABLE),
            ("api-url", url),
        ):
            ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
        yield url


@pytest.fixture
def dataset_version(cloud: Services) -> str:
    SpecStore(cloud.registry).put(PENGUINS.spec, actor="alice")
    key = f"datasets/{MODEL}/penguins.csv"
    version = cloud.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=PENGUINS.training_bytes())["VersionId"]
    event = {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}}}
    assert validate_upload(upload_from_event(event).to_dict(), services=cloud)["valid"]
    return str(version)


def test_a_logged_model_is_stored_and_imported_with_its_run_as_source_run(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result]
) -> None:
    # GIVEN a notebook run that logged a fitted scikit-learn pipeline (the scientist's credentials)
    pipeline = notebook_pipeline(penguins_frame())
    with tracking.start_run(model=MODEL, api_url=api) as run:
        run.log_params({"C": 1.0})
        run.log_metrics({"accuracy": 0.98})
        run.log_model(pipeline)
    # THEN its bytes are in the run's own folder (never an import's key), with the sha256 the run recorded
    stored = get_notebook_run(cloud.registry, MODEL, str(run.run_id))
    assert stored.artifact is not None and stored.artifact["format"] == "sklearn-pickle-5"
    data = cloud.s3.get_object(Bucket=DATA_BUCKET, Key=stored.artifact["key"])["Body"].read()
    assert hashlib.sha256(data).hexdigest() == stored.artifact["sha256"]
    assert stored.artifact["key"] == f"imports/{MODEL}/runs/{stored.run_id}/model.pkl"
    # AND no import grant can name it: its arrival alone starts nothing, whoever was granted those bytes
    with pytest.raises(Exception, match="outside the import layout"):
        import_grant_for(cloud.registry, stored.artifact["key"])
    # WHEN it is imported by its run id
    result = mlops("models", "import", MODEL, "--run", str(run.run_id), "--dataset", dataset_version, "--json")
    # THEN it went through the import path: a grant for the signer, the run id as its source run
    assert result.code == 0, result.err
    answer = result.json()
    assert answer["source"] == "tracking-run" and answer["run_id"] == run.run_id
    assert answer["importer"] == f"arn:aws:iam::{ACCOUNT}:user/scientist"
    grant = import_grant_for(cloud.registry, answer["key"])
    assert (grant.source, grant.run_id, grant.dataset_version) == ("tracking-run", run.run_id, dataset_version)
    imported = import_upload(cloud.registry, grant).imported
    assert imported["run_id"] == run.run_id


def test_runs_show_tells_a_notebook_runs_values_signer_model_and_the_version_it_became(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result]
) -> None:
    # GIVEN a notebook run (the scientist's credentials) that logged its pipeline
    with tracking.start_run(model=MODEL, api_url=api, tags={"notebook": "penguins.ipynb"}) as run:
        run.log_params({"C": 1.0, "columns": ["island", "bill_length_mm"]})
        run.log_metrics({"accuracy": 0.98})
        run.log_model(notebook_pipeline(penguins_frame()))
    run_id = str(run.run_id)
    # WHEN it is shown before any import
    before = mlops("runs", "show", run_id, "--model", MODEL)
    # THEN everything it recorded is there, with the identity AWS verified and where its model is
    assert before.code == 0, before.err
    sha256 = str(get_notebook_run(cloud.registry, MODEL, run_id).artifact["sha256"])  # type: ignore[index]
    assert (
        before.out.splitlines()[:7]
        == [
            f"notebook run {run_id}  [FINISHED]  model {MODEL}",
            f"  recorded {run.recorded['created_at']}  by arn:aws:iam::{ACCOUNT}:user/scientist"  # type: ignore[index]
            " (the identity AWS verified)",
            '  params:  C=1, columns=["island", "bill_length_mm"]',
            "  metrics: accuracy=0.98",
            '  tags:    notebook="penguins.ipynb", status="FINISHED"',
            f"  model:   sklearn-pickle-5, {run.recorded['artifact']['size']:,} bytes, sha256 {sha256[:12]}..."  # type: ignore[index]
            f"  s3://{DATA_BUCKET}/imports/{MODEL}/runs/{run_id}/model.pkl",
            f"  imported: not yet  (mlops models import {MODEL} --run {run_id} --dataset VERSION)",
        ]
    )
    # WHEN it is imported and the pipeline's steps evaluate, gate and register it
    result = mlops("models", "import", MODEL, "--run", run_id, "--dataset", dataset_version, "--json")
    assert result.code == 0, result.err
    imported = import_upload(cloud.registry, import_grant_for(cloud.registry, result.json()["key"])).imported
    registered = run_import(cloud, imported, "import-notebook-run")["registered"]
    # THEN the run names the version it became, and the version its source run
    after = mlops("runs", "show", run_id, "--model", MODEL)
    data = mlops("runs", "show", run_id, "--model", MODEL, "--json").json()
    shown = mlops("models", "show", MODEL, "--version", str(registered["version"]))
    assert after.code == 0, after.err
    assert (
        f"  imported as version {registered['version']} [PENDING_APPROVAL]"
        f"  (mlops models show {MODEL} --version {registered['version']})" in after.out
    )
    assert data["imported_versions"] == [{"version": registered["version"], "status": "PENDING_APPROVAL"}]
    assert data["caller"] == f"arn:aws:iam::{ACCOUNT}:user/scientist" and data["artifact"]["sha256"] == sha256
    assert shown.code == 0, shown.err
    assert f"from tracking-run (run {run_id})" in shown.out


def test_runs_show_of_a_notebook_run_needs_its_model_and_names_a_missing_one(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result]
) -> None:
    with tracking.start_run(model=MODEL, api_url=api) as run:
        run.log_metrics({"accuracy": 0.5})
    no_model = mlops("runs", "show", str(run.run_id))
    assert no_model.code == 2 and f"{run.run_id} is a notebook run: show it with --model MODEL" in no_model.err
    missing = mlops("runs", "show", "nb-00000000000000000000", "--model", MODEL)
    assert missing.code == 3 and f"model {MODEL!r} has no notebook run 'nb-00000000000000000000'" in missing.err
    bare = mlops("runs", "show", str(run.run_id), "--model", MODEL)
    assert bare.code == 0 and "  model:   - (the run logged none: run.log_model in the notebook)" in bare.out


def test_import_of_a_run_without_a_model_is_refused(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result]
) -> None:
    with tracking.start_run(model=MODEL, api_url=api) as run:
        run.log_metrics({"accuracy": 0.5})
    result = mlops("models", "import", MODEL, "--run", str(run.run_id), "--dataset", dataset_version)
    assert result.code == 2, result.err
    assert f"notebook run {run.run_id} of {MODEL!r} logged no model" in result.err


def test_import_needs_exactly_one_of_artifact_and_run(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result]
) -> None:
    result = mlops("models", "import", MODEL, "--dataset", dataset_version)
    assert result.code == 2, result.err
    assert "give exactly one of --artifact FILE and --run RUN_ID" in result.err


def test_an_onnx_file_logged_by_path_is_stored_as_itself_and_imported(
    api: str, cloud: Services, dataset_version: str, mlops: Callable[..., Result], tmp_path: Path
) -> None:
    # GIVEN a notebook run that logged an ONNX file by its path
    path = tmp_path / "penguins.onnx"
    path.write_bytes(export_imported_onnx(notebook_pipeline(penguins_frame()), PENGUINS.spec))
    with tracking.start_run(model=MODEL, api_url=api) as run:
        run.log_model(path)
    # THEN the very file is stored, as onnx
    stored = get_notebook_run(cloud.registry, MODEL, str(run.run_id)).artifact
    assert stored is not None and stored["format"] == "onnx" and stored["key"].endswith("/model.onnx")
    assert stored["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # AND imported by its run id, it is granted as that same ONNX content, its run the source run
    result = mlops("models", "import", MODEL, "--run", str(run.run_id), "--dataset", dataset_version, "--json")
    assert result.code == 0, result.err
    answer = result.json()
    assert (answer["format"], answer["sha256"], answer["run_id"]) == ("onnx", stored["sha256"], run.run_id)
