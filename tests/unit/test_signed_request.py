"""The CLI's signed calls to the platform API: refusals name their status; unavailability is retried
only where repeating the call is safe (a real HTTP server on a loopback port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops.errors import ConflictError, MlopsError
from mlops.settings import Platform
from mlops_cli.common import AppContext, signed_request


class Answers:
    """The statuses the server gives, in order (the last one repeats), and what it saw."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Answers]]:
    answers = Answers(201)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answers.seen.append({"path": self.path, "signed": "Signature=" in self.headers.get("Authorization", "")})
            status = answers.statuses.pop(0) if len(answers.statuses) > 1 else answers.statuses[0]
            body = json.dumps({"ok": True} if status < 300 else {"message": f"answer {status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/dev/", answers
    finally:
        httpd.shutdown()


def app_for(url: str, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    platform = Platform(environment="dev", data_bucket="b", registry_table="r", audit_table="a", api_url=url)
    return AppContext(_platform=platform)


def call(app: AppContext, retry: bool) -> dict[str, Any]:
    return signed_request(
        app,
        "POST",
        "models/m/uploads",
        b"{}",
        errors={409: ConflictError},
        why_credentials="-",
        retry_unavailable=retry,
    )


def test_a_502_then_201_is_retried_when_the_call_is_safe_to_repeat(
    server: tuple[str, Answers], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, answers = server
    answers.statuses[:] = [502, 503, 201]
    assert call(app_for(url, monkeypatch), retry=True) == {"ok": True}
    assert [s["signed"] for s in answers.seen] == [True, True, True]


def test_without_retries_or_after_three_tries_the_error_names_the_status(
    server: tuple[str, Answers], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, answers = server
    app = app_for(url, monkeypatch)
    answers.statuses[:] = [502, 201]
    with pytest.raises(MlopsError, match=r"answer 502 \(HTTP 502\)"):
        call(app, retry=False)
    assert len(answers.seen) == 1
    answers.statuses[:] = [504]
    with pytest.raises(MlopsError, match=r"HTTP 504"):
        call(app, retry=True)
    assert len(answers.seen) == 1 + 3


def test_a_refusal_is_never_retried(server: tuple[str, Answers], monkeypatch: pytest.MonkeyPatch) -> None:
    url, answers = server
    answers.statuses[:] = [409]
    with pytest.raises(ConflictError, match=r"answer 409 \(HTTP 409\)"):
        call(app_for(url, monkeypatch), retry=True)
    assert len(answers.seen) == 1
