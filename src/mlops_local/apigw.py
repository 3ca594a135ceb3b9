"""A loopback HTTP server that plays API Gateway (REST, Lambda proxy integration, v1 events).

Routes come from the REST APIs created from the template (resources, methods, integrations,
stages). Authorization: ``AWS_IAM`` methods need a SigV4 request signed for ``execute-api`` whose
signature verifies against the local credentials (recomputed with botocore's signer); anything else
gets 403. The caller is reported as the IAM user its access key belongs to (several local
principals, see :data:`mlops_local.cloud.IDENTITIES`). ``NONE`` methods are open. Unknown routes get 404 JSON.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)")
MAX_CLOCK_SKEW_S = 15 * 60
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
_INVOKE_URI = re.compile(r"arn:aws:apigateway:[^:]+:lambda:path/[^/]+/functions/(.+)/invocations")


class SignatureError(Exception):
    """The request is not signed, or its SigV4 signature does not verify."""


def verify_sigv4(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: dict[str, str],
    region: str,
    service: str = "execute-api",
    now: float | None = None,
) -> str:
    """Check a SigV4 signature the way AWS does; return the access key id that signed it.

    Raises
    ------
    SignatureError
        No or malformed ``Authorization`` header, unknown access key, wrong scope, expired or
        mismatching signature.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    match = _AUTH.match(lower.get("authorization", ""))
    if not match:
        raise SignatureError("Missing Authentication Token")
    credential, signed_headers, signature = match.groups()
    try:
        access_key, date, scope_region, scope_service, terminator = credential.split("/")
    except ValueError as exc:
        raise SignatureError("Credential should be scoped to a valid region") from exc
    if scope_service != service or terminator != "aws4_request":
        raise SignatureError(f"Credential should be scoped to correct service: '{service}'")
    if scope_region != region:
        raise SignatureError(f"Credential should be scoped to a valid region, not '{scope_region}'")
    secret = credentials.get(access_key)
    if secret is None:
        raise SignatureError("The security token included in the request is invalid")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise SignatureError("Missing or malformed X-Amz-Date") from exc
    if not amz_date.startswith(date) or abs((now or time.time()) - signed_at) > MAX_CLOCK_SKEW_S:
        raise SignatureError("Signature expired")
    names = signed_headers.split(";")
    if "host" not in names:
        raise SignatureError("'Host' must be a signed header")
    request = AWSRequest(method=method, url=url, data=body, headers={n: lower[n] for n in names if n in lower})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret, lower.get("x-amz-security-token")), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise SignatureError("The request signature we calculated does not match the signature you provided.")
    return access_key


@dataclass
class Route:
    api_id: str
    path: str  # resource path template, e.g. /models/{model}/predict
    method: str  # GET ... or ANY
    resource_id: str
    authorization: str
    integration_type: str
    function_arn: str | None
    response_headers: dict[str, str] = field(default_factory=dict)  # MOCK integrations (CORS preflight)

    def match(self, path: str) -> dict[str, str] | None:
        template = [s for s in self.path.split("/") if s]
        parts = [s for s in path.split("/") if s]
        params: dict[str, str] = {}
        for i, segment in enumerate(template):
            if segment.startswith("{") and segment.endswith("+}"):
                if i >= len(parts):
                    return None
                params[segment[1:-2]] = "/".join(parts[i:])
                return params
            if i >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = unquote(parts[i])
            elif segment != unquote(parts[i]):
                return None
        return params if len(parts) == len(template) else None

    @property
    def rank(self) -> tuple[int, int, int]:
        segments = [s for s in self.path.split("/") if s]
        greedy = any(s.endswith("+}") for s in segments)
        literal = sum(1 for s in segments if not s.startswith("{"))
        return (0 if greedy else 1, literal, 0 if self.method == "ANY" else 1)


@dataclass
class Api:
    api_id: str
    name: str
    stages: list[str]
    routes: list[Route]


def load_apis(client: Any) -> list[Api]:
    """Read every REST API's routes from the local API Gateway (``client`` is boto3 ``apigateway``)."""
    apis: list[Api] = []
    for item in client.get_rest_apis()["items"]:
        api_id = item["id"]
        routes: list[Route] = []
        for resource in client.get_resources(restApiId=api_id, embed=["methods"])["items"]:
            for method in resource.get("resourceMethods", {}) or {}:
                detail = client.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
                integration = detail.get("methodIntegration", {}) or {}
                uri = integration.get("uri", "")
                found = _INVOKE_URI.match(uri)
                headers: dict[str, str] = {}
                for response in (integration.get("integrationResponses") or {}).values():
                    for key, value in (response.get("responseParameters") or {}).items():
                        if key.startswith("method.response.header."):
                            headers[key.rsplit(".", 1)[-1]] = value.strip("'")
                routes.append(
                    Route(
                        api_id=api_id,
                        path=resource["path"],
                        method=method,
                        resource_id=resource["id"],
                        authorization=detail.get("authorizationType", "NONE"),
                        integration_type=integration.get("type", ""),
                        function_arn=found.group(1) if found else None,
                        response_headers=headers,
                    )
                )
        stages = [s["stageName"] for s in client.get_stages(restApiId=api_id).get("item", [])]
        apis.append(Api(api_id=api_id, name=item.get("name", api_id), stages=stages, routes=routes))
    return apis


class ApiGatewayServer:
    """Serves every REST API at ``http://127.0.0.1:<port>/<api_id>/<stage>/...``; with exactly one
    API, also at ``http://127.0.0.1:<port>/<stage>/...``.

    Parameters
    ----------
    invoke
        ``invoke(function_arn, payload)`` -> ``(payload, function_error)``.
    credentials
        Access key id -> secret key accepted for ``AWS_IAM`` routes.
    principals
        Access key id -> the IAM user name a verified request is reported as
        (``arn:aws:iam::<account>:user/<name>``); a key not listed is its own name.
    """

    def __init__(
        self,
        *,
        invoke: Callable[[str, bytes], tuple[bytes, str | None]],
        region: str,
        account: str,
        credentials: dict[str, str],
        principals: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.invoke = invoke
        self.region = region
        self.account = account
        self.credentials = credentials
        self.principals = dict(principals or {})
        self.apis: list[Api] = []
        self.requests: list[dict[str, Any]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet; kept in gateway.requests
                pass

            def _any(self) -> None:
                declared = self.headers.get("Content-Length") or "0"
                length = int(declared) if declared.isdigit() else -1
                if not 0 <= length <= MAX_PAYLOAD_BYTES:
                    # Like API Gateway: refused without reading the body, and the connection closed.
                    self.close_connection = True
                    status, headers, payload = gateway._json(
                        413 if length > MAX_PAYLOAD_BYTES else 400,
                        "Request Too Long" if length > MAX_PAYLOAD_BYTES else "Invalid Content-Length",
                    )
                else:
                    body = self.rfile.read(length) if length else b""
                    status, headers, payload = gateway.handle(
                        self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
                    )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        class Server(ThreadingHTTPServer):
            # socketserver listens with a backlog of 5: of 32 signed clients connecting at once, 13
            # were reset in 5 s (benchmarks/bench_load.py). API Gateway accepts them all.
            request_queue_size = 1024

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = host
        self._thread: threading.Thread | None = None

    def base_url(self, api_id: str, stage: str) -> str:
        if len(self.apis) <= 1:
            return f"http://{self.host}:{self.port}/{stage}/"
        return f"http://{self.host}:{self.port}/{api_id}/{stage}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="apigateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread = None
        self.server.server_close()

    # -- request handling ----------------------------------------------------------------------
    @staticmethod
    def _json(status: int, message: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **(extra or {})}, json.dumps({"message": message}).encode()

    def _locate(self, path: str) -> tuple[Api, str, str] | None:
        segments = [s for s in path.split("/") if s]
        for api in self.apis:
            if len(segments) >= 2 and segments[0] == api.api_id and segments[1] in api.stages:
                return api, segments[1], "/" + "/".join(segments[2:])
        if len(self.apis) == 1 and segments and segments[0] in self.apis[0].stages:
            return self.apis[0], segments[0], "/" + "/".join(segments[1:])
        return None

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Turn one HTTP request into the API's answer (status, headers, body)."""
        split = urlsplit(raw_path)
        request_id = str(uuid.uuid4())
        located = self._locate(split.path)
        record: dict[str, Any] = {"method": method, "path": split.path, "request_id": request_id}
        self.requests.append(record)
        if located is None:
            record["status"] = 404
            return self._json(404, "Not Found", {"x-amzn-ErrorType": "NotFoundException"})
        api, stage, path = located
        candidates = [(r, r.match(path)) for r in api.routes]
        matches = [(r, p) for r, p in candidates if p is not None]
        if not matches:
            record["status"] = 404
            return self._json(404, "Not Found", {"x-amzn-ErrorType": "NotFoundException"})
        for_method = [(r, p) for r, p in matches if r.method in (method, "ANY")]
        if not for_method:
            record["status"] = 405
            return self._json(405, "Method Not Allowed")
        route, params = max(for_method, key=lambda rp: rp[0].rank)
        identity: dict[str, Any] = {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")}
        if route.authorization == "AWS_IAM":
            host = next((v for k, v in headers.items() if k.lower() == "host"), f"{self.host}:{self.port}")
            try:
                access_key = verify_sigv4(
                    method=method,
                    url=f"http://{host}{raw_path}",
                    headers=headers,
                    body=body,
                    credentials=self.credentials,
                    region=self.region,
                )
            except (SignatureError, ValueError) as exc:  # ValueError: a Host or path no URL can hold
                record["status"] = 403
                return self._json(
                    403,
                    str(exc),
                    {
                        "x-amzn-ErrorType": "AccessDeniedException"
                        if "signature" in str(exc).lower()
                        else "MissingAuthenticationTokenException"
                    },
                )
            user = self.principals.get(access_key, access_key)
            identity.update(
                {
                    "accessKey": access_key,
                    "accountId": self.account,
                    "caller": access_key,
                    "user": access_key,
                    "userArn": f"arn:aws:iam::{self.account}:user/{user}",
                }
            )
        elif route.authorization not in ("NONE", ""):
            record["status"] = 500
            return self._json(500, f"authorization type {route.authorization} is not emulated locally")
        if route.integration_type == "MOCK":
            record["status"] = 204
            return 204, dict(route.response_headers), b""
        if route.integration_type != "AWS_PROXY" or not route.function_arn:
            record["status"] = 500
            return self._json(
                500, f"integration {route.integration_type} is not emulated locally (only Lambda proxy and MOCK are)"
            )
        event = self.proxy_event(route, stage, path, params, method, split.query, headers, body, identity, request_id)
        payload, error = self.invoke(route.function_arn, json.dumps(event).encode())
        record["function"] = route.function_arn
        if error is not None:
            record["status"] = 502
            record["error"] = payload.decode(errors="replace")[:1000]
            return self._json(502, "Internal server error")
        try:
            answer = json.loads(payload)
            status = int(answer.get("statusCode", 200))
            out_headers = {k: str(v) for k, v in (answer.get("headers") or {}).items()}
            for key, values in (answer.get("multiValueHeaders") or {}).items():
                out_headers[key] = ", ".join(str(v) for v in values)
            text = answer.get("body") or ""
            data = base64.b64decode(text) if answer.get("isBase64Encoded") else str(text).encode()
        except (ValueError, AttributeError, TypeError):
            record["status"] = 502
            return self._json(502, "Internal server error")
        out_headers.setdefault("Content-Type", "application/json")
        out_headers["x-amzn-RequestId"] = request_id
        record["status"] = status
        return status, out_headers, data

    def proxy_event(
        self,
        route: Route,
        stage: str,
        path: str,
        params: dict[str, str],
        method: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        identity: dict[str, Any],
        request_id: str,
    ) -> dict[str, Any]:
        """The API Gateway REST (v1) Lambda proxy event for one request."""
        multi_query = dict(parse_qs(query, keep_blank_values=True))
        multi_headers: dict[str, list[str]] = {}
        for key, value in headers.items():
            multi_headers.setdefault(key, []).append(value)
        try:
            text: str | None = body.decode() if body else None
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        base_identity = dict.fromkeys(
            (
                "cognitoIdentityPoolId",
                "accountId",
                "cognitoIdentityId",
                "caller",
                "accessKey",
                "cognitoAuthenticationType",
                "cognitoAuthenticationProvider",
                "userArn",
                "userAgent",
                "user",
                "sourceIp",
            )
        )
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers) or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account,
                "apiId": route.api_id,
                "resourceId": route.resource_id,
                "resourcePath": route.path,
                "httpMethod": method,
                "stage": stage,
                "path": f"/{stage}{path}",
                "requestId": request_id,
                "extendedRequestId": request_id,
                "protocol": "HTTP/1.1",
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "domainName": headers.get("Host", ""),
                "identity": {**base_identity, **identity},
            },
            "body": text,
            "isBase64Encoded": encoded,
        }
