"""Decision thresholds through the training pipeline's steps on moto, then `mlops models show|diff|card`.

ISLP Default (as the package ships it). Spec revision 1 asks for a threshold chosen for max F1;
version 1 trains on the shipped file less its held-back rows and becomes champion. Revision 2
fixes the threshold at 0.2; version 2 trains on the whole file, and its Evaluate scores the
champion at the champion's own registered threshold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.spec.model import parse_spec
from mlops.training.steps.services import Services
from mlops.training.threshold import DecisionThreshold
from mlops_local.patches import serialize_dynamodb
from tests.conformance.datasets import DEFAULT
from tests.integration.console import console
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, create_tables
from tests.integration.registry.test_registry_views import MODEL, run_pipeline


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    serialize_dynamodb()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ssm = boto3.client("ssm", region_name="us-east-1")
        for name, value in (
            ("data-bucket", DATA_BUCKET),
            ("registry-table", REGISTRY_TABLE),
            ("audit-table", AUDIT_TABLE),
        ):
            ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
        platform = Platform(
            environment="dev", data_bucket=DATA_BUCKET, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE
        )
        registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
        services = Services(platform=platform, s3=s3, registry=registry)
        document = yaml.safe_load(DEFAULT.spec_path.read_text())
        document["training"]["threshold"] = {"objective": "max_f1"}
        document["gates"]["must_beat_champion"] = False
        SpecStore(registry).put(parse_spec(document), actor="alice")
        first = run_pipeline(services, f"datasets/{MODEL}/default.csv", DEFAULT.training_bytes(), "run-1")
        registry.approve(MODEL, first["version"], actor="carol")
        registry.set_alias(MODEL, "champion", first["version"], actor="carol")
        document["training"]["threshold"] = 0.2
        SpecStore(registry).put(parse_spec(document), actor="alice")
        second = run_pipeline(services, f"datasets/{MODEL}/default-full.csv", DEFAULT.raw(), "run-2")
        yield {"registry": registry, "s3": s3, "v1": first, "v2": second}


@pytest.fixture
def mlops(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    return console(monkeypatch, capsys)


def _evaluation(world: dict[str, Any], run: str) -> dict[str, Any]:
    key = f"artifacts/{MODEL}/runs/{run}/evaluation.json"
    return dict(json.loads(world["s3"].get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read()))


def test_register_records_the_threshold_and_its_holdout_figures(world: dict[str, Any]) -> None:
    # GIVEN the two versions the steps registered
    v1, v2 = (world["registry"].get_version(MODEL, v) for v in (1, 2))
    first, second = DecisionThreshold.from_tags(v1.tags), DecisionThreshold.from_tags(v2.tags)
    # THEN v1 records the threshold chosen for max F1 on its training rows, v2 the spec's fixed 0.2
    assert first is not None and first.method == "max_f1" and first.met and first.positive_class == "Yes"
    assert second is not None and (second.method, second.value, second.chosen_on) == ("fixed", 0.2, None)
    # AND each version's registered label metrics are its threshold's on the holdout
    for version, threshold in ((v1, first), (v2, second)):
        assert threshold.holdout is not None
        for name in ("precision", "recall", "f1"):
            assert version.metrics[name] == pytest.approx(threshold.holdout[name])
    # AND the run's evaluation and the card say so
    assert _evaluation(world, "run-1")["threshold"]["value"] == first.value
    card = world["s3"].get_object(Bucket=DATA_BUCKET, Key=f"artifacts/{MODEL}/versions/2/model-card.md")
    assert "`Yes` is predicted when its probability is at or above **0.2**" in card["Body"].read().decode()


def test_the_champion_is_scored_at_its_own_threshold(world: dict[str, Any]) -> None:
    # GIVEN v2's run, which compared it with the champion v1
    champion = _evaluation(world, "run-2")["champion"]
    first = DecisionThreshold.from_tags(world["registry"].get_version(MODEL, 1).tags)
    # THEN the champion was scored at v1's threshold, not at v2's 0.2 nor at 0.5
    assert first is not None and champion["version"] == 1 and champion["threshold"] == first.value
    assert champion["metrics"]["recall"] != champion["candidate_metrics"]["recall"]


def test_models_show_and_diff_name_the_threshold(mlops, world: dict[str, Any]) -> None:
    first = DecisionThreshold.from_tags(world["registry"].get_version(MODEL, 1).tags)
    assert first is not None
    # WHEN version 1 is shown and the two versions compared
    shown = mlops("models", "show", MODEL, "--version", "1")
    diff = mlops("models", "diff", MODEL, "1", "2", "--json")
    # THEN show prints the threshold, how it was chosen and what it gives
    assert shown.code == 0, shown.err
    [line] = [line for line in shown.out.splitlines() if "decision_threshold" in line]
    assert line == f"  decision_threshold  {first.describe()}"
    # AND diff lists it with the parameters, changed
    params = {row["name"]: row for row in diff.json()["sections"]["params"]}
    assert params["decision_threshold"] == {"name": "decision_threshold", "a": first.value, "b": 0.2, "changed": True}
