"""How `mlops runs show` tells a notebook run and a pipeline run's code version (mlops.training.run_view)."""

from __future__ import annotations

from mlops.registry.versions import ModelVersion
from mlops.training.code import code_from_tags, code_tags
from mlops.training.notebook_runs import NotebookRun, is_notebook_run_id
from mlops.training.run_view import render_code, render_notebook_run_detail

SHA = "ab" * 32
RUN = NotebookRun(
    model="penguins",
    run_id="nb-0123456789abcdef0123",
    caller="arn:aws:iam::123456789012:user/scientist",
    created_at="2026-12-06T16:00:00.000Z",
    params={"C": 0.5},
    metrics={"accuracy": 0.975},
    tags={"status": "FAILED"},
    artifact={
        "bucket": "b",
        "key": f"imports/penguins/{SHA}/model.onnx",
        "format": "onnx",
        "sha256": SHA,
        "size": 12345,
    },
)


def _version(number: int, status: str) -> ModelVersion:
    return ModelVersion.from_item(
        {"model": "penguins", "version": number, "status": status, "created_by": "p", "created_at": "t", "tags": {}}
    )


def test_a_notebook_run_names_its_status_model_size_and_every_version_it_became() -> None:
    lines = render_notebook_run_detail(RUN, [_version(2, "APPROVED"), _version(5, "REJECTED")])
    assert lines[0] == "notebook run nb-0123456789abcdef0123  [FAILED]  model penguins"
    assert f"  model:   onnx, 12,345 bytes, sha256 {SHA[:12]}...  s3://b/imports/penguins/{SHA}/model.onnx" in lines
    assert lines[-2:] == [
        "  imported as version 2 [APPROVED]  (mlops models show penguins --version 2)",
        "  imported as version 5 [REJECTED]  (mlops models show penguins --version 5)",
    ]


def test_a_run_without_values_shows_dashes_not_empty_lines() -> None:
    bare = NotebookRun(model="m", run_id="nb-0123456789abcdef0123", caller="arn:x", created_at="t")
    lines = render_notebook_run_detail(bare, [])
    assert "  params:  -" in lines and "  metrics: -" in lines and "  tags:    -" in lines
    assert lines[0].endswith("[RECORDED]  model m") and lines[-1].startswith("  model:   - (the run logged none")


def test_a_pipeline_runs_code_version_reads_back_from_the_tags_the_register_step_writes() -> None:
    code = {"version": 3, "sha256": SHA, "package": "penguin_features", "entry_point": "pkg:build", "uploader": "u"}
    assert render_code(code_from_tags(code_tags(code))) == (
        f"version 3 of penguin_features (sha256 {SHA[:12]}...), entry point pkg:build, uploaded by u"
    )
    assert render_code(code_from_tags({})) == "- (the spec's estimator)"


def test_notebook_run_ids_are_told_from_pipeline_run_names() -> None:
    assert is_notebook_run_id("nb-0123456789abcdef0123")
    assert not is_notebook_run_id("penguins-0123456789abcdef0123")
    assert not is_notebook_run_id("nb-0123")
