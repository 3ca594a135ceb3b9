"""Failure drills on the local cloud: faults injected where AWS fails, never in our code.

One module-scoped cloud of their own; every run uploads a tiny dataset for its own model through
the upload API, with faults planned for that model only (mlops_local.faults). Ten training runs
at once:

- ``dr-transient``: ONE run in which every task fails once after its handler ran (so the retry
  repeats its writes), the training and the deployment pipeline's alike; Register outlives its
  timeout after registering; DynamoDB throttles a few of the pipeline's writes; the topic refuses
  the "deployed" notification every time. It must succeed, register and deploy v1 once, and audit
  that the notification failed.
- ``dr-throttle``: the dataset's read cut mid-stream during validation; the registry throttling
  version allocation twelve times in a row (past the SDK's ten attempts); one SNS 500. It must
  succeed.
- one run per training task failing for good (each stops at its failure path): Validate (its read
  cut every time, the topic down, RecordFailure losing its answer once), PlanTraining,
  TrainCandidates, Evaluate, Gate, Register, the failure path's own task, the hand-off.

Then new deployment executions of the versions registered (no training needed): Prepare,
SkipApproval and Deploy each failing for good (the topic down for Deploy's failure notice); and,
alone, the restart drill: every function environment killed while a redeployment's Deploy runs.

After each: every audit chain verifies, every alias names an APPROVED version, every uploaded
object is byte for byte what was uploaded, in its one version, and its dataset record exists once
(or not at all when validation never ran).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.data.catalog import DatasetCatalog
from mlops.deployment.handoff import start_deployment
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry, Status
from mlops.settings import Platform, discover
from mlops.spec.model import parse_spec
from mlops.training.history import Run
from mlops.training.runs import wait_run
from mlops.training.uploads import upload_dataset
from mlops_cli.audit_cmd import _all_chains
from mlops_local.testing import LocalCloudProcess, synthesize_once

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")
ROWS = 160
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("drills")]

# Function-name fragments of the deployed functions (logical ids survive in the physical names).
VALIDATE, PLAN, TRAIN, EVALUATE, CHECK_ONNX, GATE, REGISTER = (
    "TrainingValidate",
    "TrainingPlanTraining",
    "TrainingTrainCandidate",
    "TrainingEvaluate",
    "TrainingCheckOnnx",
    "TrainingGate",
    "TrainingRegister",
)
RECORD_FAILURE, HANDOFF = "TrainingRecordFailure", "DeploymentStarter"
# One function per deployment state (the logical ids Deployment/<State>/Function).
PREPARE, SKIP_APPROVAL = "DeploymentPrepareFunction", "DeploymentSkipApprovalFunction"
DEPLOY = "DeploymentDeployFunction"
CANDIDATE = '"candidate"'


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
    deployment: str | None = None  # the deployment run's expected status (None: none started)
    champion: int | None = None  # the expected champion version
    retried: dict[str, int] = field(default_factory=dict)  # step -> attempts it must have taken (at least)
    notified: bool | None = None  # the deployment's outcome notification was sent (None: not checked)
    # filled in by the run
    uploads: list[dict[str, Any]] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    deployed: Run | None = None


def transient_faults(p: Platform) -> list[dict[str, Any]]:
    m = "dr-transient"
    return [
        fails_once_after(m, VALIDATE),
        fails_once_after(m, PLAN),
        fails_once_after(m, TRAIN, CANDIDATE),
        fails_once_after(m, EVALUATE),
        fails_once_after(m, CHECK_ONNX),
        fails_once_after(m, GATE),
        # Register outlives its timeout after registering: the retry must find its version
        {"kind": "function.timeout", "target": REGISTER, "match": m, "phase": "after", "count": 1},
        fails_once_after(m, HANDOFF),
        fails_once_after(m, PREPARE),
        fails_once_after(m, SKIP_APPROVAL),
        fails_once_after(m, DEPLOY),
        # a few throttles of the pipeline's own writes, absorbed by the SDK's retries
        {"kind": "dynamodb.throttle", "target": p.audit_table, "match": [m, "pipeline:training"], "count": 3},
        {
            "kind": "dynamodb.throttle",
            "target": p.registry_table,
            "match": [m, "version_counter"],
            "count": 3,
            "error_type": "ThrottlingException",
        },
        # the topic refuses the "deployed" notification every time: retried, then audited
        {"kind": "sns.error", "match": [m, "deployment.deployed"], "count": None},
    ]


DRILLS = [
    Drill(
        "dr-transient",
        transient_faults,
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
        retried={
            "Validate": 2,
            "PlanTraining": 2,
            "TrainCandidate": 2,
            "Evaluate": 2,
            "CheckOnnx": 2,
            "Gate": 2,
            "Register": 2,
            "HandToDeployment": 2,
            "Prepare": 2,
            "SkipApproval": 2,
            "Deploy": 2,
            "NotifyDeployed": 4,  # three retries, all refused
        },
        notified=False,
    ),
    # the registry throttles version allocation 12 times in a row: the SDK's 10 attempts are not
    # enough, Register fails with TransientError and its retry registers; one SNS 500 is retried
    Drill(
        "dr-throttle",
        lambda p: [
            {
                "kind": "dynamodb.throttle",
                "target": p.registry_table,
                "match": ["dr-throttle", "version_counter"],
                "count": 12,
            },
            {"kind": "sns.error", "match": ["dr-throttle", "deployment.deployed"], "count": 1},
            # the dataset's read cut mid-stream while Validate reads it (its first GetObject)
            {"kind": "s3.reset", "target": "datasets/dr-throttle/", "after_bytes": 1024, "count": 1},
        ],
        "SUCCEEDED",
        deployment="SUCCEEDED",
        champion=1,
        retried={"Validate": 2, "Register": 2, "NotifyDeployed": 2},
        notified=True,
    ),
    # Validate's read cut every time; the failure path's RecordFailure loses its answer once (it
    # records once) and the topic is down: the run still ends in PipelineFailed at Validate
    Drill(
        "dr-p-validate",
        lambda p: [
            {"kind": "s3.reset", "target": "datasets/dr-p-validate/", "after_bytes": 1024, "count": None},
            fails_once_after("dr-p-validate", RECORD_FAILURE),
            {"kind": "sns.error", "match": "dr-p-validate", "count": None},
        ],
        "FAILED",
        "PipelineFailed",
        "Validate",
        retried={"Validate": 4, "RecordFailure": 2, "NotifyFailure": 4},
    ),
    Drill("dr-p-plan", lambda p: [always_fails("dr-p-plan", PLAN)], "FAILED", "PipelineFailed", "PlanTraining"),
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
    # the failure path's own task failing for good: the run still ends in PipelineFailed
    Drill(
        "dr-p-record",
        lambda p: [always_fails("dr-p-record", VALIDATE), always_fails("dr-p-record", RECORD_FAILURE)],
        "FAILED",
        "PipelineFailed",
    ),
    # the hand-off failing: the candidate stays registered, nothing is deployed
    Drill("dr-p-handoff", lambda p: [always_fails("dr-p-handoff", HANDOFF)], "FAILED", "HandoffFailed"),
]
# Later deployment executions of versions the batch registered (no training needed): a step
# failing for good in each, with the topic down for the failure's notification in one.
AGAIN = {
    "Prepare": ("dr-transient", [always_fails("dr-transient-v1-prepare", PREPARE)]),
    "SkipApproval": ("dr-p-handoff", [always_fails("dr-p-handoff-v1-skip", SKIP_APPROVAL)]),
    "Deploy": (
        "dr-throttle",
        [
            always_fails("dr-throttle-v1-deploy", DEPLOY),
            {"kind": "sns.error", "match": ["dr-throttle-v1-deploy", "deployment.failed"], "count": None},
        ],
    ),
}
# The restart, alone (it kills every environment of every function): a redeployment of
# dr-transient's v1 loses every function environment while its Deploy step runs.
RESTART = {
    "kind": "function.restart",
    "target": DEPLOY,
    "match": ["dr-transient-v1-restart"],
    "delay_s": 0.05,
}


def spec_for(model: str) -> Any:
    """The example churn spec made tiny: one small estimator, no search, no approval wait."""
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    spec["name"] = model
    spec["training"].pop("search", None)
    spec["training"]["params"] = {"max_iter": 5, "max_depth": 2}
    spec["gates"] = {"primary_metric": "roc_auc", "metrics": {"roc_auc": {"min": 0.5}}, "must_beat_champion": False}
    spec["fairness"] = {"protected_attributes": []}
    spec["approval"] = {"required": False, "four_eyes": False}
    spec["deployment"] = {"strategy": "all_at_once"}
    spec["row_count"] = {"min": 100, "max": 100000}
    spec["monitoring"] = {"enabled": False}
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
    process = LocalCloudProcess(synthesize_once("dev", ROOT), "--no-schedules", "--time-scale", "0.001")
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


def wait_deployment(cloud: Cloud, name: str) -> Run:
    arn = cloud.platform.deployment_state_machine_arn
    assert arn is not None
    return wait_run(cloud.sfn, arn, name, timeout_s=300, poll_s=0.5)


def run_drill(cloud: Cloud, drill: Drill, seed: int) -> None:
    uploaded = upload(cloud, drill.model, seed)
    drill.uploads.append(uploaded)
    arn = cloud.platform.training_state_machine_arn
    assert arn is not None
    run = wait_run(cloud.sfn, arn, uploaded["run_name"], timeout_s=300, poll_s=0.5)
    drill.runs.append(run)
    version = (run.output or {}).get("version")
    if drill.deployment is not None and version is not None:
        drill.deployed = wait_deployment(cloud, f"{drill.model}-v{int(version)}")


def deploy_again(cloud: Cloud, model: str, version: int, suffix: str) -> Run:
    """A new deployment execution of an already registered version (as `mlops deploy` starts one)."""
    arn = cloud.platform.deployment_state_machine_arn
    assert arn is not None
    name = f"{model}-v{version}-{suffix}"
    start_deployment(cloud.sfn, arn, model, version, requested_by="drill", name=name)
    return wait_deployment(cloud, name)


@dataclass
class Drilled:
    drills: dict[str, Drill]
    again: dict[str, Run]  # the later deployment executions, by what failed in them
    seconds: dict[str, float]


@pytest.fixture(scope="module")
def drilled(cloud: Cloud) -> Drilled:
    """Every drill's faults planned, its dataset uploaded, and its runs finished: the batch at
    once, then the later deployments and the restart."""
    store = SpecStore(cloud.registry)
    for drill in DRILLS:
        store.put(spec_for(drill.model), actor="alice")
    seconds: dict[str, float] = {}
    started = time.time()
    cloud.process.add_faults(*[f for drill in DRILLS for f in drill.faults(cloud.platform)])
    with ThreadPoolExecutor(max_workers=len(DRILLS)) as pool:
        for future in [pool.submit(run_drill, cloud, d, 10 + i) for i, d in enumerate(DRILLS)]:
            future.result()
    plan = cloud.process.clear_faults()
    seconds["batch"] = time.time() - started
    unused = [f for f in plan["faults"] if f["count"] is not None]
    assert not unused, f"faults planned but never met: {unused}"
    # a deployment step failing for good, in new deployment executions of registered versions
    started = time.time()
    cloud.process.add_faults(*[f for _, faults in AGAIN.values() for f in faults])
    suffixes = {"Prepare": "prepare", "SkipApproval": "skip", "Deploy": "deploy"}
    with ThreadPoolExecutor(max_workers=len(AGAIN)) as pool:
        futures = {k: pool.submit(deploy_again, cloud, m, 1, suffixes[k]) for k, (m, _) in AGAIN.items()}
        again = {k: f.result() for k, f in futures.items()}
    cloud.process.clear_faults()
    seconds["deployments"] = time.time() - started
    # the restart, alone
    started = time.time()
    before = len(cloud.process.add_faults(RESTART)["applied"])
    again["restart"] = deploy_again(cloud, "dr-transient", 1, "restart")
    plan = cloud.process.clear_faults()
    assert [a["kind"] for a in plan["applied"][before:]] == ["function.restart"], plan["applied"][before:]
    seconds["restart"] = time.time() - started
    print("drills: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return Drilled({d.model: d for d in DRILLS}, again, seconds)


def audit_events(cloud: Cloud, model: str) -> list[dict[str, Any]]:
    """``model``'s audit events (action and what they recorded), oldest first."""
    events, _ = cloud.registry.audit.list_events(model, limit=500)
    return [{"action": e.action, **json.loads(e.after_json)} for e in reversed(events)]


def failures(cloud: Cloud, model: str) -> list[dict[str, Any]]:
    """The failure path's audit events of ``model`` (pipeline.failed, deployment.failed), oldest first."""
    return [e for e in audit_events(cloud, model) if e["action"].endswith(".failed")]


def models(cloud: Cloud) -> list[Any]:
    found, token = [], None
    while True:
        page = cloud.registry.list_models(limit=200, next_token=token)
        found.extend(page.items)
        token = page.next_token
        if token is None:
            return found


def assert_invariants(cloud: Cloud, drills: list[Drill]) -> None:
    """After a drill: its model's audit chain verifies, its aliases name APPROVED versions, and
    every object it uploaded is intact (same bytes, same single version). Every chain of the cloud
    is checked once more by `mlops audit verify` (test_audit_verify_exits_0_after_every_drill)."""
    for drill in drills:
        report = cloud.registry.audit.verify(drill.model)
        assert report.ok, report.lines()
        model = cloud.registry.get_model(drill.model)
        for alias, version in (("champion", model.champion), ("challenger", model.challenger)):
            if version is not None:
                status = cloud.registry.get_version(model.name, int(version)).status
                assert status == Status.APPROVED, f"{model.name}: alias {alias} -> v{version} is {status}"
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


def assert_retried(run: Run, retried: dict[str, int]) -> None:
    """Each named step took at least that many attempts: the fault met it and the retry ran."""
    steps = {s.name: s for s in run.steps}
    for name, attempts in retried.items():
        if name in steps:
            assert steps[name].attempts >= attempts, (name, steps[name])


@pytest.mark.parametrize("model", [d.model for d in DRILLS])
def test_drill_ends_in_its_expected_state(cloud: Cloud, drilled: Drilled, model: str) -> None:
    drill = drilled.drills[model]
    run = drill.runs[0]
    # THEN the training run ended as expected ...
    assert run.status == drill.training, (run.status, run.error, str(run.cause)[:600])
    if drill.error is not None:
        assert run.error == drill.error, (run.error, str(run.cause)[:600])
    recorded = failures(cloud, model)
    if drill.failed_step is not None:
        # ... the failure path recorded the failing step, once, however often it ran ...
        assert [f["step"] for f in recorded if f["action"] == "pipeline.failed"] == [drill.failed_step], recorded
    if drill.training == "FAILED" and drill.error == "PipelineFailed":
        # ... and a run the failure path ended registered nothing
        assert cloud.registry.get_model(model).latest_version == 0
    # ... each faulted step was retried (the fault met it) ...
    assert_retried(run, drill.retried)
    # AND the deployment, if one was started, ended as expected, with the expected champion
    if drill.deployment is not None:
        assert drill.deployed is not None
        assert drill.deployed.status == drill.deployment, (drill.deployed.error, str(drill.deployed.cause)[:600])
        assert_retried(drill.deployed, drill.retried)
        own = [f for f in recorded if f["action"] == "deployment.failed" and f["execution"] == drill.deployed.arn]
        if drill.deployment == "FAILED":
            assert len(own) == 1, recorded  # recorded once
        else:
            output = drill.deployed.output or {}
            assert output["outcome"] == "deployed" and output["notification"]["sent"] is drill.notified, output
            # a notification that failed after its retries is audited once; the deployment stands
            told = [e for e in audit_events(cloud, model) if e["action"] == "notification.failed"]
            assert len(told) == (0 if drill.notified else 1), told
            assert not own, recorded
    summary = cloud.registry.get_model(model)
    assert summary.champion == drill.champion
    if drill.training == "SUCCEEDED":
        assert summary.latest_version == 1  # a retried step registered nothing twice
        version = cloud.registry.get_version(model, 1)
        assert version.status == Status.APPROVED, version.status
        if drill.deployment == "SUCCEEDED":  # deployed once by its deployment, approval skipped once
            assert drill.deployed is not None
            own = [d for d in version.deployments if d.get("execution") == drill.deployed.arn]
            assert (len(own), len(version.approvals)) == (1, 1), version
    # AND the platform's invariants hold
    assert_invariants(cloud, [drill])


@pytest.mark.parametrize("failing", list(AGAIN))
def test_a_deployment_step_failing_for_good_changes_nothing(cloud: Cloud, drilled: Drilled, failing: str) -> None:
    run = drilled.again[failing]
    model = AGAIN[failing][0]
    # THEN the deployment failed at that step after its retries and recorded it once ...
    assert run.status == "FAILED" and run.error == "DeploymentFailed", (run.error, str(run.cause)[:600])
    steps = {s.name: s for s in run.steps}
    assert steps[failing].attempts == 4, steps[failing]
    recorded = [f for f in failures(cloud, model) if f["action"] == "deployment.failed"]
    assert [f["execution"] for f in recorded if f["execution"] == run.arn] == [run.arn], recorded
    if failing == "Deploy":  # ... even with the topic down for its notification
        assert steps["NotifyFailure"].attempts == 4 and steps["NotifyFailure"].error == "SNS.InternalErrorException"
    # AND what served before still serves: v1 stays champion; dr-p-handoff's v1 stays unapproved
    summary = cloud.registry.get_model(model)
    if failing == "SkipApproval":
        assert summary.champion is None and summary.challenger is None
        assert cloud.registry.get_version(model, 1).status == Status.PENDING_APPROVAL
    else:
        assert summary.champion == 1
    assert_invariants(cloud, [drilled.drills[model]])


def test_a_restart_mid_deployment_is_survived(cloud: Cloud, drilled: Drilled) -> None:
    run = drilled.again["restart"]
    # THEN every environment was killed while Deploy ran; the step ran again in a new one ...
    steps = {s.name: s for s in run.steps}
    assert steps["Deploy"].error == "Runtime.ExitError" and steps["Deploy"].attempts >= 2, steps["Deploy"]
    # ... and the redeployment ended deployed, recorded once, v1 still champion
    assert run.status == "SUCCEEDED" and (run.output or {}).get("outcome") == "deployed", (run.error, run.cause)
    entries = [d for d in cloud.registry.get_version("dr-transient", 1).deployments if d.get("execution") == run.arn]
    assert len(entries) == 1, entries
    assert cloud.registry.get_model("dr-transient").champion == 1
    # AND the platform's invariants hold
    assert_invariants(cloud, [drilled.drills["dr-transient"]])


def test_audit_verify_exits_0_and_every_alias_is_approved_after_every_drill(cloud: Cloud, drilled: Drilled) -> None:
    # WHEN `mlops audit verify` walks every chain of the cloud the drills ran on
    verified = subprocess.run(
        [MLOPS, "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **cloud.process.environ()},
        timeout=300,
        check=False,
    )
    # THEN it exits 0 (no modified, missing or unanchored-and-broken event anywhere)
    assert verified.returncode == 0, (verified.stdout[-3000:], verified.stderr[-3000:])
    chains = set(_all_chains(cloud.registry))
    assert {d.model for d in drilled.drills.values()} <= chains, chains
    # AND no alias of any model points at a version that is not APPROVED
    for model in models(cloud):
        for alias, version in (("champion", model.champion), ("challenger", model.challenger)):
            if version is not None:
                status = cloud.registry.get_version(model.name, int(version)).status
                assert status == Status.APPROVED, f"{model.name}: alias {alias} -> v{version} is {status}"
