"""The training pipeline: EventBridge rule on dataset uploads, its functions and state machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.contracts.names import training_job_prefix
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction, log_retention
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge, acknowledge_grant_wildcards, skip_checkov
from stacks.stateful import (
    ARTIFACT_PREFIX,
    CODE_PREFIX,
    DATASET_PREFIX,
    HOLDOUT_PREFIX,
    IMPORT_PREFIX,
    REPORT_PREFIX,
    RegistryTables,
    resource_environment,
)

STATEMACHINES = Path(__file__).resolve().parent.parent / "statemachines"


def state_machine_from_file(
    scope: Construct,
    construct_id: str,
    *,
    file: str,
    substitutions: dict[str, str],
    config: EnvironmentConfig,
    key: kms.IKey,
    timeout: Duration,
) -> sfn.StateMachine:
    """A state machine from ``statemachines/<file>`` with substitutions, ALL logging (to a log group
    encrypted with ``key``) and tracing."""
    log_group = logs.LogGroup(scope, f"{construct_id}Logs", retention=log_retention(config), encryption_key=key)
    return sfn.StateMachine(
        scope,
        construct_id,
        definition_body=sfn.DefinitionBody.from_file(str(STATEMACHINES / file)),
        definition_substitutions=substitutions,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        tracing_enabled=True,
        timeout=timeout,
    )


@dataclass(frozen=True)
class MachineArns:
    """A state machine named ahead of its creation: its ARN, its executions' and its Distributed Map
    children's ARN patterns (``execution:<machine>:*``, ``execution:<machine>/*``)."""

    name: str
    arn: str
    executions: str
    children: str


def machine_arns(scope: Construct, name: str) -> MachineArns:
    """By name, not by reference: a function that starts or redrives the machine needs its ARN before
    the machine exists (and the machine needs the function's)."""
    stack = Stack.of(scope)

    def arn(resource: str, resource_name: str) -> str:
        return stack.format_arn(
            service="states", resource=resource, resource_name=resource_name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )

    return MachineArns(
        name=name,
        arn=arn("stateMachine", name),
        executions=arn("execution", f"{name}:*"),
        children=arn("execution", f"{name}/*"),  # execution:<machine>/<map run label>:<id>
    )


def pass_role_statement(role: iam.IRole, service: str) -> iam.PolicyStatement:
    """``iam:PassRole`` on ``role`` only, and only to ``service`` (``sagemaker.amazonaws.com``)."""
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[role.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": service}},
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
        kms_key: kms.IKey,
        deployment_starter: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.environment_name = config.name
        table_env = resource_environment(bucket, tables)
        self.validate = MlopsFunction(
            self,
            "Validate",
            name="validate",
            config=config,
            key=tables.key,
            kind="pipeline",
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

        science = [layers.shared, layers.runtime, layers.science]

        def step_function(
            construct_id: str,
            name: str,
            description: str,
            *,
            memory: int = 2048,
            minutes: int = 15,
            layer_set: Sequence[lambda_.ILayerVersion] = science,
            handler: str = "handler",
            service: str | None = None,
        ) -> lambda_.Function:
            return MlopsFunction(
                self,
                construct_id,
                name=name,
                handler=handler,
                service=service,
                config=config,
                key=tables.key,
                kind="pipeline",
                layers=layer_set,
                description=description,
                environment=table_env,
                memory_size=memory,
                timeout=Duration.minutes(minutes),
            ).function

        # One code asset (functions/train), one function per state: each with only its own grants.
        self.plan = step_function(
            "PlanTraining",
            "train",
            "Plans the candidates (one, or a search space's), the backend and the ranking metric; "
            "validates a spec's fixed holdout file",
            memory=3008,
            handler="plan",
            service="plan_training",
        )
        bucket.grant_read(self.plan, f"{HOLDOUT_PREFIX}*")  # a spec's fixed holdout file, validated once
        bucket.grant_read(self.plan, f"{CODE_PREFIX}*")  # whether the run's code version's package arrived
        bucket.grant_put(self.plan, f"{ARTIFACT_PREFIX}*")  # its report; its copy into a job's input
        tables.registry.grant_read_data(self.plan)
        self.train = step_function(
            "TrainCandidate",
            "train",
            "Trains one candidate: the spec's allow-listed estimator on a deterministic split; artifact + sha256 to S3",
            memory=3008,
            handler="train",
            service="train_candidate",
        )
        bucket.grant_read(self.train, f"{DATASET_PREFIX}*")
        bucket.grant_read(self.train, f"{HOLDOUT_PREFIX}*")  # a spec's fixed holdout file
        bucket.grant_read(self.train, f"{CODE_PREFIX}*")  # the model's code package (training.entry_point)
        bucket.grant_read(self.train, f"{IMPORT_PREFIX}*")  # an imported model, checked instead of trained
        bucket.grant_put(self.train, f"{ARTIFACT_PREFIX}*")
        tables.registry.grant_read_data(self.train)
        self.collect = step_function(
            "CollectCandidate",
            "train",
            "Collects a finished SageMaker training job: the candidate record a Lambda-trained one has",
            handler="collect",
            service="collect_candidate",
        )
        bucket.grant_read(self.collect, f"{ARTIFACT_PREFIX}*")  # the job's model.tar.gz
        bucket.grant_put(self.collect, f"{ARTIFACT_PREFIX}*")  # the candidate's artifact
        self.evaluate = step_function(
            "Evaluate",
            "evaluate",
            "Evaluates the best candidate and the champion on the same holdout; per-slice metrics; reference profile",
            memory=3008,
        )
        bucket.grant_read(self.evaluate, f"{DATASET_PREFIX}*")
        bucket.grant_read(self.evaluate, f"{HOLDOUT_PREFIX}*")
        bucket.grant_read(self.evaluate, f"{ARTIFACT_PREFIX}*")
        bucket.grant_read(self.evaluate, f"{CODE_PREFIX}*")  # to load a model built by its code package
        bucket.grant_put(self.evaluate, f"{ARTIFACT_PREFIX}*")
        tables.registry.grant_read_data(self.evaluate)
        # The export's check runs where onnxruntime is (the inference layer, no scikit-learn): the
        # science layer cannot also hold onnxruntime within Lambda's 250 MiB.
        self.check_onnx = step_function(
            "CheckOnnx",
            "check_onnx",
            "Runs the run's ONNX export with onnxruntime on holdout rows and compares it with scikit-learn's answers",
            memory=1024,
            minutes=5,
            layer_set=[layers.shared, layers.runtime, layers.inference],
        )
        bucket.grant_read(self.check_onnx, f"{ARTIFACT_PREFIX}*/runs/*")  # the run's export and check input only
        self.gate = step_function(
            "Gate",
            "gate",
            "Applies the spec's gates: thresholds and beat-the-champion",
            memory=512,
            minutes=1,
            # the science layer: the gates read metric values with numpy (mlops.values)
        )
        tables.registry.grant_read_data(self.gate)
        self.register = step_function(
            "Register",
            "register",
            "Registers the candidate (or the rejected one) with lineage, model card and reference profile",
            memory=1024,
            minutes=5,
        )
        bucket.grant_read(self.register, f"{ARTIFACT_PREFIX}*")
        bucket.grant_put(self.register, f"{ARTIFACT_PREFIX}*")
        tables.grant_registry_write(self.register)
        self.record_failure = step_function(
            "RecordFailure",
            "record_failure",
            "Records a failed run in the registry and the audit trail",
            memory=256,
            minutes=1,
            layer_set=[layers.shared, layers.runtime],
        )
        tables.grant_registry_write(self.record_failure)
        self.sagemaker_role = self._sagemaker_training(config=config, bucket=bucket)
        if config.sagemaker_training_image:
            self.plan.add_environment("SAGEMAKER_TRAINING_IMAGE", config.sagemaker_training_image)
        steps = {
            "ValidateFunctionArn": self.validate,
            "PlanTrainingFunctionArn": self.plan,
            "TrainCandidateFunctionArn": self.train,
            "CollectCandidateFunctionArn": self.collect,
            "EvaluateFunctionArn": self.evaluate,
            "CheckOnnxFunctionArn": self.check_onnx,
            "GateFunctionArn": self.gate,
            "RegisterFunctionArn": self.register,
            "RecordFailureFunctionArn": self.record_failure,
        }
        for function, grants in (
            (self.plan, "read holdouts/*, put artifacts/*, read the registry"),
            (self.train, "read datasets/* and holdouts/*, put artifacts/*, read the registry"),
            (self.collect, "read and put artifacts/*"),
            (self.evaluate, "read datasets/* and artifacts/*, put artifacts/*, read the registry"),
            (self.check_onnx, "read artifacts/*/runs/* (a run's ONNX export and its check input), KMS decrypt"),
            (self.gate, "read the registry"),
            (self.register, "read and put artifacts/*, registry read/write, audit append"),
            (self.record_failure, "registry read/write, audit append"),
        ):
            acknowledge_grant_wildcards(function, grants)

        self.state_machine = state_machine_from_file(
            self,
            "StateMachine",
            file="training.asl.json",
            config=config,
            key=tables.key,
            timeout=Duration.hours(24),
            substitutions={
                **{key: fn.function_arn for key, fn in steps.items()},
                "NotificationsTopicArn": topic.topic_arn,
                "SageMakerRoleArn": self.sagemaker_role.role_arn,
                "StartDeploymentFunctionArn": deployment_starter.function_arn,
                "KmsKeyArn": kms_key.key_arn,
            },
        )
        invoked: list[lambda_.IFunction] = [*steps.values(), deployment_starter]
        for target in invoked:
            target.grant_invoke(self.state_machine)
        self._grant_sagemaker_jobs(bucket)
        topic.grant_publish(self.state_machine)
        acknowledge_grant_wildcards(
            self.state_machine,
            "invoke the pipeline's functions and the deployment hand-off (all versions), publish "
            "to the notifications topic, X-Ray and CloudWatch Logs delivery (no resource-level "
            "permissions exist for those)",
        )

        # Failed upload events land here twice over: from the rule (EventBridge could not invoke the
        # starter) and from the starter itself (its asynchronous invocation failed after retries).
        dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(dead_letters, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the upload rule.")
        skip_checkov(
            dead_letters,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which this check does not "
            "recognize; a customer key would also need EventBridge and Lambda grants in the key policy.",
            types=["AWS::SQS::Queue"],
        )
        self.starter = MlopsFunction(
            self,
            "Starter",
            name="start_pipeline",
            config=config,
            key=tables.key,
            kind="trigger",
            dead_letter_queue=dead_letters,
            layers=[layers.shared, layers.runtime],
            description="Starts the training pipeline once per uploaded object version",
            environment={**table_env, "TRAINING_STATE_MACHINE_ARN": self.state_machine.state_machine_arn},
            memory_size=256,
            timeout=Duration.seconds(30),
        ).function
        self.state_machine.grant_start_execution(self.starter)
        tables.grant_audit_append(self.starter)
        tables.registry.grant(self.starter, "dynamodb:GetItem", "dynamodb:UpdateItem")  # the audit chain's anchor
        # an import's grant (a query of the model's items) and the dataset version it names
        tables.registry.grant(self.starter, "dynamodb:Query")
        acknowledge_grant_wildcards(
            self.starter, "start the training state machine, append audit events, read import grants"
        )

        self.rule = events.Rule(
            self,
            "DatasetUploaded",
            description="An object created under datasets/ or imports/ in the data bucket starts the training pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": DATASET_PREFIX}, {"prefix": IMPORT_PREFIX}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.starter, dead_letter_queue=dead_letters, retry_attempts=4, max_event_age=Duration.hours(6)
                )
            ],
        )

    def _sagemaker_training(self, *, config: EnvironmentConfig, bucket: s3.IBucket) -> iam.Role:
        """The role training jobs run as: read the run's input, write its model; pull the image."""
        role = iam.Role(
            self,
            "SageMakerTrainingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"mlops training jobs ({config.name}): backend sagemaker",
        )
        bucket.grant_read(role, f"{ARTIFACT_PREFIX}*")
        bucket.grant_put(role, f"{ARTIFACT_PREFIX}*")
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/TrainingJobs:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        image = config.sagemaker_training_image
        if image:
            account, _, rest = image.partition(".dkr.ecr.")
            region = rest.split(".", 1)[0]
            repository = image.split("/", 1)[1].split("@")[0].split(":")[0]
            role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    resources=[f"arn:{stack.partition}:ecr:{region}:{account}:repository/{repository}"],
                )
            )
        acknowledge_grant_wildcards(
            role,
            "read and put artifacts/*, write its own training-job logs and metrics, "
            "pull the configured training image (GetAuthorizationToken has no resource)",
        )
        return role

    def _grant_sagemaker_jobs(self, bucket: s3.IBucket) -> None:
        """What the state machine needs for createTrainingJob.sync and the input copy."""
        stack = Stack.of(self)
        machine_role = self.state_machine.role
        bucket.grant_read(machine_role, f"{DATASET_PREFIX}*")  # CopyObject's source: the exact version
        bucket.grant_put(machine_role, f"{ARTIFACT_PREFIX}*")
        machine_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                # This environment's jobs only: another environment in the same account has its own prefix.
                resources=[
                    stack.format_arn(
                        service="sagemaker",
                        resource="training-job",
                        resource_name=f"{training_job_prefix(self.environment_name)}*",
                    )
                ],
            )
        )
        machine_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events",
                        resource="rule",
                        resource_name="StepFunctionsGetEventsForSageMakerTrainingJobsRule",
                    )
                ],
            )
        )
        machine_role.add_to_principal_policy(pass_role_statement(self.sagemaker_role, "sagemaker.amazonaws.com"))
