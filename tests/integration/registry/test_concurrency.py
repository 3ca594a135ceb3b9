"""Concurrency against DynamoDB (moto): atomic version allocation, one winner per alias race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mlops.errors import ConflictError
from mlops.registry.versions import Registry


def run_together(n: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Start n threads at the same instant; collect what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def runner(i: int) -> None:
        barrier.wait()
        try:
            value = work(i)
            with lock:
                results.append(value)
        except BaseException as exc:  # collected and asserted on by the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_fifty_concurrent_registrations_get_exactly_versions_one_to_fifty(registry: Registry) -> None:
    # GIVEN a model and 50 pipelines registering a version at the same instant
    def register(i: int) -> int:
        return registry.register_version("churn", actor=f"pipeline:{i}", metrics={"f1": i / 100}).version

    # WHEN they all run
    versions, errors = run_together(50, register)

    # THEN every one succeeded with a distinct number: exactly 1..50, no duplicates, no gaps
    assert errors == []
    assert sorted(versions) == list(range(1, 51))
    stored = [v.version for v in registry.iter_versions("churn")]
    assert stored == list(range(50, 0, -1))
    assert registry.get_model("churn").latest_version == 50
    # AND each registration wrote exactly one audit event, on an intact chain
    report = registry.audit.verify("churn")
    assert report.ok and report.events == 50


def test_twenty_concurrent_alias_moves_have_exactly_one_winner_per_race(registry: Registry) -> None:
    # GIVEN 20 approved versions and champion at version 1
    for _i in range(20):
        version = registry.register_version("churn", actor="pipeline", metrics={"f1": 0.5}).version
        registry.approve("churn", version, actor="alice")
    registry.set_alias("churn", "champion", 1, actor="deployer")

    for race in range(3):
        current = registry.get_model("churn").champion

        # WHEN 20 deployers, who all read the same champion, each move it to their own version
        def move(i: int, current: int | None = current) -> int:
            registry.set_alias("churn", "champion", i + 1, actor=f"deployer-{i}", expected=current)
            return i + 1

        winners, errors = run_together(20, move)

        # THEN exactly one wins; the other 19 get a clear conflict and change nothing
        assert len(winners) == 1, f"race {race}: {winners}"
        assert len(errors) == 19
        assert all(isinstance(e, ConflictError) for e in errors)
        assert all("champion" in str(e) and "nothing was changed" in str(e) for e in errors)
        assert registry.get_model("churn").champion == winners[0]

    # AND the audit trail holds exactly the winning moves, chained correctly
    moves = [i for i in registry.audit.items("churn") if i["action"] == "alias.set"]
    assert len(moves) == 1 + 3
    assert registry.audit.verify("churn").ok
