"""The spec is checked completely when stored: estimator parameter names and search-space keys.

One function (:func:`mlops.spec.estimators.check_estimator_params`) decides, and its message is the
same at ``SpecStore.put``, ``mlops spec put``, ``mlops validate --spec`` and when a candidate is
trained: each problem names its own path, the closest valid name and every valid name.
"""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.errors import SpecError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.estimators import (
    EXTRA_PARAMS,
    check_estimator_params,
    estimator_class,
    estimator_param_names,
    estimator_problems,
    param_path,
)
from mlops.spec.model import ESTIMATORS, SAGEMAKER_ONLY_ESTIMATORS, ModelSpec, parse_spec
from mlops.training.fit import estimator_params, train
from mlops.training.search import candidates
from mlops_cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "specs"


def default_spec(training: dict[str, Any]) -> ModelSpec:
    """ISLP Default's columns; ``training`` replaces the training section."""
    return parse_spec(
        {
            "name": "default",
            "task": "classification",
            "target": {"name": "default", "classes": ["No", "Yes"], "positive_class": "Yes"},
            "features": [
                {"name": "student", "type": "category"},
                {"name": "balance", "type": "float", "min": 0},
                {"name": "income", "type": "float", "min": 0},
            ],
            "training": training,
        }
    )


FOREST = "sklearn.ensemble.RandomForestClassifier"


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_allow_listed_estimator_takes_exactly_its_constructor_parameters(estimator: str) -> None:
    # GIVEN an allow-listed estimator
    cls = estimator_class(estimator)
    # WHEN its parameter names are read (scikit-learn's public get_params)
    names = estimator_param_names(estimator)
    # THEN they are the constructor's keyword parameters (LightGBM's and XGBoost's take more as
    # keyword arguments: get_params lists XGBoost's, LightGBM's core ones are listed by the platform),
    # and a spec naming all of them passes
    defaults = cls().get_params(deep=False)
    declared = set(inspect.signature(cls).parameters) - {"kwargs"}
    if estimator.startswith("sklearn."):
        assert set(names) == declared
    else:
        assert set(names) == declared | set(defaults) | EXTRA_PARAMS.get(estimator, frozenset())
    task = ESTIMATORS[estimator]
    # (JSON has no NaN: XGBoost's default ``missing`` is left out)
    scalar = {
        k: v
        for k, v in defaults.items()
        if v is None or (isinstance(v, str | int | float | bool) and not (isinstance(v, float) and v != v))
    }
    spec = parse_spec(
        {
            "name": "m",
            "task": task,
            "target": {"name": "y", **({"classes": [0, 1]} if task == "classification" else {})},
            "features": [{"name": "x", "type": "float"}],
            "training": {
                "estimator": estimator,
                "params": scalar,
                "backend": "sagemaker" if estimator in SAGEMAKER_ONLY_ESTIMATORS else "lambda",
            },
        }
    )
    assert estimator_problems(spec) == []


def test_an_unknown_parameter_names_its_path_the_closest_name_and_every_valid_one() -> None:
    # GIVEN a spec with a parameter the forest does not take, a typo, and a typo in the search space
    spec = default_spec(
        {
            "estimator": FOREST,
            "params": {"not_a_param": 5, "n_estimator": 50},
            "search": {"space": {"max_dept": [2, 4], "min_samples_leaf": [1, 5]}},
        }
    )
    # WHEN checked
    with pytest.raises(SpecError) as refused:
        check_estimator_params(spec, source="default.yaml")
    lines = str(refused.value).splitlines()
    # THEN each problem is one line naming its own path, in the spec's order
    assert [line.split(": ")[1] for line in lines] == [
        "training.params.not_a_param",
        "training.params.n_estimator",
        "training.search.space.max_dept",
    ]
    assert all(line.startswith("default.yaml: ") for line in lines)
    assert "(did you mean" not in lines[0]
    assert "(did you mean 'n_estimators'?)" in lines[1] and "(did you mean 'max_depth'?)" in lines[2]
    # AND every valid name is listed
    valid = ", ".join(estimator_param_names(FOREST))
    assert all(line.endswith(f"valid names: {valid}") for line in lines)
    # AND the valid search key raised nothing
    assert "min_samples_leaf:" not in str(refused.value)


def test_a_search_candidate_names_the_field_its_bad_name_came_from() -> None:
    # GIVEN training.params with an unknown name and a valid search space: every candidate carries
    # the spec's params (the run used to blame training.search.space for them)
    spec = default_spec({"estimator": FOREST, "params": {"not_a_param": 5}, "search": {"space": {"max_depth": [2, 4]}}})
    for candidate in candidates(spec):
        # WHEN a candidate's parameters are built, as the Train step builds them
        with pytest.raises(SpecError) as refused:
            estimator_params(spec, candidate)
        # THEN the message names training.params, the field the name is in
        assert str(refused.value).startswith("training.params.not_a_param: not a parameter of")
        assert "training.search.space" not in str(refused.value)
    # AND a name only a candidate sets is named under the search space
    assert param_path(spec, "bogus", {"bogus": 1}) == "training.search.space.bogus"
    assert param_path(spec, "max_depth", candidates(spec)[0]) == "training.search.space.max_depth"
    assert param_path(spec, "not_a_param", candidates(spec)[0]) == "training.params.not_a_param"


def test_a_refused_value_names_its_path_at_fit_time() -> None:
    # GIVEN ISLP Default and a search space with a value LogisticRegression refuses (C must be > 0)
    frame = pd.read_csv(io.BytesIO(resources.files("ISLP").joinpath("data", "Default.csv").read_bytes()))
    spec = default_spec(
        {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 200},
            "search": {"space": {"C": [-1.0]}},
        }
    )
    # WHEN the candidate is trained (names are fine: the value is checked by scikit-learn at fit)
    assert estimator_problems(spec) == []
    with pytest.raises(SpecError) as refused:
        train(frame, spec, params_override=candidates(spec)[0])
    # THEN the message names the search space key the value came from
    assert str(refused.value).startswith("training.search.space.C: The 'C' parameter of LogisticRegression")


def test_spec_store_refuses_the_spec_and_stores_nothing() -> None:
    # GIVEN a registry and a spec whose params name nothing the estimator takes
    registry = Registry.in_memory()
    bad = default_spec({"estimator": FOREST, "params": {"not_a_param": 5}})
    # WHEN it is put
    with pytest.raises(SpecError, match=r"^default\.yaml: training\.params\.not_a_param: not a parameter"):
        SpecStore(registry).put(bad, actor="alice", source="default.yaml")
    # THEN no revision and no audit event was written; a good spec then gets revision 1
    assert SpecStore(registry).list("default").items == []
    assert registry.audit.list_events("default")[0] == []
    good = default_spec({"estimator": FOREST, "params": {"n_estimators": 5}})
    assert SpecStore(registry).put(good, actor="alice").revision == 1


def test_reading_a_stored_spec_imports_no_scikit_learn() -> None:
    # GIVEN a fresh interpreter
    code = (
        "import sys, mlops.registry.specs, mlops.spec.estimators, mlops.spec.view;"
        "print([m for m in ('sklearn', 'scipy') if m in sys.modules])"
    )
    # WHEN the modules that store and read specs are imported
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # THEN scikit-learn is not (only a check imports it)
    assert done.stdout.strip() == "[]", done.stderr


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mlops", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def bad_churn(tmp_path: Path) -> Path:
    document = yaml.safe_load((EXAMPLES / "churn.yaml").read_text())
    document["training"]["params"] = {**document["training"].get("params", {}), "not_a_param": 5}
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_cli_refuses_before_contacting_the_platform(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a spec with an unknown estimator parameter, and a platform address where nothing listens
    path = bad_churn(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    # WHEN it is put, and when data is validated against it
    put = run_cli(monkeypatch, capsys, "spec", "put", str(path), "--actor", "alice")
    validated = run_cli(monkeypatch, capsys, "validate", str(data), "--spec", str(path))
    as_json = run_cli(monkeypatch, capsys, "--json", "spec", "put", str(path), "--actor", "alice")
    # THEN both exit 2 (bad input) with the same one-line message naming the path, no traceback
    expected = f"{path}: training.params.not_a_param: not a parameter of sklearn.ensemble."
    for code, out, err in (put, validated):
        assert code == 2 and out == ""
        assert expected in err and "Traceback" not in err
    assert put[2] == validated[2]
    assert as_json[0] == 2 and "training.params.not_a_param" in (as_json[1] + as_json[2])


def test_examples_pass_the_check() -> None:
    # GIVEN every example spec shipped with the project
    from mlops.spec.model import load_spec

    for path in sorted(EXAMPLES.glob("*.yaml")):
        # WHEN / THEN its params and search space are all the estimator's
        assert estimator_problems(load_spec(path)) == [], path


def test_problems_are_json_safe_lines() -> None:
    # GIVEN a spec with one problem, THEN the problems list serializes (an API can return it as is)
    spec = default_spec({"estimator": FOREST, "params": {"not_a_param": 5}})
    assert json.loads(json.dumps(estimator_problems(spec)))[0].startswith("training.params.not_a_param")
