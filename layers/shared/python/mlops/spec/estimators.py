"""The allow-listed estimators and the one check of the parameters a spec gives them.

:func:`check_estimator_params` is the only place that decides whether the names in
``training.params`` and the keys of ``training.search.space`` are parameters of the spec's
estimator. It runs when a spec is stored (:meth:`mlops.registry.specs.SpecStore.put`, so
``mlops spec put`` refuses the spec before anything is written), in ``mlops validate --spec``,
and again when training builds a candidate, so a spec stored before this check existed fails
its run with the same message. Each problem names its own path
(``training.params.not_a_param``, ``training.search.space.max_dept``), the closest valid name
when there is one, and every valid name.

Names, not values: a scikit-learn estimator checks its parameter values when it is fitted, not
when it is constructed, and a trial fit would need data shaped like the model's and could refuse
a value only because the trial data is small. So at put only the names are checked; a value the
estimator refuses fails the Train step, and :func:`param_path` lets that message name the path
the value came from as well.

scikit-learn is imported here only when a check runs (about 1.4 s): serving reads stored specs
through :class:`mlops.spec.view.SpecView` and never imports this module's dependencies.

Examples
--------
>>> from mlops.spec.model import parse_spec
>>> spec = parse_spec({"name": "m", "task": "regression", "target": {"name": "y"},
...                    "features": [{"name": "x", "type": "float"}],
...                    "training": {"estimator": "sklearn.linear_model.Ridge", "params": {"alpah": 1.0}}})
>>> estimator_problems(spec)  # doctest: +ELLIPSIS
["training.params.alpah: not a parameter of sklearn.linear_model.Ridge (did you mean 'alpha'?); ..."]
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from mlops.errors import SpecError
from mlops.spec.model import ESTIMATORS, ModelSpec


def estimator_class(import_path: str) -> type:
    """Import an estimator class, but only one named in the allow-list ``mlops.spec.model.ESTIMATORS``.

    Raises
    ------
    SpecError
        The path is not allow-listed.
    """
    if import_path not in ESTIMATORS:
        raise SpecError(f"training.estimator: {import_path!r} is not in the allow-list")
    module_name, _, class_name = import_path.rpartition(".")
    estimator: type = getattr(importlib.import_module(module_name), class_name)
    return estimator


# LightGBM's scikit-learn classes take the library's core parameters as keyword arguments, which
# ``get_params`` of an unconfigured estimator does not list, and LightGBM only warns about a name it
# does not know. These are the core parameters a spec may set (LightGBM's documented names, not
# their aliases, and none that names a file or a thread count: the platform fixes ``n_jobs``).
LIGHTGBM_CORE_PARAMS = frozenset(
    {
        "alpha",
        "bagging_seed",
        "bin_construct_sample_cnt",
        "boost_from_average",
        "cat_l2",
        "cat_smooth",
        "categorical_feature",
        "cegb_penalty_split",
        "cegb_tradeoff",
        "data_sample_strategy",
        "deterministic",
        "drop_rate",
        "drop_seed",
        "extra_seed",
        "extra_trees",
        "fair_c",
        "feature_fraction_bynode",
        "feature_fraction_seed",
        "interaction_constraints",
        "is_unbalance",
        "linear_lambda",
        "linear_tree",
        "max_bin",
        "max_bin_by_feature",
        "max_cat_threshold",
        "max_cat_to_onehot",
        "max_delta_step",
        "max_drop",
        "min_data_in_bin",
        "min_data_per_group",
        "monotone_constraints",
        "monotone_constraints_method",
        "monotone_penalty",
        "other_rate",
        "path_smooth",
        "poisson_max_delta_step",
        "scale_pos_weight",
        "sigmoid",
        "skip_drop",
        "top_rate",
        "tweedie_variance_power",
        "uniform_drop",
        "use_missing",
        "xgboost_dart_mode",
        "zero_as_missing",
    }
)
EXTRA_PARAMS: dict[str, frozenset[str]] = {
    "lightgbm.LGBMClassifier": LIGHTGBM_CORE_PARAMS,
    "lightgbm.LGBMRegressor": LIGHTGBM_CORE_PARAMS,
}


@cache
def estimator_param_names(import_path: str) -> tuple[str, ...]:
    """The parameters an allow-listed estimator takes, sorted (``get_params`` keys, and LightGBM's
    core parameters, :data:`LIGHTGBM_CORE_PARAMS`)."""
    names = set(estimator_class(import_path)().get_params(deep=False)) | EXTRA_PARAMS.get(import_path, frozenset())
    return tuple(sorted(names))


def param_path(spec: ModelSpec, name: str, override: Mapping[str, Any] | None = None) -> str:
    """Where the value of parameter ``name`` came from, as a spec path.

    A search candidate (``override``, built by :func:`mlops.training.search.candidates` as the spec's
    params with a point of the space on top) takes a searched name's value from
    ``training.search.space``, and so does a name it alone sets; every other value is the one in
    ``training.params``.
    """
    searched = spec.training.search is not None and name in spec.training.search.space
    if name in (override or {}) and (searched or name not in spec.training.params):
        return f"training.search.space.{name}"
    return f"training.params.{name}"


def estimator_problems(spec: ModelSpec, override: Mapping[str, Any] | None = None) -> list[str]:
    """One line per parameter name the spec's estimator does not take, each naming its path.

    Parameters
    ----------
    spec
        The model spec (``training.estimator``, ``training.params``, ``training.search.space``).
    override
        Parameters a search candidate sets (names already in the spec are reported once, under
        the spec's own path).

    Returns
    -------
    list of str
        Empty when every name is a parameter of the estimator.
    """
    estimator = spec.training.estimator
    if estimator is None:
        return []  # an entry point's build(spec, params) takes its own parameters
    valid = estimator_param_names(estimator)
    accepted = set(valid)
    space = spec.training.search.space if spec.training.search is not None else {}
    problems: list[str] = []
    reported: set[str] = set()
    for path, name in (
        *((f"training.params.{n}", n) for n in spec.training.params),
        *((f"training.search.space.{n}", n) for n in space),
        *((param_path(spec, n, override), n) for n in override or {} if n not in spec.training.params),
    ):
        if name in accepted or path in reported:
            continue
        reported.add(path)
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{path}: not a parameter of {estimator}{hint}; valid names: {', '.join(valid)}")
    return problems


def check_estimator_params(
    spec: ModelSpec, override: Mapping[str, Any] | None = None, *, source: str | None = None
) -> None:
    """Raise :class:`SpecError` listing every problem of :func:`estimator_problems`.

    ``source`` (a file name) starts each line, as in the spec parser's messages.
    """
    problems = estimator_problems(spec, override)
    if problems:
        prefix = f"{source}: " if source else ""
        raise SpecError("\n".join(prefix + problem for problem in problems))


__all__ = [
    "check_estimator_params",
    "estimator_class",
    "estimator_param_names",
    "estimator_problems",
    "param_path",
]
