"""A small AWS client for the inference function: DynamoDB's JSON API and S3 objects, without boto3.

Why it exists: the inference function's first request reads the registry (DynamoDB) and an
artifact (S3). Importing boto3 and creating its two clients costs that request ~0.18 s
(botocore loads and indexes the services' JSON models), more than numpy, onnxruntime and the
model's session together. ``benchmarks/bench_inference.py`` measures the cold start with this
client; everything else in the platform keeps using boto3.

What it does, and no more:

- **Signature Version 4** (``AWS4-HMAC-SHA256``) with the caller's credentials, checked header for
  header against botocore's own signer in ``tests/unit/serving/test_awsapi.py``;
- **DynamoDB**: any operation of its JSON 1.0 API, by botocore's method name (``get_item``,
  ``query``, ``put_item``, ...). Parameters and answers are DynamoDB's wire JSON, which for this
  API is what a boto3 client takes and returns (binary attributes stay base64 text);
- **S3**: ``get_object`` and ``put_object`` on the regional endpoint (virtual-hosted style), or
  path style on a custom endpoint (``AWS_ENDPOINT_URL``, as the local cloud sets);
- **Errors** raise :class:`AwsError`, whose ``response`` has the shape of botocore's
  ``ClientError.response`` (``Error.Code``, ``Error.Message``, the error's other fields), so code
  that reads the code works with either client; a missing S3 key raises ``client.exceptions.NoSuchKey``;
- **Retries** as botocore's ``standard`` mode decides them (3 attempts; connection errors, 5xx,
  throttling and transient codes, a DynamoDB answer failing its CRC32), with a shorter backoff
  (full jitter, 50 ms doubling, capped at 1 s) because a caller is waiting;
- **Connections**: HTTPS kept alive, one per host and thread (the capture writer has its own); a
  kept-alive connection the server closed is replaced and the request resent at once, without
  using up an attempt (as botocore's pool does); ``TransactWriteItems`` gets one idempotency
  token for all its attempts, as botocore fills it.

:func:`clients_from_env` builds the pair from the Lambda environment (credentials and region in
environment variables, as Lambda sets them; ``AWS_CA_BUNDLE`` honoured) and answers ``None`` for
anything it does not cover: no credentials in the environment, FIPS or dual-stack endpoints, a
profile or a proxy, a partition other than commercial, GovCloud and China. The caller then uses
boto3. Not done: following S3's redirect to a bucket in another region.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import os
import random
import re
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

MAX_ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0
USER_AGENT = "mlops-awsapi/1 Python/3"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# botocore's standard retry mode: these codes are retried whatever the status.
RETRY_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
    }
)
RETRY_STATUSES = frozenset({500, 502, 503, 504})


class AwsError(Exception):
    """A call AWS answered with an error (or that failed after every attempt).

    ``response`` mirrors botocore's ``ClientError.response``: ``{"Error": {"Code", "Message"},
    "ResponseMetadata": {"HTTPStatusCode"}, ...other fields of the error}``.
    """

    def __init__(self, operation: str, status: int, code: str, message: str, extra: Mapping[str, Any] | None = None):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: {message}")
        self.operation = operation
        self.code = code
        self.response: dict[str, Any] = {
            **(extra or {}),
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class NoSuchKey(AwsError):
    """S3: the object does not exist."""


class _Exceptions:
    """``client.exceptions.NoSuchKey``, as boto3's S3 client offers it."""

    NoSuchKey = NoSuchKey


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Credentials | None:
        key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return None
        return cls(key, secret, environ.get("AWS_SESSION_TOKEN") or None)


# ------------------------------------------------------------------------------------------ signing
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    service: str,
    region: str,
    credentials: Credentials,
    now: datetime,
) -> dict[str, str]:
    """Add ``X-Amz-Date``, the session token and ``Authorization`` (SigV4) to ``headers``.

    Every header given is signed (send no others); ``url``'s path must already be percent-encoded,
    as S3 wants it (DynamoDB's path is ``/``). Returns ``headers``.
    """
    parts = urlsplit(url)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    headers["Host"] = parts.netloc
    headers["X-Amz-Date"] = stamp
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    canonical = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    names = sorted(canonical)
    query = "&".join(sorted(q for q in parts.query.split("&") if q))
    request = "\n".join(
        [
            method,
            parts.path or "/",
            query,
            "".join(f"{n}:{canonical[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{credentials.secret_key}".encode(), stamp[:8]), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


# ---------------------------------------------------------------------------------------- transport
@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _Retry(Exception):
    """This attempt failed in a way worth another (connection error, corrupted answer)."""


class _Transport:
    """HTTP(S) with keep-alive: one connection per (scheme, host) and thread."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self._tls = tls
        self._local = threading.local()

    def _connection(self, scheme: str, netloc: str) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to ``netloc`` and whether it was used before."""
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.get((scheme, netloc))
        if connection is not None:
            return connection, True
        if scheme == "https":
            if self._tls is None:
                raise _Retry("no TLS context for an https endpoint")
            connection = http.client.HTTPSConnection(netloc, timeout=TIMEOUT_SECONDS, context=self._tls)
        else:
            connection = http.client.HTTPConnection(netloc, timeout=TIMEOUT_SECONDS)
        pool[(scheme, netloc)] = connection
        return connection, False

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        while True:
            connection, reused = self._connection(parts.scheme, parts.netloc)
            try:
                connection.request(method, target, body=body or None, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:  # reset, refused, timed out, stale keep-alive
                connection.close()
                self._local.pool.pop((parts.scheme, parts.netloc), None)
                if reused:  # a kept-alive connection the server had closed: once more on a new one, for free
                    continue
                raise _Retry(f"{type(exc).__name__}: {exc}") from exc
            answer = _Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
            if response.will_close:
                connection.close()
                self._local.pool.pop((parts.scheme, parts.netloc), None)
            return answer


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))


class _Service:
    service = ""

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        endpoint: str,
        *,
        custom_endpoint: bool,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.endpoint = endpoint.rstrip("/")
        self.custom_endpoint = custom_endpoint
        if tls is None and self.endpoint.startswith("https://"):
            tls = ssl.create_default_context()
        self._transport = _Transport(tls)

    def _request(
        self, operation: str, method: str, url: str, headers: dict[str, str], body: bytes, payload_sha256: str
    ) -> _Answer:
        failure = ""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                _backoff(attempt)
            signed = sign(
                method,
                url,
                dict(headers),
                payload_sha256,
                service=self.service,
                region=self.region,
                credentials=self.credentials,
                now=datetime.now(UTC),
            )
            signed["User-Agent"] = USER_AGENT
            try:
                answer = self._transport.send(method, url, signed, body)
                self._check(answer)
            except _Retry as exc:
                failure = str(exc)
                continue
            if answer.status < 300:
                return answer
            error = self._error(operation, answer)
            if attempt + 1 < MAX_ATTEMPTS and (answer.status in RETRY_STATUSES or error.code in RETRY_CODES):
                continue
            raise error
        raise AwsError(operation, 0, "ConnectionError", f"no answer after {MAX_ATTEMPTS} attempts ({failure})")

    def _check(self, answer: _Answer) -> None:
        """Raise :class:`_Retry` when the answer arrived damaged."""

    def _error(self, operation: str, answer: _Answer) -> AwsError:
        raise NotImplementedError


# Regions whose endpoints this client knows: the commercial partition, GovCloud, and China. The
# others (ISO, EU sovereign, ...) have their own DNS suffixes; boto3 serves them.
_COMMERCIAL_REGION = re.compile(r"^(us|eu|ap|ca|sa|me|af|il|mx)-(gov-)?[a-z]+-[0-9]+$")
_CHINA_REGION = re.compile(r"^cn-[a-z]+-[0-9]+$")


def dns_suffix(region: str) -> str | None:
    """``amazonaws.com`` or ``amazonaws.com.cn`` for a region this client knows, else ``None``."""
    if _CHINA_REGION.match(region):
        return "amazonaws.com.cn"
    if _COMMERCIAL_REGION.match(region):
        return "amazonaws.com"
    return None


def endpoint_for(service: str, region: str, environ: Mapping[str, str]) -> tuple[str, bool] | None:
    """The service's endpoint and whether it was configured (botocore's environment variables).

    ``None`` when nothing is configured and the region's partition is not one this client knows.
    """
    configured = environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured, True
    suffix = dns_suffix(region)
    if suffix is None:
        return None
    return f"https://{service}.{region}.{suffix}", False


# ----------------------------------------------------------------------------------------- DynamoDB
class DynamoDB(_Service):
    """DynamoDB's JSON 1.0 API: ``client.get_item(TableName=..., Key=...)`` and every other operation."""

    service = "dynamodb"

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if operation == "TransactWriteItems" and "ClientRequestToken" not in params:
            # As botocore does: a resent transaction (after a timeout or a 5xx) is applied once.
            params = {**params, "ClientRequestToken": os.urandom(16).hex()}
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        }
        answer = self._request(operation, "POST", self.endpoint + "/", headers, body, hashlib.sha256(body).hexdigest())
        result: dict[str, Any] = json.loads(answer.body) if answer.body else {}
        return result

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not name.islower():
            raise AttributeError(name)
        operation = "".join(part.capitalize() for part in name.split("_"))
        return lambda **params: self.call(operation, params)

    def _check(self, answer: _Answer) -> None:
        expected = answer.headers.get("x-amz-crc32")
        if expected is not None and int(expected) != zlib.crc32(answer.body) & 0xFFFFFFFF:
            raise _Retry("the answer failed its CRC32 check")

    def _error(self, operation: str, answer: _Answer) -> AwsError:
        try:
            body = json.loads(answer.body) if answer.body else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = str(body.pop("__type", "") or f"HTTP{answer.status}").rsplit("#", 1)[-1]
        message = str(
            body.pop("message", None) or body.pop("Message", None) or answer.body[:200].decode(errors="replace")
        )
        return AwsError(operation, answer.status, code, message, body)


# ----------------------------------------------------------------------------------------------- S3
_XML_FIELD = re.compile(r"<(Code|Message)>(.*?)</\1>", re.DOTALL)
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class S3(_Service):
    """S3 objects: ``get_object`` and ``put_object``, with boto3's argument and answer names."""

    service = "s3"
    exceptions = _Exceptions

    def _url(self, bucket: str, key: str) -> str:
        path = quote(key, safe="/~")
        if not self.custom_endpoint and _DNS_BUCKET.match(bucket):
            scheme, host = self.endpoint.split("://", 1)
            return f"{scheme}://{bucket}.{host}/{path}"
        return f"{self.endpoint}/{bucket}/{path}"

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        answer = self._request(
            "GetObject", "GET", self._url(Bucket, Key), {"X-Amz-Content-SHA256": _EMPTY_SHA256}, b"", _EMPTY_SHA256
        )
        return {
            "Body": io.BytesIO(answer.body),
            "ContentLength": len(answer.body),
            "ContentType": answer.headers.get("content-type"),
            "ETag": answer.headers.get("etag"),
        }

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str | None = None) -> dict[str, Any]:
        digest = hashlib.sha256(Body).hexdigest()
        headers = {"X-Amz-Content-SHA256": digest, "Content-Length": str(len(Body))}
        if ContentType:
            headers["Content-Type"] = ContentType
        answer = self._request("PutObject", "PUT", self._url(Bucket, Key), headers, Body, digest)
        return {"ETag": answer.headers.get("etag")}

    def _error(self, operation: str, answer: _Answer) -> AwsError:
        fields = dict(_XML_FIELD.findall(answer.body.decode(errors="replace")))
        code = fields.get("Code") or ("NoSuchKey" if answer.status == 404 else f"HTTP{answer.status}")
        message = fields.get("Message", "")
        kind = NoSuchKey if code == "NoSuchKey" else AwsError
        return kind(operation, answer.status, code, message)


# Settings this client does not implement: with any of them set, boto3 is used.
DECLINED_SETTINGS = ("AWS_PROFILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def clients_from_env(environ: Mapping[str, str]) -> tuple[DynamoDB, S3] | None:
    """DynamoDB and S3 clients from Lambda's environment, or ``None`` where boto3 is needed.

    ``None`` without credentials or a region in the environment, with a FIPS or dual-stack endpoint
    asked for, a profile or a proxy set (:data:`DECLINED_SETTINGS`), or in a region outside the
    commercial, GovCloud and China partitions. ``AWS_CA_BUNDLE`` is honoured, as botocore does.
    The TLS context (the CA bundle loaded) is made here, once, when an endpoint is HTTPS.
    """
    credentials = Credentials.from_env(environ)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if credentials is None or not region:
        return None
    if any(environ.get(v, "").lower() == "true" for v in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")):
        return None
    if any(environ.get(v) for v in DECLINED_SETTINGS):
        return None
    dynamodb = endpoint_for("dynamodb", region, environ)
    s3 = endpoint_for("s3", region, environ)
    if dynamodb is None or s3 is None:
        return None
    tls = None
    if dynamodb[0].startswith("https://") or s3[0].startswith("https://"):
        tls = ssl.create_default_context(cafile=environ.get("AWS_CA_BUNDLE") or None)
    return (
        DynamoDB(credentials, region, dynamodb[0], custom_endpoint=dynamodb[1], tls=tls),
        S3(credentials, region, s3[0], custom_endpoint=s3[1], tls=tls),
    )
