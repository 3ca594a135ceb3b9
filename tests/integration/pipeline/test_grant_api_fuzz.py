"""Hostile bodies against the grant APIs, over real signed HTTP: ``POST /models/{m}/code`` (the code
upload function), ``/imports`` and ``/runs`` (the import function), each the real handler behind a
loopback server that checks SigV4 as API Gateway does, registry and bucket on moto.

Hypothesis builds the bodies: text that is not JSON, bytes that are not UTF-8, JSON of every shape
(nested, scalars, lists), objects of the routes' own fields with hostile values, NaN/Infinity and
overlong numbers, a deep nesting, unknown fields (``caller``). Every answer must be a 2xx or a 4xx
(never a 5xx, never a dropped connection: a handler that raises is answered 502 here, as API
Gateway would), and every 4xx a JSON ``error`` that names the field, the body, or the model it
refuses.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.steps.services import Services
from mlops_local.apigw import SignatureError, verify_sigv4
from tests.integration.pipeline.test_validate_step import SPEC
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
KEY, SECRET = "AKIDSCIENTIST", "scientist-secret"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/scientist"
FIELDS = {
    "code": ("package", "sha256", "size", "confirm"),
    "imports": ("format", "sha256", "size", "dataset_version", "source", "source_sha256", "run_id"),
    "runs": ("params", "metrics", "tags", "model"),
}
ROUTES = {"code": "code_upload", "imports": "model_import", "runs": "model_import"}
# What a refusal may name: a field (also as params.x, model.format ...), the body, the model, its spec
NAMED = re.compile(
    r"\b(" + "|".join(sorted({f for fields in FIELDS.values() for f in fields})) + r")\b|request body|body field"
    r"|model 'tiny'|has no spec"
)


class Context:
    memory_limit_in_mb = 256
    aws_request_id = "r"

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def _load(function: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{function}_fuzz", ROOT / "functions" / function / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def api(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in (
        ("DATA_BUCKET", DATA_BUCKET),
        ("REGISTRY_TABLE", REGISTRY_TABLE),
        ("AUDIT_TABLE", AUDIT_TABLE),
        ("MLOPS_ENVIRONMENT", "dev"),
        ("POWERTOOLS_TRACE_DISABLED", "1"),
        ("CODE_UPLOADERS", json.dumps([CALLER])),
    ):
        monkeypatch.setenv(name, value)
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    handlers = {name: _load(name) for name in set(ROUTES.values())}
    lock = threading.Lock()  # one request at a time per function, as in one Lambda environment

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                verify_sigv4(
                    method="POST",
                    url=f"http://{self.headers['Host']}{self.path}",
                    headers=dict(self.headers.items()),
                    body=body,
                    credentials={KEY: SECRET},
                    region="us-east-1",
                )
            except SignatureError as exc:
                return self._answer(403, json.dumps({"message": str(exc)}).encode())
            path = self.path.removeprefix("/v1")
            route = path.rsplit("/", 1)[-1]
            resource = "/models/{model}/" + route
            try:
                text, encoded = body.decode(), False
            except UnicodeDecodeError:  # API Gateway hands a binary body on base64-encoded
                text, encoded = base64.b64encode(body).decode(), True
            event = {
                "resource": resource,
                "path": path,
                "httpMethod": "POST",
                "headers": {"Content-Type": "application/json"},
                "pathParameters": {"model": path.split("/")[2]},
                "requestContext": {
                    "requestId": "req-fuzz",
                    "stage": "v1",
                    "resourcePath": resource,
                    "httpMethod": "POST",
                    "identity": {"userArn": CALLER, "caller": KEY},
                },
                "body": text,
                "isBase64Encoded": encoded,
            }
            function = ROUTES[route]
            try:
                with lock:
                    answer = handlers[function].handler(event, Context(function))
            except Exception as exc:
                return self._answer(502, json.dumps({"message": f"{type(exc).__name__}: {exc}"}).encode())
            self._answer(answer["statusCode"], answer["body"].encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/"
    finally:
        httpd.shutdown()


def post(api: str, route: str, body: bytes, model: str = "tiny") -> tuple[int, dict[str, Any]]:
    """POST ``body`` signed as the scientist; the status and the JSON answer."""
    url = f"{api}models/{model}/{route}"
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY, SECRET), "execute-api", "us-east-1").add_auth(request)
    outgoing = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(outgoing, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"unparsed": text.decode(errors="replace")}


def check_answer(route: str, body: bytes, status: int, answer: dict[str, Any]) -> None:
    assert status < 500, (route, body[:300], status, answer)
    if status >= 400:
        message = answer.get("error") or answer.get("message")
        assert isinstance(message, str) and message, (route, body[:300], status, answer)
        assert NAMED.search(message), (route, body[:300], status, message)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["ab" * 32, "onnx", "sklearn-pickle-5", "onnx-file", "nb-00000000000000000000", "x" * 2000])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def bodies(route: str) -> st.SearchStrategy[bytes]:
    fields = st.sampled_from((*FIELDS[route], "caller", "importer", "")) | st.text(max_size=12)
    objects = st.dictionaries(fields, VALUES, max_size=6)
    as_json = (objects | VALUES).map(lambda value: json.dumps(value).encode())
    raw = st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'{"metrics": {"auc": NaN}}',
            b'{"size": Infinity, "sha256": "ab"}',
            b'{"size": 1e999}',
            b'{"size": ' + b"9" * 5000 + b"}",
            b"[" * 5000 + b"]" * 5000,
            b'{"params": ' + b'{"a": ' * 300 + b"1" + b"}" * 301,
            b'{"package": "\\ud800"}',
            b"\xff\xfe\x00garbage",
        ]
    )
    return as_json | raw | st.binary(max_size=64) | st.text(max_size=80).map(str.encode)


@pytest.mark.parametrize("route", sorted(FIELDS))
def test_hostile_bodies_get_no_5xx_and_every_refusal_names_what_is_wrong(api: str, route: str) -> None:
    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=bodies(route))
    def case(body: bytes) -> None:
        status, answer = post(api, route, body)
        check_answer(route, body, status, answer)

    case()


@pytest.mark.parametrize(
    ("route", "body", "status", "names"),
    [
        ("code", b'{"package": "p", "sha256": "zz", "size": 1}', 400, "sha256"),
        ("code", b'{"confirm": "one"}', 400, "confirm"),
        (
            "imports",
            b'{"format": "pickle", "sha256": "' + b"ab" * 32 + b'", "size": 1, "dataset_version": "v", "source": "s"}',
            400,
            "format",
        ),
        ("imports", b'{"caller": "arn:aws:iam::1:user/mallory"}', 400, "caller"),
        ("runs", b'{"metrics": {"auc": "high"}}', 400, "metrics.auc"),
        ("runs", b'{"model": {"format": "onnx", "sha256": "ab", "size": 1}}', 400, "model.sha256"),
        ("runs", b'{"model": {"format": "onnx", "sha256": "' + b"ab" * 32 + b'", "size": -1}}', 400, "model.size"),
        ("runs", b"[" * 5000 + b"]" * 5000, 400, "request body nests deeper than 4 levels"),
        ("runs", b'{"params": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}", 400, "request body nests deeper"),
        # 200 tags of 1,000 emoji each: 200,000 characters sent, 2.4 million stored escaped
        (
            "runs",
            json.dumps({"tags": {f"t{i}": "\U0001f600" * 1000 for i in range(200)}}, ensure_ascii=False).encode(),
            400,
            "params, metrics and tags: 2,",
        ),
    ],
)
def test_each_refusal_names_its_field(api: str, route: str, body: bytes, status: int, names: str) -> None:
    got, answer = post(api, route, body)
    assert got == status and names in answer["error"], answer


def test_a_hostile_model_name_is_refused_by_name(api: str) -> None:
    for route in FIELDS:
        status, answer = post(api, route, b'{"params": {}}', model="..%2F..%2Fetc")
        assert 400 <= status < 500, (route, status, answer)


def test_well_formed_requests_pass_the_same_gateway(api: str) -> None:
    # the harness refuses only what is wrong: a code version and a run are granted, signed as the scientist
    status, code = post(api, "code", json.dumps({"package": "tinyfeatures", "sha256": "ab" * 32, "size": 10}).encode())
    assert status == 201 and code["uploader"] == CALLER and code["url"].startswith("http"), code
    model = {"format": "onnx", "sha256": "cd" * 32, "size": 10}
    status, run = post(api, "runs", json.dumps({"metrics": {"auc": 0.9}, "model": model}).encode())
    assert status == 201 and run["caller"] == CALLER and run["upload"]["method"] == "PUT", run
    # an import of a dataset version the model does not have is refused naming it
    body = {"format": "onnx", "sha256": "ef" * 32, "size": 10, "dataset_version": "v-none", "source": "onnx-file"}
    status, refused = post(api, "imports", json.dumps(body).encode())
    assert status == 404 and "dataset_version 'v-none'" in refused["error"], refused
