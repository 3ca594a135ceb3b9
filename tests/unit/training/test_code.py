"""Training code as a versioned input: the deterministic package, its activation (sha256-checked),
the entry point, a model built by it on real data (ISLP Default) and its artifact's allow-list."""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlops.errors import CheckFailedError, InputError, SpecError
from mlops.spec.model import parse_spec
from mlops.training.artifacts import dump_artifact, load_artifact
from mlops.training.code import (
    ZIP_TIMESTAMP,
    BuildParams,
    activate_code,
    build_estimator,
    code_from_tags,
    code_tags,
    package_code,
    parse_entry_point,
)
from mlops.training.evaluation import evaluate
from mlops.training.fit import train
from tests.conformance.datasets import DEFAULT

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "code" / "creditfeatures"
EXAMPLE_SPEC = ROOT / "examples" / "code" / "credit-code.yaml"


@pytest.fixture
def tmpdir_as_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temporary folder code is extracted under (``/tmp`` on Lambda), one per test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = list(sys.path)
    yield tmp_path / "tmp"
    sys.path[:] = before


def _package(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def test_the_same_source_gives_the_same_bytes(tmp_path: Path) -> None:
    # GIVEN a package, and a copy of it written later with compiled files and a cache folder beside
    files = {"__init__.py": "", "model.py": "def build(spec, params):\n    return None\n", "sub/__init__.py": "x = 1\n"}
    first = _package(tmp_path / "a", "pkgdemo", files)
    second = _package(tmp_path / "b", "pkgdemo", dict(reversed(files.items())))
    (second / "__pycache__").mkdir()
    (second / "__pycache__" / "model.cpython-312.pyc").write_bytes(b"\x00compiled")
    (second / "stale.pyc").write_bytes(b"\x00")
    os.utime(second / "model.py", (1_000_000_000, 1_000_000_000))
    # WHEN both are packaged
    data_a, sha_a, name = package_code(first)
    data_b, sha_b, _ = package_code(second)
    # THEN the bytes and sha256 are equal, the entries sorted, stamped with the fixed time, no cache
    assert (data_a, sha_a) == (data_b, sha_b) and name == "pkgdemo"
    assert sha_a == hashlib.sha256(data_a).hexdigest()
    entries = zipfile.ZipFile(io.BytesIO(data_a)).infolist()
    assert [e.filename for e in entries] == ["pkgdemo/__init__.py", "pkgdemo/model.py", "pkgdemo/sub/__init__.py"]
    assert {e.date_time for e in entries} == {ZIP_TIMESTAMP}


def test_what_is_not_a_package_is_refused_with_the_reason(tmp_path: Path) -> None:
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "model.py").write_text("")
    with pytest.raises(InputError, match=r"notes: not a Python package \(no __init__.py in it\)"):
        package_code(plain)
    with pytest.raises(InputError, match="not a directory"):
        package_code(tmp_path / "missing")
    with pytest.raises(InputError, match="would shadow a module the platform imports"):
        package_code(_package(tmp_path, "sklearn", {"__init__.py": ""}))
    with pytest.raises(InputError, match="not a Python package name"):
        package_code(_package(tmp_path, "my-features", {"__init__.py": ""}))


def test_activation_checks_the_sha256_and_makes_the_package_importable(tmpdir_as_tmp: Path, tmp_path: Path) -> None:
    data, sha256, _ = package_code(_package(tmp_path, "pkgactivate", {"__init__.py": "ANSWER = 42\n"}))
    reads: list[str] = []

    def read(uri: str) -> bytes:
        reads.append(uri)
        return data

    # WHEN a tampered copy is offered THEN nothing is extracted and both hashes are named
    with pytest.raises(CheckFailedError, match=f"registry recorded {sha256}, the stored bytes hash to"):
        activate_code(lambda uri: data + b"x", "s3://b/code/m/000001/x.zip", sha256)
    assert not (tmpdir_as_tmp / "mlops-code" / sha256).exists()
    # WHEN the recorded bytes are activated (twice) THEN they are read once and import
    folder = activate_code(read, "s3://b/code/m/000001/x.zip", sha256)
    assert activate_code(read, "s3://b/code/m/000001/x.zip", sha256) == folder == tmpdir_as_tmp / "mlops-code" / sha256
    assert len(reads) == 1
    import pkgactivate  # type: ignore[import-not-found]

    assert pkgactivate.ANSWER == 42
    del sys.modules["pkgactivate"]


def test_a_zip_that_escapes_its_folder_is_refused(tmpdir_as_tmp: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pkgescape/__init__.py", "")
        archive.writestr("../evil.py", "")
    data = buffer.getvalue()
    with pytest.raises(CheckFailedError, match="outside its folder"):
        activate_code(lambda uri: data, "s3://b/k.zip", hashlib.sha256(data).hexdigest())


def test_bad_entry_points_are_named(tmpdir_as_tmp: Path, tmp_path: Path) -> None:
    data, sha256, _ = package_code(
        _package(
            tmp_path,
            "pkgentry",
            {
                "__init__.py": "",
                "model.py": "def build(spec, params):\n    return 'not a model'\n\ndef broken(spec, params):\n"
                "    raise KeyError('income')\n",
            },
        )
    )
    activate_code(lambda uri: data, "s3://b/k.zip", sha256)
    with pytest.raises(SpecError, match=r"training.entry_point: .*module 'pkgentry.nomodule' is not in the code"):
        build_estimator("pkgentry.nomodule:build", None, {})
    with pytest.raises(SpecError, match=r"training.entry_point: 'pkgentry.model' has no function 'make'"):
        build_estimator("pkgentry.model:make", None, {})
    with pytest.raises(SpecError, match=r"returned a str, not a scikit-learn estimator"):
        build_estimator("pkgentry.model:build", None, {})
    with pytest.raises(SpecError, match=r"pkgentry.model:broken\(spec, params\) raised KeyError: 'income'"):
        build_estimator("pkgentry.model:broken", None, {})
    with pytest.raises(SpecError, match=r"training.entry_point: 'pkgentry.model' is not an entry point"):
        parse_entry_point("pkgentry.model")
    for name in [n for n in sys.modules if n.startswith("pkgentry")]:
        del sys.modules[name]


def _spec_document(**training: Any) -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE_SPEC.read_text())
    document["training"] = {k: v for k, v in {**document["training"], **training}.items() if v is not None}
    return document


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"estimator": "sklearn.linear_model.LogisticRegression"}, "give estimator or entry_point, not both"),
        ({"entry_point": None}, "training.estimator: required field is missing"),
        ({"entry_point": "creditfeatures/model.py"}, "is not package.module:function"),
        ({"code_version": 0}, "training.code_version"),
        ({"backend": "sagemaker"}, "the SageMaker backend does not run a code package yet"),
    ],
)
def test_spec_entry_point_errors_name_the_field(training: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message) as raised:
        parse_spec(_spec_document(**training), "credit-code.yaml")
    assert "credit-code.yaml: training" in str(raised.value)


def test_a_code_version_without_an_entry_point_is_refused() -> None:
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    document["training"]["code_version"] = 2
    with pytest.raises(SpecError, match=r"training.code_version: pins the code of an entry_point"):
        parse_spec(document, "churn.yaml")


@pytest.fixture(scope="module")
def credit_code(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The example package, packaged and activated as the training function would."""
    tmp = tmp_path_factory.mktemp("code-tmp")
    saved_tempdir, saved_path = tempfile.tempdir, list(sys.path)
    tempfile.tempdir = str(tmp)
    try:
        data, sha256, package = package_code(EXAMPLE)
        activate_code(lambda uri: data, "s3://bucket/code/credit-code/000001/x.zip", sha256)
        yield {"sha256": sha256, "package": package}
    finally:
        tempfile.tempdir = saved_tempdir
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if n.startswith("creditfeatures")]:
            del sys.modules[name]


def test_a_model_built_by_code_trains_on_real_data_and_loads_only_with_its_package(
    credit_code: dict[str, Any],
) -> None:
    # GIVEN the ISLP Default data and a spec whose entry point adds a derived feature
    spec = parse_spec(yaml.safe_load(EXAMPLE_SPEC.read_text()), "credit-code.yaml")
    # WHEN the platform trains it (its split, its fit)
    result = train(DEFAULT.frame(), spec, code_revision="test")
    # THEN the user's pipeline is what was fitted, with the derived feature, and it scores well
    assert [name for name, _ in result.pipeline.steps] == ["derive", "prepare", "model"]
    assert "numeric__debt_to_income" in list(result.pipeline.named_steps["prepare"].get_feature_names_out())
    assert result.params == {"C": 0.5} and result.estimator == "entry point creditfeatures.model:build"
    assert result.classes == ["No", "Yes"]
    assert evaluate(result.pipeline, result.holdout, spec).finite_metrics()["roc_auc"] > 0.9
    # AND its artifact loads with the package on the allow-list, and only then
    data, sha256 = dump_artifact(result.pipeline)
    loaded = load_artifact(data, sha256, code_modules=[credit_code["package"]])
    assert type(loaded.steps[0][1]).__module__ == "creditfeatures.model"
    with pytest.raises(CheckFailedError, match=r"DebtToIncome, which a model artifact may not use"):
        load_artifact(data, sha256)
    # AND another package's name does not open it either
    with pytest.raises(CheckFailedError, match="may not use"):
        load_artifact(data, sha256, code_modules=["otherpackage"])


def test_the_same_code_data_and_spec_give_the_same_artifact(credit_code: dict[str, Any]) -> None:
    spec = parse_spec(yaml.safe_load(EXAMPLE_SPEC.read_text()), "credit-code.yaml")
    first = dump_artifact(train(DEFAULT.frame(), spec).pipeline)[1]
    # metamorphic: the columns in another order change nothing
    shuffled = DEFAULT.frame()[list(reversed(DEFAULT.frame().columns))]
    assert dump_artifact(train(shuffled, spec).pipeline)[1] == first


def test_code_lineage_round_trips_through_version_tags() -> None:
    code = {
        "version": 3,
        "sha256": "a" * 64,
        "uri": "s3://b/code/m/000003/x.zip",
        "package": "creditfeatures",
        "entry_point": "creditfeatures.model:build",
        "uploader": "arn:aws:iam::123456789012:user/scientist",
        "uploaded_at": "2026-12-06T13:00:00.000Z",
    }
    tags = code_tags(code)
    assert tags["code_version"] == "3" and all(isinstance(v, str) for v in tags.values())
    assert code_from_tags(tags) == code
    assert code_tags(None) == {} and code_from_tags({"profile_uri": "s3://x"}) is None


def test_two_versions_of_one_package_take_turns_in_one_process(tmpdir_as_tmp: Path, tmp_path: Path) -> None:
    # GIVEN versions 1 and 2 of one package (Evaluate: the candidate's code and the champion's)
    one = package_code(_package(tmp_path / "v1", "pkgturns", {"__init__.py": "VERSION = 1\n"}))
    two = package_code(_package(tmp_path / "v2", "pkgturns", {"__init__.py": "VERSION = 2\n"}))
    # WHEN each is activated in turn THEN the import finds the one activated last
    activate_code(lambda uri: one[0], "s3://b/1.zip", one[1])
    assert importlib.import_module("pkgturns").VERSION == 1
    activate_code(lambda uri: two[0], "s3://b/2.zip", two[1])
    assert importlib.import_module("pkgturns").VERSION == 2
    activate_code(lambda uri: one[0], "s3://b/1.zip", one[1])
    assert importlib.import_module("pkgturns").VERSION == 1
    del sys.modules["pkgturns"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": float("nan")}, r"training.params.C: nan is not a finite number"),
        ({"weights": {"yes": object()}}, r"training.params.weights.yes: a value of type object is not JSON"),
        ({"deep": [[[[1]]]]}, r"training.params.deep.0.0.0: nested more than 3 levels deep"),
    ],
)
def test_build_params_are_checked_as_json_like_values(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build_estimator("anypkg.model:build", None, params)  # refused before the code is imported


def test_build_errors_name_the_parameter_or_the_entry_point(tmpdir_as_tmp: Path, tmp_path: Path) -> None:
    source = (
        "from sklearn.linear_model import LogisticRegression\n"
        "def needs(spec, params):\n    return LogisticRegression(C=params['C'])\n"
        "def strict(spec, params):\n    if params['C'] <= 0:\n        raise ValueError(\"'C' must be positive\")\n"
        "    return LogisticRegression(C=params['C'])\n"
        "def spread(spec, params):\n    return LogisticRegression(**params)\n"
        "def floats(spec, params):\n    return LogisticRegression(C=float(params['C']))\n"
        "def one(spec):\n    return LogisticRegression()\n"
        "def mutates(spec, params):\n    params['C'] = 99.0\n    params['w']['yes'] = 0\n"
        "    return LogisticRegression(C=params['C'])\n"
    )
    data, sha256, _ = package_code(_package(tmp_path, "pkgparams", {"__init__.py": "", "model.py": source}))
    activate_code(lambda uri: data, "s3://b/k.zip", sha256)
    try:
        cases = [
            ("needs", {"max_iter": 5}, r"training.params: .*read parameter 'C', which the spec does not set"),
            ("strict", {"C": -1.0}, r"training.params.C: pkgparams.model:strict.* refused its value -1.0"),
            ("spread", {"bogus": 1}, r"training.params.bogus: .*unexpected keyword argument 'bogus'"),
            ("floats", {"C": "abc"}, r"training.params.C: .*refused its value 'abc': ValueError: could not convert"),
            ("one", {}, r"training.entry_point: pkgparams.model:one must take two arguments, build\(spec, params\)"),
        ]
        for function, params, message in cases:
            with pytest.raises(SpecError, match=message):
                build_estimator(f"pkgparams.model:{function}", None, params)
        # a search candidate's value is named by its path in the search space
        with pytest.raises(SpecError, match=r"training.search.space.C: "):
            build_estimator("pkgparams.model:strict", None, {"C": -2.0}, lambda name: f"training.search.space.{name}")
        # build gets its own copy: what the run records is what the spec said
        params = {"C": 0.5, "w": {"yes": 2}}
        assert build_estimator("pkgparams.model:mutates", None, params).C == 99.0
        assert params == {"C": 0.5, "w": {"yes": 2}}
    finally:
        for name in [n for n in sys.modules if n.startswith("pkgparams")]:
            del sys.modules[name]


def test_a_bad_parameter_of_an_entry_point_fails_training_naming_it(credit_code: dict[str, Any]) -> None:
    # GIVEN the example's spec with a value its build cannot use, and one LogisticRegression refuses at fit
    document = yaml.safe_load(EXAMPLE_SPEC.read_text())
    document["training"]["params"] = {"C": "abc"}
    with pytest.raises(SpecError, match=r"training.params.C: creditfeatures.model:build\(spec, params\) refused"):
        train(DEFAULT.frame(), parse_spec(document, "credit-code.yaml"))
    document["training"]["params"] = {"C": -1}
    with pytest.raises(SpecError, match=r"training.params.C: The 'C' parameter of LogisticRegression must be"):
        train(DEFAULT.frame(), parse_spec(document, "credit-code.yaml"))


def test_parameters_kept_inside_a_model_load_as_a_plain_dict() -> None:
    # GIVEN a model that keeps the dict build received (as a FunctionTransformer keeps its kw_args)
    model = LogisticRegression()
    model.kept = BuildParams({"C": 0.5, "w": {"yes": 2}})
    # WHEN it is stored and loaded with the restricted unpickler, or copied
    data, sha256 = dump_artifact(model)
    loaded = load_artifact(data, sha256)
    # THEN the parameters are a plain dict (the platform's class is not on the allow-list)
    assert type(loaded.kept) is dict and loaded.kept == {"C": 0.5, "w": {"yes": 2}}
    assert type(copy.deepcopy(model.kept)) is dict
