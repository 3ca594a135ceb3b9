"""``mlops predict M --data @FILE`` on the local cloud: 2,500 real rows in batches, answered in input order.

One model, ``predict-file``: ISLP Default's spec as ``mlops spec init`` writes it, trained by the
pipeline on the shipped file without its last 2,500 rows, approved and made champion; those 2,500
rows are then predicted from a CSV file (3 batches of at most 1,000) and from a JSON Lines file in
reverse order, through the real API (SigV4, the inference function's own limits).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest

from mlops.errors import NotFoundError
from mlops.registry.versions import Registry, Status
from mlops_local.testing import LocalCloudProcess
from tests.conformance.conftest import Result, run_mlops
from tests.conformance.datasets import DEFAULT

MODEL = "predict-file"
ROWS = 2500


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


@pytest.fixture(scope="module")
def served(local_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = local_cloud.environ()
    tmp = tmp_path_factory.mktemp("predict-file")
    header, rows = DEFAULT.lines()
    (tmp / "train.csv").write_bytes(header + b"".join(rows[:-ROWS]))
    (tmp / "score.csv").write_bytes(header + b"".join(rows[-ROWS:]))
    spec = tmp / "spec.yaml"
    made = run_mlops(
        "spec", "init", str(tmp / "train.csv"), "--target", "default", "--model", MODEL, "--out", str(spec)
    )
    assert made.returncode == 0, made.stderr
    assert run_mlops("spec", "put", str(spec), "--actor", "alice", env=env).returncode == 0
    # The upload is a plain S3 put: the bucket's event starts the training pipeline.
    local_cloud.client("s3").put_object(
        Bucket=parameter(local_cloud, "data-bucket"),
        Key=f"datasets/{MODEL}/train.csv",
        Body=(tmp / "train.csv").read_bytes(),
        Metadata={"uploaded-by": "bob"},
    )
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    deadline = time.monotonic() + 300
    version = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(NotFoundError):
            version = registry.get_model(MODEL).latest_version
        if version >= 1:
            break
        time.sleep(1)
    assert version >= 1, "no version was registered within 300 s"
    if registry.get_version(MODEL, version).status == Status.PENDING_APPROVAL:
        registry.approve(MODEL, version, actor="carol")
    if registry.get_model(MODEL).champion != version:
        registry.set_alias(MODEL, "champion", version, actor="carol")
    return {"env": env, "tmp": tmp, "version": version}


def predict(served: dict[str, Any], *args: str) -> Result:
    return run_mlops("predict", MODEL, *args, env=served["env"], json_output=False)


def test_a_csv_of_2500_rows_is_predicted_in_batches_in_input_order(served: dict[str, Any]) -> None:
    tmp = served["tmp"]
    # WHEN the 2,500 held-back rows are predicted from the CSV file, two batches in flight
    result = predict(served, "--data", f"@{tmp / 'score.csv'}", "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    # THEN one prediction per row, in file order (row n on line n + 1), from 3 requests of at most 1,000
    assert [p["row"] for p in lines] == list(range(1, ROWS + 1))
    assert [p["line"] for p in lines] == list(range(2, ROWS + 2))
    assert {p["version"] for p in lines} == {served["version"]}
    by_request: dict[str, int] = {}
    for p in lines:
        by_request[p["request_id"]] = by_request.get(p["request_id"], 0) + 1
    assert sorted(by_request.values()) == [500, 1000, 1000]
    assert all(p["prediction"] in ("No", "Yes") and set(p["probabilities"]) == {"No", "Yes"} for p in lines)
    assert f"{ROWS:,} predictions for {ROWS:,} records" in result.stderr
    # AND the answers are the model's for those rows: the same rows sent in reverse order as JSON
    # Lines (and written as CSV) get the same answers, reversed
    frame = DEFAULT.frame().iloc[-ROWS:]
    records = json.loads(frame[["student", "balance", "income"]].to_json(orient="records"))
    jsonl = tmp / "reversed.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in reversed(records)))
    out = tmp / "reversed.csv"
    again = predict(served, "--data", f"@{jsonl}", "--out", str(out))
    assert again.returncode == 0, again.stderr
    import csv

    with out.open() as handle:
        written = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in written] == list(range(1, ROWS + 1))
    assert [r["prediction"] for r in reversed(written)] == [p["prediction"] for p in lines]
    assert [round(float(r["p_Yes"]), 5) for r in reversed(written)] == [
        round(p["probabilities"]["Yes"], 5) for p in lines
    ]


def test_a_refused_row_is_named_by_its_line_and_says_what_to_send(served: dict[str, Any]) -> None:
    tmp = served["tmp"]
    frame = DEFAULT.frame().iloc[-1200:]
    records = json.loads(frame[["student", "balance", "income"]].to_json(orient="records"))
    records[1100]["student"] = 1  # a category sent as a JSON number: row 1101, line 1101
    path = tmp / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # WHEN the file is predicted
    result = predict(served, "--data", f"@{path}")
    # THEN exit 2: the first batch's 1,000 predictions are written, and the second batch is refused
    # naming the row, its line and what to send instead (the API's 400 message)
    assert result.returncode == 2, result.stderr
    assert len(result.stdout.splitlines()) == 1000
    assert f"{path}: rows 1001-1200 (lines 1001-1200) (batch 2 of 2) refused: row 1101 (line 1101)," in result.stderr
    assert "field 'student': send category values as strings" in result.stderr
    assert "1,000 prediction(s) before them were written" in result.stderr
