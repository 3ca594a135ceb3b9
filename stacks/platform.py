"""The stateless stack: functions, state machines, the API, notifications. Safe to redeploy."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.api import PlatformApi
from stacks.audit import AuditDigester
from stacks.batch import BatchPipeline
from stacks.config import EnvironmentConfig
from stacks.deployment import DeploymentPipeline
from stacks.discovery import Discovery
from stacks.function import service_name
from stacks.inference import InferenceEndpoint
from stacks.layers import PlatformLayers
from stacks.monitoring import MonitoringPipeline
from stacks.observability import Observability
from stacks.pipelines import TrainingPipeline
from stacks.stateful import StatefulStack


class PlatformStack(Stack):
    """Everything that holds no data of its own, wired to the stateful stack by object."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stateful: StatefulStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage, tables = stateful.storage, stateful.tables
        self.layers = PlatformLayers(self, architecture=config.lambda_architecture)

        self.topic = sns.Topic(
            self, "Notifications", display_name=f"MLOps {config.name}", master_key=storage.key, enforce_ssl=True
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.api = PlatformApi(self, "Api", config=config, layers=self.layers, bucket=storage.bucket, tables=tables)
        self.inference = InferenceEndpoint(
            self,
            "Inference",
            config=config,
            layers=self.layers,
            bucket=storage.bucket,
            tables=tables,
            api=self.api,
            max_batch_size=config.max_batch_size,
            max_body_bytes=config.max_request_bytes,
        )
        self.deployment = DeploymentPipeline(
            self,
            "Deployment",
            config=config,
            layers=self.layers,
            bucket=storage.bucket,
            tables=tables,
            topic=self.topic,
            api=self.api,
        )
        self.training = TrainingPipeline(
            self,
            "Training",
            config=config,
            layers=self.layers,
            bucket=storage.bucket,
            tables=tables,
            topic=self.topic,
            kms_key=storage.key,
            deployment_starter=self.deployment.starter,
        )

        self.monitoring = MonitoringPipeline(
            self,
            "Monitoring",
            config=config,
            layers=self.layers,
            bucket=storage.bucket,
            tables=tables,
            topic=self.topic,
            training_state_machine=self.training.state_machine,
        )
        # The deployment sets champions: it creates each champion's monitor schedule.
        for function in self.deployment.champion_setters:
            self.monitoring.grant_schedule_sync(function)
        self.batch = BatchPipeline(
            self, "Batch", config=config, layers=self.layers, bucket=storage.bucket, tables=tables, api=self.api
        )
        self.audit_digests = AuditDigester(
            self,
            "AuditDigests",
            config=config,
            layers=self.layers,
            data_bucket=storage.bucket,
            tables=tables,
            anchor=stateful.audit_anchor,
        )

        pipelines = {
            "training": self.training.state_machine,
            "deployment": self.deployment.state_machine,
            "monitoring": self.monitoring.state_machine,
            "batch": self.batch.state_machine,
        }
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            topic=self.topic,
            topic_key=storage.key,
            rest_api=self.api.rest_api,
            inference_service=service_name(config, "inference"),
            pipelines=pipelines,
            monitor_service=self.monitoring.service_name,
            audit_digest_service=self.audit_digests.service_name,
        )

        Discovery(
            self,
            "Discovery",
            config=config,
            values={
                "data-bucket": storage.bucket.bucket_name,
                "registry-table": tables.registry.table_name,
                "audit-table": tables.audit.table_name,
                "kms-key-arn": storage.key.key_arn,
                "training-state-machine-arn": self.training.state_machine.state_machine_arn,
                "deployment-state-machine-arn": self.deployment.state_machine.state_machine_arn,
                "notifications-topic-arn": self.topic.topic_arn,
                "api-url": self.api.url,
                "monitor-state-machine-arn": self.monitoring.state_machine_arn,
                "audit-digest-bucket": stateful.audit_anchor.bucket.bucket_name,
                "audit-signing-key-arn": stateful.audit_anchor.signing_key.key_arn,
                "audit-digest-function": self.audit_digests.function.function_name,
                "batch-state-machine-arn": self.batch.state_machine_arn,
            },
        )
