"""The demo's own steps, from storing the spec through training, approval and prediction to drift."""

from __future__ import annotations

import importlib
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import NotFoundError
from mlops.training.runs import describe_run
from mlops_local.scenario_context import EXAMPLES, ROOT, ScenarioContext, ScenarioError, step

# -- the steps that exist so far ----------------------------------------------------------------------
# The demo trains a smaller search than the example spec's 2x2 grid: the learning rates at the
# depth that wins the full grid, 2 candidates trained in parallel (one per core of a small
# machine) instead of 4. Everything else is the example spec as written.
DEMO_SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {"churn": {"learning_rate": [0.05, 0.1], "max_depth": [3]}}


def _demo_spec(ctx: ScenarioContext, path: Path) -> tuple[Path, str]:
    """The spec file the demo stores (the example's, or a copy with the demo's search) and a note."""
    space = DEMO_SEARCH_SPACE.get(ctx.model)
    if space is None:
        return path, ""
    document = yaml.safe_load(path.read_text())
    search = (document.get("training") or {}).get("search")
    if not search:
        return path, ""
    search.update(space=space, max_candidates=_grid_size(space))
    folder = Path(ctx.facts.setdefault("workdir", tempfile.mkdtemp(prefix="mlops-demo-")))
    copy = folder / path.name
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    shown = " x ".join(f"{name} {values}" for name, values in space.items())
    return copy, f", its search cut to {search['max_candidates']} candidates for the demo ({shown})"


def _grid_size(space: dict[str, list[Any]]) -> int:
    size = 1
    for values in space.values():
        size *= len(values)
    return size


@step("spec")
def put_spec(ctx: ScenarioContext) -> str:
    path = EXAMPLES / "specs" / f"{ctx.model}.yaml"
    stored, note = _demo_spec(ctx, path)
    result = ctx.cli("spec", "put", str(stored))
    revision = result.get("revision") if isinstance(result, dict) else None
    return f"spec {ctx.model} stored (revision {revision}) from {path.relative_to(ROOT)}{note}"


def _generate(model: str, rows: int, seed: int, *, drift: bool = False) -> Any:
    """``examples/generate.py``'s rows for ``model`` (a pandas DataFrame)."""
    spec = importlib.util.spec_from_file_location("mlops_examples_generate", EXAMPLES / "generate.py")
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{EXAMPLES / 'generate.py'} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(model, rows=rows, seed=seed, drift=drift)


def _example_rows(model: str, rows: int, seed: int) -> bytes:
    return str(_generate(model, rows, seed).to_csv(index=False)).encode()


def _requests(ctx: ScenarioContext, rows: int, seed: int, *, drift: bool = False) -> list[list[dict[str, Any]]]:
    """Prediction requests (batches of 100 records) drawn from the example data, target left out."""
    frame = _generate(ctx.model, rows, seed, drift=drift).drop(columns=["churned"])
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return [records[i : i + 100] for i in range(0, len(records), 100)]


def _example_file(ctx: ScenarioContext, name: str, rows: int, seed: int, *, corrupt: bool = False) -> Path:
    body = _example_rows(ctx.model, rows=rows, seed=seed)
    if corrupt:  # a negative tenure and an unknown contract type: two findings with row numbers
        lines = body.decode().splitlines()
        header = lines[0].split(",")
        row = lines[5].split(",")
        row[header.index("tenure_months")] = "-3"
        row[header.index("contract")] = "weekly"
        lines[5] = ",".join(row)
        body = ("\n".join(lines) + "\n").encode()
    folder = Path(ctx.facts.setdefault("workdir", tempfile.mkdtemp(prefix="mlops-demo-")))
    path = folder / name
    path.write_bytes(body)
    return path


def _steps_line(run: dict[str, Any]) -> str:
    return " -> ".join(s["name"] for s in run.get("steps", []) if not s["name"].startswith("Failed"))


def _failed_steps(run: dict[str, Any]) -> str:
    """``; Validate failed: <error>: <cause>`` for each failed step (why a run ended as it did)."""
    return "".join(
        f"; {s['name']} failed: {s.get('error')}: {str(s.get('cause'))[:400]}"
        for s in run.get("steps", [])
        if s.get("status") == "FAILED" and s.get("error") not in (None, run.get("error"))
    )


@step("upload")
def upload_dataset(ctx: ScenarioContext) -> str:
    path = _example_file(ctx, f"{ctx.model}-train.csv", rows=2000, seed=7)
    # The scientist uploads through the upload API, which records who AWS authenticated.
    result = ctx.cli("data", "upload", str(path), "--model", ctx.model, identity="scientist")
    ctx.facts.update(upload=result)
    return (
        f"`mlops data upload {path.name} --model {ctx.model}` (as the scientist) -> "
        f"s3://{result['bucket']}/{result['key']} version {result['version_id']}, by {result['uploader']}, "
        f"run {result['run_name']}"
    )


def _current_steps(run: Any) -> str:
    """The steps a run is in now (``TrainCandidate x4``), else the last one it entered."""
    running: dict[str, int] = {}
    for s in run.steps:
        if s.status == "RUNNING":
            running[s.name] = running.get(s.name, 0) + 1
    if running:
        return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in running.items())
    return run.steps[-1].name if run.steps else "starting"


def wait_for_run(ctx: ScenarioContext, run_name: str, *, poll_s: float = 0.3) -> dict[str, Any]:
    """Wait for a training run to finish, showing its current step; its ``runs show --json``.

    Raises
    ------
    ScenarioError
        The run did not finish within ``ctx.timeout_s``.
    """
    sfn = ctx.client("stepfunctions")
    arn = ctx.platform().training_state_machine_arn
    deadline = time.monotonic() + ctx.timeout_s
    while True:
        try:
            run = describe_run(sfn, arn, run_name)
        except NotFoundError:
            run = None
        if run is not None and run.finished:
            break
        if time.monotonic() > deadline:
            state = run.status if run is not None else "not started"
            raise ScenarioError(f"run {run_name} still {state} after {ctx.timeout_s:.0f} s")
        ctx.status(f"run {run_name[:18]}...: {_current_steps(run) if run is not None else 'starting'}")
        time.sleep(poll_s)
    shown: dict[str, Any] = ctx.cli("runs", "show", run_name)
    return shown


@step("pipeline")
def wait_for_pipeline(ctx: ScenarioContext) -> str:
    upload = ctx.facts["upload"]
    started = time.time()
    run = wait_for_run(ctx, upload["run_name"])
    if run["status"] != "SUCCEEDED":
        raise ScenarioError(
            f"training run {run['name']} ended {run['status']}: {run.get('error')}: "
            f"{str(run.get('cause'))[:600]}{_failed_steps(run)} (steps: {_steps_line(run)})"
        )
    output = run.get("output") or {}
    ctx.facts.update(run=run, version=output.get("version"))
    metrics = output.get("metrics") or {}
    shown = ", ".join(f"{k}={metrics[k]:.3f}" for k in ("roc_auc", "accuracy", "f1", "rmse", "r2") if k in metrics)
    return (
        f"run {run['status']} in {time.time() - started:.1f} s: {_steps_line(run)}\n"
        f"             outcome {output.get('outcome')}: version {output.get('version')} "
        f"{output.get('status')} ({shown}); card {output.get('card_uri')}"
    )


@step("bad-data")
def upload_bad_dataset(ctx: ScenarioContext) -> str:
    path = _example_file(ctx, f"{ctx.model}-bad.csv", rows=2000, seed=7, corrupt=True)
    result = ctx.cli("data", "upload", str(path), "--model", ctx.model, identity="scientist")
    run = wait_for_run(ctx, result["run_name"])  # expected: the run ends FAILED with DatasetInvalid
    if run["error"] != "DatasetInvalid":
        raise ScenarioError(
            f"a corrupted dataset should end DatasetInvalid, got {run['status']} {run['error']}"
            f"{_failed_steps(run)} (steps: {_steps_line(run)})"
        )
    report_key = f"reports/{ctx.model}/datasets/{result['version_id']}/validation.json"
    report = json.loads(ctx.client("s3").get_object(Bucket=result["bucket"], Key=report_key)["Body"].read())
    failed = [f"{c['check']}[{c.get('column')}]" for c in report["checks"] if c["status"] == "failed"]
    return (
        f"corrupted upload -> run {run['status']} ({run['error']}); failed checks {', '.join(failed)}; "
        f"report s3://{result['bucket']}/{report_key}; the upload is kept"
    )


@step("registry")
def show_registry(ctx: ScenarioContext) -> str:
    shown = ctx.cli("models", "show", ctx.model, "--version", str(ctx.facts["version"]))
    lineage = shown.get("dataset_version") or {}
    return (
        f"version {shown['version']} {shown['status']}: dataset {lineage.get('key')} "
        f"(version {str(lineage.get('version_id'))[:12]}..., {lineage.get('rows')} rows, "
        f"sha256 {str(lineage.get('sha256'))[:12]}...), spec revision {shown['spec_revision']}, "
        f"code {shown['code_revision']}, artifact sha256 {str(shown['artifact_sha256'])[:12]}..."
    )


def _rollouts(ctx: ScenarioContext) -> Any:
    return ctx.cli("rollouts", ctx.model)


@step("approval")
def approve_candidate(ctx: ScenarioContext) -> str:
    version = ctx.facts["version"]
    # The training run handed the candidate to the deployment pipeline, which now waits for a human.
    # Generous: on a busy machine the deployment pipeline's first functions start cold.
    deadline = time.time() + min(ctx.timeout_s, 300)
    while True:
        try:
            decision = ctx.cli(
                "approve", ctx.model, str(version), "--comment", "metrics beat the gates; demo", identity="approver"
            )
            break
        except ScenarioError as exc:
            if ("not waiting" not in str(exc) and "no approval" not in str(exc)) or time.time() > deadline:
                raise
            time.sleep(0.5)  # the pipeline has not reached its approval step yet
    ctx.facts["approved_at"] = time.time()
    return (
        f"candidate waited for approval; `mlops approve {ctx.model} {version}` -> {decision['decision']} "
        f"by {decision['by']} (SigV4-signed POST to the API; the scientist who uploaded could not have approved it)"
    )


@step("deploy")
def wait_for_champion(ctx: ScenarioContext) -> str:
    version = ctx.facts["version"]
    patience = min(ctx.timeout_s, 300)
    deadline = time.time() + patience
    while (history := _rollouts(ctx))["champion"] != version:
        if time.time() > deadline:
            raise ScenarioError(f"version {version} did not become champion within {patience:.0f} s: {history}")
        time.sleep(0.5)
    waited = time.time() - ctx.facts["approved_at"]
    steps = ", ".join(f"{d.get('outcome') or d.get('strategy')}" for d in history["deployments"]) or "-"
    return (
        f"version {version} is champion {waited:.1f} s after approval ("
        f"rollouts: {steps}); `mlops rollouts {ctx.model}` shows who approved what, when"
    )


@step("predict")
def predict_over_http(ctx: ScenarioContext) -> str:
    [records] = _requests(ctx, rows=3, seed=99)
    answer = ctx.cli("predict", ctx.model, "--data", json.dumps(records))
    shown = ", ".join(str(p) for p in answer["predictions"])
    bad = dict(records[0], tenure_months=-1)
    try:
        ctx.cli("predict", ctx.model, "--data", json.dumps(bad))
        refused = "an out-of-range record was NOT refused"
    except ScenarioError as exc:
        refused = f"an out-of-range record is refused: {str(exc).rsplit(' failed: ', 1)[-1][:160]}"
    return (
        f"`mlops predict {ctx.model}` (SigV4-signed HTTPS to the API): 3 records -> [{shown}] from version "
        f"{answer['version']} (request {answer['request_id'][:8]}...); {refused}"
    )


@step("audit")
def verify_audit(ctx: ScenarioContext) -> str:
    result = ctx.cli("audit", "verify", "--model", ctx.model)
    chain = result["chains"][0]
    return (
        f"`mlops audit verify --model {ctx.model}`: chain intact, {chain['events']} events "
        f"(head hash {chain['head_hash'][:12]}...)"
    )


def _monitor_line(result: dict[str, Any]) -> str:
    drifted = result.get("drifted_features") or []
    found = f"drifted: {', '.join(drifted)}" if drifted else "no feature drifted"
    return f"{result['verdict']} over {result['rows']} captured rows ({found})"


@step("monitor")
def monitor_clean_traffic(ctx: ScenarioContext) -> str:
    batches = _requests(ctx, rows=400, seed=2024)
    for batch in batches:
        ctx.cli("predict", ctx.model, "--data", json.dumps(batch))
    result = ctx.cli("monitor", "run", ctx.model)
    if result.get("verdict") == "drifted":
        raise ScenarioError(f"traffic drawn like the training data was judged drifted: {result}")
    group = f"mlops-{ctx.cloud_environment()}-monitoring"
    schedule = ctx.client("scheduler").get_schedule(GroupName=group, Name=ctx.model)
    return (
        f"the deployment scheduled the drift check ({group}/{ctx.model}: {schedule['ScheduleExpression']}); "
        f"{sum(len(b) for b in batches)} records like the training data predicted over HTTP and captured; "
        f"`mlops monitor run {ctx.model}` runs it now: {_monitor_line(result)}"
    )


@step("drift")
def monitor_shifted_traffic(ctx: ScenarioContext) -> str:
    frame = _generate(ctx.model, 400, 2025, drift=True)
    # New subscribers: account ids the training data does not hold (customer_id is unique).
    frame["customer_id"] = [f"C{900000 + i:06d}" for i in range(len(frame))]
    outcomes = frame.pop("churned").astype(int).tolist()
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    folder = Path(ctx.facts.setdefault("workdir", tempfile.mkdtemp(prefix="mlops-demo-")))
    truth = ["request_id,index,churned"]
    for start in range(0, len(records), 100):
        answer = ctx.cli("predict", ctx.model, "--data", json.dumps(records[start : start + 100]))
        truth.extend(f"{answer['request_id']},{i},{outcomes[start + i]}" for i in range(len(answer["predictions"])))
    # Their outcomes become known (the subscribers stayed or left): the labels join the captures.
    labels = folder / f"{ctx.model}-labels.csv"
    labels.write_text("\n".join(truth) + "\n")
    labelled = ctx.cli("labels", "upload", str(labels), "--model", ctx.model)
    html = folder / f"{ctx.model}-drift.html"
    result = ctx.cli("monitor", "run", ctx.model, "--html", str(html))
    if result.get("verdict") != "drifted" or not html.is_file():
        raise ScenarioError(f"shifted traffic was not judged drifted, or no HTML report was written: {result}")
    ctx.facts.update(drift=result)
    alarm = _wait_for_alarm(ctx, f"mlops-{ctx.cloud_environment()}-drift", "ALARM", timeout_s=60)
    retrain = result.get("retrain") or {}
    data = retrain.get("data") or {}
    if retrain.get("action") == "started" and retrain.get("execution_name"):
        ctx.facts.setdefault("started_runs", []).append(str(retrain["execution_name"]))
    if retrain.get("action") == "started" and data.get("source") == "captures+labels":
        retrained = (
            f"retraining started ({retrain.get('execution_name')}) on a new dataset version: the champion's "
            f"{data.get('base_rows')} rows + {data.get('labelled_rows')} labelled captures ({data.get('key')})"
        )
    elif retrain.get("action") == "started":
        name = retrain.get("execution_name")
        retrained = f"retraining started ({name}) on {data.get('key')}, newer than the champion's"
    else:
        retrained = f"retraining {retrain.get('action', 'not asked for')}: {retrain.get('reason') or ''}".rstrip(": ")
    return (
        f"{len(records)} shifted records (newer customers, higher prices) and their {labelled.get('labels')} "
        f"outcomes (`mlops labels upload {labels}`); "
        f"`mlops monitor run {ctx.model} --html {html}`: {_monitor_line(result)}; alarm {alarm}; {retrained}; "
        f"report s3://{result['bucket']}/{result['report_key']}"
    )


def _wait_for_alarm(ctx: ScenarioContext, name: str, state: str, timeout_s: float) -> str:
    """``name -> STATE`` once the local CloudWatch has evaluated it (or what it is after the wait)."""
    cloudwatch = ctx.client("cloudwatch")
    deadline = time.time() + timeout_s
    current = "missing"
    while time.time() < deadline:
        alarms = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        current = alarms[0]["StateValue"] if alarms else "missing"
        if current == state:
            return f"{name} -> {state} (notified the platform topic)"
        time.sleep(0.5)
    raise ScenarioError(f"alarm {name} is {current}, not {state}, {timeout_s:.0f} s after the drifted run")


@step("batch")
def score_a_file_in_batch(ctx: ScenarioContext) -> str:
    """The last step: a file of 2,000 new customers scored in batch by the champion (docs/batch.md)."""
    environment = ctx.cloud_environment()
    ssm = ctx.client("ssm")
    bucket = ssm.get_parameter(Name=f"/mlops/{environment}/data-bucket")["Parameter"]["Value"]
    key = f"batch/{ctx.model}/nightly.csv"
    # A plain S3 put under batch/<model>/ starts the job; `mlops batch start --wait` joins it.
    ctx.client("s3").put_object(Bucket=bucket, Key=key, Body=_example_rows(ctx.model, rows=2000, seed=77))
    ctx.status(f"batch job of s3://{bucket}/{key}")
    job = ctx.cli("batch", "start", ctx.model, f"s3://{bucket}/{key}", "--wait", "--timeout", str(ctx.timeout_s))
    manifest = job.get("manifest") or {}
    if job.get("status") != "SUCCEEDED" or manifest.get("scored") != 2000:
        raise ScenarioError(f"the batch job did not score the file's 2,000 rows: {job}")
    return (
        f"`mlops batch start {ctx.model} s3://{bucket}/{key} --wait` (the upload had started the job, the "
        f"command joined it): {manifest['rows']} rows scored by version {manifest['version']} in "
        f"{manifest['batches']} batch(es), {manifest['refused']} refused; output {manifest['output']['uri']}"
    )
