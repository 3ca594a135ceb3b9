"""Registry behaviour. Runs on the in-memory fake here and on moto in tests/integration/registry."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from mlops.errors import ConflictError, InputError, NotFoundError, TransitionError
from mlops.registry.versions import ALIASES, TRANSITIONS, Registry, Status
from tests.unit.registry.helpers import audit_items, snapshot

SHA = "a" * 64


def register(registry: Registry, model: str = "churn", **fields: Any) -> int:
    return registry.register_version(model, actor="pipeline:exec-1", metrics={"roc_auc": 0.9}, **fields).version


def in_status(registry: Registry, status: Status, model: str = "churn") -> int:
    """A fresh version in the given status, reached through allowed transitions only."""
    version = register(registry, model)
    if status in (Status.APPROVED, Status.ARCHIVED):
        registry.approve(model, version, actor="alice")
    if status == Status.ARCHIVED:
        registry.archive(model, version, actor="alice")
    if status == Status.REJECTED:
        registry.reject(model, version, actor="alice", reason="worse than champion")
    return version


def test_versions_are_numbered_from_one_and_record_their_lineage(registry: Registry) -> None:
    # GIVEN a model with no versions
    # WHEN two versions are registered with full lineage
    first = registry.register_version(
        "churn",
        actor="pipeline:exec-1",
        metrics={"roc_auc": 0.91, "f1": 0.8},
        params={"max_depth": 3, "criterion": None},
        spec_revision=2,
        dataset_version={"version_id": "v-abc", "sha256": SHA, "rows": 2000},
        code_revision="git:1234abc",
        pipeline_execution="arn:aws:states:us-east-1:1:execution:train:exec-1",
        artifact_uri="s3://bucket/models/churn/1/model.skops",
        artifact_sha256=SHA,
        tags={"team": "growth"},
    )
    second = register(registry)

    # THEN they are 1 and 2, pending approval, and every lineage field reads back as written
    assert (first.version, second) == (1, 2)
    stored = registry.get_version("churn", 1)
    assert stored == first
    assert stored.status == Status.PENDING_APPROVAL
    assert stored.metrics == {"roc_auc": 0.91, "f1": 0.8}
    assert stored.params == {"max_depth": 3, "criterion": None}
    assert stored.dataset_version == {"version_id": "v-abc", "sha256": SHA, "rows": 2000}
    assert (stored.spec_revision, stored.code_revision, stored.artifact_sha256) == (2, "git:1234abc", SHA)
    assert stored.pipeline_execution is not None and stored.pipeline_execution.endswith(":exec-1")
    assert stored.created_by == "pipeline:exec-1"
    assert stored.status_history == [] and stored.approvals == [] and stored.deployments == []
    assert registry.get_model("churn").latest_version == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.register_version("Churn", actor="a"), "model name 'Churn'"),
        (lambda r: r.register_version("churn", actor=" "), "actor"),
        (lambda r: r.register_version("churn", actor="a", metrics={"rmse": float("nan")}), "metrics.rmse"),
        (lambda r: r.register_version("churn", actor="a", metrics={"f1": "high"}), "metrics.f1"),
        (lambda r: r.register_version("churn", actor="a", artifact_sha256="abc"), "artifact_sha256"),
    ],
)
def test_bad_registrations_are_refused_before_anything_is_written(
    registry: Registry, call: Callable[[Registry], object], message: str
) -> None:
    # GIVEN an empty registry
    before = snapshot(registry)
    # WHEN a registration with bad input is attempted
    with pytest.raises(InputError, match=message):
        call(registry)
    # THEN nothing was written: no model, no version number taken, no audit event
    assert snapshot(registry) == before


def test_unknown_models_and_versions_are_not_found(registry: Registry) -> None:
    # GIVEN a model with one version
    register(registry)
    # WHEN / THEN asking for what does not exist names it
    with pytest.raises(NotFoundError, match="no version 7"):
        registry.get_version("churn", 7)
    with pytest.raises(NotFoundError, match="'fraud' is not in the registry"):
        registry.get_model("fraud")
    with pytest.raises(NotFoundError, match="has no champion"):
        registry.get_by_alias("churn", "champion")


def test_versions_list_newest_first_in_pages(registry: Registry) -> None:
    # GIVEN five versions
    for _ in range(5):
        register(registry)
    # WHEN listing two at a time, following the tokens
    pages, token = [], None
    while True:
        page = registry.list_versions("churn", limit=2, next_token=token)
        pages.append([v.version for v in page.items])
        token = page.next_token
        if token is None:
            break
    # THEN the pages are newest first and cover every version once
    assert [v for page in pages for v in page] == [5, 4, 3, 2, 1]
    assert pages[0] == [5, 4]


def test_a_token_from_another_listing_is_refused(registry: Registry) -> None:
    # GIVEN a token from the versions of one model
    for model in ("churn", "fraud"):
        register(registry, model)
        register(registry, model)
    token = registry.list_versions("churn", limit=1).next_token
    assert token is not None
    # WHEN it is used for another model, or garbled
    # THEN it is refused with a message about the token
    with pytest.raises(InputError, match="next token"):
        registry.list_versions("fraud", limit=1, next_token=token)
    with pytest.raises(InputError, match="next token"):
        registry.list_versions("churn", limit=1, next_token="!!not-base64")


def test_models_list_by_name_in_pages(registry: Registry) -> None:
    # GIVEN three models registered out of order
    for model in ("zeta", "alpha", "mid"):
        register(registry, model)
    # WHEN listing two at a time
    first = registry.list_models(limit=2)
    second = registry.list_models(limit=2, next_token=first.next_token)
    # THEN they come by name, each once
    assert [m.name for m in first.items] == ["alpha", "mid"]
    assert [m.name for m in second.items] == ["zeta"]
    assert second.next_token is None


@pytest.mark.parametrize(("start", "target"), [(s, t) for s, targets in TRANSITIONS.items() for t in sorted(targets)])
def test_allowed_transitions_happen_and_are_recorded(registry: Registry, start: Status, target: Status) -> None:
    # GIVEN a version in the start status
    version = in_status(registry, start)
    # WHEN it moves to an allowed status
    moved = registry.transition("churn", version, target, actor="bob", reason="looks good")
    # THEN the status changed and the history says who, from what, why
    assert moved.status == target
    assert moved.status_history[-1]["from"] == start.value
    assert moved.status_history[-1]["to"] == target.value
    assert moved.status_history[-1]["by"] == "bob"
    assert moved.status_history[-1]["reason"] == "looks good"


FORBIDDEN = [(s, t) for s, t in itertools.product(Status, Status) if t not in TRANSITIONS[s]]


@pytest.mark.parametrize(("start", "target"), FORBIDDEN)
def test_every_forbidden_transition_is_refused_and_changes_nothing(
    registry: Registry, start: Status, target: Status
) -> None:
    # GIVEN a version in the start status
    version = in_status(registry, start)
    before = snapshot(registry)
    # WHEN a forbidden status change is asked for
    with pytest.raises(TransitionError, match=f"{start.value} -> {target.value} is not allowed"):
        registry.transition("churn", version, target, actor="mallory")
    # THEN the registry and the audit trail are exactly as before
    assert snapshot(registry) == before


@pytest.mark.parametrize("status", [Status.PENDING_APPROVAL, Status.REJECTED, Status.ARCHIVED])
@pytest.mark.parametrize("alias", ALIASES)
def test_only_approved_versions_can_take_an_alias(registry: Registry, status: Status, alias: str) -> None:
    # GIVEN a version that is not APPROVED (a rejected one among them)
    version = in_status(registry, status)
    before = snapshot(registry)
    # WHEN it is made champion or challenger
    with pytest.raises(TransitionError, match=f"is {status.value}; only APPROVED versions can be {alias}"):
        registry.set_alias("churn", alias, version, actor="mallory")
    # THEN nothing changed
    assert snapshot(registry) == before
    assert registry.get_model("churn").alias(alias) is None


def test_a_rejected_version_can_never_become_champion_by_any_path(registry: Registry) -> None:
    # GIVEN a rejected version
    version = in_status(registry, Status.REJECTED)
    # WHEN every route to APPROVED is tried
    for target in Status:
        if target != Status.REJECTED:
            with pytest.raises(TransitionError):
                registry.transition("churn", version, target, actor="mallory")
    # THEN it is still rejected and cannot serve
    with pytest.raises(TransitionError):
        registry.set_alias("churn", "champion", version, actor="mallory")
    assert registry.get_version("churn", version).status == Status.REJECTED


def test_aliases_move_between_approved_versions_and_resolve(registry: Registry) -> None:
    # GIVEN two approved versions
    one, two = in_status(registry, Status.APPROVED), in_status(registry, Status.APPROVED)
    # WHEN champion goes to 1, then to 2 with the expected current value, and challenger to 1
    registry.set_alias("churn", "champion", one, actor="deployer", expected=None)
    registry.set_alias("churn", "champion", two, actor="deployer", expected=one)
    summary = registry.set_alias("churn", "challenger", one, actor="deployer")
    # THEN both aliases resolve to the versions they point at
    assert (summary.champion, summary.challenger) == (two, one)
    assert registry.get_by_alias("churn", "champion").version == two
    assert registry.get_by_alias("churn", "challenger").version == one


def test_an_alias_move_with_a_stale_expectation_is_a_conflict(registry: Registry) -> None:
    # GIVEN champion at version 2 (someone moved it after we read 1)
    one, two = in_status(registry, Status.APPROVED), in_status(registry, Status.APPROVED)
    registry.set_alias("churn", "champion", one, actor="deployer")
    registry.set_alias("churn", "champion", two, actor="other")
    before = snapshot(registry)
    # WHEN we move it believing it is still at 1
    with pytest.raises(ConflictError, match="champion points at version 2, not version 1"):
        registry.set_alias("churn", "champion", one, actor="deployer", expected=one)
    # THEN nothing changed
    assert snapshot(registry) == before


def test_a_move_to_where_the_alias_already_points_is_a_conflict_and_cannot_open_a_second_win(
    registry: Registry,
) -> None:
    # GIVEN champion at version 1, and two deployers who both read that (one wants 1, one wants 2)
    one, two = in_status(registry, Status.APPROVED), in_status(registry, Status.APPROVED)
    registry.set_alias("churn", "champion", one, actor="deployer")
    seen = registry.get_model("churn").champion
    before = snapshot(registry)
    # WHEN the first moves it to where it already points
    with pytest.raises(ConflictError, match="champion already points at version 1; nothing was changed"):
        registry.set_alias("churn", "champion", one, actor="deployer-a", expected=seen)
    # THEN nothing changed (no write, no audit event) ...
    assert snapshot(registry) == before
    # ... AND the second, racing on the same read, is the one and only winner
    assert registry.set_alias("churn", "champion", two, actor="deployer-b", expected=seen).champion == two
    moves = [i["actor"] for i in audit_items(registry, "churn") if i["action"] == "alias.set"]
    assert moves == ["deployer", "deployer-b"]
    # AND clearing an alias that is not set is refused the same way
    with pytest.raises(ConflictError, match="challenger already points at nothing"):
        registry.set_alias("churn", "challenger", None, actor="deployer")


def test_an_aliased_version_cannot_be_archived_until_the_alias_moves(registry: Registry) -> None:
    # GIVEN a champion
    version = in_status(registry, Status.APPROVED)
    registry.set_alias("churn", "champion", version, actor="deployer")
    before = snapshot(registry)
    # WHEN it is archived
    with pytest.raises(TransitionError, match="is the champion"):
        registry.archive("churn", version, actor="alice")
    # THEN nothing changed; after the alias is cleared the archive works
    assert snapshot(registry) == before
    registry.set_alias("churn", "champion", None, actor="deployer")
    assert registry.archive("churn", version, actor="alice").status == Status.ARCHIVED


def test_unknown_alias_and_status_names_are_input_errors(registry: Registry) -> None:
    # GIVEN an approved version
    version = in_status(registry, Status.APPROVED)
    # WHEN / THEN an alias or status outside the vocabulary is refused by name
    with pytest.raises(InputError, match="alias 'production'"):
        registry.set_alias("churn", "production", version, actor="a")
    with pytest.raises(InputError, match="status 'LIVE'"):
        registry.transition("churn", version, "LIVE", actor="a")


def test_every_change_appends_one_audit_event_with_its_actor(registry: Registry) -> None:
    # GIVEN a sequence of changes by different actors
    version = register(registry)
    registry.approve("churn", version, actor="alice", request_id="req-2")
    registry.set_alias("churn", "champion", version, actor="deployer")
    registry.append_history(
        "churn",
        version,
        "deployments",
        {"strategy": "canary", "percent": 10},
        actor="deployer",
        action="deployment.start",
    )
    # WHEN the model's audit chain is read
    events = [registry.audit.head("churn")]
    items = audit_items(registry, "churn")
    # THEN there is one event per change, in order, each naming actor, action and subject
    assert [(i["actor"], i["action"]) for i in items] == [
        ("pipeline:exec-1", "version.register"),
        ("alice", "version.approved"),
        ("deployer", "alias.set"),
        ("deployer", "deployment.start"),
    ]
    assert items[1]["request_id"] == "req-2"
    assert items[2]["subject"] == "model/churn/alias/champion"
    assert events[0] is not None and events[0].seq == 4
    assert registry.audit.verify("churn").ok
    assert registry.get_version("churn", version).deployments[0]["percent"] == 10


def test_history_goes_only_to_known_lists(registry: Registry) -> None:
    # GIVEN a version
    version = register(registry)
    # WHEN / THEN appending to an unknown list, or to a missing version, is refused
    with pytest.raises(InputError, match="history 'notes'"):
        registry.append_history("churn", version, "notes", {}, actor="a", action="x")
    with pytest.raises(NotFoundError):
        registry.append_history("churn", 99, "approvals", {}, actor="a", action="x")


def test_a_candidate_the_gates_refused_is_registered_rejected_with_its_reason(registry: Registry) -> None:
    # GIVEN a candidate that failed a gate
    # WHEN it is registered as REJECTED with the reason
    version = registry.register_version(
        "churn", actor="pipeline", metrics={"roc_auc": 0.6}, status="REJECTED", reason="roc_auc 0.6 < 0.75"
    )
    # THEN it is kept for the record, rejected, with the reason in its history, and cannot serve
    assert version.status == Status.REJECTED
    assert version.status_history[0]["reason"] == "roc_auc 0.6 < 0.75"
    with pytest.raises(TransitionError):
        registry.set_alias("churn", "champion", version.version, actor="deployer")
    # AND other initial statuses, or a rejection without a reason, are refused
    with pytest.raises(InputError, match="starts PENDING_APPROVAL or REJECTED"):
        registry.register_version("churn", actor="pipeline", status="APPROVED")
    with pytest.raises(InputError, match="reason"):
        registry.register_version("churn", actor="pipeline", status="REJECTED")
