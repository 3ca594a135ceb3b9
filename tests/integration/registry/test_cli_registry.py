"""The real ``mlops`` entry point against moto: spec, models and audit commands, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops.registry.versions import Registry
from tests.integration.console import console
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE
from tests.unit.registry.helpers import audit_items, raw_delete, raw_put

ROOT = Path(__file__).resolve().parents[3]
CHURN = str(ROOT / "examples" / "specs" / "churn.yaml")
HOUSES = str(ROOT / "examples" / "specs" / "house-prices.yaml")


@pytest.fixture
def mlops(deployed: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``mlops ARGS`` through the console entry point; return exit code and output."""

    return console(monkeypatch, capsys)


@pytest.fixture
def registry(deployed: Any) -> Registry:
    return Registry.for_dynamodb(deployed, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)


def test_spec_put_show_and_list(mlops) -> None:
    # GIVEN a deployed environment
    # WHEN the churn spec is put twice (second time unchanged) and the house spec once
    first = mlops("spec", "put", CHURN, "--actor", "alice", "--json")
    again = mlops("spec", "put", CHURN, "--actor", "alice")
    mlops("spec", "put", HOUSES)
    # THEN revision 1 was stored once; show prints it as YAML and JSON
    assert first.code == 0, first.err
    assert first.json()["revision"] == 1 and first.json()["changed"] is True
    assert again.code == 0 and "unchanged, identical to spec revision 1" in again.out
    shown = mlops("spec", "show", "churn")
    assert shown.code == 0 and shown.out.startswith("# churn spec revision 1") and "name: churn" in shown.out
    as_json = mlops("--json", "spec", "show", "churn", "--revision", "1")
    assert as_json.json()["document"]["task"] == "classification"
    assert as_json.json()["created_by"] == "alice"
    listing = mlops("spec", "list", "churn", "--json")
    assert [r["revision"] for r in listing.json()["revisions"]] == [1]


def test_the_actor_defaults_to_the_aws_identity(mlops, registry: Registry) -> None:
    # GIVEN no --actor, WHEN a spec is put, THEN the audit event names the caller's ARN
    assert mlops("spec", "put", HOUSES).code == 0
    assert audit_items(registry, "house-prices")[0]["actor"].startswith("arn:aws:")


def test_models_list_and_show(mlops, registry: Registry) -> None:
    # GIVEN a model with two versions, one approved and champion
    mlops("spec", "put", CHURN, "--actor", "alice")
    for _ in range(2):
        registry.register_version(
            "churn",
            actor="pipeline",
            metrics={"roc_auc": 0.9},
            dataset_version={"version_id": "v1", "sha256": "e" * 64, "rows": 10},
        )
    registry.approve("churn", 1, actor="bob")
    registry.set_alias("churn", "champion", 1, actor="bob")
    # WHEN listed and shown
    listed = mlops("models", "list", "--json")
    shown = mlops("models", "show", "churn", "--json")
    text = mlops("models", "show", "churn")
    one = mlops("models", "show", "churn", "--version", "1")
    # THEN they show versions newest first, aliases and lineage
    assert listed.code == 0 and listed.json()["models"][0]["name"] == "churn"
    assert listed.json()["models"][0]["champion"] == 1
    assert [v["version"] for v in shown.json()["versions"]] == [2, 1]
    assert "champion 1" in text.out and "PENDING_APPROVAL" in text.out
    assert "APPROVED (champion)" in one.out and "dataset_version     v1" in one.out
    assert "PENDING_APPROVAL -> APPROVED by bob" in one.out
    paged = mlops("models", "show", "churn", "--limit", "1", "--json")
    token = paged.json()["next_token"]
    assert [
        v["version"]
        for v in mlops("models", "show", "churn", "--limit", "1", "--next-token", token, "--json").json()["versions"]
    ] == [1]


def test_audit_list_and_verify_an_untouched_trail(mlops) -> None:
    # GIVEN two models' specs
    mlops("spec", "put", CHURN, "--actor", "alice")
    mlops("spec", "put", HOUSES, "--actor", "bob")
    # WHEN the trail is listed and verified
    listed = mlops("audit", "list", "--json")
    one = mlops("audit", "list", "--model", "churn")
    verified = mlops("audit", "verify")
    # THEN every change is there and the chains are intact (exit 0)
    assert {e["actor"] for e in listed.json()["events"]} == {"alice", "bob"}
    assert "spec.put" in one.out and "model/churn/spec/1" in one.out
    assert verified.code == 0, verified.out + verified.err
    assert "churn: ok (1 events" in verified.out and "house-prices: ok" in verified.out


def test_audit_verify_names_each_tampered_event_and_exits_one(mlops, registry: Registry) -> None:
    # GIVEN a chain of eight events
    for i in range(8):
        registry.audit.append("churn", actor=f"user-{i}", action="test.event", subject=f"thing/{i}")
    items = {i["seq"]: i for i in audit_items(registry, "churn")}
    # WHEN one is modified, one deleted, one inserted (seq 4.5) and two swapped
    raw_put(registry, AUDIT_TABLE, {**items[2], "actor": "mallory"})
    raw_delete(registry, AUDIT_TABLE, {"pk": "churn", "seq": 3})
    raw_put(registry, AUDIT_TABLE, {**items[5], "seq": 4.5, "event_id": "forged"})
    raw_put(registry, AUDIT_TABLE, {**items[6], "seq": 7})
    raw_put(registry, AUDIT_TABLE, {**items[7], "seq": 6})
    result = mlops("audit", "verify", "--model", "churn")
    as_json = mlops("audit", "verify", "--model", "churn", "--json")
    # THEN verify exits 1 and names each, with its position
    assert result.code == 1
    assert "churn: modified at seq 2" in result.out
    assert "churn: deleted at seq 3" in result.out
    assert "churn: inserted at seq 4.5" in result.out
    assert "churn: reordered at seq 6: this event was written as seq 7" in result.out
    assert "churn: reordered at seq 7: this event was written as seq 6" in result.out
    assert result.err.strip().splitlines() == ["error: audit verify: 5 problem(s) in chain(s) churn"]
    assert as_json.code == 1
    kinds = [(f["kind"], f["position"]) for f in as_json.json()["chains"][0]["findings"]]
    assert kinds == [("modified", 2), ("deleted", 3), ("inserted", 4.5), ("reordered", 6), ("reordered", 7)]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("spec", "put", "missing.yaml"), 2, "missing.yaml: no such file"),
        (("spec", "show", "fraud"), 3, "model 'fraud' has no spec"),
        (("spec", "show", "churn", "--revision", "9"), 3, "no spec revision 9"),
        (("models", "show", "fraud"), 3, "'fraud' is not in the registry"),
        (("models", "show", "churn", "--version", "9"), 3, "has no version 9"),
        (("models", "show", "Bad Name"), 2, "model name 'Bad Name'"),
        (("models", "list", "--next-token", "garbage"), 2, "next token"),
        (("--env", "prod", "models", "list"), 3, "environment 'prod' is not deployed here"),
        (("models", "list", "--limit", "0"), 2, "--limit"),
    ],
)
def test_errors_print_one_line_and_exit_with_their_code(mlops, args: tuple[str, ...], code: int, message: str) -> None:
    # GIVEN a deployed environment with the churn spec
    mlops("spec", "put", CHURN, "--actor", "alice")
    # WHEN a command fails
    result = mlops(*args)
    # THEN it exits with the error's code, names the problem, and prints no traceback
    assert result.code == code, result.out + result.err
    assert message in result.err
    assert "Traceback" not in result.err
    if code != 2 or "no such file" in message:
        assert len(result.err.strip().splitlines()) == 1


def test_a_malformed_spec_exits_two_naming_the_field(mlops, tmp_path: Path) -> None:
    # GIVEN a spec with an estimator outside the allow-list
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(CHURN).read_text().replace("HistGradientBoostingClassifier", "Evil"))
    # WHEN put, THEN exit 2 naming the file and the field, and nothing stored
    result = mlops("spec", "put", str(bad))
    assert result.code == 2
    assert "bad.yaml: training.estimator:" in result.err
    assert mlops("spec", "show", "churn").code == 3
