"""Artifacts: byte-identical for identical trainings, and a tampered artifact never runs code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from mlops.errors import CheckFailedError
from mlops.training.artifacts import dump_artifact, load_artifact, sha256_hex
from mlops.training.fit import TrainResult, train
from mlops.training.frames import model_input
from tests.unit.training.helpers import example_frame, example_spec


@pytest.mark.parametrize("model", ["churn", "house-prices"])
def test_two_independent_trainings_give_byte_identical_artifacts(model: str) -> None:
    # GIVEN the same data, spec and code, built twice from scratch
    first = train(example_frame(model), example_spec(model), code_revision="r1")
    second = train(example_frame(model), example_spec(model), code_revision="r1")
    # WHEN both are serialized
    data_a, sha_a = dump_artifact(first.pipeline)
    data_b, sha_b = dump_artifact(second.pipeline)
    # THEN the bytes and their sha256 are identical
    assert sha_a == sha_b == sha256_hex(data_a)
    assert data_a == data_b


def test_artifact_round_trip_predicts_the_same(churn_trained: TrainResult) -> None:
    # GIVEN a serialized model
    spec = example_spec("churn")
    data, sha = dump_artifact(churn_trained.pipeline)
    # WHEN loaded with its recorded sha256 (any case)
    loaded = load_artifact(data, sha.upper())
    # THEN it predicts exactly what the original predicts
    features = model_input(churn_trained.holdout, spec)
    np.testing.assert_array_equal(loaded.predict_proba(features), churn_trained.pipeline.predict_proba(features))


def test_wrong_sha256_is_refused_naming_both_hashes(churn_trained: TrainResult) -> None:
    # GIVEN an artifact and a recorded hash that is not its own
    data, sha = dump_artifact(churn_trained.pipeline)
    wrong = "0" * 64
    # WHEN / THEN loading refuses before unpickling, naming both hashes
    with pytest.raises(CheckFailedError, match=f"expected {wrong}, got {sha}"):
        load_artifact(data, wrong)
    with pytest.raises(CheckFailedError, match="none recorded"):
        load_artifact(data, "")


class _RunsShell:
    def __reduce__(self):  # the classic pickle payload
        return (os.system, ("echo pwned > /dev/null",))


class _Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize(("payload", "named"), [(_RunsShell(), "system"), (_Evaluates(), "builtins.eval")])
def test_a_payload_with_a_matching_hash_still_cannot_import_code(payload: object, named: str) -> None:
    # GIVEN a malicious pickle whose sha256 was recorded too (registry and bucket both tampered)
    data = pickle.dumps(payload, protocol=5)
    # WHEN / THEN the unpickler refuses the callable by name instead of calling it
    with pytest.raises(CheckFailedError, match=f"refers to .*{named}.*refusing"):
        load_artifact(data, sha256_hex(data))


def test_functions_from_allowed_packages_and_non_models_are_refused() -> None:
    # GIVEN pickles of a numpy function (code, not data) and of a plain dict (not a model)
    function_pickle = pickle.dumps(np.load, protocol=5)
    dict_pickle = pickle.dumps({"a": 1}, protocol=5)
    # WHEN / THEN both are refused
    with pytest.raises(CheckFailedError, match="may not use"):
        load_artifact(function_pickle, sha256_hex(function_pickle))
    with pytest.raises(CheckFailedError, match="not a model"):
        load_artifact(dict_pickle, sha256_hex(dict_pickle))
    # AND bytes that are not a pickle at all give a clear error
    junk = b"PK\x03\x04 not a pickle"
    with pytest.raises(CheckFailedError, match="cannot be loaded"):
        load_artifact(junk, sha256_hex(junk))
