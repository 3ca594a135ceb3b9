"""A spec's fingerprint names its behaviour: defaults written out, or fields a later release adds, change nothing."""

from __future__ import annotations

from typing import Any

from mlops.spec.model import parse_spec


def _spec(**training: Any) -> dict[str, Any]:
    return {
        "name": "churn",
        "task": "classification",
        "target": {"name": "churned", "classes": ["no", "yes"]},
        "features": [{"name": "tenure", "type": "int"}, {"name": "plan", "type": "category"}],
        "training": {"estimator": "sklearn.linear_model.LogisticRegression", **training},
    }


def test_defaults_written_out_keep_the_fingerprint() -> None:
    plain = parse_spec(_spec())
    explicit = parse_spec(_spec(params={}, threshold=None))
    assert explicit.fingerprint() == plain.fingerprint()
    # the stored document still has every default filled in
    assert '"threshold":null' in plain.canonical_json()


def test_a_setting_changes_the_fingerprint() -> None:
    plain = parse_spec(_spec())
    assert parse_spec(_spec(params={"C": 0.5})).fingerprint() != plain.fingerprint()
    assert parse_spec(_spec(threshold=0.3)).fingerprint() != plain.fingerprint()
    assert parse_spec(_spec(threshold=0.3)).fingerprint() != parse_spec(_spec(threshold=0.4)).fingerprint()


def test_the_order_keys_are_written_in_changes_nothing() -> None:
    document = _spec(params={"C": 0.5, "max_iter": 200})
    reordered = {key: document[key] for key in reversed(list(document))}
    reordered["training"] = {"params": {"max_iter": 200, "C": 0.5}, "estimator": document["training"]["estimator"]}
    assert parse_spec(reordered).fingerprint() == parse_spec(document).fingerprint()
