"""The deployment pipeline's handlers: one per Lambda state, each parsing exactly the payload its
ASL state sends and answering its output contract; the champion-setting states sync the schedule."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlops.contracts.deployment import MACHINE
from mlops.deployment.rollout import deploy_version
from mlops.deployment.services import DeploymentServices
from mlops.registry.versions import Registry
from mlops.settings import Platform

from .conftest import FakeCloudWatch, candidate, store_spec

ROOT = Path(__file__).resolve().parents[3]
OPS = "arn:aws:iam::123456789012:user/ops"


class Context:
    function_name = "deployment-steps"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:deployment-steps"
    aws_request_id = "r"


def load(directory: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{directory}_handler", ROOT / "functions" / directory / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handlers(registry: Registry, cloudwatch: FakeCloudWatch, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The handler module, its clients replaced by in-memory fakes (no monitor schedule configured)."""
    for name in ("MONITOR_SCHEDULE_GROUP", "MONITOR_SCHEDULER_ROLE_ARN", "MONITOR_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    platform = Platform(environment="dev", data_bucket="data", registry_table="registry", audit_table="audit")
    module = load("deployment_steps")
    fakes = DeploymentServices(platform=platform, registry=registry, cloudwatch=cloudwatch)
    monkeypatch.setattr(module, "services", lambda: fakes)
    return module


def payloads(state: str, **values: Any) -> dict[str, Any]:
    """The Payload the ASL state sends, its ``$`` paths filled from ``values``."""
    asl = json.loads((ROOT / "statemachines" / MACHINE.asl).read_text())
    template = asl["States"][state]["Parameters"]["Payload"]
    return {key.removesuffix(".$"): values[key.removesuffix(".$")] for key in template}


def test_every_lambda_state_has_its_own_handler() -> None:
    # GIVEN the contracts' handler names  THEN each names a handler function in its module
    for state, step in MACHINE.steps.items():
        path, _, function = step.handler.rpartition(".")
        module = load(Path(path).parent.name)
        assert callable(getattr(module, function, None)), (state, step.handler)
    # AND the deployment states use distinct handlers but for the four notification failures
    deployment = {s.handler for s in MACHINE.steps.values() if "deployment_steps" in s.handler}
    assert len(deployment) == 8


def test_the_handlers_run_a_canary_from_the_payloads_the_asl_sends(
    handlers: ModuleType, registry: Registry, cloudwatch: FakeCloudWatch
) -> None:
    # GIVEN a champion and an approved candidate whose spec deploys canaries
    store_spec(registry)
    champion = candidate(registry)
    registry.approve("churn", champion, actor="carol")
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    version = candidate(registry)
    registry.approve("churn", version, actor="carol")
    run = {"model": "churn", "version": version, "execution": "arn:e", "execution_name": "churn-v2-x"}
    # WHEN each state's handler gets the payload its state sends
    plan = handlers.prepare(payloads("Prepare", **run, input={**run, "strategy": None}), Context())
    deploy = payloads("Deploy", **run, strategy=plan["strategy"], canary_percent=plan["canary_percent"])
    deployed = handlers.deploy(deploy, Context())
    checked = handlers.check_canary(payloads("CheckCanary", **run), Context())
    finished = handlers.finish_canary(payloads("FinishCanary", **run, check=checked), Context())
    # THEN the canary baked (no schedule synced: the champion did not change), passed and was promoted
    assert (plan["approval"], plan["strategy"]) == ("not_needed", "canary")
    assert deployed["bake"] and len(deployed["alarms"]) == 2 and "monitoring_schedule" not in deployed
    assert checked["healthy"] and finished["outcome"] == "promoted"
    # AND the promotion synced the new champion's schedule (here: not configured), never failing
    assert finished["monitoring_schedule"] == {"model": "churn", "action": "not_configured"}
    assert registry.get_model("churn").champion == version


def test_a_payload_the_contract_does_not_know_is_refused(handlers: ModuleType) -> None:
    # GIVEN the old switch's field  WHEN it reaches a handler  THEN the contract refuses it
    with pytest.raises(ValueError, match="step"):
        handlers.check_canary({"model": "churn", "version": 1, "step": "check"}, Context())
