"""Service discovery: the deployment writes what the CLI needs as SSM parameters.

One parameter per resource under ``/mlops/<environment>/``; ``mlops.settings`` reads them back.
The leaf names are ``mlops.settings.PARAMETERS``, so the writer and the reader cannot disagree.
"""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mlops.contracts.names import PARAMETERS
from stacks.config import EnvironmentConfig


class Discovery(Construct):
    """Writes ``/mlops/<env>/<leaf>`` parameters; leaves must be known to the CLI."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, values: dict[str, str]
    ) -> None:
        super().__init__(scope, construct_id)
        unknown = sorted(set(values) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"discovery parameters {unknown} are not read by the CLI (mlops.settings.PARAMETERS)")
        self.parameters = {
            leaf: ssm.StringParameter(
                self,
                leaf,
                parameter_name=f"{config.parameter_prefix}/{leaf}",
                string_value=value,
                description=f"MLOps {config.name}: {leaf.replace('-', ' ')} (read by the mlops CLI)",
            )
            for leaf, value in values.items()
        }
