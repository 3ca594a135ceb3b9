"""Failure drills on the local cloud: faults injected where AWS fails, never in our code.

Each drill uploads a tiny dataset for its own model with faults planned (mlops.local.faults): a
pipeline task failing once (after its handler ran, so the retry repeats its writes) or always;
DynamoDB throttling; an S3 read cut mid-stream during validation; SNS failing; a function timing
out; every function environment killed mid-invocation. The drills run at once on one cloud of
their own (each fault is scoped to its model), then each test checks its run's end state and the
invariants: every audit chain verifies, every alias points at an APPROVED version, and every
uploaded object is byte for byte what was uploaded, in its one version.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli.audit_cmd import _all_chains
from mlops.datasets import DatasetCatalog
from mlops.local.testing import LocalCloudProcess, synthesize_once
from mlops.platform import Platform, discover
from mlops.registry import Registry, Status
from mlops.runs import Run, upload_dataset, wait_run
from mlops.spec import parse_spec
from mlops.specstore import SpecStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")
ROWS = 300
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("drills")]

# Function-name fragments of the deployed functions (logical ids survive in the physical names).
VALIDATE, TRAIN, EVALUATE, GATE, REGISTER = (
    "TrainingValidate",
    "TrainingTrain",
    "TrainingEvaluate",
    "TrainingGate",
    "TrainingRegister",
)
RECORD_FAILURE, HANDOFF, DEPLOYMENT_STEPS = "TrainingRecordFailure", "DeploymentStarter", "DeploymentSteps"
PLAN, CANDIDATE = '"mode": "plan"', '"candidate"'


def fails_once_after(model: str, function: str, *match: str) -> dict[str, Any]:
    """The function's first matching invocation runs to its end, then its answer is lost."""
    return {"kind": "function.error", "target": function, "match": [model, *match], "phase": "after", "count": 1}


def always_fails(model: str, function: str, *match: str) -> dict[str, Any]:
    return {"kind": "function.error", "target": function, "match": [model, *match], "count": None}


@dataclass
class Drill:
    """One model's drill: its faults, and the end state expected of its runs."""

    model: str
    faults: Callable[[Platform], list[dict[str, Any]]]
    training: str  # the training run's expected status ...
    error: str | None = None  # ... and its error when FAILED
    failed_step: str | None = None  # the step the failure path recorded (audit pipeline.failed)
    recorded_error: str | None = None  # the error recorded for it
    deployment: str | None = None  # the deployment run's expected status (None: none started)
    champion: int | None = None  # the expected champion version
    # filled in by the run
    uploads: list[dict[str, Any]] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    deployed: Run | None = None


DRILLS = [
    Drill(
        "dr-transient",
        lambda p: [
            fails_once_after("dr-transient", VALIDATE),
            fails_once_after("dr-transient", TRAIN, PLAN),
            fails_once_after("dr-transient", TRAIN, CANDIDATE),
            fails_once_after("dr-transient", EVALUATE),
            fails_once_after("dr-transient", GATE),
            fails_once_after("dr-transient", REGISTER),
            fails_once_after("dr-transient", HANDOFF),
            fails_once_after("dr-transient", DEPLOYMENT_STEPS, '"step": "prepare"'),
            fails_once_after("dr-transient", DEPLOYMENT_STEPS, '"step": "skip_approval"'),
            fails_once_after("dr-transient", DEPLOYMENT_STEPS, '"step": "deploy"'),
        ],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
    ),
    Drill("dr-p-validate", lambda p: [always_fails("dr-p-validate", VALIDATE)], "FAILED", "PipelineFailed", "Validate"),
    Drill("dr-p-plan", lambda p: [always_fails("dr-p-plan", TRAIN, PLAN)], "FAILED", "PipelineFailed", "PlanTraining"),
    Drill(
        "dr-p-candidate",
        lambda p: [always_fails("dr-p-candidate", TRAIN, CANDIDATE)],
        "FAILED",
        "PipelineFailed",
        "TrainCandidates",
    ),
    Drill("dr-p-evaluate", lambda p: [always_fails("dr-p-evaluate", EVALUATE)], "FAILED", "PipelineFailed", "Evaluate"),
    Drill("dr-p-gate", lambda p: [always_fails("dr-p-gate", GATE)], "FAILED", "PipelineFailed", "Gate"),
    Drill("dr-p-register", lambda p: [always_fails("dr-p-register", REGISTER)], "FAILED", "PipelineFailed", "Register"),
    # the failure path's own task failing: the run still ends in PipelineFailed
    Drill(
        "dr-p-record",
        lambda p: [always_fails("dr-p-record", VALIDATE), always_fails("dr-p-record", RECORD_FAILURE)],
        "FAILED",
        "PipelineFailed",
    ),
    # the hand-off failing: the candidate stays registered, nothing is deployed
    Drill("dr-p-handoff", lambda p: [always_fails("dr-p-handoff", HANDOFF)], "FAILED", "HandoffFailed"),
    Drill(
        "dr-p-deploy",
        lambda p: [always_fails("dr-p-deploy", DEPLOYMENT_STEPS, '"step": "deploy"')],
        "SUCCEEDED",
        deployment="FAILED",
    ),
    # DynamoDB throttling: a few throttles are absorbed by the SDK's retries; twelve in a row
    # outlast them (ten attempts), and the state machine's Retry runs the step again
    Drill(
        "dr-throttle-few",
        lambda p: [
            {"kind": "dynamodb.throttle", "target": p.audit_table, "match": "dr-throttle-few", "count": 3},
            {
                "kind": "dynamodb.throttle",
                "target": p.registry_table,
                "match": "dr-throttle-few",
                "count": 3,
                "error_type": "ThrottlingException",
            },
        ],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
    ),
    Drill(
        "dr-throttle-many",
        lambda p: [{"kind": "dynamodb.throttle", "target": p.registry_table, "match": "dr-throttle-many", "count": 12}],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
    ),
    # the dataset's read cut mid-stream while it is validated: once, then always
    Drill(
        "dr-s3-once",
        lambda p: [{"kind": "s3.reset", "target": "datasets/dr-s3-once/", "after_bytes": 4096, "count": 1}],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
    ),
    Drill(
        "dr-s3-always",
        lambda p: [{"kind": "s3.reset", "target": "datasets/dr-s3-always/", "after_bytes": 4096, "count": None}],
        "FAILED",
        "PipelineFailed",
        "Validate",
    ),
    # the notifications topic failing: once (a 500), then always
    Drill(
        "dr-sns-once",
        lambda p: [{"kind": "sns.error", "target": "", "match": "dr-sns-once", "count": 1}],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
    ),
    Drill(
        "dr-sns-always",
        lambda p: [{"kind": "sns.error", "target": "", "match": "dr-sns-always", "count": None}],
        "SUCCEEDED",
        deployment="FAILED",
        champion=1,
    ),
    # Register outlives its timeout after registering: a timeout is not retried, the failure path runs
    Drill(
        "dr-timeout",
        lambda p: [{"kind": "function.timeout", "target": REGISTER, "match": "dr-timeout", "phase": "after"}],
        "FAILED",
        "PipelineFailed",
        "Register",
        "Sandbox.Timedout",
    ),
]


def spec_for(model: str) -> Any:
    """The example churn spec made tiny: one small candidate, a lenient gate, no approval wait."""
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    spec["name"] = model
    spec["training"].pop("search", None)
    spec["training"]["params"] = {"max_iter": 10, "max_depth": 3}
    spec["gates"] = {"primary_metric": "roc_auc", "metrics": {"roc_auc": {"min": 0.5}}, "must_beat_champion": False}
    spec["fairness"] = {"protected_attributes": []}
    spec["approval"] = {"required": False, "four_eyes": False}
    spec["deployment"] = {"strategy": "all_at_once"}
    spec["row_count"] = {"min": 100, "max": 100000}
    return parse_spec(spec, f"{model}.yaml")


@dataclass
class Cloud:
    process: LocalCloudProcess
    platform: Platform
    registry: Registry
    s3: Any
    sfn: Any
    tmp: Path


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    process = LocalCloudProcess(synthesize_once("dev", ROOT), "--no-schedules")
    process.start()
    patch = pytest.MonkeyPatch()
    try:
        for key, value in process.environ().items():  # the SDK (and the platform's discovery) find it
            patch.setenv(key, value)
        platform = discover("dev", process.session())
        registry = Registry.for_platform(process.client("dynamodb"), platform)
        clients = (process.client("s3"), process.client("stepfunctions"))
        yield Cloud(process, platform, registry, *clients, tmp_path_factory.mktemp("drills"))
    finally:
        patch.undo()
        process.stop()


def upload(cloud: Cloud, model: str, seed: int, name: str = "train.csv") -> dict[str, Any]:
    """Upload a tiny dataset through the upload API (whose stored object starts the pipeline)."""
    data = generate("churn", ROWS, seed).to_csv(index=False).encode()
    path = cloud.tmp / f"{model}-{seed}-{name}"
    path.write_bytes(data)

    def authorize(request: dict[str, Any]) -> dict[str, Any]:
        status, grant = cloud.process.api("POST", f"/models/{model}/uploads", request)
        assert status in (200, 201), (status, grant)
        return dict(grant)

    uploaded = upload_dataset(model, path, authorize=authorize, name=name)
    return {
        "key": uploaded.key,
        "version_id": uploaded.version_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "run_name": uploaded.run_name,
    }


def wait_deployment(cloud: Cloud, model: str, version: int) -> Run:
    arn = cloud.platform.deployment_state_machine_arn
    assert arn is not None
    return wait_run(cloud.sfn, arn, f"{model}-v{version}", timeout_s=300, poll_s=0.5)


def run_drill(cloud: Cloud, drill: Drill, seed: int) -> None:
    uploaded = upload(cloud, drill.model, seed)
    drill.uploads.append(uploaded)
    arn = cloud.platform.training_state_machine_arn
    assert arn is not None
    run = wait_run(cloud.sfn, arn, uploaded["run_name"], timeout_s=600, poll_s=0.5)
    drill.runs.append(run)
    version = (run.output or {}).get("version")
    if drill.deployment is not None and version is not None:
        drill.deployed = wait_deployment(cloud, drill.model, int(version))


@pytest.fixture(scope="module")
def drilled(cloud: Cloud) -> dict[str, Drill]:
    """Every drill's faults planned, its dataset uploaded, and its runs finished (all at once)."""
    store = SpecStore(cloud.registry)
    for drill in DRILLS:
        store.put(spec_for(drill.model), actor="alice")
    cloud.process.add_faults(*[f for drill in DRILLS for f in drill.faults(cloud.platform)])
    started = time.time()
    with ThreadPoolExecutor(max_workers=len(DRILLS)) as pool:
        for future in [pool.submit(run_drill, cloud, d, 10 + i) for i, d in enumerate(DRILLS)]:
            future.result()
    plan = cloud.process.clear_faults()
    print(f"{len(DRILLS)} drills ran at once in {time.time() - started:.1f} s; {len(plan['applied'])} faults applied")
    return {d.model: d for d in DRILLS}


def failures(cloud: Cloud, model: str) -> list[dict[str, Any]]:
    """The failure path's audit events of ``model`` (pipeline.failed, deployment.failed), oldest first."""
    events, _ = cloud.registry.audit.list_events(model, limit=500)
    return [{"action": e.action, **json.loads(e.after_json)} for e in reversed(events) if e.action.endswith(".failed")]


def models(cloud: Cloud) -> list[Any]:
    found, token = [], None
    while True:
        page = cloud.registry.list_models(limit=200, next_token=token)
        found.extend(page.items)
        token = page.next_token
        if token is None:
            return found


def assert_invariants(cloud: Cloud, drills: list[Drill]) -> None:
    """After any drill: every audit chain verifies, every alias names an APPROVED version, and
    every uploaded object is intact (same bytes, same single version)."""
    for chain in _all_chains(cloud.registry):
        report = cloud.registry.audit.verify(chain)
        assert report.ok, report.lines()
    for model in models(cloud):
        for alias, version in (("champion", model.champion), ("challenger", model.challenger)):
            if version is not None:
                status = cloud.registry.get_version(model.name, int(version)).status
                assert status == Status.APPROVED, f"{model.name}: alias {alias} -> v{version} is {status}"
    for drill in drills:
        for uploaded in drill.uploads:
            bucket, key = cloud.platform.data_bucket, uploaded["key"]
            body = cloud.s3.get_object(Bucket=bucket, Key=key, VersionId=uploaded["version_id"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == uploaded["sha256"], key
            versions = cloud.s3.list_object_versions(Bucket=bucket, Prefix=key)
            ids = [v["VersionId"] for v in versions.get("Versions", []) if v["Key"] == key]
            assert uploaded["version_id"] in ids and not versions.get("DeleteMarkers"), (key, ids)
        # Validate records the dataset version: once however often it ran, never when it could not run
        records = DatasetCatalog(cloud.registry).list(drill.model, limit=100).items
        expected = [] if drill.failed_step == "Validate" or drill.model == "dr-p-record" else drill.uploads
        assert sorted(r.version_id for r in records) == sorted(u["version_id"] for u in expected), drill.model


# Defects these drills found that are not fixed yet (strict: the test fails once they are fixed).
KNOWN_DEFECTS = {
    "dr-transient": "a deployment step whose answer is lost after it ran fails its retry: the deployment ends FAILED",
    "dr-sns-once": "Notify* states retry no SNS error: one SNS 500 after Deploy sends the deployment to Failed",
}


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(d.model, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[d.model]))
        if d.model in KNOWN_DEFECTS
        else d.model
        for d in DRILLS
    ],
)
def test_drill_ends_in_its_expected_state(cloud: Cloud, drilled: dict[str, Drill], model: str) -> None:
    drill = drilled[model]
    run = drill.runs[0]
    # THEN the training run ended as expected ...
    assert run.status == drill.training, (run.status, run.error, str(run.cause)[:600])
    if drill.error is not None:
        assert run.error == drill.error, (run.error, str(run.cause)[:600])
    recorded = failures(cloud, model)
    if drill.failed_step is not None:
        # ... the failure path recorded the failing step and its error ...
        assert [f["step"] for f in recorded if f["action"] == "pipeline.failed"] == [drill.failed_step], recorded
        if drill.recorded_error is not None:
            assert recorded[0]["error"] == drill.recorded_error, recorded
    if drill.training == "FAILED" and drill.error == "PipelineFailed":
        # ... and a run the failure path ended registered nothing
        assert cloud.registry.get_model(model).latest_version == 0 or drill.failed_step == "Register"
    # AND the deployment, if one was started, ended as expected, with the expected champion
    if drill.deployment is not None:
        assert drill.deployed is not None
        assert drill.deployed.status == drill.deployment, (drill.deployed.error, str(drill.deployed.cause)[:600])
        if drill.deployment == "FAILED":
            assert any(f["action"] == "deployment.failed" for f in recorded), recorded
    assert cloud.registry.get_model(model).champion == drill.champion
    if drill.training == "SUCCEEDED":
        assert cloud.registry.get_model(model).latest_version == 1  # a retried step registered nothing twice
    # AND the platform's invariants hold
    assert_invariants(cloud, [drill])
