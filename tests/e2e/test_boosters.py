"""A LightGBM model through the whole lifecycle on the local cloud, on real public data.

The palmerpenguins spec with ``training.estimator: lightgbm.LGBMClassifier`` (and a mapping
parameter, ``class_weight``): the shipped file, less held-back rows, is uploaded; the pipeline trains it in the
Train function (LightGBM from the science layer, as on Lambda: the local cloud lets a function
import only its layers), exports it to ONNX with onnxmltools' converter, gates and registers it; it
is approved, deployed, and the held-back rows are predicted over signed HTTP by the inference
function (onnxruntime, no LightGBM). The answers are checked against LightGBM's own
``predict_proba`` of the same model trained here from the same bytes (the same artifact sha256).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops.training.artifacts import dump_artifact
from mlops.training.fit import train
from mlops.training.frames import load_training_frame, model_input
from mlops.training.onnx_check import PROBABILITY_TOLERANCE
from mlops_local.testing import LocalCloudProcess, signed_as
from tests.conformance.datasets import PENGUINS

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "penguins-lgbm"
PARAMS = {"n_estimators": 60, "num_leaves": 15, "class_weight": {"Adelie": 1, "Chinstrap": 2, "Gentoo": 1}}


def mlops(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return json.loads(result.stdout) if result.stdout.strip() else None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def lightgbm_spec() -> dict[str, Any]:
    document = yaml.safe_load(PENGUINS.spec_path.read_text())
    document["name"] = MODEL
    document["training"].update(estimator="lightgbm.LGBMClassifier", params=dict(PARAMS))
    return dict(document)


def test_lightgbm_trains_registers_and_serves_what_lightgbm_predicts(
    local_cloud: LocalCloudProcess, tmp_path: Path
) -> None:
    env = local_cloud.environ()
    # GIVEN the LightGBM spec stored, and the shipped penguins file (less held-back rows) uploaded
    spec_path = tmp_path / f"{MODEL}.yaml"
    spec_path.write_text(yaml.safe_dump(lightgbm_spec()))
    mlops(env, "spec", "put", str(spec_path), "--actor", "alice")
    data = tmp_path / "penguins.csv"
    data.write_bytes(PENGUINS.training_bytes())
    uploaded = mlops(signed_as(env, "scientist"), "data", "upload", str(data), "--model", MODEL, "--wait")
    # THEN the pipeline registered a candidate with an ONNX export checked on its holdout
    run = uploaded["run"]
    failed = [(s["name"], s.get("error"), str(s.get("cause"))[:1500]) for s in run["steps"] if s.get("error")]
    assert run["status"] == "SUCCEEDED" and run["output"]["outcome"] == "registered", (run.get("error"), failed)
    version = int(run["output"]["version"])
    ssm = local_cloud.client("ssm")
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=ssm.get_parameter(Name="/mlops/dev/registry-table")["Parameter"]["Value"],
        audit_table=ssm.get_parameter(Name="/mlops/dev/audit-table")["Parameter"]["Value"],
    )
    registered = registry.get_version(MODEL, version)
    assert registered.params["class_weight"] == PARAMS["class_weight"]
    assert (registered.tags or {}).get("onnx_uri"), registered.tags
    # AND it is the model LightGBM trains here from the same bytes (same artifact sha256)
    spec = parse_spec(lightgbm_spec())
    local = train(load_training_frame(io.BytesIO(PENGUINS.training_bytes()), spec), spec)
    assert dump_artifact(local.pipeline)[1] == registered.artifact_sha256

    # WHEN someone other than the uploader approves it and the held-back rows are predicted over HTTP
    def approved() -> bool:
        result = subprocess.run(
            [MLOPS, "--json", "approve", MODEL, str(version), "--comment", "boosters e2e"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        return result.returncode == 0

    wait_for(approved, 120, f"{MODEL} v{version} to wait for approval")
    wait_for(lambda: registry.get_model(MODEL).champion == version, 120, f"{MODEL} v{version} as champion")
    held_back = PENGUINS.held_back_frame()
    status, answer = local_cloud.api("POST", f"models/{MODEL}/predict", {"records": PENGUINS.records(held_back)})
    # THEN the served probabilities and labels are LightGBM's own, within the export's tolerance
    assert status == 200, answer
    assert answer["version"] == version
    typed = load_training_frame(io.BytesIO(held_back.to_csv(index=False).encode()), spec)
    assert len(typed) == len(held_back)
    expected = local.pipeline.predict_proba(model_input(typed, spec))
    # (served probabilities are rounded to 6 decimals)
    np.testing.assert_allclose(np.asarray(answer["probabilities"]), expected, atol=PROBABILITY_TOLERANCE + 1e-6)
    assert answer["predictions"] == [str(c) for c in local.pipeline.predict(model_input(typed, spec))]
