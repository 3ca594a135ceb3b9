"""``mlops spec put`` against moto: a spec naming parameters its estimator does not take is refused.

The real console entry point, the deployment discovered through SSM, the registry and audit tables
as the stacks declare them: a refused spec leaves no revision and no audit event, and the message
names each wrong field by its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.registry.versions import Registry
from mlops.spec.estimators import estimator_param_names
from tests.integration.console import console
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE
from tests.unit.registry.helpers import audit_items

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "examples" / "specs" / "churn.yaml"


@pytest.fixture
def mlops(deployed: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    shell = console(monkeypatch, capsys)

    def run(*args: str) -> tuple[int, str, str]:
        result = shell(*args)
        return result.code, result.out, result.err

    return run


def churn_with(tmp_path: Path, **training: Any) -> Path:
    document = yaml.safe_load(CHURN.read_text())
    document["training"].update(training)
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_spec_put_refuses_unknown_params_and_search_keys(mlops, deployed: Any, tmp_path: Path) -> None:
    # GIVEN the churn example with a parameter its estimator does not take and a misspelt search key
    document = yaml.safe_load(CHURN.read_text())
    estimator = document["training"]["estimator"]
    path = churn_with(
        tmp_path,
        params={**document["training"].get("params", {}), "not_a_param": 5},
        search={"space": {"max_dept": [3, 5]}},
    )
    # WHEN it is put
    code, out, err = mlops("spec", "put", str(path), "--actor", "alice")
    # THEN it is refused as bad input (exit 2), each wrong field named by its own path
    assert code == 2 and out == "", err
    assert f"{path}: training.params.not_a_param: not a parameter of {estimator}" in err
    assert f"{path}: training.search.space.max_dept: not a parameter of {estimator} (did you mean 'max_depth'?)" in err
    assert f"valid names: {', '.join(estimator_param_names(estimator))}" in err
    assert "Traceback" not in err
    # AND nothing was stored or audited
    registry = Registry.for_dynamodb(deployed, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    assert audit_items(registry, "churn") == []
    shown = mlops("spec", "show", "churn")
    assert shown[0] != 0 and "has no spec" in shown[2]


def test_the_corrected_spec_is_stored(mlops, tmp_path: Path) -> None:
    # GIVEN the same spec with the names corrected
    document = yaml.safe_load(CHURN.read_text())
    path = churn_with(tmp_path, search={"space": {"max_depth": [3, 5]}})
    # WHEN it is put THEN it is revision 1, with its search space as written
    code, out, err = mlops("spec", "put", str(path), "--actor", "alice", "--json")
    assert code == 0, err
    shown = mlops("--json", "spec", "show", "churn")
    stored = json.loads(shown[1])["document"]["training"]
    assert shown[0] == 0 and json.loads(out)["revision"] == 1
    assert stored["search"]["space"] == {"max_depth": [3, 5]}
    assert stored["estimator"] == document["training"]["estimator"]
