"""One Stage per environment: a stateful stack and the stateless platform stack."""

from __future__ import annotations

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from stacks import nag
from stacks.config import EnvironmentConfig
from stacks.platform import PlatformStack
from stacks.stateful import StatefulStack


class MlopsStage(Stage):
    def __init__(self, scope: Construct, *, config: EnvironmentConfig) -> None:
        env = Environment(account=config.account, region=config.region)
        super().__init__(scope, config.stage_name, env=env)
        self.config = config
        self.stateful = StatefulStack(
            self,
            "Stateful",
            config=config,
            stack_name=f"{config.stage_name}-stateful",
            description=f"MLOps {config.name}: key, data bucket, registry and audit tables",
            termination_protection=not config.is_dev,
        )
        self.platform = PlatformStack(
            self,
            "Platform",
            config=config,
            stateful=self.stateful,
            stack_name=f"{config.stage_name}-platform",
            description=f"MLOps {config.name}: pipelines, functions, API",
        )
        # Dashboards are left untagged: their Tags property is too new for cfn-lint's schema.
        untagged = ["AWS::CloudWatch::Dashboard"]
        Tags.of(self).add("project", "mlops", exclude_resource_types=untagged)
        Tags.of(self).add("environment", config.name, exclude_resource_types=untagged)
        nag.acknowledge(
            self,
            "AwsSolutions-L1",
            "Functions run Python 3.12 on purpose: the layers are built for it and the local cloud and "
            "tests run the same interpreter, so what is tested is what is deployed.",
        )
        # CDK adds its bucket-notifications handler (which turns on EventBridge delivery) while synthesizing.
        nag.acknowledge_managed_policy(
            self.stateful,
            "service-role/AWSLambdaBasicExecutionRole",
            "Only CDK's own bucket-notifications handler, run at deploy time, uses the "
            "AWS-managed basic execution role; every platform function has its own role.",
        )
        nag.finalize(self)
        nag.check(self)
