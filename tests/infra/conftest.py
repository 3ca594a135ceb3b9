"""Synthesize the whole app once per session: dev, prod and an API-key variant of dev."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app as cdk_app
from stacks.stage import MlopsStage

ROOT = Path(__file__).resolve().parents[2]


def cdk_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    outdir: Path
    stages: dict[str, MlopsStage]
    assembly: cdk.cx_api.CloudAssembly

    def template(self, env: str, stack: str) -> Template:
        stage = self.stages[env]
        return Template.from_stack(stage.stateful if stack == "stateful" else stage.platform)

    def template_json(self, env: str, stack: str) -> dict:
        return self.template(env, stack).to_json()


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    context = cdk_context()
    environments = context["mlops:environments"]
    environments["keyed"] = {
        **environments["dev"],
        "api_auth": "api_key",
        # non-default inference limits: they must reach the function and the API's request model
        "max_batch_size": 250,
        "max_request_bytes": 1024 * 1024,
        "sagemaker_training_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:1",
    }
    context["aws:cdk:enable-asset-metadata"] = True  # as the CDK CLI sets it; the size test reads it
    outdir = tmp_path_factory.mktemp("cdk.out")
    application = cdk.App(context=context, outdir=str(outdir))
    stages = {stage.config.name: stage for stage in cdk_app.build(application)}
    assembly = application.synth()
    return Synthesized(outdir=outdir, stages=stages, assembly=assembly)
