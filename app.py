#!/usr/bin/env python3
"""The CDK app: one Stage per environment in cdk.json (``-c mlops:env=dev`` selects one)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

sys.path.insert(0, "layers/shared/python")  # mlops.contracts: the names the stacks and the code share

from stacks.config import CONTEXT_KEY, ConfigError, load_environments
from stacks.stage import MlopsStage


def build(app: cdk.App) -> list[MlopsStage]:
    configs = load_environments(app.node.try_get_context(CONTEXT_KEY), only=app.node.try_get_context("mlops:env"))
    return [MlopsStage(app, config=config) for config in configs]


if __name__ == "__main__":
    application = cdk.App()
    try:
        build(application)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    application.synth()
