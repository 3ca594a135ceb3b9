"""Hostile requests to the control API (uploads, approvals) on the local cloud: a 4xx naming the
problem, never a 5xx.

The inference API is fuzzed from its OpenAPI document (test_fuzz.py); the upload and approval
routes have no such document, so hypothesis builds the cases here: arbitrary model and version
path segments, bodies of arbitrary JSON (deep, wide, every type), raw bytes that are not JSON,
and upload requests that are nearly right (hostile names, checksums and sizes). Every request is
SigV4-signed by a local identity and goes over HTTP through the local API Gateway to the real
handlers. Cases are derandomized, so a run is repeatable.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops_local.testing import LocalCloudProcess

from .churn import churn_spec

pytestmark = pytest.mark.xdist_group("local-cloud")
MODEL = "ctl-fuzz"
CASES = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=40,
)
segments = st.one_of(
    st.just(MODEL),
    st.text(min_size=1, max_size=80).filter(lambda s: s not in (".", "..")),
    st.sampled_from(["%00", "a" * 300, "ctl fuzz", "ümlaut", "0", "-1", "1e9", "99999999999999999999"]),
)
hostile_names = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["../x.csv", "a/b.csv", "", ".", "x.csv\x00.gz", "CON", "x" * 2000, "train.csv"]),
)
upload_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "name": hostile_names,
            "sha256": st.one_of(st.text(max_size=70), st.just("a" * 64), st.just("A" * 64)),
            "size": st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.text(max_size=5)),
        }
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.just("[" * 5000 + "]" * 5000),
    st.just('{"name": "a.csv", "sha256": "' + "a" * 64 + '", "size": 3, "uploaded_by": "someone"}'),
)
raw_bodies = st.one_of(upload_bodies.map(str.encode), st.binary(max_size=300))


@pytest.fixture(scope="module")
def cloud(local_cloud: LocalCloudProcess) -> LocalCloudProcess:
    from mlops.registry.versions import Registry

    ssm = local_cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
    )
    SpecStore(registry).put(parse_spec(churn_spec(MODEL)), actor="alice")  # so requests reach past the spec check
    return local_cloud


def refused_well(status: int, answer: Any, seen: Counter[int]) -> None:
    seen[status] += 1
    assert status < 500, (status, answer)
    if status >= 400:
        message = answer.get("error") or answer.get("message") if isinstance(answer, dict) else None
        assert isinstance(message, str) and message.strip(), (status, answer)


def test_the_upload_route_refuses_hostile_requests_with_a_4xx(cloud: LocalCloudProcess) -> None:
    seen: Counter[int] = Counter()

    @CASES
    @given(model=segments, body=raw_bodies, identity=st.sampled_from(["scientist", "approver", "testing"]))
    def case(model: str, body: bytes, identity: str) -> None:
        status, answer = cloud.api("POST", f"models/{quote(model, safe='')}/uploads", body, identity=identity)
        refused_well(status, answer, seen)

    case()
    # the cases reached the handler's own checks, not only the gateway's: refusals and grants both
    assert seen[400] > 0 and sum(seen.values()) >= 150, seen


def test_the_approval_routes_refuse_hostile_requests_with_a_4xx(cloud: LocalCloudProcess) -> None:
    seen: Counter[int] = Counter()

    @CASES
    @given(
        model=segments,
        version=segments,
        decision=st.sampled_from(["approve", "reject"]),
        body=st.one_of(st.none(), raw_bodies),
    )
    def case(model: str, version: str, decision: str, body: bytes | None) -> None:
        path = f"models/{quote(model, safe='')}/versions/{quote(version, safe='')}/{decision}"
        status, answer = cloud.api("POST", path, body, identity="approver")
        refused_well(status, answer, seen)

    case()
    assert seen[400] + seen[404] > 0 and sum(seen.values()) >= 150, seen
