"""A loopback API Gateway for integration tests: real signed HTTP in front of real Lambda handlers.

``signed_gateway`` serves ``POST`` requests on 127.0.0.1. Each request's SigV4 signature is checked
as API Gateway checks it (the local cloud's verifier, ``mlops_local.apigw.verify_sigv4``) against a
table of users; a bad one is answered 403 and reaches no handler. A verified request is matched to
one of the route's resource templates (``/models/{model}/runs``) and handed, as an API Gateway REST
proxy event whose ``requestContext.identity`` is the user the signature proved (never a value the
client wrote), to the real handler of ``functions/<name>/handler.py``.

Like Lambda, each function runs in ``environments`` execution environments (each a fresh load of
its handler module), one request at a time in each; concurrent requests go to separate ones. A
handler that raises is answered 502 with the exception named, as API Gateway answers a failed
invocation: a crash is seen as a 5xx, never a hung client. A body that is not UTF-8 is handed on
base64-encoded, as API Gateway does for a binary body.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import queue
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_local.apigw import SignatureError, verify_sigv4

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGE = "v1"
# access key -> (secret key, IAM user name): the people the tests sign as
USERS = {"AKIDSCIENTIST": ("scientist-secret", "scientist"), "AKIDCAROL": ("carol-secret", "carol")}


def user_arn(user: str) -> str:
    """The IAM user ARN API Gateway puts in ``requestContext.identity.userArn``."""
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


class Context:
    """The Lambda context object a handler is called with."""

    memory_limit_in_mb = 256
    aws_request_id = "r"

    def __init__(self, function: str) -> None:
        self.function_name = function.replace("_", "-")
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"


def load_handler(function: str, label: str = "") -> ModuleType:
    """A fresh load of ``functions/<function>/handler.py`` (one Lambda execution environment)."""
    path = ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"{function}_handler{label}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pattern(template: str) -> re.Pattern[str]:
    """``/models/{model}/runs`` as a regex whose named groups are the path parameters."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(regex + r"\Z")


@contextmanager
def signed_gateway(
    routes: Mapping[str, str], *, users: Mapping[str, tuple[str, str]] = USERS, environments: int = 1
) -> Iterator[str]:
    """Serve ``routes`` (resource template -> function name, e.g. ``{"/models/{model}/runs":
    "model_import"}``) behind SigV4 verification of ``users`` (access key -> (secret, user name));
    yields the stage's base URL (``http://127.0.0.1:PORT/v1/``). Handlers are loaded on entry, so
    set their environment variables first."""
    patterns = [(template, _pattern(template), function) for template, function in routes.items()]
    pools: dict[str, queue.Queue[ModuleType]] = {}
    for function in dict.fromkeys(routes.values()):
        pools[function] = queue.Queue()
        for index in range(environments):
            pools[function].put(load_handler(function, f"_{index}"))
    credentials = {key: secret for key, (secret, _) in users.items()}

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                key = verify_sigv4(
                    method="POST",
                    url=f"http://{self.headers['Host']}{self.path}",
                    headers=dict(self.headers.items()),
                    body=body,
                    credentials=credentials,
                    region=REGION,
                )
            except SignatureError as exc:
                return self._answer(403, {"message": str(exc)})
            path = self.path.removeprefix(f"/{STAGE}")
            matched = [(t, m, f) for t, p, f in patterns if (m := p.match(path))]
            if not matched:
                return self._answer(404, {"message": f"no resource matches POST {path}"})
            resource, match, function = matched[0]
            try:
                text, encoded = body.decode(), False
            except UnicodeDecodeError:  # API Gateway hands a binary body on base64-encoded
                text, encoded = base64.b64encode(body).decode(), True
            event = {
                "resource": resource,
                "path": path,
                "httpMethod": "POST",
                "headers": {"Content-Type": "application/json"},
                "pathParameters": match.groupdict(),
                "requestContext": {
                    "requestId": uuid.uuid4().hex,
                    "stage": STAGE,
                    "resourcePath": resource,
                    "httpMethod": "POST",
                    "identity": {"userArn": user_arn(users[key][1]), "caller": key},
                },
                "body": text,
                "isBase64Encoded": encoded,
            }
            environment = pools[function].get()  # one request at a time per execution environment
            try:
                answer = environment.handler(event, Context(function))
                status, sent = int(answer["statusCode"]), str(answer["body"]).encode()
            except Exception as exc:  # a failed invocation: API Gateway answers 502, never hangs
                return self._answer(502, {"message": f"{type(exc).__name__}: {exc}"})
            finally:
                pools[function].put(environment)
            self._send(status, sent)

        def _answer(self, status: int, message: dict[str, Any]) -> None:
            self._send(status, json.dumps(message).encode())

        def _send(self, status: int, body: bytes) -> None:
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
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{STAGE}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def signed_post(
    url: str, body: bytes, access_key: str, users: Mapping[str, tuple[str, str]] = USERS
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to ``url`` signed by hand as ``access_key`` (what a client sends): the status
    and the JSON answer (``{"unparsed": text}`` when the answer is not JSON)."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key, users[access_key][0]), "execute-api", REGION).add_auth(request)
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
