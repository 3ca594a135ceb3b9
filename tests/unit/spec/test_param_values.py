"""List and mapping values in training.params and the search space: JSON-like data, refused by path."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import SpecError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.estimators import check_estimator_params
from mlops.spec.model import parse_spec, parse_spec_text, pipeline_problems
from mlops.training.fit import build_pipeline, estimator_params
from mlops.training.search import candidates


def _spec(training: dict[str, Any], task: str = "classification") -> dict[str, Any]:
    target: dict[str, Any] = {"name": "y", "classes": ["no", "yes"]} if task == "classification" else {"name": "y"}
    return {
        "name": "m",
        "task": task,
        "target": target,
        "features": [{"name": "a", "type": "float"}, {"name": "b", "type": "float"}, {"name": "c", "type": "int"}],
        "training": training,
    }


def test_lists_and_mappings_reach_the_estimator() -> None:
    # GIVEN YAML with a list, a mapping with class keys and a nested list
    spec = parse_spec_text(
        """
name: m
task: classification
target: {name: y, classes: [0, 1]}
features: [{name: a, type: float}, {name: b, type: float}, {name: c, type: int}]
training:
  estimator: lightgbm.LGBMClassifier
  params:
    monotone_constraints: [1, 0, -1]
    class_weight: {0: 1, 1: 2.5}
"""
    )
    # WHEN the estimator is built
    check_estimator_params(spec)
    model = build_pipeline(spec).named_steps["model"]
    # THEN the values arrive as lists and a mapping keyed by the classes as the model sees them
    assert model.monotone_constraints == [1, 0, -1]
    assert model.class_weight == {0: 1, 1: 2.5}
    assert model.n_jobs == 1 and model.random_state == spec.training.seed


def test_class_weight_keys_must_be_classes() -> None:
    spec = parse_spec(_spec({"estimator": "lightgbm.LGBMClassifier", "params": {"class_weight": {"maybe": 2}}}))
    refused = r"training\.params\.class_weight\.maybe: not one of target\.classes \(no, yes\)"
    with pytest.raises(SpecError, match=refused):
        estimator_params(spec)


def test_scikit_learn_class_weight_mapping_too() -> None:
    spec = parse_spec(
        _spec({"estimator": "sklearn.linear_model.LogisticRegression", "params": {"class_weight": {"yes": 3}}})
    )
    assert estimator_params(spec)["class_weight"] == {"yes": 3}


@pytest.mark.parametrize(
    ("params", "path", "reason"),
    [
        ({"monotone_constraints": [1, float("nan")]}, "training.params.monotone_constraints.1", "not a finite number"),
        ({"class_weight": {"yes": float("inf")}}, "training.params.class_weight.yes", "not a finite number"),
        ({"x": {"a": {"b": {"c": [1]}}}}, "training.params.x.a.b.c", "nested more than 3 levels deep"),
        ({"x": object()}, "training.params.x", "is not JSON"),
        ({"x": {(1, 2): 3}}, "training.params.x", "mapping key (1, 2) is not text or a number"),
    ],
)
def test_bad_values_are_refused_naming_their_path(params: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(_spec({"estimator": "lightgbm.LGBMClassifier", "params": params}))
    assert f"spec: {path}: " in str(refused.value)
    assert reason in str(refused.value)


def test_search_space_values_may_be_lists() -> None:
    # GIVEN a search over a list-valued parameter
    spec = parse_spec(
        _spec(
            {
                "estimator": "lightgbm.LGBMRegressor",
                "params": {"n_estimators": 10},
                "search": {"space": {"monotone_constraints": [[0, 0, 0], [1, 0, 0]], "num_leaves": [7, 15]}},
            },
            task="regression",
        )
    )
    # THEN every grid point is a parameter set with the list intact, and a bad value names its path
    points = candidates(spec)
    assert len(points) == 4
    assert sorted(str(p["monotone_constraints"]) for p in points) == ["[0, 0, 0]"] * 2 + ["[1, 0, 0]"] * 2
    with pytest.raises(SpecError, match=r"training\.search\.space\.monotone_constraints\.1\.2: nan"):
        parse_spec(
            _spec(
                {
                    "estimator": "lightgbm.LGBMRegressor",
                    "search": {"space": {"monotone_constraints": [[0, 0, 0], [1, 0, float("nan")]]}},
                },
                task="regression",
            )
        )


def test_misspelt_booster_parameter_is_named_with_a_suggestion() -> None:
    spec = parse_spec(_spec({"estimator": "lightgbm.LGBMClassifier", "params": {"num_leafs": 7}}))
    with pytest.raises(SpecError, match=r"training\.params\.num_leafs: not a parameter of lightgbm\.LGBMClassifier"):
        check_estimator_params(spec)


def test_xgboost_is_refused_on_the_lambda_backend() -> None:
    with pytest.raises(SpecError, match=r"training\.backend: xgboost\.XGBRegressor trains only on backend sagemaker"):
        parse_spec(_spec({"estimator": "xgboost.XGBRegressor"}, task="regression"))
    assert parse_spec(_spec({"estimator": "xgboost.XGBRegressor", "backend": "sagemaker"}, task="regression"))


def test_xgboost_classifier_needs_integer_classes() -> None:
    with pytest.raises(SpecError, match=r"target\.classes: xgboost\.XGBClassifier needs the classes 0 to 1"):
        parse_spec(_spec({"estimator": "xgboost.XGBClassifier", "backend": "sagemaker"}))


def test_a_value_the_library_refuses_fails_the_fit_with_the_params_path() -> None:
    import numpy as np
    import pandas as pd

    from mlops.training.fit import train

    spec = parse_spec(
        _spec({"estimator": "lightgbm.LGBMRegressor", "params": {"monotone_constraints": [1, 0]}}, task="regression")
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "y"]).assign(c=lambda f: f.c.round())
    with pytest.raises(SpecError, match=r"^training\.params: lightgbm refused the fit: .*monotone"):
        train(frame, spec)


@pytest.mark.parametrize("estimator", ["xgboost.XGBRegressor", "xgboost.XGBClassifier"])
def test_an_xgboost_spec_on_the_sagemaker_backend_is_stored(estimator: str) -> None:
    # GIVEN an XGBoost spec on the SageMaker backend (the job exports it to ONNX; Evaluate scores that)
    task = "regression" if estimator.endswith("Regressor") else "classification"
    document = _spec({"estimator": estimator, "backend": "sagemaker"}, task=task)
    if task == "classification":
        document["target"]["classes"] = [0, 1]
    spec = parse_spec(document)
    # WHEN it is stored THEN the pipeline takes it (nothing left that a run could not do)
    assert pipeline_problems(spec) == []
    store = SpecStore(Registry.in_memory())
    assert store.put(spec, actor="alice", source="xgb.yaml").revision == 1
    assert store.get(spec.name).spec().training.estimator == estimator
