"""The embedded local cloud: the synthesized CDK app running on moto, on one machine.

Examples
--------
>>> with LocalCloud(LocalCloudOptions(assembly="cdk.out", port=0)) as cloud:  # doctest: +SKIP
...     s3 = cloud.client("s3")
...     print(cloud.ready_info()["endpoint_url"])
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from mlops.errors import MlopsError, NotFoundError
from mlops_local import patches, training_jobs
from mlops_local.apigw import ApiGatewayServer, load_apis
from mlops_local.assembly import load_assembly
from mlops_local.events import EventDispatcher
from mlops_local.intrinsics import ACCOUNT_ID
from mlops_local.materialize import Deployment, Materializer
from mlops_local.metrics import AlarmEvaluator, emf_documents, put_emf
from mlops_local.runtime import LambdaRuntime

DEFAULT_REGION = "us-east-1"
CREDENTIALS = ("testing", "testing")  # what `mlops --local` and the e2e fixture use


@dataclass(frozen=True)
class LocalIdentity:
    """One local principal: its access key pair and the IAM user the API reports it as."""

    name: str
    access_key_id: str
    secret_access_key: str

    def arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:user/{self.name}"


# Distinct principals for trying roles apart (four-eyes: the scientist uploads, the approver
# approves). ``testing`` stays the default of `mlops --local` and the test fixtures.
IDENTITIES = (
    LocalIdentity("testing", *CREDENTIALS),
    LocalIdentity("scientist", "LOCALSCIENTIST", "local-scientist-secret"),
    LocalIdentity("approver", "LOCALAPPROVER", "local-approver-secret"),
    LocalIdentity("operator", "LOCALOPERATOR", "local-operator-secret"),
)


def identity(name: str) -> LocalIdentity:
    """The local principal called ``name`` (see :data:`IDENTITIES`)."""
    for found in IDENTITIES:
        if found.name == name:
            return found
    raise NotFoundError(f"no local identity {name!r}; identities: {', '.join(i.name for i in IDENTITIES)}")


def write_profiles(directory: Path, *, endpoint_url: str, region: str) -> dict[str, str]:
    """An AWS shared-credentials file and config file with one profile per local identity.

    With ``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE`` pointing at them, ``--profile NAME``
    (or ``AWS_PROFILE=NAME``) works for the ``aws`` CLI, boto3 and ``mlops``: the config gives each
    profile the local endpoint and region.
    """
    directory.mkdir(parents=True, exist_ok=True)
    credentials = directory / "credentials"
    config = directory / "config"
    credentials.write_text(
        "".join(
            f"[{i.name}]\naws_access_key_id = {i.access_key_id}\naws_secret_access_key = {i.secret_access_key}\n\n"
            for i in IDENTITIES
        )
    )
    config.write_text(
        "".join(f"[profile {i.name}]\nregion = {region}\nendpoint_url = {endpoint_url}\n\n" for i in IDENTITIES)
    )
    credentials.chmod(0o600)
    return {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}


_API_URL = re.compile(r"https://([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([A-Za-z0-9_\-]+)/?")


class LocalCloudError(MlopsError):
    """The local cloud could not start or answer."""


@dataclass
class LocalCloudOptions:
    """How to run the local cloud.

    ``port=0`` picks a free port (tests); ``api_port=None`` means ``port + 1`` (or a free port when
    ``port`` is 0). ``time_scale`` multiplies Step Functions Retry back-off, Wait states and Lambda
    asynchronous retry delays (each capped at ``max_compressed_wait_s``); ``real_time`` turns
    compression off.
    """

    assembly: Path = Path("cdk.out")
    port: int = 4566
    api_port: int | None = None
    host: str = "127.0.0.1"
    region: str | None = None
    stack_prefix: str | None = None
    real_time: bool = False
    time_scale: float = 0.01
    max_compressed_wait_s: float = 2.0
    schedules: bool = True
    # Evaluate CloudWatch alarms against the stored metrics every ``alarm_interval_s`` seconds.
    alarms: bool = True
    alarm_interval_s: float = 2.0
    warm: bool = False
    log_dir: Path | None = None
    start_method: str = "forkserver"
    max_workers: int = 4


@dataclass
class _Control:
    """Control routes served next to the AWS APIs, under ``/_mlops/``."""

    cloud: LocalCloud

    def __call__(self, app: Any) -> Callable[..., Iterable[bytes]]:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if not path.startswith("/_mlops/"):
                return app(environ, start_response)
            status, body = self.route(environ["REQUEST_METHOD"], path, environ)
            data = json.dumps(body, default=str).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        return wrapped

    def route(self, method: str, path: str, environ: dict[str, Any]) -> tuple[str, Any]:
        try:
            if path == "/_mlops/status" and method == "GET":
                return "200 OK", self.cloud.status()
            if path == "/_mlops/fire" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                deliveries = self.cloud.fire(str(request.get("rule", "")))
                return "200 OK", {"deliveries": [asdict(d) for d in deliveries]}
            if path == "/_mlops/alarms/evaluate" and method == "POST":
                changes = self.cloud.alarms.evaluate()
                return "200 OK", {"transitions": [asdict(c) for c in changes], "skipped": self.cloud.alarms.skipped}
            if path == "/_mlops/faults" and method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if self.cloud.runtime is None:
                    raise NotFoundError("the Lambda runtime is not running")
                if "function" not in request:  # a failure drill's plan (mlops_local.faults)
                    return "200 OK", self.cloud.runtime.plan.control(request)
                self.cloud.runtime.inject_fault(
                    str(request["function"]),
                    count=int(request.get("count", 1)),
                    error_type=str(request.get("error_type", "Lambda.ServiceException")),
                    message=str(request.get("message", "fault injected by the local cloud")),
                )
                return "200 OK", {"faults": self.cloud.runtime.faults}
        except NotFoundError as exc:
            return "404 Not Found", {"message": str(exc)}
        except Exception as exc:
            return "500 Internal Server Error", {"message": f"{type(exc).__name__}: {exc}"}
        return "404 Not Found", {"message": f"no control route {method} {path}"}


class LocalCloud:
    """Materializes a cloud assembly on a moto server and runs its code, events and APIs.

    Parameters
    ----------
    options
        See :class:`LocalCloudOptions`.
    """

    def __init__(self, options: LocalCloudOptions | None = None) -> None:
        self.options = options or LocalCloudOptions()
        self.region = self.options.region or DEFAULT_REGION
        self.account = ACCOUNT_ID
        self.endpoint_url = ""
        self.api_url: str | None = None
        self.deployment = Deployment()
        self.stack_names: list[str] = []
        self.warnings: list[str] = []
        self.startup_seconds = 0.0
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.runtime: LambdaRuntime | None = None
        self.gateway: ApiGatewayServer | None = None
        self.dispatcher: EventDispatcher
        self.alarms: AlarmEvaluator
        self._session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS[0], aws_secret_access_key=CREDENTIALS[1], region_name=self.region
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Start the servers, create every resource; return :meth:`ready_info`."""
        started = time.time()
        opts = self.options
        # moto logs every failed state as a warning; failures are visible in the execution history.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        stacks = load_assembly(opts.assembly, opts.stack_prefix)
        if opts.region is None:
            self.region = next((s.region for s in stacks if s.region), DEFAULT_REGION)
            self._session = boto3.session.Session(
                aws_access_key_id=CREDENTIALS[0], aws_secret_access_key=CREDENTIALS[1], region_name=self.region
            )
        self.account = next((s.account for s in stacks if s.account), ACCOUNT_ID)
        self.stack_names = [s.name for s in stacks]
        self._tmp = tempfile.TemporaryDirectory(prefix="mlops-local-")
        work = Path(self._tmp.name)
        log_dir = opts.log_dir or work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        try:
            self._start_moto()
            patches.activate(self)
            self._reset_moto()
            self.runtime = LambdaRuntime(
                endpoint_url=self.endpoint_url,
                region=self.region,
                account=self.account,
                log_dir=log_dir,
                max_workers=opts.max_workers,
                start_method=opts.start_method,
                credentials=CREDENTIALS,
                on_metrics=self._store_metrics,
            )
            self.alarms = AlarmEvaluator(client=self.client, region=self.region, account=self.account)
            self.dispatcher = EventDispatcher(
                client=self.client,
                invoke=self.invoke,
                region=self.region,
                account=self.account,
                sleep=lambda s: time.sleep(self.scale_seconds(s)),
            )
            api_port = opts.api_port if opts.api_port is not None else (opts.port + 1 if opts.port else 0)
            self.gateway = ApiGatewayServer(
                invoke=self.invoke,
                region=self.region,
                account=self.account,
                credentials={i.access_key_id: i.secret_access_key for i in IDENTITIES},
                principals={i.access_key_id: i.name for i in IDENTITIES},
                host=opts.host,
                port=api_port,
            )
            materializer = Materializer(
                session=self._session,
                endpoint_url=self.endpoint_url,
                region=self.region,
                account=self.account,
                runtime=self.runtime,
                work_dir=work,
                rewrite=self._rewrite,
            )
            self.deployment = materializer.deploy(stacks)
            self.warnings.extend(self.deployment.warnings)
            training_jobs.configure_cloud(self)  # sagemaker:createTrainingJob.sync tasks run the image
            self.gateway.apis = load_apis(self.client("apigateway"))
            self.gateway.start()
            if self.gateway.apis and self.gateway.apis[0].stages:
                first = self.gateway.apis[0]
                self.api_url = self.gateway.base_url(first.api_id, first.stages[0])
            self.profiles = write_profiles(work / "aws", endpoint_url=self.endpoint_url, region=self.region)
            if opts.schedules:
                self.warnings.extend(self.dispatcher.start_scheduler())
            if opts.alarms:
                self.alarms.start(opts.alarm_interval_s)
            if opts.warm:
                self.runtime.warm()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.time() - started
        return self.ready_info()

    def _start_moto(self) -> None:
        # Here, not at the top: moto's server (with mlops_local.patches, about 2.5 s) loads only when a
        # cloud starts, not for `mlops local status`/`down` or the harness that starts one in a child.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = _Control(self)(DomainDispatcherApplication(create_backend_app))
        try:
            self._server = make_server(
                self.options.host, self.options.port, app, threaded=True, request_handler=QuietHandler
            )
        except OSError as exc:
            raise LocalCloudError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc} "
                "(is another local cloud running? choose --port)"
            ) from exc
        port = self._server.server_port
        self.endpoint_url = f"http://{self.options.host}:{port}"
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        self._server_thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._server_thread.start()

    def _reset_moto(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - our own loopback server
            pass

    def stop(self) -> None:
        """Stop schedules, the API server, every function worker and the AWS endpoint."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        alarms = getattr(self, "alarms", None)
        if alarms is not None:
            alarms.stop()
        dispatcher = getattr(self, "dispatcher", None)
        if dispatcher is not None:
            dispatcher.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.runtime is not None:
            self.runtime.stop()
        patches.deactivate(self)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Start, report readiness, and serve until SIGINT or SIGTERM; then stop cleanly."""
        stop = threading.Event()

        def handle(signum: int, frame: Any) -> None:
            stop.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            info = self.start()
            if on_ready:
                on_ready(info)
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)

    # -- what it offers -------------------------------------------------------------------------
    def ready_info(self) -> dict[str, Any]:
        """The one line ``mlops local up`` prints once ready."""
        return {
            "endpoint_url": self.endpoint_url,
            "api_url": self.api_url,
            "region": self.region,
            "stacks": self.stack_names,
            "emulated": self.deployment.emulated_types(),
            "not_emulated": self.deployment.not_emulated_types(),
            "log_dir": str(self.log_dir),
            "startup_seconds": round(self.startup_seconds, 2),
            # Several principals: AWS_PROFILE=<name> (or --profile) with these two files set.
            "identities": {i.name: i.arn(self.account) for i in IDENTITIES},
            "profiles": dict(getattr(self, "profiles", {})),
        }

    def status(self) -> dict[str, Any]:
        return {
            **self.ready_info(),
            "resources": [asdict(r) for r in self.deployment.records],
            "outputs": self.deployment.outputs,
            "warnings": self.warnings,
            "deliveries": [asdict(d) for d in self.dispatcher.deliveries],
            "alarm_transitions": [asdict(t) for t in self.alarms.transitions],
            "invocations": list(self.runtime.invocations) if self.runtime else [],
            "requests": list(self.gateway.requests) if self.gateway else [],
        }

    def _session_for_clients(self) -> boto3.session.Session:
        """A boto3 session whose clients need ``endpoint_url=self.endpoint_url`` (or the env var)."""
        os.environ.setdefault("AWS_ENDPOINT_URL", self.endpoint_url)
        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS[0], aws_secret_access_key=CREDENTIALS[1], region_name=self.region
        )

    def client(self, service: str) -> Any:
        """A boto3 client of the local cloud (cached, thread-safe to share)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url)
            return self._clients[service]

    def scale_seconds(self, seconds: float) -> float:
        if self.options.real_time:
            return seconds
        return min(seconds * self.options.time_scale, self.options.max_compressed_wait_s)

    def _rewrite(self, text: str) -> str:
        if "execute-api" not in text or self.gateway is None:
            return text
        gateway = self.gateway
        return _API_URL.sub(lambda m: f"http://{gateway.host}:{gateway.port}/{m.group(1)}/{m.group(3)}/", text)

    def invoke(self, function: str, payload: bytes) -> tuple[bytes, str | None]:
        """Run a function synchronously; ``(payload, function_error)``."""
        assert self.runtime is not None
        try:
            result = self.runtime.invoke(function, payload)
        except NotFoundError as exc:
            return json.dumps(
                {"errorMessage": str(exc), "errorType": "ResourceNotFoundException"}
            ).encode(), "Unhandled"
        return result.payload, result.function_error

    def _store_metrics(self, lines: list[str]) -> None:
        """What CloudWatch Logs does with a function's embedded-metric-format lines."""
        try:
            put_emf(self.client("cloudwatch"), emf_documents("\n".join(lines)))
        except Exception as exc:  # a metric is never worth failing the invocation for
            logging.getLogger(__name__).warning("metrics from a function were not stored: %s", exc)

    def invoke_async(self, function: str, payload: bytes) -> None:
        self.dispatcher.pool.submit(self.dispatcher._invoke_async, function, payload)

    def rule_name(self, name_or_logical_id: str) -> str:
        for record in self.deployment.find("AWS::Events::Rule"):
            if name_or_logical_id in (record.physical_id, record.logical_id):
                return record.physical_id
        raise NotFoundError(
            f"no rule named {name_or_logical_id!r} (by name or logical id); rules: "
            + ", ".join(f"{r.logical_id} ({r.physical_id})" for r in self.deployment.find("AWS::Events::Rule"))
        )

    def fire(self, rule: str) -> list[Any]:
        """Deliver a scheduled event to a rule's targets now (``mlops local fire RULE``).

        ``rule`` is a rule's name or logical id, or a Scheduler schedule as ``GROUP/NAME``.
        """
        try:
            name = self.rule_name(rule)
        except NotFoundError:
            if not any(rule in (s["Name"], f"{s.get('GroupName')}/{s['Name']}") for s in self.dispatcher.schedules()):
                raise
            name = rule
        return self.dispatcher.fire(name)

    def physical_id(self, logical_id: str, type_: str | None = None) -> str:
        """Physical name of a template resource by logical id (first match across stacks)."""
        for record in self.deployment.find(type_):
            if record.logical_id == logical_id:
                return record.physical_id
        raise NotFoundError(f"no created resource with logical id {logical_id}")
