"""Twenty clients uploading to one model at the same instant, against `mlops local up`.

Every upload starts a training run; the runs write the same model's registry items and audit chain
at once (dataset records, version allocation, registration, the hand-off to the deployment
pipeline). On DynamoDB each of those requests is atomic; the local cloud has to give the same
guarantee, or writes are lost and the audit chain disagrees with its anchor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mlops.data.catalog import DatasetCatalog
from mlops.registry.versions import Registry
from mlops.settings import discover
from mlops.training.runs import describe_run, wait_run
from mlops.training.uploads import Upload, upload_dataset
from mlops_local.testing import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

SCIENTIST = "arn:aws:iam::123456789012:user/scientist"

MLOPS = str(Path(sys.executable).parent / "mlops")
CLIENTS = 20
MODEL = "crowd"


def put_small_spec(env: dict[str, str], tmp_path: Path) -> None:
    """The example churn spec, trained quickly: one candidate, few boosting rounds, no fairness gate."""
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    spec["name"] = MODEL
    spec["training"].pop("search", None)
    spec["training"]["params"] = {"max_iter": 20, "max_depth": 3}
    spec["gates"]["metrics"] = {"roc_auc": {"min": 0.5}}
    spec["fairness"] = {"protected_attributes": []}
    path = tmp_path / f"{MODEL}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = subprocess.run(
        [MLOPS, "--json", "spec", "put", str(path), "--actor", "alice"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("local-cloud")
def test_twenty_concurrent_uploads_all_train_and_register(
    local_env: dict[str, str], local_cloud: LocalCloudProcess, tmp_path: Path
) -> None:
    # GIVEN a model and twenty different small datasets for it
    put_small_spec(local_env, tmp_path)
    files = []
    for i in range(CLIENTS):
        path = tmp_path / f"part-{i:02d}.csv"
        generate("churn", 300, 100 + i).to_csv(path, index=False)
        files.append(path)
    platform = discover("dev", local_cloud.session())
    barrier = threading.Barrier(CLIENTS)
    uploads: list[Upload] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def authorize(request: dict[str, Any]) -> dict[str, Any]:
        # the signed call `mlops data upload` makes to the upload API, as the scientist; like the
        # CLI (mlops_cli.common.signed_request) it tries twice more after a 502, 503 or 504
        for attempt in range(3):
            status, answer = local_cloud.api("POST", f"models/{MODEL}/uploads", request, identity="scientist")
            if status not in (502, 503, 504) or attempt == 2:
                break
            time.sleep(0.5 * 2**attempt)
        if status != 201:  # say why: the gateway's record of the failed invocation
            failed = [r for r in local_cloud.status().get("requests", []) if r.get("status") == status]
            raise AssertionError(f"{status}: {answer}; {failed[-1:]}")
        return dict(answer)

    def client(i: int) -> None:
        # each client asks the upload API and PUTs on its own, as twenty `mlops data upload` processes would
        barrier.wait()
        try:
            uploaded = upload_dataset(MODEL, files[i], authorize=authorize)
            with lock:
                uploads.append(uploaded)
        except BaseException as exc:  # collected and asserted on below
            with lock:
                errors.append(exc)

    # WHEN the twenty clients upload at the same instant
    started = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    sfn = local_cloud.client("stepfunctions")
    runs = []
    for uploaded in uploads:
        wait_run(sfn, platform.training_state_machine_arn, uploaded.run_name, timeout_s=900)
        runs.append(describe_run(sfn, platform.training_state_machine_arn, uploaded.run_name))
    elapsed = time.time() - started

    # THEN twenty runs started, and every one trained and registered a candidate
    assert len({r.name for r in runs}) == CLIENTS
    failed = [(r.name, r.status, r.error, str(r.cause)[:300]) for r in runs if r.status != "SUCCEEDED"]
    assert failed == [], failed
    assert all((r.output or {}).get("outcome") == "registered" for r in runs)
    # AND the versions are exactly 1..20: none lost, none given twice
    versions = sorted(int((r.output or {})["version"]) for r in runs)
    assert versions == list(range(1, CLIENTS + 1))
    session = boto3.session.Session(
        aws_access_key_id=local_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=local_env["AWS_SECRET_ACCESS_KEY"],
        region_name=local_cloud.region,
    )
    registry = Registry.for_platform(session.client("dynamodb", endpoint_url=local_cloud.endpoint_url), platform)
    assert sorted(v.version for v in registry.iter_versions(MODEL)) == versions
    assert registry.get_model(MODEL).latest_version == CLIENTS
    # AND every upload has its dataset record, naming its own object version
    records = DatasetCatalog(registry).list(MODEL, limit=100).items
    assert sorted(d.version_id for d in records) == sorted(u.version_id for u in uploads)
    assert {(d.uploaded_by, d.uploader_source) for d in records} == {(SCIENTIST, "upload-api")}
    # AND the audit chain is intact and agrees with its anchor
    verified = subprocess.run(
        [MLOPS, "--json", "audit", "verify", "--model", MODEL],
        env={**os.environ, **local_env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chain = json.loads(verified.stdout)["chains"][0]
    assert chain["events"] >= 3 * CLIENTS  # at least upload, dataset and registration per run
    print(f"{CLIENTS} concurrent uploads: {CLIENTS} runs SUCCEEDED in {elapsed:.1f} s; {chain['events']} audit events")
