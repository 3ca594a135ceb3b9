"""Batch scoring: ``statemachines/batch.asl.json`` and its three functions (Start, Score, Finish).

Inputs are read under ``batch/`` of the data bucket, results written under ``batch-jobs/``; every
grant is on those prefixes (and the registry, the artifacts, the captures) only.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.contracts.names import BATCH_INPUT_PREFIX, BATCH_JOB_PREFIX, BATCH_TICK_MINUTES
from stacks.api import PlatformApi
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge, acknowledge_grant_wildcards, skip_checkov
from stacks.pipelines import machine_arns, state_machine_from_file
from stacks.stateful import ARTIFACT_PREFIX, CAPTURE_PREFIX, RegistryTables, resource_environment


class BatchPipeline(Construct):
    """Batch scoring of one input object per execution of :attr:`state_machine`.

    Input: ``{"model", "bucket", "key", "version_id"?, "version"?, "trigger"?, "actor"?}`` (see
    :class:`mlops.contracts.batch.BatchInput`). ``Start`` pins the model version and the input,
    a Distributed Map reads the input in batches (``batch_size`` rows, ``batch_max_concurrency`` at
    once, from config) and ``Score`` scores each on the inference layer; ``Finish`` writes the
    output, errors and manifest under ``batch-jobs/<model>/<job>/`` and the audit event.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        bucket: s3.IBucket,
        tables: RegistryTables,
        api: PlatformApi | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        arns = machine_arns(self, f"mlops-{config.name}-batch")
        self.state_machine_name, self.state_machine_arn = arns.name, arns.arn
        executions, children = arns.executions, arns.children
        environment = {
            **resource_environment(bucket, tables),
            "BATCH_SIZE": str(config.batch_size),
            "BATCH_MAX_CONCURRENCY": str(config.batch_max_concurrency),
            "CAPTURE_SAMPLE_RATE": str(config.batch_capture_rate),
        }
        inputs, jobs = f"{BATCH_INPUT_PREFIX}/*", f"{BATCH_JOB_PREFIX}/*"

        def steps_function(construct_id: str, handler: str, service: str, description: str) -> MlopsFunction:
            return MlopsFunction(
                self,
                construct_id,
                name="batch_steps",
                handler=handler,
                service=service,
                config=config,
                key=tables.key,
                kind="pipeline",
                layers=[layers.shared, layers.runtime, layers.inference],
                description=description,
                environment=environment,
                memory_size=1769,  # one full vCPU: Start hashes (and may gunzip) the input, Finish joins the parts
                timeout=Duration.minutes(15),
                ephemeral_storage_mib=10240,  # a gzip input is staged uncompressed in /tmp
            )

        self.start_function = steps_function(
            "StartFunction", "start", "batch-start", "Batch Start: pins the model version and the input object"
        ).function
        fn = self.start_function
        tables.registry.grant_read_data(fn)
        bucket.grant_read(fn, inputs)
        bucket.grant_read(fn, f"{ARTIFACT_PREFIX}*")  # the header is checked against the version's spec
        bucket.grant_put(fn, jobs)  # a gzip input's uncompressed copy
        bucket.grant_read(fn, jobs)
        acknowledge_grant_wildcards(
            fn, "registry read, read batch/* and artifacts/*, read and put batch-jobs/* (a gzip input staged)"
        )

        self.score_function = MlopsFunction(
            self,
            "ScoreFunction",
            name="batch_score",
            handler="score",
            service="batch-score",
            config=config,
            key=tables.key,
            kind="pipeline",
            layers=[layers.shared, layers.runtime, layers.inference],
            description="Batch Score: one batch of rows validated and predicted by the pinned version",
            environment=environment,
            memory_size=1769,
            timeout=Duration.minutes(5),
        ).function
        fn = self.score_function
        tables.registry.grant_read_data(fn)
        bucket.grant_read(fn, f"{ARTIFACT_PREFIX}*")
        bucket.grant_put(fn, jobs)  # the batch's result object
        bucket.grant_put(fn, f"{CAPTURE_PREFIX}*")  # sampled rows for the drift check
        acknowledge_grant_wildcards(fn, "registry read, read artifacts/*, put batch-jobs/* and captures/*")

        self.finish_function = steps_function(
            "FinishFunction",
            "finish",
            "batch-finish",
            "Batch Finish: output, errors and manifest in input order; audit",
        ).function
        fn = self.finish_function
        bucket.grant_read(fn, jobs)
        bucket.grant_put(fn, jobs)
        tables.grant_registry_write(fn)  # the audit event (the chain's head lives in the registry table)
        acknowledge_grant_wildcards(fn, "read and put batch-jobs/*, registry read/write, audit append")
        self.functions = [self.start_function, self.score_function, self.finish_function]

        self.state_machine = state_machine_from_file(
            self,
            "StateMachine",
            file="batch.asl.json",
            config=config,
            key=tables.key,
            timeout=Duration.hours(24),
            substitutions={
                "StartFunctionArn": self.start_function.function_arn,
                "ScoreFunctionArn": self.score_function.function_arn,
                "FinishFunctionArn": self.finish_function.function_arn,
            },
        )
        machine = self.state_machine.node.default_child
        assert isinstance(machine, sfn.CfnStateMachine)
        machine.state_machine_name = self.state_machine_name
        for function in self.functions:
            function.grant_invoke(self.state_machine)
        bucket.grant_read(self.state_machine, inputs)  # the Distributed Map's ItemReader
        bucket.grant_read(self.state_machine, jobs)  # ... or the staged copy of a gzip input
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine_arn])
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"],
                resources=[executions, children],
            )
        )
        acknowledge_grant_wildcards(
            self.state_machine,
            "invoke the batch functions (all versions), read batch/* and batch-jobs/* (the ItemReader), run, stop "
            "and redrive its own Distributed Map child executions, X-Ray and CloudWatch Logs delivery (no "
            "resource-level permissions exist for those)",
        )

        self.dead_letters = self._upload_starter(config=config, layers=layers, bucket=bucket, tables=tables)
        self._scheduler(config=config, layers=layers, bucket=bucket, tables=tables, executions=executions)
        if api is not None:
            self._api_route(config=config, layers=layers, bucket=bucket, tables=tables, api=api, executions=executions)

    def _api_route(
        self,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        bucket: s3.IBucket,
        tables: RegistryTables,
        api: PlatformApi,
        executions: str,
    ) -> None:
        """``POST /models/{model}/batch-jobs`` (IAM): ``mlops batch start`` as the caller AWS verified.

        Its own function and role (start and describe this machine's executions, HeadObject under
        batch/), its own route (so its own execute-api permission); the function records the
        identity API Gateway verified as the job's ``started_by``, the actor of its audit event.
        """
        self.api_function = MlopsFunction(
            self,
            "ApiFunction",
            name="batch_api",
            config=config,
            key=tables.key,
            kind="api",
            layers=[layers.shared, layers.runtime],
            description="Batch API: starts a batch job as the calling IAM principal (one job per object version)",
            environment={"DATA_BUCKET": bucket.bucket_name, "BATCH_STATE_MACHINE_ARN": self.state_machine_arn},
            memory_size=256,
            timeout=Duration.seconds(15),
        ).function
        fn = self.api_function
        self.state_machine.grant_start_execution(fn)
        fn.add_to_role_policy(iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]))
        bucket.grant_read(fn, f"{BATCH_INPUT_PREFIX}/*")  # the input's newest VersionId (HeadObject)
        acknowledge_grant_wildcards(
            fn, "start and describe the batch machine's executions, read batch/* (the inputs' versions)"
        )
        model = api.models.get_resource("{model}") or api.models.add_resource("{model}")
        self.api_method = model.add_resource("batch-jobs").add_method("POST", apigw.LambdaIntegration(fn))

    def _scheduler(
        self,
        *,
        config: EnvironmentConfig,
        layers: PlatformLayers,
        bucket: s3.IBucket,
        tables: RegistryTables,
        executions: str,
    ) -> None:
        """One rule every BATCH_TICK_MINUTES starts each model's due ``batch.schedule`` job (mlops.batch.schedules).

        A model is data, not a stack: the schedules live in the specs, not in one rule per model.
        """
        self.schedule_starter = MlopsFunction(
            self,
            "ScheduleStarter",
            name="batch_schedule",
            config=config,
            key=tables.key,
            kind="trigger",
            dead_letter_queue=self.dead_letters,
            layers=[layers.shared, layers.runtime],
            description="Every 15 minutes: starts each model's due scheduled batch job once (spec batch.schedule)",
            environment={**resource_environment(bucket, tables), "BATCH_STATE_MACHINE_ARN": self.state_machine_arn},
            memory_size=256,
            timeout=Duration.minutes(2),
        ).function
        fn = self.schedule_starter
        tables.registry.grant_read_data(fn)  # the models and their specs
        bucket.grant_read(fn, f"{BATCH_INPUT_PREFIX}/*")  # the input's current VersionId (HeadObject)
        self.state_machine.grant_start_execution(fn)
        fn.add_to_role_policy(iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]))
        acknowledge_grant_wildcards(
            fn, "registry read, read batch/* (the inputs' versions), describe the batch machine's executions"
        )
        self.schedule_rule = events.Rule(
            self,
            "BatchSchedule",
            description="Starts the batch jobs whose spec batch.schedule is due",
            schedule=events.Schedule.rate(Duration.minutes(BATCH_TICK_MINUTES)),
            targets=[
                targets.LambdaFunction(
                    fn, dead_letter_queue=self.dead_letters, retry_attempts=2, max_event_age=Duration.minutes(15)
                )
            ],
        )

    def _upload_starter(
        self, *, config: EnvironmentConfig, layers: PlatformLayers, bucket: s3.IBucket, tables: RegistryTables
    ) -> sqs.Queue:
        """An object created under ``batch/`` starts one job per object version (as training's uploads do)."""
        dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the upload and schedule rules.",
        )
        skip_checkov(
            dead_letters,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which this check does not "
            "recognize; a customer key would also need EventBridge and Lambda grants in the key policy.",
            types=["AWS::SQS::Queue"],
        )
        self.upload_starter = MlopsFunction(
            self,
            "UploadStarter",
            name="batch_upload",
            config=config,
            key=tables.key,
            kind="trigger",
            dead_letter_queue=dead_letters,
            layers=[layers.shared, layers.runtime],
            description="Starts a batch job once per object version uploaded under batch/<model>/",
            environment={"BATCH_STATE_MACHINE_ARN": self.state_machine_arn},
            memory_size=256,
            timeout=Duration.seconds(30),
        ).function
        self.state_machine.grant_start_execution(self.upload_starter)
        self.upload_rule = events.Rule(
            self,
            "BatchUploaded",
            description=f"An object created under {BATCH_INPUT_PREFIX}/ in the data bucket starts a batch job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": f"{BATCH_INPUT_PREFIX}/"}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.upload_starter,
                    dead_letter_queue=dead_letters,
                    retry_attempts=4,
                    max_event_age=Duration.hours(6),
                )
            ],
        )
        return dead_letters
