"""mlops.serving.awsapi without AWS: its signature against botocore's signer, and its retries, errors and
connections against a scripted HTTP server on localhost."""

from __future__ import annotations

import hashlib
import json
import ssl
import subprocess
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from mlops.serving import awsapi
from mlops.serving.awsapi import S3, AwsError, Credentials, DynamoDB, NoSuchKey, clients_from_env, sign

REGION = "eu-west-1"
KEYS = [
    "models/churn/v1/model.onnx",
    "with space/and  two spaces.bin",
    "unicodé/ключ/模型.onnx",
    "plus+sign=equals~tilde/a//double",
    "odd !'()*,;:@&$[]#?%.txt",
]
CREDENTIALS = [
    Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    Credentials("ASIAEXAMPLE", "c2VjcmV0L3NlY3JldA==", "FwoGZXIvYXdzEJr//////////session+token/="),
]


def _botocore_authorization(
    auth_class: type[botocore.auth.SigV4Auth],
    service: str,
    credentials: Credentials,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[str, datetime]:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    boto = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    auth_class(boto, service, REGION).add_auth(request)
    stamp = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return str(request.headers["Authorization"]), stamp


def _signed_names(authorization: str) -> list[str]:
    return authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


# --------------------------------------------------------------------------------------- signature
@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["long-term", "session"])
def test_dynamodb_signature_is_botocores(credentials: Credentials) -> None:
    # GIVEN a DynamoDB JSON request as awsapi sends it, signed by botocore's SigV4Auth
    url = f"https://dynamodb.{REGION}.amazonaws.com/"
    body = json.dumps({"TableName": "registry", "Key": {"pk": {"S": "MODEL#churn"}}}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
    expected, now = _botocore_authorization(
        botocore.auth.SigV4Auth, "dynamodb", credentials, "POST", url, headers, body
    )

    # WHEN awsapi signs the same request at the same instant
    signed = sign(
        "POST",
        url,
        dict(headers),
        hashlib.sha256(body).hexdigest(),
        service="dynamodb",
        region=REGION,
        credentials=credentials,
        now=now,
    )

    # THEN the Authorization header is byte for byte botocore's, over the same header set
    assert signed["Authorization"] == expected
    wanted = {"content-type", "host", "x-amz-date", "x-amz-target"}
    assert set(_signed_names(expected)) == wanted | ({"x-amz-security-token"} if credentials.token else set())
    assert signed.get("X-Amz-Security-Token") == credentials.token


@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["long-term", "session"])
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_s3_signature_is_botocores(credentials: Credentials, key: str, method: str) -> None:
    # GIVEN an S3 object request with an awkward key, quoted as awsapi quotes it
    client = S3(credentials, REGION, f"https://s3.{REGION}.amazonaws.com", custom_endpoint=False)
    url = client._url("my-bucket", key)
    assert url == f"https://my-bucket.s3.{REGION}.amazonaws.com/{quote(key, safe='/~')}"
    body = b"\x00model bytes\xff" if method == "PUT" else b""
    digest = hashlib.sha256(body).hexdigest()
    headers = {"X-Amz-Content-SHA256": digest}
    if method == "PUT":
        headers |= {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
    expected, now = _botocore_authorization(botocore.auth.S3SigV4Auth, "s3", credentials, method, url, headers, body)

    # WHEN awsapi signs it at the same instant
    signed = sign(method, url, dict(headers), digest, service="s3", region=REGION, credentials=credentials, now=now)

    # THEN the signatures agree (botocore neither normalizes nor re-quotes S3 paths: neither do we)
    assert signed["Authorization"] == expected
    assert "x-amz-content-sha256" in _signed_names(expected)


def test_signature_depends_on_the_path() -> None:
    # GIVEN two keys that differ only in a character quote() must keep apart
    credentials = CREDENTIALS[0]
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    client = S3(credentials, REGION, f"https://s3.{REGION}.amazonaws.com", custom_endpoint=False)

    # WHEN both are signed at the same instant
    signatures = {
        sign(
            "GET",
            client._url("b-1", key),
            {},
            awsapi._EMPTY_SHA256,
            service="s3",
            region=REGION,
            credentials=credentials,
            now=now,
        )["Authorization"]
        for key in ("a+b", "a b")
    }

    # THEN they differ
    assert len(signatures) == 2


# ---------------------------------------------------------------------------- scripted local server
@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    crc32: int | None = None  # None: the body's true CRC32
    close: bool = False  # close the connection after answering without saying so


@dataclass
class Seen:
    port: int
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Script:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.default = Reply()


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with script.lock:
                script.seen.append(
                    Seen(
                        self.client_address[1],
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                reply = script.replies.pop(0) if script.replies else script.default
            self.send_response(reply.status)
            crc = zlib.crc32(reply.body) & 0xFFFFFFFF if reply.crc32 is None else reply.crc32
            self.send_header("x-amz-crc32", str(crc))
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
            if reply.close:
                self.close_connection = True

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No real backoff: the delays awsapi asked for, recorded."""
    asked: list[float] = []
    monkeypatch.setattr(awsapi.time, "sleep", asked.append)
    return asked


def _dynamodb(endpoint: str) -> DynamoDB:
    return DynamoDB(CREDENTIALS[1], REGION, endpoint, custom_endpoint=True)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_the_request_on_the_wire_is_the_one_signed(server: tuple[Script, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a DynamoDB client on the local server
    script, endpoint = server
    script.replies = [Reply(body=_json({"Item": {"pk": {"S": "x"}}}))]

    # WHEN it calls GetItem
    answer = _dynamodb(endpoint).get_item(TableName="t", Key={"pk": {"S": "x"}})

    # THEN the answer is the wire JSON, the target names the operation, and botocore, signing the
    # received method, path, signed headers and body at the received date, gets the received signature
    assert answer == {"Item": {"pk": {"S": "x"}}}
    (seen,) = script.seen
    assert seen.headers["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert seen.headers["host"] == endpoint.split("://", 1)[1]
    names = _signed_names(seen.headers["authorization"])
    received = seen.headers
    headers = {n: received[n] for n in names if n not in ("host", "x-amz-date")}
    stamp = datetime.strptime(received["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stamp.replace(tzinfo=None))
    request = AWSRequest(method=seen.method, url=endpoint + seen.path, headers=headers, data=seen.body)
    token = CREDENTIALS[1]
    botocore.auth.SigV4Auth(
        BotoCredentials(token.access_key, token.secret_key, token.token), "dynamodb", REGION
    ).add_auth(request)
    assert request.headers["Authorization"] == seen.headers["authorization"]


def test_503_then_200_succeeds_in_two_requests(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a server that is unavailable once
    script, endpoint = server
    script.replies = [Reply(503, b""), Reply(body=_json({"Count": 0, "Items": []}))]

    # WHEN a query is made
    answer = _dynamodb(endpoint).query(TableName="t")

    # THEN it is retried once, after one short backoff
    assert answer == {"Count": 0, "Items": []}
    assert len(script.seen) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.1


def test_throttling_is_retried(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a throttled first answer (400 with a throttling __type)
    script, endpoint = server
    script.replies = [
        Reply(400, _json({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow"})),
        Reply(body=_json({"Item": {"a": {"N": "1"}}})),
    ]

    # WHEN an item is read
    answer = _dynamodb(endpoint).get_item(TableName="t", Key={})

    # THEN the second attempt answers
    assert answer == {"Item": {"a": {"N": "1"}}}
    assert len(script.seen) == 2


def test_persistent_500s_raise_after_max_attempts(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a server that always fails
    script, endpoint = server
    script.default = Reply(500, _json({"__type": "InternalServerError", "message": "boom"}))

    # WHEN an item is read
    with pytest.raises(AwsError) as raised:
        _dynamodb(endpoint).get_item(TableName="t", Key={})

    # THEN exactly MAX_ATTEMPTS requests were made and the last error is raised, botocore-shaped
    assert len(script.seen) == awsapi.MAX_ATTEMPTS == 3
    assert raised.value.response["Error"] == {"Code": "InternalServerError", "Message": "boom"}
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "(InternalServerError) when calling the GetItem operation: boom" in str(raised.value)
    # backoff doubles and stays within its cap
    assert len(sleeps) == 2 and sleeps[0] <= 0.1 and sleeps[1] <= 0.2


def test_validation_error_is_not_retried(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a request DynamoDB refuses
    script, endpoint = server
    script.default = Reply(
        400, _json({"__type": "com.amazon.coral.validate#ValidationException", "Message": "bad key"})
    )

    # WHEN it is sent
    with pytest.raises(AwsError) as raised:
        _dynamodb(endpoint).put_item(TableName="t", Item={})

    # THEN once only, with the code and message parsed
    assert len(script.seen) == 1
    assert raised.value.code == "ValidationException"
    assert raised.value.response["Error"] == {"Code": "ValidationException", "Message": "bad key"}
    assert sleeps == []


def test_error_fields_are_kept_like_botocore(server: tuple[Script, str]) -> None:
    # GIVEN a cancelled transaction with its reasons
    script, endpoint = server
    reasons = [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}]
    script.default = Reply(
        400,
        _json(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled",
                "CancellationReasons": reasons,
            }
        ),
    )

    # WHEN a transaction is written
    with pytest.raises(AwsError) as raised:
        _dynamodb(endpoint).transact_write_items(TransactItems=[])

    # THEN the operation is named right and the reasons sit where botocore puts them
    assert script.seen[0].headers["x-amz-target"] == "DynamoDB_20120810.TransactWriteItems"
    assert raised.value.response["CancellationReasons"] == reasons
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_non_json_error_body_still_raises_aws_error(server: tuple[Script, str]) -> None:
    # GIVEN a proxy answering 403 with HTML
    script, endpoint = server
    script.default = Reply(403, b"<html>forbidden</html>")

    # WHEN a call is made
    with pytest.raises(AwsError) as raised:
        _dynamodb(endpoint).get_item(TableName="t", Key={})

    # THEN the code falls back to the status and the message to the body
    assert raised.value.response["Error"] == {"Code": "HTTP403", "Message": "<html>forbidden</html>"}
    assert len(script.seen) == 1


def test_crc32_mismatch_is_retried(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a first answer damaged in transit (its x-amz-crc32 does not match)
    script, endpoint = server
    body = _json({"Item": {"a": {"S": "b"}}})
    script.replies = [Reply(body=body, crc32=(zlib.crc32(body) + 1) & 0xFFFFFFFF), Reply(body=body)]

    # WHEN the item is read
    answer = _dynamodb(endpoint).get_item(TableName="t", Key={})

    # THEN the damaged answer was dropped and the call repeated
    assert answer == {"Item": {"a": {"S": "b"}}}
    assert len(script.seen) == 2


def test_crc32_mismatch_every_time_raises(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN answers that are always damaged
    script, endpoint = server
    script.default = Reply(body=b"{}", crc32=1)

    # WHEN an item is read / THEN an AwsError, after every attempt
    with pytest.raises(AwsError, match="CRC32"):
        _dynamodb(endpoint).get_item(TableName="t", Key={})
    assert len(script.seen) == awsapi.MAX_ATTEMPTS


def test_connection_is_kept_alive(server: tuple[Script, str]) -> None:
    # GIVEN one client in one thread
    script, endpoint = server
    client = _dynamodb(endpoint)

    # WHEN it makes three calls
    for _ in range(3):
        client.get_item(TableName="t", Key={})

    # THEN they share one connection
    assert len({s.port for s in script.seen}) == 1
    assert len(script.seen) == 3


def test_closed_keep_alive_connection_is_reopened(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a server that drops the connection after an answer without announcing it
    script, endpoint = server
    script.replies = [Reply(close=True), Reply(body=_json({"Item": {"n": {"N": "2"}}}))]
    client = _dynamodb(endpoint)
    client.get_item(TableName="t", Key={})

    # WHEN the next call goes out
    answer = client.get_item(TableName="t", Key={})

    # THEN it succeeds on a new connection
    assert answer == {"Item": {"n": {"N": "2"}}}
    assert len(script.seen) == 2
    assert script.seen[0].port != script.seen[1].port
    # AND the stale connection cost no attempt and no backoff (as botocore's pool)
    assert sleeps == []


def test_each_thread_has_its_own_connection(server: tuple[Script, str]) -> None:
    # GIVEN one client shared by two live threads
    script, endpoint = server
    client = _dynamodb(endpoint)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            client.get_item(TableName=name, Key={})
            barrier.wait(timeout=5)
            client.get_item(TableName=name, Key={})
            barrier.wait(timeout=5)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # WHEN each makes two calls
    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # THEN each thread reused its own connection, and the two differ
    assert errors == []
    ports = {name: {s.port for s in script.seen if json.loads(s.body)["TableName"] == name} for name in ("a", "b")}
    assert len(ports["a"]) == 1 and len(ports["b"]) == 1
    assert ports["a"] != ports["b"]


def test_unreachable_endpoint_raises_connection_error(sleeps: list[float]) -> None:
    # GIVEN a port nobody listens on
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]
    client = _dynamodb(f"http://127.0.0.1:{port}")

    # WHEN a call is made
    with pytest.raises(AwsError) as raised:
        client.get_item(TableName="t", Key={})

    # THEN it fails after every attempt with a ConnectionError code (status 0)
    assert raised.value.code == "ConnectionError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 0
    assert len(sleeps) == awsapi.MAX_ATTEMPTS - 1


def test_s3_no_such_key_and_path_style(server: tuple[Script, str]) -> None:
    # GIVEN an S3 client on a custom endpoint, and a server answering S3's NoSuchKey XML
    script, endpoint = server
    script.default = Reply(
        404,
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
        b"<Message>The specified key does not exist.</Message></Error>",
    )
    client = S3(CREDENTIALS[0], REGION, endpoint, custom_endpoint=True)

    # WHEN a missing object is read
    with pytest.raises(client.exceptions.NoSuchKey) as raised:
        client.get_object(Bucket="bucket", Key="a b/ü+.bin")

    # THEN NoSuchKey (an AwsError) with S3's message, and the request went path style
    assert isinstance(raised.value, AwsError) and raised.value.code == "NoSuchKey"
    assert raised.value.response["Error"]["Message"] == "The specified key does not exist."
    assert script.seen[0].path == "/bucket/a%20b/%C3%BC%2B.bin"
    assert script.seen[0].headers["x-amz-content-sha256"] == awsapi._EMPTY_SHA256


def test_s3_other_errors_are_not_no_such_key(server: tuple[Script, str]) -> None:
    # GIVEN a server answering AccessDenied
    script, endpoint = server
    script.default = Reply(403, b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")
    client = S3(CREDENTIALS[0], REGION, endpoint, custom_endpoint=True)

    # WHEN an object is read / THEN an AwsError that callers cannot mistake for a missing key
    with pytest.raises(AwsError) as raised:
        client.get_object(Bucket="bucket", Key="k")
    assert not isinstance(raised.value, NoSuchKey)
    assert raised.value.response["Error"] == {"Code": "AccessDenied", "Message": "no"}


def test_s3_put_sends_body_and_content_type(server: tuple[Script, str]) -> None:
    # GIVEN an S3 client on the local server
    script, endpoint = server
    script.default = Reply(body=b"", headers={"ETag": '"abc"'})
    client = S3(CREDENTIALS[0], REGION, endpoint, custom_endpoint=True)

    # WHEN an object is written
    answer = client.put_object(Bucket="bucket", Key="k.json", Body=b'{"a": 1}', ContentType="application/json")

    # THEN the bytes, type and payload hash arrive as signed
    (seen,) = script.seen
    assert seen.method == "PUT" and seen.body == b'{"a": 1}'
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-amz-content-sha256"] == hashlib.sha256(b'{"a": 1}').hexdigest()
    assert answer == {"ETag": '"abc"'}


# -------------------------------------------------------------------------------- clients_from_env
BASE_ENV = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_REGION": "eu-central-1"}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_REGION": "eu-central-1"},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET"},
        BASE_ENV | {"AWS_USE_FIPS_ENDPOINT": "true"},
        BASE_ENV | {"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"},
        BASE_ENV | {"AWS_REGION": "us-iso-east-1"},
        BASE_ENV | {"AWS_REGION": "us-isob-east-1"},
        BASE_ENV | {"AWS_REGION": "eu-isoe-west-1"},
        BASE_ENV | {"AWS_REGION": "eusc-de-east-1"},
        BASE_ENV | {"HTTPS_PROXY": "http://proxy:3128"},
        BASE_ENV | {"http_proxy": "http://proxy:3128"},
        BASE_ENV | {"AWS_PROFILE": "dev"},
    ],
    ids=[
        "nothing",
        "no-secret",
        "no-region",
        "fips",
        "dualstack",
        "iso",
        "isob",
        "isoe",
        "eusc",
        "https-proxy",
        "http-proxy",
        "profile",
    ],
)
def test_clients_from_env_declines(env: dict[str, str]) -> None:
    # GIVEN an environment awsapi does not cover / WHEN clients are built / THEN None (use boto3)
    assert clients_from_env(env) is None


def test_clients_from_env_defaults_to_aws_endpoints() -> None:
    # GIVEN Lambda's environment with a session token
    env = BASE_ENV | {"AWS_SESSION_TOKEN": "TOKEN"}

    # WHEN clients are built
    clients = clients_from_env(env)

    # THEN regional AWS endpoints, the token carried, S3 virtual-hosted with a quoted key
    assert clients is not None
    dynamodb, s3 = clients
    assert dynamodb.endpoint == "https://dynamodb.eu-central-1.amazonaws.com"
    assert dynamodb.credentials == Credentials("AKID", "SECRET", "TOKEN")
    assert dynamodb.region == s3.region == "eu-central-1"
    assert s3._url("my-bucket", "a b/c.onnx") == "https://my-bucket.s3.eu-central-1.amazonaws.com/a%20b/c.onnx"


def test_clients_from_env_in_china_and_default_region() -> None:
    # GIVEN a China region given only as AWS_DEFAULT_REGION
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_DEFAULT_REGION": "cn-north-1"}

    # WHEN clients are built
    clients = clients_from_env(env)

    # THEN the .com.cn endpoints
    assert clients is not None
    dynamodb, s3 = clients
    assert dynamodb.endpoint == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert s3._url("data", "k") == "https://data.s3.cn-north-1.amazonaws.com.cn/k"


def test_clients_from_env_custom_endpoints() -> None:
    # GIVEN a general endpoint and a DynamoDB-specific one
    env = BASE_ENV | {
        "AWS_ENDPOINT_URL": "http://localhost:4566/",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
    }

    # WHEN clients are built
    clients = clients_from_env(env)

    # THEN the specific one wins for DynamoDB, S3 takes the general one, path style
    assert clients is not None
    dynamodb, s3 = clients
    assert dynamodb.endpoint == "http://localhost:8000"
    assert s3.endpoint == "http://localhost:4566"
    assert s3._url("my-bucket", "a b") == "http://localhost:4566/my-bucket/a%20b"


def test_bucket_names_unfit_for_a_host_go_path_style() -> None:
    # GIVEN an S3 client on AWS / WHEN a bucket with a dot or capitals is addressed
    s3 = S3(CREDENTIALS[0], "us-east-1", "https://s3.us-east-1.amazonaws.com", custom_endpoint=False)

    # THEN path style, which needs no wildcard certificate match
    assert s3._url("my.bucket", "k") == "https://s3.us-east-1.amazonaws.com/my.bucket/k"
    assert s3._url("MyBucket", "k") == "https://s3.us-east-1.amazonaws.com/MyBucket/k"


def test_govcloud_uses_the_commercial_suffix() -> None:
    clients = clients_from_env(BASE_ENV | {"AWS_REGION": "us-gov-west-1"})
    assert clients is not None
    assert clients[0].endpoint == "https://dynamodb.us-gov-west-1.amazonaws.com"


def test_a_resent_transaction_carries_one_idempotency_token(server: tuple[Script, str], sleeps: list[float]) -> None:
    # GIVEN a server that fails the first TransactWriteItems with a 500
    script, endpoint = server
    script.replies = [Reply(status=500, body=_json({"__type": "InternalServerError"})), Reply()]

    # WHEN a transaction is written (retried once)
    _dynamodb(endpoint).transact_write_items(TransactItems=[])

    # THEN both attempts carried the same ClientRequestToken, so DynamoDB applies it once
    tokens = [json.loads(seen.body)["ClientRequestToken"] for seen in script.seen]
    assert len(tokens) == 2 and tokens[0] == tokens[1] and len(tokens[0]) == 32


# ------------------------------------------------------------------------------------------- HTTPS
@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Script, str, Path]]:
    """The scripted server behind TLS, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield script, f"https://127.0.0.1:{httpd.server_address[1]}", cert
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_https_verifies_the_server_against_aws_ca_bundle(
    tls_server: tuple[Script, str, Path], sleeps: list[float]
) -> None:
    # GIVEN an HTTPS endpoint whose certificate only the bundle in AWS_CA_BUNDLE trusts
    script, endpoint, cert = tls_server
    script.default = Reply(body=_json({"Item": {"n": {"N": "1"}}}))
    trusted = clients_from_env(BASE_ENV | {"AWS_ENDPOINT_URL": endpoint, "AWS_CA_BUNDLE": str(cert)})
    untrusted = clients_from_env(BASE_ENV | {"AWS_ENDPOINT_URL": endpoint})
    assert trusted is not None and untrusted is not None

    # WHEN each reads an item
    answer = trusted[0].get_item(TableName="t", Key={})
    with pytest.raises(AwsError) as refused:
        untrusted[0].get_item(TableName="t", Key={})

    # THEN the bundle's client talks TLS to it, and the system trust store refuses the certificate
    assert answer == {"Item": {"n": {"N": "1"}}}
    assert refused.value.code == "ConnectionError"
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert len(script.seen) == 1
