"""The local API Gateway answers every request, over a real socket, with a status like API Gateway's.

Before, a Content-Length that is not a number raised in the request thread (no answer, the client
saw the connection drop), and a negative one made the server read until the client hung up.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from mlops_local.apigw import MAX_PAYLOAD_BYTES, Api, ApiGatewayServer, Route


@pytest.fixture
def gateway() -> Iterator[ApiGatewayServer]:
    def invoke(_arn: str, payload: bytes) -> tuple[bytes, str | None]:
        event = json.loads(payload)
        return json.dumps({"statusCode": 200, "body": json.dumps({"echo": event["body"]})}).encode(), None

    server = ApiGatewayServer(invoke=invoke, region="us-east-1", account="123456789012", credentials={})
    route = Route("api", "/echo", "POST", "r1", "NONE", "AWS_PROXY", "arn:aws:lambda:us-east-1:1:function:echo")
    server.apis = [Api("api", "api", ["v1"], [route])]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def raw(gateway: ApiGatewayServer, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(head + b"\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def request(length: str) -> bytes:
    return f"POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\nConnection: close\r\n".encode()


def test_a_plain_request_is_proxied(gateway: ApiGatewayServer) -> None:
    status, body = raw(gateway, request("2"), b"{}")
    assert status == 200 and json.loads(body) == {"echo": "{}"}


@pytest.mark.parametrize(
    ("length", "status"), [("abc", 400), ("-5", 400), ("1e3", 400), (str(MAX_PAYLOAD_BYTES + 1), 413)]
)
def test_bad_or_huge_content_length_is_refused_without_reading(
    gateway: ApiGatewayServer, length: str, status: int
) -> None:
    got, body = raw(gateway, request(length), b"{}")
    assert got == status and json.loads(body)["message"]


def test_a_host_no_url_can_hold_is_403_on_a_signed_route(gateway: ApiGatewayServer) -> None:
    # GIVEN a signed route and a request signed by a known key, with a Host header no URL can hold
    gateway.apis[0].routes[0].authorization = "AWS_IAM"
    gateway.credentials = {"AKID": "secret"}
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    auth = (
        f"AWS4-HMAC-SHA256 Credential=AKID/{now[:8]}/us-east-1/execute-api/aws4_request,"
        " SignedHeaders=host;x-amz-date, Signature=00"
    )
    head = f"POST /v1/echo HTTP/1.1\r\nHost: [\r\nX-Amz-Date: {now}\r\nAuthorization: {auth}\r\n"
    # WHEN it arrives THEN 403 (the signature cannot verify), not a dropped connection
    assert raw(gateway, (head + "Content-Length: 0\r\nConnection: close\r\n").encode())[0] == 403
