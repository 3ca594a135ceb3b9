"""The approval and deployment pipeline: approval task, approval API routes, rollout and canary checks."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops.contracts.names import alarm_prefix
from stacks.api import PlatformApi
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge_grant_wildcards
from stacks.pipelines import state_machine_from_file
from stacks.stateful import ARTIFACT_PREFIX, REPORT_PREFIX, RegistryTables, resource_environment


class DeploymentPipeline(Construct):
    """Registered candidate -> approval (callback token, API, timeout) -> deploy -> bake -> promote/roll back.

    Input of :attr:`state_machine`: ``{"model": str, "version": int, "strategy": str | null,
    "requested_by": str}`` (``strategy`` overrides the spec's deployment strategy).
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
        topic: sns.ITopic,
        api: PlatformApi,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            **resource_environment(bucket, tables),
            "APPROVAL_FOUR_EYES": "true" if config.approval_four_eyes else "false",
        }
        light = [layers.shared, layers.runtime]

        def state(construct_id: str, handler: str, description: str) -> lambda_.Function:
            """One function per Lambda state: the same code, its own handler, role and grants."""
            return MlopsFunction(
                self,
                construct_id,
                name="deployment_steps",
                handler=handler,
                config=config,
                key=tables.key,
                kind="pipeline",
                layers=light,
                description=description,
                environment=environment,
                memory_size=512,
                timeout=Duration.minutes(1),
            ).function

        stack = Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{alarm_prefix(config.name)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        self.prepare = state("Prepare", "prepare", "Deployment pipeline: plans a candidate's approval and strategy")
        tables.registry.grant_read_data(self.prepare)
        bucket.grant_read(self.prepare, f"{ARTIFACT_PREFIX}*")  # evaluation against the champion
        bucket.grant_read(self.prepare, f"{REPORT_PREFIX}*")  # the validation report
        acknowledge_grant_wildcards(self.prepare, "registry read, read artifacts/* and reports/*")

        self.skip_approval = state(
            "SkipApproval", "skip_approval", "Deployment pipeline: approves a candidate whose spec needs no approval"
        )
        self.expire_approval = state(
            "ExpireApproval", "expire_approval", "Deployment pipeline: rejects a candidate whose approval timed out"
        )
        self.record_failure = state(
            "RecordFailure", "record_failure", "Deployment pipeline: audits a step that failed after its retries"
        )
        self.notification_failed = state(
            "NotificationFailed", "notification_failed", "Deployment pipeline: audits a notification that failed"
        )
        for function in (self.skip_approval, self.expire_approval, self.record_failure, self.notification_failed):
            tables.grant_registry_write(function)
            acknowledge_grant_wildcards(function, "registry read/write and audit append")

        self.deploy = state("Deploy", "deploy", "Deployment pipeline: moves the aliases, creates a canary's alarms")
        self.finish_canary = state(
            "FinishCanary", "finish_canary", "Deployment pipeline: promotes a baked canary or rolls it back"
        )
        for function in (self.deploy, self.finish_canary):
            tables.grant_registry_write(function)
        self.deploy.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:PutMetricAlarm"], resources=[alarms]))
        acknowledge_grant_wildcards(
            self.deploy,
            f"registry read/write and audit append, create this environment's canary alarms "
            f"({alarm_prefix(config.name)}*)",
        )
        acknowledge_grant_wildcards(self.finish_canary, "registry read/write and audit append")

        self.check_canary = state(
            "CheckCanary", "check_canary", "Deployment pipeline: reads a canary's alarms at the end of its bake"
        )
        self.check_canary.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[alarms])
        )
        acknowledge_grant_wildcards(
            self.check_canary, f"read this environment's canary alarms ({alarm_prefix(config.name)}*)"
        )
        # The states that set a champion sync its monitor schedule (wired by the platform).
        self.champion_setters = (self.deploy, self.finish_canary)
        self.steps = (
            self.prepare,
            self.skip_approval,
            self.expire_approval,
            self.deploy,
            self.check_canary,
            self.finish_canary,
            self.record_failure,
            self.notification_failed,
        )

        self.request = MlopsFunction(
            self,
            "Request",
            name="approval_request",
            config=config,
            key=tables.key,
            kind="pipeline",
            layers=light,
            description="Approval task: stores the callback token with the candidate and notifies approvers",
            environment={**environment, "NOTIFICATIONS_TOPIC_ARN": topic.topic_arn},
            memory_size=256,
            timeout=Duration.seconds(30),
        ).function
        tables.grant_registry_write(self.request)
        topic.grant_publish(self.request)
        acknowledge_grant_wildcards(
            self.request, "registry read/write, audit append, publish to the notifications topic"
        )

        self.state_machine = state_machine_from_file(
            self,
            "StateMachine",
            file="deployment.asl.json",
            config=config,
            key=tables.key,
            # The approval wait is bounded by the spec (at most a year); the execution outlives it.
            timeout=Duration.days(366),
            substitutions={
                "PrepareFunctionArn": self.prepare.function_arn,
                "SkipApprovalFunctionArn": self.skip_approval.function_arn,
                "ExpireApprovalFunctionArn": self.expire_approval.function_arn,
                "DeployFunctionArn": self.deploy.function_arn,
                "CheckCanaryFunctionArn": self.check_canary.function_arn,
                "FinishCanaryFunctionArn": self.finish_canary.function_arn,
                "RecordFailureFunctionArn": self.record_failure.function_arn,
                "NotificationFailedFunctionArn": self.notification_failed.function_arn,
                "ApprovalRequestFunctionArn": self.request.function_arn,
                "NotificationsTopicArn": topic.topic_arn,
            },
        )
        for function in self.steps:
            function.grant_invoke(self.state_machine)
        self.request.grant_invoke(self.state_machine)
        topic.grant_publish(self.state_machine)
        acknowledge_grant_wildcards(
            self.state_machine,
            "invoke the pipeline's functions (all versions), publish to the notifications topic, "
            "X-Ray and CloudWatch Logs delivery (no resource-level permissions exist for those)",
        )

        self.approval_api = MlopsFunction(
            self,
            "Api",
            name="approval_api",
            config=config,
            key=tables.key,
            kind="api",
            layers=light,
            description="Approval API: approve or reject a waiting candidate as the calling IAM principal",
            environment=environment,
            memory_size=512,
            timeout=Duration.seconds(20),
        ).function
        tables.grant_registry_write(self.approval_api)
        self.state_machine.grant_task_response(self.approval_api)
        acknowledge_grant_wildcards(
            self.approval_api, "registry read/write, audit append, send task success to this state machine"
        )

        # The training pipeline's hand-off (a Lambda task: moto cannot run states:startExecution tasks).
        self.starter = MlopsFunction(
            self,
            "Starter",
            name="start_deployment",
            config=config,
            key=tables.key,
            kind="pipeline",
            layers=light,
            description="Starts the deployment pipeline for a registered candidate (<model>-v<version>, once)",
            environment={"DEPLOYMENT_STATE_MACHINE_ARN": self.state_machine.state_machine_arn},
            memory_size=256,
            timeout=Duration.seconds(30),
        ).function
        self.state_machine.grant_start_execution(self.starter)
        acknowledge_grant_wildcards(self.starter, "start executions of the deployment state machine")

        integration = apigw.LambdaIntegration(self.approval_api)
        model = api.models.get_resource("{model}") or api.models.add_resource("{model}")
        version = model.add_resource("versions").add_resource("{version}")
        self.approve_method = version.add_resource("approve").add_method("POST", integration)
        self.reject_method = version.add_resource("reject").add_method("POST", integration)
