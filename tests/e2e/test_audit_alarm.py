"""A refused audit chain pages someone, on the local cloud.

The deployed digest function publishes ``AuditChainsRefused`` on every run; the local cloud turns
its embedded-metric-format output into CloudWatch metrics and evaluates the deployment's alarms, so
a chain rewritten with boto3 after it was digested becomes a metric, the alarm
``mlops-dev-audit-chain-broken`` and a notification on the platform topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from mlops.registry.audit import anchor_key
from mlops.registry.versions import Registry
from mlops_local.metrics import EVALUATOR_REASON
from mlops_local.testing import LocalCloudProcess
from tests.e2e import test_audit_digest as digest_e2e
from tests.e2e.test_audit_digest import Run, parameter
from tests.integration.registry.test_audit_digest import rechain
from tests.unit.registry.helpers import audit_items, raw_put

pytestmark = pytest.mark.xdist_group("local-cloud")

CHAIN = "digest-alarm-e2e"
ALARM = "mlops-dev-audit-chain-broken"
SERVICE = [{"Name": "service", "Value": "mlops-dev-audit-digest"}]
mlops = digest_e2e.mlops  # the fixture: ``mlops ARGS`` in this process, against the local cloud


def refused_since(local_cloud: LocalCloudProcess, start: datetime) -> list[float]:
    """The Maximum of AuditChainsRefused per minute since ``start`` (this environment's digest function)."""
    stats = local_cloud.client("cloudwatch").get_metric_statistics(
        Namespace="MLOps",
        MetricName="AuditChainsRefused",
        Dimensions=SERVICE,
        StartTime=start,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    return [float(p["Maximum"]) for p in stats["Datapoints"]]


def test_a_refused_chain_becomes_a_metric_an_alarm_and_a_notification(
    local_cloud: LocalCloudProcess, mlops: Callable[..., Run]
) -> None:
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    cloudwatch = local_cloud.client("cloudwatch")
    # GIVEN the platform topic with a queue subscribed, and the alarm OK as if evaluated
    inbox = local_cloud.subscribe_queue(parameter(local_cloud, "notifications-topic-arn"), "audit-alarm-inbox")
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason=f"{EVALUATOR_REASON}: reset by the test")
    # AND a chain of three events, digested
    for i in range(3):
        registry.audit.append(CHAIN, actor=f"user-{i}", action="test.event", subject=f"thing/{i}", after={"i": i})
    original = audit_items(registry, CHAIN)
    original_anchor = registry.store.get(registry.table, anchor_key(CHAIN))
    assert original_anchor is not None
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = mlops("--json", "audit", "digest")
    assert CHAIN not in [r["chain"] for r in json.loads(first.stdout)["refused"]], first.stderr
    # (the cloud is shared: another test's chain may be refused in the same run; this one is not)
    clean = json.loads(first.stdout)["refused"] == []
    if clean:
        # THEN a run that refuses nothing publishes 0, not silence
        assert refused_since(local_cloud, before) == [0.0]

    try:
        # WHEN event 2 is edited with boto3, every later hash recomputed and the anchor moved
        rechain(registry, CHAIN, 2, actor="mallory")
        start = datetime.now(UTC)
        refused = mlops("--json", "audit", "digest")
        # THEN the digest refuses the chain
        assert refused.returncode == 1 and CHAIN in [r["chain"] for r in json.loads(refused.stdout)["refused"]]
        # AND its run published AuditChainsRefused >= 1 on the digest function's service dimension
        assert refused_since(local_cloud, start) and max(refused_since(local_cloud, start)) >= 1
        # AND the alarm fires and its notification reaches the platform topic's subscribers
        fired = local_cloud.wait_for_alarm(ALARM, "ALARM")
        assert fired["StateReason"].startswith(EVALUATOR_REASON)
        notes = [json.loads(m["Message"]) for m in local_cloud.messages(inbox)]
        assert any(n.get("AlarmName") == ALARM and n["NewStateValue"] == "ALARM" for n in notes), notes
    finally:
        # The cloud is shared with other tests: put the genuine events and anchor back, digest again.
        for item in original:
            raw_put(registry, registry.audit.table, item)
        raw_put(registry, registry.table, original_anchor)
        redigested = mlops("--json", "audit", "digest")
    assert CHAIN not in [r["chain"] for r in json.loads(redigested.stdout)["refused"]], redigested.stderr
