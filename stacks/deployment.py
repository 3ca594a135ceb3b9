"""The approval and deployment pipeline: approval task, approval API routes, rollout and canary checks."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
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

        self.steps = MlopsFunction(
            self,
            "Steps",
            name="deployment_steps",
            config=config,
            key=tables.key,
            kind="pipeline",
            layers=light,
            description="Deployment pipeline steps: plan, approval expiry, aliases, canary alarms, promote, roll back",
            environment=environment,
            memory_size=512,
            timeout=Duration.minutes(1),
        ).function
        tables.grant_registry_write(self.steps)
        bucket.grant_read(self.steps, f"{ARTIFACT_PREFIX}*")  # evaluation against the champion
        bucket.grant_read(self.steps, f"{REPORT_PREFIX}*")  # the validation report
        stack = Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{alarm_prefix(config.name)}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.steps.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"],
                resources=[alarms],
            )
        )
        acknowledge_grant_wildcards(
            self.steps,
            "registry read/write and audit append, read artifacts/* and reports/*, "
            f"create and read this environment's canary alarms ({alarm_prefix(config.name)}*)",
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
                "DeploymentStepsFunctionArn": self.steps.function_arn,
                "ApprovalRequestFunctionArn": self.request.function_arn,
                "NotificationsTopicArn": topic.topic_arn,
            },
        )
        self.steps.grant_invoke(self.state_machine)
        self.request.grant_invoke(self.state_machine)
        topic.grant_publish(self.state_machine)
        acknowledge_grant_wildcards(
            self.state_machine,
            "invoke the pipeline's two functions (all versions), publish to the notifications topic, "
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
