"""Benchmark: model version allocations per second against moto, 1 thread vs 8 threads (issue 3).

Each allocation is a full ``Registry.register_version``: the atomic counter ``ADD`` on the
model's META item, then one transaction writing the version item, its audit event (next ``seq``
under ``attribute_not_exists``) and the chain's anchor. All allocations go to one model, so all
writers contend for one audit chain: this measures the worst case, not a spread of models.

moto runs in this process (``mock_aws``) with each DynamoDB request serialized, as DynamoDB
applies each request atomically (moto's backend takes no lock of its own). Threads therefore
add contention (retries on the audit chain) but no parallel execution: under the GIL and that
lock, the ratio shows the cost of contention, not the speed-up real DynamoDB would give.

``--store``: the reason the in-memory store (:mod:`mlops.registry.memory`) stays beside moto for
unit tests: the same registry workload (register versions, approve each, point the champion
alias at it, read them back, verify the audit chain) on ``Registry.in_memory()`` and on DynamoDB
in moto, same run, as a ratio.

``--codec``: the reason :mod:`mlops.registry.tables` writes DynamoDB's typed JSON itself: a fresh
interpreter importing our codec against one importing boto3's ``TypeSerializer`` (what the
inference function's cold start would pay), same run, as a ratio; and the two encoders' speed on
the same items.

Run: ``python benchmarks/bench_registry.py [--allocations N] [--threads T] [--store] [--codec]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from mlops.registry.dynamo import DynamoStore
from mlops.registry.tables import serialize
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


def _workload(registry: Registry, versions: int) -> float:
    """Seconds for a unit test's worth of registry calls: register, approve, alias, read back, verify."""
    started = time.perf_counter()
    for i in range(versions):
        version = registry.register_version("bench", actor="bench", metrics={"f1": 0.5 + i / 1000})
        registry.approve("bench", version.version, actor="approver")
        registry.set_alias("bench", "champion", version.version, actor="approver")
        assert registry.get_by_alias("bench", "champion").version == version.version
    assert sum(1 for _ in registry.iter_versions("bench")) == versions
    assert registry.audit.verify("bench").ok
    return time.perf_counter() - started


def store_comparison(versions: int, repeat: int) -> dict[str, Any]:
    """The same workload on the in-memory store and on moto's DynamoDB, fresh tables each time."""
    memory, moto_seconds = [], []
    for _ in range(repeat):
        memory.append(_workload(Registry.in_memory(), versions))
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            _tables(client)
            moto_seconds.append(
                _workload(Registry.for_dynamodb(client, registry_table=REGISTRY, audit_table=AUDIT), versions)
            )
    fast, slow = statistics.median(memory), statistics.median(moto_seconds)
    return {
        "versions": versions,
        "memory_s": round(fast, 4),
        "moto_s": round(slow, 4),
        "ratio_moto_over_memory": round(slow / fast, 1),
    }


def _import_seconds(statement: str, repeat: int) -> float:
    """Median wall time of a fresh interpreter running ``statement`` (``-X importtime`` not needed)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(repeat)
    ]
    return statistics.median(runs)


def codec_comparison(repeat: int) -> dict[str, Any]:
    """Import cost of our codec against boto3's serializer in a fresh interpreter, and encode speed."""
    ours = _import_seconds("import mlops.registry.tables", repeat)
    boto = _import_seconds("from boto3.dynamodb.types import TypeSerializer; TypeSerializer()", repeat)
    from boto3.dynamodb.types import TypeSerializer  # the baseline; this benchmark has boto3 loaded already

    from mlops.registry.tables import to_dynamo

    item = {"pk": "MODEL#m", "sk": "V#000001", "metrics": {"f1": 0.91, "rmse": 1.5}, "tags": {"a": "b"}, "n": 3}
    serializer = TypeSerializer()
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        serialize(item)
    ours_encode = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        {k: serializer.serialize(v) for k, v in to_dynamo(item).items()}
    boto_encode = time.perf_counter() - started
    return {
        "import_ours_s": round(ours, 4),
        "import_boto3_serializer_s": round(boto, 4),
        "ratio_boto3_over_ours_import": round(boto / ours, 2),
        "encode_ours_us": round(ours_encode / rounds * 1e6, 2),
        "encode_boto3_us": round(boto_encode / rounds * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--store", action="store_true", help="only the in-memory store against moto")
    parser.add_argument("--codec", action="store_true", help="only our DynamoDB codec against boto3's")
    parser.add_argument("--versions", type=int, default=30, help="--store: versions per workload")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.store or args.codec:
        if args.store:
            result = store_comparison(args.versions, args.repeat)
            print(json.dumps(result, indent=2))
            print(
                f"in-memory store: {result['memory_s']} s; moto: {result['moto_s']} s"
                f" (ratio {result['ratio_moto_over_memory']})"
            )
        if args.codec:
            result = codec_comparison(args.repeat)
            print(json.dumps(result, indent=2))
            print(
                f"import: ours {result['import_ours_s']} s, boto3's serializer {result['import_boto3_serializer_s']} s"
                f" (ratio {result['ratio_boto3_over_ours_import']})"
            )
        return
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
