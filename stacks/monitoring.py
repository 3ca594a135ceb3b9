"""The monitoring pipeline: per-model Scheduler schedules -> drift-check state machine -> monitor function."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.contracts.names import schedule_group_name
from stacks.config import EnvironmentConfig
from stacks.function import MlopsFunction, service_name
from stacks.layers import PlatformLayers
from stacks.nag import acknowledge_grant_wildcards
from stacks.pipelines import machine_arns, pass_role_statement, state_machine_from_file
from stacks.stateful import (
    ARTIFACT_PREFIX,
    CAPTURE_PREFIX,
    DATASET_PREFIX,
    REPORT_PREFIX,
    RegistryTables,
    name_dataset_writer,
    resource_environment,
)

LABEL_PREFIX = "labels/"
SCHEDULE_ACTIONS = [
    "scheduler:GetSchedule",
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
]


class MonitoringPipeline(Construct):
    """Drift checks: one Scheduler schedule per monitored model starts :attr:`state_machine`.

    Input of :attr:`state_machine`: ``{"model": str, "trigger": "schedule" | "manual"}``. The
    state machine plans the capture window, analyzes it in :attr:`function` (or sketches its
    shards in a Distributed Map first), writes the report under ``reports/``, emits the
    ``MLOps`` metrics with ``service`` = :attr:`service_name`, notifies ``topic`` on drift and may
    start ``training_state_machine``.

    Functions that set champions call :meth:`grant_schedule_sync` so they can create the schedule.
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
        training_state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.schedule_group_name = schedule_group_name(config.name)
        arns = machine_arns(self, f"mlops-{config.name}-monitoring")
        self.state_machine_name, self.state_machine_arn = arns.name, arns.arn
        executions, children = arns.executions, arns.children
        self.schedule_arn_pattern = stack.format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.schedule_group_name}/*"
        )

        self._sync_grants = 0
        self.schedule_group = scheduler.CfnScheduleGroup(self, "Schedules", name=self.schedule_group_name)
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"mlops monitoring schedules ({config.name}): start the drift check",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine_arn])
        )

        self.service_name = service_name(config, "monitor")
        self.schedule_environment = {
            "MONITOR_SCHEDULE_GROUP": self.schedule_group_name,
            "MONITOR_SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            "MONITOR_STATE_MACHINE_ARN": self.state_machine_arn,
        }
        common = resource_environment(bucket, tables)
        layer_list = [layers.shared, layers.runtime, layers.science]

        def state_function(construct_id: str, handler: str, service: str, description: str, **options: Any) -> Any:
            return MlopsFunction(
                self,
                construct_id,
                name="monitor",
                handler=handler,
                service=service,
                config=config,
                key=tables.key,
                kind="pipeline",
                layers=layer_list,
                description=description,
                **options,
            ).function

        # One function per Lambda state of the drift check, each with only what its state needs.
        self.plan_function = state_function(
            "PlanFunction",
            "plan",
            "monitor-plan",
            "Drift check Plan: champion, capture window, shard list; heals the model's schedule",
            environment={**common, **self.schedule_environment},
            memory_size=3008,  # a month of capture keys listed and cut into shards
            timeout=Duration.minutes(15),
        )
        fn = self.plan_function
        tables.registry.grant_read_data(fn)
        bucket.grant_read(fn, f"{CAPTURE_PREFIX}*")  # lists the window's capture objects
        bucket.grant_put(fn, f"{REPORT_PREFIX}*")  # the run's shard list
        self._grant_schedules(fn.role)
        acknowledge_grant_wildcards(
            fn,
            "registry read, list and read captures/*, put reports/* (the shard list), manage this environment's "
            f"monitor schedules ({self.schedule_group_name}/*) and pass their role",
        )

        self.sketch_function = state_function(
            "SketchFunction",
            "sketch",
            "monitor-sketch",
            "Drift check Sketch: one shard of capture objects as a mergeable sketch",
            environment=common,
            memory_size=3008,
            timeout=Duration.minutes(15),
        )
        fn = self.sketch_function
        tables.registry.grant_read_data(fn)  # the model's spec
        bucket.grant_read(fn, f"{CAPTURE_PREFIX}*")
        bucket.grant_put(fn, f"{REPORT_PREFIX}*")  # the shard's sketch
        acknowledge_grant_wildcards(fn, "registry read, read captures/*, put reports/* (the shard's sketch)")

        # The Analyze function keeps the ``monitor`` service: the drift metrics and alarms carry it.
        self.function = state_function(
            "Function",
            "analyze",
            "monitor",
            "Drift check Analyze: the window against the champion's reference; reports, metrics, alerts, may retrain",
            environment={
                **common,
                "TRAINING_STATE_MACHINE_ARN": training_state_machine.state_machine_arn,
                "NOTIFICATIONS_TOPIC_ARN": topic.topic_arn,
            },
            memory_size=3008,
            timeout=Duration.minutes(15),
        )
        fn = self.function
        bucket.grant_read(fn, f"{CAPTURE_PREFIX}*")
        bucket.grant_read(fn, f"{LABEL_PREFIX}*")
        bucket.grant_read(fn, f"{ARTIFACT_PREFIX}*")  # reference profile and holdout predictions
        bucket.grant_read(fn, f"{REPORT_PREFIX}*")  # the run's shard list and sketches
        bucket.grant_put(fn, f"{REPORT_PREFIX}*")
        tables.grant_registry_write(fn)
        topic.grant_publish(fn)
        # A retrain on labelled captures appends them to the champion's dataset and writes the
        # result as a dataset upload; whether a dataset is being trained is asked of its run.
        bucket.grant_read(fn, f"{DATASET_PREFIX}*")
        bucket.grant_put(fn, f"{DATASET_PREFIX}*")
        name_dataset_writer(fn.role, config, "retrain")  # the bucket lets only it and the upload API write datasets/*
        training_state_machine.grant_start_execution(fn)
        training_state_machine.grant_execution(fn, "states:DescribeExecution")
        acknowledge_grant_wildcards(
            fn,
            "read captures/*, labels/*, artifacts/*, read and put reports/* and datasets/*, registry read/write, "
            "audit append, publish to the notifications topic, start the training state machine and describe its "
            "executions",
        )

        self.record_failure_function = state_function(
            "RecordFailureFunction",
            "record_failure",
            "monitor-record-failure",
            "Drift check RecordFailure: a failed run's FAILED run item and audit event",
            environment=common,
        )
        fn = self.record_failure_function
        tables.grant_registry_write(fn)
        acknowledge_grant_wildcards(fn, "registry read/write (the run item), audit append")
        self.functions = [self.plan_function, self.sketch_function, self.function, self.record_failure_function]

        self.state_machine = state_machine_from_file(
            self,
            "StateMachine",
            file="monitoring.asl.json",
            config=config,
            key=tables.key,
            timeout=Duration.hours(2),
            substitutions={
                "PlanFunctionArn": self.plan_function.function_arn,
                "SketchFunctionArn": self.sketch_function.function_arn,
                "AnalyzeFunctionArn": self.function.function_arn,
                "RecordFailureFunctionArn": self.record_failure_function.function_arn,
                "NotificationsTopicArn": topic.topic_arn,
                "DataBucket": bucket.bucket_name,
            },
        )
        machine = self.state_machine.node.default_child
        assert isinstance(machine, sfn.CfnStateMachine)
        machine.state_machine_name = self.state_machine_name
        for function in self.functions:
            function.grant_invoke(self.state_machine)
        topic.grant_publish(self.state_machine)
        bucket.grant_read(self.state_machine, f"{REPORT_PREFIX}*")  # the Distributed Map's ItemReader
        # A Distributed Map runs its items as child executions of this same state machine.
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
            "invoke the monitor functions (all versions), publish to the notifications topic, read reports/* "
            "(the shard list), run and stop its own Distributed Map child executions, X-Ray and CloudWatch "
            "Logs delivery (no resource-level permissions exist for those)",
        )

    def _grant_schedules(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=SCHEDULE_ACTIONS, resources=[self.schedule_arn_pattern])
        )
        role.add_to_principal_policy(pass_role_statement(self.scheduler_role, "scheduler.amazonaws.com"))

    def grant_schedule_sync(self, function: lambda_.Function) -> None:
        """Let ``function`` create, update and delete monitor schedules (it sets champions).

        Adds the ``MONITOR_*`` variables :func:`mlops.monitoring.schedules.sync_schedule_from_env` reads,
        the Scheduler actions on this environment's group only, and ``iam:PassRole`` on the
        scheduler role only.
        """
        for name, value in self.schedule_environment.items():
            function.add_environment(name, value)
        self._sync_grants += 1
        policy = iam.Policy(
            self,
            f"ScheduleSync{self._sync_grants}",
            statements=[
                iam.PolicyStatement(actions=SCHEDULE_ACTIONS, resources=[self.schedule_arn_pattern]),
                pass_role_statement(self.scheduler_role, "scheduler.amazonaws.com"),
            ],
        )
        assert function.role is not None
        policy.attach_to_role(function.role)
        acknowledge_grant_wildcards(
            policy, f"manage this environment's monitor schedules ({self.schedule_group_name}/*), pass their role"
        )
