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

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.steps.services import Services
from tests.integration.pipeline.test_validate_step import SPEC
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE
from tests.integration.signed_gateway import signed_gateway, signed_post, user_arn

CALLER = user_arn("scientist")
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
    with signed_gateway({f"/models/{{model}}/{route}": function for route, function in ROUTES.items()}) as url:
        yield url


def post(api: str, route: str, body: bytes, model: str = "tiny") -> tuple[int, dict[str, Any]]:
    """POST ``body`` signed as the scientist; the status and the JSON answer."""
    return signed_post(f"{api}models/{model}/{route}", body, "AKIDSCIENTIST")


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
