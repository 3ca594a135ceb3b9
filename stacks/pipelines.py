"""The training pipeline: EventBridge rule on dataset uploads, its functions and state machine."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction, log_retention
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge, acknowledge_grant_wildcards
from stacks.stateful import DATASET_PREFIX, REPORT_PREFIX, RegistryTables

STATEMACHINES = Path(__file__).resolve().parent.parent / "statemachines"


def state_machine_from_file(
    scope: Construct,
    construct_id: str,
    *,
    file: str,
    substitutions: dict[str, str],
    config: EnvironmentConfig,
    timeout: Duration,
) -> sfn.StateMachine:
    """A state machine from ``statemachines/<file>`` with substitutions, ALL logging and tracing."""
    log_group = logs.LogGroup(scope, f"{construct_id}Logs", retention=log_retention(config))
    return sfn.StateMachine(
        scope,
        construct_id,
        definition_body=sfn.DefinitionBody.from_file(str(STATEMACHINES / file)),
        definition_substitutions=substitutions,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        tracing_enabled=True,
        timeout=timeout,
    )


class TrainingPipeline(Construct):
    """Upload to ``datasets/<model>/`` -> rule -> starter -> state machine (validate -> ...)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        bucket: s3.IBucket,
        tables: RegistryTables,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        table_env = {
            "DATA_BUCKET": bucket.bucket_name,
            "REGISTRY_TABLE": tables.registry.table_name,
            "AUDIT_TABLE": tables.audit.table_name,
        }
        self.validate = MlopsFunction(
            self,
            "Validate",
            name="validate",
            config=config,
            layers=[layers.shared, layers.runtime, layers.science],
            description="Validates an uploaded dataset version against its model spec (streamed, chunked)",
            environment=table_env,
            memory_size=1769,
            timeout=Duration.minutes(15),
        ).function
        bucket.grant_read(self.validate, f"{DATASET_PREFIX}*")  # the upload: read, never changed
        bucket.grant_put(self.validate, f"{REPORT_PREFIX}*")  # the validation report
        tables.grant_registry_write(self.validate)
        acknowledge_grant_wildcards(
            self.validate,
            "read datasets/*, put reports/*, registry read/write, audit append, KMS use through the bucket and tables",
        )

        self.state_machine = state_machine_from_file(
            self,
            "StateMachine",
            file="training.asl.json",
            config=config,
            timeout=Duration.hours(24),
            substitutions={
                "ValidateFunctionArn": self.validate.function_arn,
                "NotificationsTopicArn": topic.topic_arn,
            },
        )
        self.validate.grant_invoke(self.state_machine)
        topic.grant_publish(self.state_machine)
        acknowledge_grant_wildcards(
            self.state_machine,
            "invoke the pipeline's functions (all versions), publish "
            "to the notifications topic, X-Ray and CloudWatch Logs delivery (no resource-level "
            "permissions exist for those)",
        )

        self.starter = MlopsFunction(
            self,
            "Starter",
            name="start_pipeline",
            config=config,
            layers=[layers.shared, layers.runtime],
            description="Starts the training pipeline once per uploaded object version",
            environment={**table_env, "TRAINING_STATE_MACHINE_ARN": self.state_machine.state_machine_arn},
            memory_size=256,
            timeout=Duration.seconds(30),
        ).function
        self.state_machine.grant_start_execution(self.starter)
        tables.grant_audit_append(self.starter)
        tables.registry.grant(self.starter, "dynamodb:GetItem", "dynamodb:UpdateItem")  # the audit chain's anchor
        acknowledge_grant_wildcards(self.starter, "start the training state machine, append audit events")

        dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the upload rule.")
        self.rule = events.Rule(
            self,
            "DatasetUploaded",
            description="An object created under datasets/ in the data bucket starts the training pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": [{"prefix": DATASET_PREFIX}]}},
            ),
            targets=[
                targets.LambdaFunction(
                    self.starter, dead_letter_queue=dead_letters, retry_attempts=4, max_event_age=Duration.hours(6)
                )
            ],
        )
