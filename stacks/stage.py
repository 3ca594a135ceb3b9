"""One Stage per environment: a stateful stack and the stateless platform stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource, Environment, Stack, Stage, Tags
from aws_cdk import aws_iam as iam
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
        # Exports of what the platform's policies read from the stateful stack, made here so the
        # checks below only read.
        self.imports = export_policy_references(self)
        nag.finalize(self, self.imports)
        nag.check(self)


def export_policy_references(stage: Stage) -> dict[tuple[str, str], Any]:
    """Export every other stack's attribute an IAM policy in ``stage`` refers to; return each import.

    CDK would make the same exports (same names) while synthesizing; making them here, where the
    stacks are built, gives :func:`stacks.nag.finalize` the final form of each reference
    (``Fn::ImportValue``) to read, so the checks change nothing in the templates.
    """
    owners: dict[str, CfnResource] = {}
    for construct in stage.node.find_all():
        if isinstance(construct, CfnResource):
            owners[Stack.of(construct).get_logical_id(construct)] = construct
    imports: dict[tuple[str, str], Any] = {}

    def visit(node: Any, consumer: Stack, local: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, consumer, local)
        elif isinstance(node, dict):
            if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] not in local:
                logical_id, attribute = node["Fn::GetAtt"]
                owner = owners[logical_id]
                exported = Stack.of(owner).export_value(owner.get_att(attribute))
                imports[(logical_id, attribute)] = consumer.resolve(exported)
            for value in node.values():
                visit(value, consumer, local)

    local_ids = nag.StackLogicalIds()  # exports add outputs, never resources: the ids stay the same
    for construct in stage.node.find_all():
        if isinstance(construct, iam.CfnPolicy):
            consumer = Stack.of(construct)
            visit(consumer.resolve(construct.policy_document), consumer, local_ids(consumer))
    return imports
