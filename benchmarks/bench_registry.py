"""Benchmark: model version allocations per second against moto, 1 thread vs 8 threads (issue 3).

Each allocation is a full ``Registry.register_version``: the atomic counter ``ADD`` on the
model's META item, then one transaction writing the version item, its audit event (next ``seq``
under ``attribute_not_exists``) and the chain's anchor. All allocations go to one model, so all
writers contend for one audit chain: this measures the worst case, not a spread of models.

moto runs in this process (``mock_aws``) with each DynamoDB request serialized, as DynamoDB
applies each request atomically (moto's backend takes no lock of its own). Threads therefore
add contention (retries on the audit chain) but no parallel execution: under the GIL and that
lock, the ratio shows the cost of contention, not the speed-up real DynamoDB would give.

Run: ``python benchmarks/bench_registry.py [--allocations N] [--threads T]``
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from mlops.registry.dynamo import DynamoStore
from mlops.registry.versions import Registry
from mlops_local.testing import create_registry_tables

REGISTRY, AUDIT = "bench-registry", "bench-audit"


def _serialize_moto() -> None:
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = atomic  # type: ignore[method-assign]


def _tables(client: Any) -> None:
    create_registry_tables(client, registry_table=REGISTRY, audit_table=AUDIT)


def run(allocations: int, threads: int) -> dict[str, Any]:
    """Allocate ``allocations`` versions of one model with ``threads`` workers, on fresh tables."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _tables(client)
        registry = Registry.for_dynamodb(client, registry_table=REGISTRY, audit_table=AUDIT)
        store = registry.store
        assert isinstance(store, DynamoStore)
        calls = {"transactions": 0}
        original = store.client.transact_write_items

        def counted(**kwargs: Any) -> Any:
            calls["transactions"] += 1
            return original(**kwargs)

        store.client.transact_write_items = counted  # count attempts, including lost races

        def one(i: int) -> int:
            return registry.register_version("bench", actor=f"bench-{i % threads}", metrics={"f1": 0.5}).version

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            versions = list(pool.map(one, range(allocations)))
        elapsed = time.perf_counter() - started
        assert sorted(versions) == list(range(1, allocations + 1)), "allocation lost or duplicated a version"
        assert registry.audit.verify("bench").ok
    return {
        "threads": threads,
        "allocations": allocations,
        "seconds": round(elapsed, 3),
        "per_second": round(allocations / elapsed, 1),
        "transaction_attempts": calls["transactions"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    _serialize_moto()
    run(20, 1)  # warm up imports and moto's first-request costs
    single = run(args.allocations, 1)
    multi = run(args.allocations, args.threads)
    ratio = multi["per_second"] / single["per_second"]
    print(json.dumps({"single": single, "multi": multi, "ratio_multi_over_single": round(ratio, 2)}, indent=2))
    print(
        f"1 thread: {single['per_second']}/s; {args.threads} threads: {multi['per_second']}/s "
        f"(ratio {ratio:.2f}; {multi['transaction_attempts']} transaction attempts for {args.allocations} versions)"
    )


if __name__ == "__main__":
    main()
