"""Archiving a whole model: hidden from listings, refused for new work, kept with its history, audited.

Run on the in-memory fake here and on DynamoDB (moto) by tests/integration/registry/test_registry_on_moto.py."""

from __future__ import annotations

import pytest

from mlops.errors import ConflictError, NotFoundError, TransitionError
from mlops.registry.versions import Registry, Status


def champion_model(registry: Registry, name: str = "churn") -> None:
    version = registry.register_version(name, actor="pipeline", metrics={"roc_auc": 0.9}, params={"max_depth": 3})
    registry.approve(name, version.version, actor="carol")
    registry.set_alias(name, "champion", version.version, actor="carol")


def test_archive_hides_the_model_keeps_its_versions_and_is_audited(registry: Registry) -> None:
    # GIVEN two models, one serving a champion
    champion_model(registry, "churn")
    champion_model(registry, "houses")
    # WHEN churn is archived with a reason
    summary = registry.archive_model("churn", actor="arn:aws:iam::1:user/dana", reason="replaced by churn-v2")
    # THEN it is left out of listings unless asked for, its versions and champion are kept
    assert summary.archived is not None and summary.archived["reason"] == "replaced by churn-v2"
    assert [m.name for m in registry.list_models(include_archived=False).items] == ["houses"]
    assert [m.name for m in registry.list_models().items] == ["churn", "houses"]
    assert summary.champion == 1 and registry.get_version("churn", 1).status == Status.APPROVED
    # and the change is one audited event naming who and why, on an intact chain
    events, _ = registry.audit.list_events("churn")
    archived = [e for e in events if e.action == "model.archived"]
    assert len(archived) == 1 and archived[0].actor == "arn:aws:iam::1:user/dana"
    assert archived[0].after["archived"]["reason"] == "replaced by churn-v2" and archived[0].after["champion"] == 1
    assert registry.audit.verify("churn").ok


def test_an_archived_model_refuses_new_work_until_unarchived(registry: Registry) -> None:
    # GIVEN an archived model
    champion_model(registry)
    registry.archive_model("churn", actor="dana")
    # WHEN new work is checked THEN it is refused, naming who archived it and the way back
    with pytest.raises(TransitionError) as refused:
        registry.ensure_active("churn")
    assert "model 'churn' is archived" in str(refused.value) and "by dana" in str(refused.value)
    assert "mlops models unarchive churn" in str(refused.value)
    # an unknown model is not refused (its first upload creates it)
    assert registry.ensure_active("fresh") is None
    # WHEN unarchived THEN work is accepted and it is listed again; both changes are in the trail
    restored = registry.unarchive_model("churn", actor="erin")
    assert restored.archived is None and registry.ensure_active("churn") is not None
    assert [m.name for m in registry.list_models(include_archived=False).items] == ["churn"]
    actions = [e.action for e in registry.audit.list_events("churn")[0]]
    assert actions[:2] == ["model.unarchived", "model.archived"]  # newest first
    assert registry.audit.verify("churn").ok


def test_archive_twice_unarchive_an_active_model_and_unknown_models_are_refused(registry: Registry) -> None:
    champion_model(registry)
    registry.archive_model("churn", actor="dana")
    events_before = len(registry.audit.list_events("churn")[0])
    with pytest.raises(ConflictError, match="already archived"):
        registry.archive_model("churn", actor="erin")
    assert len(registry.audit.list_events("churn")[0]) == events_before  # nothing written
    registry.unarchive_model("churn", actor="erin")
    with pytest.raises(ConflictError, match="is not archived"):
        registry.unarchive_model("churn", actor="erin")
    with pytest.raises(NotFoundError):
        registry.archive_model("ghost", actor="dana")
