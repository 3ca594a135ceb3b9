"""A local cloud in a child process, for tests (and scripts) that need one.

The cloud runs in its own process so that in-process moto mocks of other tests (``mock_aws``)
and the local cloud never share moto's global state.

Examples
--------
>>> with LocalCloudProcess(assembly="cdk.out") as cloud:  # doctest: +SKIP
...     cloud.client("s3").list_buckets()
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_local.cloud import CREDENTIALS as CREDENTIALS  # re-exported: tests and benchmarks sign with it
from mlops_local.cloud import identity as local_identity


class LocalCloudStartError(RuntimeError):
    """The child process did not print its ready line."""


def synthesize(outdir: Path, environment: str = "dev", root: Path | None = None) -> Path:
    """Synthesize the CDK app's ``environment`` stage into ``outdir`` (in a child process)."""
    root = root or Path.cwd()
    script = (
        "import json, sys, aws_cdk as cdk, app;"
        "ctx = json.loads(open('cdk.json').read())['context'];"
        f"ctx['mlops:env'] = {environment!r};"
        f"a = cdk.App(context=ctx, outdir={str(outdir)!r}); app.build(a); a.synth()"
    )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, env=env, check=False, timeout=600
    )
    if result.returncode != 0:
        raise LocalCloudStartError(f"synth failed:\n{result.stderr[-4000:]}")
    return outdir


_SYNTHESIZED: dict[tuple[str, str], Path] = {}
# What the CDK app reads: an assembly synthesized from the same bytes of these is the same assembly.
SYNTH_INPUTS = (
    *("app.py", "cdk.json", "constraints.txt", "requirements.txt", "package-lock.json"),
    *("stacks", "functions", "layers", "statemachines"),
)
SYNTH_KEEP = 2  # assemblies kept per environment in .build/synth (each copies its layers: ~370 MB)


def synth_inputs_hash(root: Path, environment: str) -> str:
    """A digest of every file the CDK app reads (sources, layer requirements, state machines, context),
    the environment and this interpreter's version (the layers carry its bytecode)."""
    digest = hashlib.sha256(f"{environment}\0{sys.version}\0".encode())
    for name in SYNTH_INPUTS:
        top = root / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc" or any(p.endswith(".egg-info") for p in path.parts):
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def synthesize_once(environment: str = "dev", root: Path | None = None) -> Path:
    """The ``environment`` stage's assembly, synthesized once for all processes of a checkout.

    Assemblies live in ``.build/synth/<environment>-<inputs hash>``: the test processes of one
    ``pytest -n 2`` run (and later runs of an unchanged tree) share one synthesis instead of each
    paying its own (~40 s of CPU), and an edit to any input gives a new directory, never a stale
    one. A file lock makes concurrent processes wait for the one synthesizing; the assembly is
    written beside and renamed into place, so a killed synthesis leaves nothing half-written.
    Older assemblies of the environment beyond the newest ``SYNTH_KEEP`` are removed.
    """
    root = (root or Path.cwd()).resolve()
    key = (str(root), environment)
    if key in _SYNTHESIZED and _SYNTHESIZED[key].is_dir():
        return _SYNTHESIZED[key]
    cache = root / ".build" / "synth"
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"{environment}-{synth_inputs_hash(root, environment)}"
    with (cache / f"{final.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if not (final / "manifest.json").is_file():
            partial = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=cache))
            try:
                synthesize(partial, environment, root)
                shutil.rmtree(final, ignore_errors=True)
                partial.rename(final)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
            _prune_assemblies(cache, environment, keep=final)
        os.utime(final)  # most recently used: kept by the next prune
    _SYNTHESIZED[key] = final
    return final


def _prune_assemblies(cache: Path, environment: str, keep: Path) -> None:
    """Remove this environment's assemblies beyond the newest ``SYNTH_KEEP`` (``keep`` always stays),
    and partial ones an interrupted synthesis left more than an hour ago."""
    assemblies = sorted(
        (p for p in cache.glob(f"{environment}-*") if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in assemblies[SYNTH_KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
        (cache / f"{old.name}.lock").unlink(missing_ok=True)
    for partial in cache.glob(f".{environment}-*"):
        if time.time() - partial.stat().st_mtime > 3600:
            shutil.rmtree(partial, ignore_errors=True)


class LocalCloudProcess:
    """``mlops local up --port 0`` in a child process; clients and control calls against it."""

    def __init__(self, assembly: str | Path, *extra_args: str, timeout_s: float = 120) -> None:
        self.assembly = Path(assembly)
        self.extra_args = extra_args
        self.timeout_s = timeout_s
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[str] | None = None
        self.stderr_lines: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return str(self.info["endpoint_url"])

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def region(self) -> str:
        return str(self.info["region"])

    def start(self) -> dict[str, Any]:
        command = [
            sys.executable,
            "-m",
            "mlops_cli.main",
            "local",
            "up",
            "--port",
            "0",
            "--assembly",
            str(self.assembly),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        threading.Thread(target=self._drain, daemon=True).start()
        started = time.time()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            raise LocalCloudStartError(
                f"local cloud exited ({self.process.returncode}):\n" + "".join(self.stderr_lines[-50:])
            )
        self.info = json.loads(line)
        self.info["measured_startup_seconds"] = round(time.time() - started, 2)
        return self.info

    def _drain(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> LocalCloudProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def session(self, identity: str = "testing") -> boto3.session.Session:
        """A session signed as one local principal (``testing``, ``scientist``, ``approver``, ``operator``)."""
        found = local_identity(identity)
        return boto3.session.Session(
            aws_access_key_id=found.access_key_id,
            aws_secret_access_key=found.secret_access_key,
            region_name=self.region,
        )

    def client(self, service: str, identity: str = "testing") -> Any:
        return self.session(identity).client(service, endpoint_url=self.endpoint_url)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310
            f"{self.endpoint_url}/_mlops/{path}", data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def status(self) -> dict[str, Any]:
        return dict(self.control("status"))

    def fire(self, rule: str) -> list[dict[str, Any]]:
        return list(self.control("fire", {"rule": rule})["deliveries"])

    def inject_fault(self, function: str, *, count: int = 1, error_type: str = "Lambda.ServiceException") -> None:
        """The next ``count`` invocations of functions whose name contains ``function`` fail."""
        self.control("faults", {"function": function, "count": count, "error_type": error_type})

    def add_faults(self, *faults: dict[str, Any]) -> dict[str, Any]:
        """Add failure-drill faults (see :mod:`mlops_local.faults`); answers the plan."""
        return dict(self.control("faults", {"add": list(faults)}))

    def clear_faults(self) -> dict[str, Any]:
        """Remove every fault not yet used up; answers the plan (with what was applied)."""
        return dict(self.control("faults", {"clear": True}))

    def environ(self, identity: str = "testing") -> dict[str, str]:
        """Environment variables that point the SDK and the ``mlops`` CLI at this cloud, signed as ``identity``."""
        found = local_identity(identity)
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": found.access_key_id,
            "AWS_SECRET_ACCESS_KEY": found.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def api(
        self, method: str, path: str, body: Any = None, *, sign: bool = True, identity: str = "testing"
    ) -> tuple[int, Any]:
        """Call the local API over HTTP, SigV4-signed as the local principal ``identity`` would.

        Returns ``(status, parsed JSON body)``; a non-JSON body comes back as ``{"raw": text}``.
        """
        url = self.api_url.rstrip("/") + "/" + path.lstrip("/")
        data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if sign:
            signed = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
            found = local_identity(identity)
            SigV4Auth(Credentials(found.access_key_id, found.secret_access_key), "execute-api", self.region).add_auth(
                signed
            )
            headers = dict(signed.headers.items())
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                status, text = int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            status, text = int(exc.code), exc.read()
        try:
            return status, json.loads(text or b"{}")
        except ValueError:
            return status, {"raw": text.decode(errors="replace")}

    def wait_for_alarm(self, name: str, state: str, timeout_s: float = 30) -> dict[str, Any]:
        """Wait until alarm ``name`` is in ``state`` (the local cloud evaluates alarms every 2 s)."""
        cloudwatch = self.client("cloudwatch")
        deadline = time.time() + timeout_s
        while True:
            alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
            if alarm and alarm[0]["StateValue"] == state:
                return dict(alarm[0])
            if time.time() > deadline:
                found = alarm[0]["StateValue"] if alarm else "no such alarm"
                raise TimeoutError(f"alarm {name} is not {state} after {timeout_s:.0f} s (it is {found})")
            time.sleep(0.5)

    def subscribe_queue(self, topic_arn: str, name: str) -> str:
        """A new SQS queue subscribed to ``topic_arn`` (raw delivery off); returns its URL."""
        sqs = self.client("sqs")
        url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        return url

    def messages(self, queue_url: str, wait_s: float = 10) -> list[dict[str, Any]]:
        """The SNS notifications waiting in a subscribed queue (each SNS envelope, parsed)."""
        sqs = self.client("sqs")
        deadline = time.time() + wait_s
        found: list[dict[str, Any]] = []
        while not found and time.time() < deadline:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            found = [json.loads(m["Body"]) for m in batch.get("Messages", [])]
        return found

    def resource(self, logical_id: str) -> dict[str, Any]:
        """The status record of a template resource by logical id."""
        for record in self.status()["resources"]:
            if record["logical_id"] == logical_id:
                return dict(record)
        raise KeyError(logical_id)


def signed_as(env: dict[str, str], identity: str) -> dict[str, str]:
    """``env`` (:meth:`LocalCloudProcess.environ`) with the credentials of the local principal ``identity``.

    For a step a different person takes: ``mlops(signed_as(env, "scientist"), "data", "upload", ...)``.
    """
    found = local_identity(identity)
    return {**env, "AWS_ACCESS_KEY_ID": found.access_key_id, "AWS_SECRET_ACCESS_KEY": found.secret_access_key}


def create_registry_tables(client: Any, *, registry_table: str, audit_table: str) -> None:
    """The two tables, key for key as stacks/stateful.py declares them."""
    client.create_table(
        TableName=registry_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    client.create_table(
        TableName=audit_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
    )


def serve_as_champion(
    registry: Any,
    s3: Any,
    bucket: str,
    spec: Any,
    pipeline: Any,
    *,
    spec_revision: int,
    prefix: str,
    onnx: bool = True,
    actor: str = "carol",
    tags: dict[str, str] | None = None,
) -> int:
    """Register a fitted pipeline as ``spec``'s champion the way the pipeline does, and return its version.

    The pickle (and, with ``onnx``, its ONNX export) is stored under ``artifacts/<model>/<prefix>/``
    with the sha256 the registry records; the version is approved and made champion by ``actor``.
    For scripts and tests that need a served model without running a training pipeline. ``tags``
    are added to the version's (for example the serving path and why there is no ONNX export).
    """
    # Here, not at the top: the ONNX export (skl2onnx, about 0.8 s) only for this helper, not for
    # every test session that imports the harness.
    from mlops.training.artifacts import dump_artifact, sha256_hex
    from mlops.training.export import ONNX_TAG_SHA256, ONNX_TAG_URI, export_onnx

    data, sha256 = dump_artifact(pipeline)
    key = f"artifacts/{spec.name}/{prefix}/model.pkl"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    tags = dict(tags or {})
    if onnx:
        exported = export_onnx(pipeline, spec)
        s3.put_object(Bucket=bucket, Key=f"{key}.onnx", Body=exported)
        tags.update({ONNX_TAG_URI: f"s3://{bucket}/{key}.onnx", ONNX_TAG_SHA256: sha256_hex(exported)})
    version = int(
        registry.register_version(
            spec.name,
            actor="pipeline",
            spec_revision=spec_revision,
            artifact_uri=f"s3://{bucket}/{key}",
            artifact_sha256=sha256,
            tags=tags,
        ).version
    )
    registry.approve(spec.name, version, actor=actor)
    registry.set_alias(spec.name, "champion", version, actor=actor)
    return version
