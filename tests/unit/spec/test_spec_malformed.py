"""Malformed specs: each is refused with a message naming the field path that is wrong."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.errors import SpecError
from mlops.spec.model import load_spec, parse_spec, parse_spec_text

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "specs"


def valid() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "churn.yaml").read_text())


def feature(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in doc["features"] if f["name"] == name)


def _set(path: str, value: Any):
    """A mutation that sets a dotted path (numbers index lists)."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str):
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


CASES = [
    ("unknown top-level key", _set("retries", 3), "retries: unknown field"),
    ("unknown nested key", _set("training.epochs", 3), "training.epochs: unknown field"),
    ("unknown feature key", _set("features.1.mean", 3), "features.1.mean: unknown field"),
    ("missing name", _delete("name"), "name: required field is missing"),
    ("missing target", _delete("target"), "target: required field is missing"),
    ("missing estimator", _delete("training.estimator"), "training.estimator: required field is missing"),
    ("bad model name", _set("name", "Churn Model"), "name:"),
    ("unknown task", _set("task", "clustering"), "task:"),
    ("feature type unknown", _set("features.1.type", "decimal"), "features.1.type:"),
    ("nullable not a bool", _set("features.3.nullable", "sometimes"), "features.3.nullable:"),
    ("min not a number", _set("features.1.min", "zero"), "features.1.min:"),
    ("min above max", _set("features.1.min", 100), "features.1"),
    ("min on a category", _set("features.4.min", 1), "features.4"),
    ("empty allowed list", _set("features.4.allowed", []), "features.4.allowed:"),
    ("bad regex", _set("features.0.regex", "^C[0-9"), "features.0.regex:"),
    ("regex on a number", _set("features.1.regex", "^[0-9]+$"), "features.1"),
    ("numeric drift method on a category", _set("features.4.drift_method", "ks"), "features.4"),
    ("estimator outside the allow-list", _set("training.estimator", "os.system"), "training.estimator:"),
    (
        "regression estimator for classification",
        _set("training.estimator", "sklearn.linear_model.Ridge"),
        "training.estimator",
    ),
    ("test size of one", _set("training.test_size", 1.0), "training.test_size:"),
    ("negative seed", _set("training.seed", -1), "training.seed:"),
    ("unknown backend", _set("training.backend", "gpu"), "training.backend:"),
    ("params not a mapping", _set("training.params", [1, 2]), "training.params:"),
    ("search with too many candidates", _set("training.search.max_candidates", 500), "training.search.max_candidates:"),
    ("gate without bounds", _set("gates.metrics.roc_auc", {}), "gates.metrics.roc_auc"),
    ("regression metric in a classification gate", _set("gates.metrics.rmse", {"max": 1}), "gates.metrics:"),
    ("approval timeout zero", _set("approval.timeout_hours", 0), "approval.timeout_hours:"),
    ("unknown deployment strategy", _set("deployment.strategy", "blue-green"), "deployment.strategy:"),
    ("canary percent 100", _set("deployment.canary_percent", 100), "deployment.canary_percent:"),
    ("bad schedule", _set("monitoring.schedule", "every day"), "monitoring.schedule:"),
    ("zero-rate schedule", _set("monitoring.schedule", "rate(0 minutes)"), "monitoring.schedule:"),
    ("p value above one", _set("monitoring.p_value", 1.5), "monitoring.p_value:"),
    (
        "protected attribute not a feature",
        _set("fairness.protected_attributes", ["age"]),
        "churn.yaml: fairness.protected_attributes:",
    ),
    ("classification without classes", _delete("target.classes"), "churn.yaml: target.classes:"),
    ("positive class not a class", _set("target.positive_class", 2), "churn.yaml: target.positive_class:"),
    ("row count min above max", _set("row_count.min", 2_000_000), "row_count"),
    ("duplicate feature names", _set("features.2.name", "tenure_months"), "churn.yaml: features: duplicate"),
    ("target listed as a feature", _set("features.2.name", "churned"), "churn.yaml: target.name:"),
    ("no features", _set("features", []), "features:"),
]


@pytest.mark.parametrize(("mutate", "path"), [(m, p) for _, m, p in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_spec_is_refused_naming_the_field(mutate, path: str) -> None:
    # GIVEN the valid example spec with one thing broken
    document = copy.deepcopy(valid())
    mutate(document)
    # WHEN it is parsed
    with pytest.raises(SpecError) as caught:
        parse_spec(document, "churn.yaml")
    # THEN the message names the source and the field path, on a line of its own
    message = str(caught.value)
    assert "churn.yaml: " in message
    assert path in message, message
    assert "Traceback" not in message
    assert "(top level)" not in message


def test_the_example_specs_are_valid() -> None:
    # GIVEN the shipped examples, WHEN loaded, THEN both validate and cover both tasks
    tasks = {load_spec(path).task for path in EXAMPLES.glob("*.yaml")}
    assert tasks == {"classification", "regression"}


def test_several_problems_are_each_named_on_their_own_line() -> None:
    # GIVEN a spec with two independent problems
    document = valid()
    document["training"]["backend"] = "gpu"
    document["deployment"]["strategy"] = "blue-green"
    # WHEN parsed, THEN both field paths are reported, one per line
    with pytest.raises(SpecError) as caught:
        parse_spec(document, "s.yaml")
    lines = str(caught.value).splitlines()
    assert any("training.backend" in line for line in lines)
    assert any("deployment.strategy" in line for line in lines)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    # GIVEN a file that is not YAML
    path = tmp_path / "bad.yaml"
    path.write_text("name: churn\nfeatures: [unclosed\n")
    # WHEN loaded, THEN the error names the file and the line
    with pytest.raises(SpecError, match=r"bad.yaml: not valid YAML or JSON at line \d+"):
        load_spec(path)


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    # GIVEN a YAML list, WHEN parsed, THEN the error says what was expected
    with pytest.raises(SpecError, match="must be a mapping"):
        parse_spec_text("- a\n- b\n", "list.yaml")
