"""Typed configuration: every bad or missing value is refused with the key named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import CONTEXT_KEY, ConfigError, load_environments

ROOT = Path(__file__).resolve().parents[2]


def _context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]


def test_shipped_cdk_json_is_valid() -> None:
    configs = {c.name: c for c in load_environments(_context())}
    assert set(configs) == {"dev", "prod"}
    assert configs["dev"].is_dev and not configs["prod"].is_dev
    assert configs["prod"].parameter_prefix == "/mlops/prod"


def test_config_is_frozen() -> None:
    config = load_environments(_context(), only="dev")[0]
    with pytest.raises(ValueError, match="frozen"):
        config.api_auth = "api_key"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("log_retention_days", 13, "mlops:environments.dev.log_retention_days: 13 is not a CloudWatch Logs retention"),
        ("api_auth", "cognito", "mlops:environments.dev.api_auth"),
        ("removal_policy", "keep", "mlops:environments.dev.removal_policy"),
        ("alarm_email", "not-an-email", "mlops:environments.dev.alarm_email"),
        ("account", "12345", "mlops:environments.dev.account"),
        ("region", "moon-1", "mlops:environments.dev.region"),
        ("max_batch_size", 0, "mlops:environments.dev.max_batch_size"),
        ("lambda_architecture", "sparc", "mlops:environments.dev.lambda_architecture"),
        ("colour", "blue", "mlops:environments.dev.colour: unknown setting"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, message: str) -> None:
    context = _context()
    context["dev"][key] = value
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    assert message in str(raised.value)


def test_missing_context_and_unknown_environment() -> None:
    with pytest.raises(ConfigError, match="mlops:environments' is missing"):
        load_environments(None)
    with pytest.raises(ConfigError, match="mlops:env='staging' names no environment"):
        load_environments(_context(), only="staging")


def test_app_exits_2_with_the_key_named_on_bad_config(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context[CONTEXT_KEY]["dev"]["log_retention_days"] = 2
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "mlops:environments.dev.log_retention_days" in result.stderr
    assert "Traceback" not in result.stderr
