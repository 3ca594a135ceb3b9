"""Alarms and one CloudWatch dashboard per deployment.

Every model is served by the same function and checked by the same monitor, so the alarms watch
aggregate metrics (one alarm covers every model, present and future) and the dashboard draws the
per-model series with ``SEARCH`` expressions, which find new models without a redeploy.

Alarms (each notifies the platform topic on ALARM and on OK; missing data is not breaching):

============================  ===================================================================
``<env>-inference-5xx``       API 5xx answers, Sum over 5 minutes >= ``alarm_server_errors``
``<env>-inference-errors``    the inference function's ``InternalErrors`` (Sum >= 1 in 5 minutes)
``<env>-inference-latency``   API latency p99 > ``alarm_latency_p99_ms`` in 3 consecutive minutes
``<env>-artifact-refused``    a model artifact failed its sha256 check (``ArtifactRefused`` >= 1)
``<env>-<pipeline>-failed``   a training, deployment or monitoring execution failed or timed out
``<env>-drift``               a monitor run found drift (``ModelsDrifted`` Maximum >= 1)
``<env>-audit-chain-broken``  the audit digest refused a chain that no longer extends its last
                              digested head (``AuditChainsRefused`` Maximum >= 1 in one digest period)
============================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mlops.contracts.names import CHAINS_REFUSED_METRIC, DIGEST_FAILED_METRIC
from stacks.config import EnvironmentConfig

# The namespace of every metric the functions publish (POWERTOOLS_METRICS_NAMESPACE, stacks/function.py).
NAMESPACE = "MLOps"
FIVE_MINUTES = Duration.minutes(5)


class Observability(Construct):
    """The deployment's alarms (to ``topic``) and its dashboard ``mlops-<env>``.

    Parameters
    ----------
    rest_api
        The platform API (latency and 5xx are API Gateway's own metrics).
    inference_service
        The inference function's Powertools service name (the dimension of its aggregate metrics).
    pipelines
        State machines by label (``training``, ``deployment``, ``monitoring``), one failure alarm each.
    monitor_service
        The monitor function's service name; ``None`` leaves out the drift alarm and widgets.
    audit_digest_service
        The audit digest function's service name; ``None`` leaves out the audit-chain-broken alarm
        and the digest widget.
    topic_key
        The topic's KMS key: CloudWatch gets permission to encrypt alarm notifications with it.

    Attributes
    ----------
    alarms
        Every alarm by its short name (``inference-5xx``, ``drift``, ``training-failed``, ...).
    dashboard
        The dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        topic: sns.ITopic,
        topic_key: kms.IKey | None,
        rest_api: apigw.RestApi,
        inference_service: str,
        pipelines: Mapping[str, sfn.IStateMachine],
        monitor_service: str | None = None,
        audit_digest_service: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        if topic_key is not None:
            # Alarm notifications go to an encrypted topic; CloudWatch must be able to use its key.
            topic_key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CloudWatchAlarmNotifications",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],  # in a key policy, "*" means this key
                    # Only on behalf of this account's alarms (the confused-deputy guard AWS documents).
                    conditions={"StringEquals": {"aws:SourceAccount": Stack.of(topic_key).account}},
                )
            )

        stage = rest_api.deployment_stage.stage_name
        api_dims = {"ApiName": rest_api.rest_api_name, "Stage": stage}
        latency_p50 = _metric("AWS/ApiGateway", "Latency", api_dims, "p50", Duration.minutes(1))
        latency_p99 = _metric("AWS/ApiGateway", "Latency", api_dims, "p99", Duration.minutes(1))
        server_errors = _metric("AWS/ApiGateway", "5XXError", api_dims, "Sum")
        client_errors = _metric("AWS/ApiGateway", "4XXError", api_dims, "Sum")
        requests = _metric("AWS/ApiGateway", "Count", api_dims, "Sum")
        predictions = _metric(NAMESPACE, "Predictions", {"service": inference_service}, "Sum")
        internal = _metric(NAMESPACE, "InternalErrors", {"service": inference_service}, "Sum")
        refused = _metric(NAMESPACE, "ArtifactRefused", {"service": inference_service}, "Sum")

        self._alarm(
            "inference-5xx",
            server_errors,
            config.alarm_server_errors,
            f"The API answered {config.alarm_server_errors} or more 5xx in 5 minutes: the platform is broken "
            "somewhere; look at the inference function's logs by request id.",
        )
        self._alarm(
            "inference-errors",
            internal,
            1,
            "The inference function failed unexpectedly (InternalErrors); its logs have the request ids.",
        )
        self._alarm(
            "inference-latency",
            latency_p99,
            config.alarm_latency_p99_ms,
            f"API latency p99 above {config.alarm_latency_p99_ms} ms for 3 minutes.",
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            periods=3,
        )
        self._alarm(
            "artifact-refused",
            refused,
            1,
            "A model artifact's sha256 did not match the registry: it was refused (503). Someone changed "
            "or replaced an artifact in S3; see the ArtifactRefused metric's model and version.",
        )
        failures: list[cloudwatch.IMetric] = []
        for label, machine in pipelines.items():
            failed = cloudwatch.MathExpression(
                # Step Functions publishes these only when they happen: fill the gaps with 0, or
                # "failed + timedout" has no point unless both happened in the same period.
                expression=f"FILL(failed_{label}, 0) + FILL(timedout_{label}, 0)",
                using_metrics={
                    f"failed_{label}": machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"),
                    f"timedout_{label}": machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
                },
                label=f"{label} failed",
                period=FIVE_MINUTES,
            )
            failures.append(failed)
            self._alarm(
                f"{label}-failed",
                failed,
                1,
                f"A {label} execution failed or timed out; its failure record and SNS message name the step.",
            )
        drift_search: list[cloudwatch.IWidget] = []
        if monitor_service is not None:
            drifted = _metric(NAMESPACE, "ModelsDrifted", {"service": monitor_service}, "Maximum")
            self._alarm(
                "drift",
                drifted,
                1,
                "A monitor run found drift; its SNS message names the model, the drifted features and the report.",
            )
            drift_search = [
                _search_graph("Drift score per model", monitor_service, "DriftScore", "Maximum"),
                _search_graph("Champion version per model", monitor_service, "ChampionVersion", "Maximum"),
            ]
        audit_widgets: list[cloudwatch.IWidget] = []
        if audit_digest_service is not None:
            # One digest run per period, each publishing both values (0 when all is well), so the
            # alarm stays in ALARM while the chain stays broken (every run refuses it again).
            digest_period = Duration.minutes(config.audit_digest_minutes)
            dims = {"service": audit_digest_service}
            chains_refused = _metric(NAMESPACE, CHAINS_REFUSED_METRIC, dims, "Maximum", digest_period)
            digest_failed = _metric(NAMESPACE, DIGEST_FAILED_METRIC, dims, "Maximum", digest_period)
            self._alarm(
                "audit-chain-broken",
                chains_refused,
                1,
                "The audit digest function found a chain that no longer extends its last signed digest "
                "(an event was edited or deleted after it was digested) and refused to advance it. Run "
                "`mlops audit verify` to name the chain and seq; see docs/operations.md.",
            )
            audit_widgets = [
                cloudwatch.GraphWidget(
                    title="Audit digests (chains refused, failed runs)",
                    left=[chains_refused, digest_failed],
                    width=24,
                )
            ]

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"mlops-{config.name}",
            default_interval=Duration.days(1),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Predictions (requests)", left=[predictions, requests], width=8),
            cloudwatch.GraphWidget(title="API latency p50 / p99 (ms)", left=[latency_p50, latency_p99], width=8),
            cloudwatch.GraphWidget(title="Errors", left=[server_errors, client_errors, internal, refused], width=8),
        )
        self.dashboard.add_widgets(
            _search_graph("Records per model version", inference_service, "PredictionRecords", "Sum", per_version=True),
            _search_graph(
                "Latency per model version (avg ms)",
                inference_service,
                "PredictionLatency",
                "Average",
                per_version=True,
            ),
        )
        if drift_search:
            self.dashboard.add_widgets(*drift_search)
        if audit_widgets:
            self.dashboard.add_widgets(*audit_widgets)
        runs = [
            metric
            for machine in pipelines.values()
            for metric in (
                machine.metric_started(period=FIVE_MINUTES, statistic="Sum"),
                machine.metric_succeeded(period=FIVE_MINUTES, statistic="Sum"),
            )
        ]
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Pipeline runs (started, succeeded)", left=runs, width=12),
            cloudwatch.GraphWidget(title="Pipeline failures", left=failures, width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24)
        )

    def _alarm(
        self,
        short: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in short.split("-")),
            alarm_name=f"mlops-{self.config.name}-{short}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[short] = alarm
        return alarm


def _metric(
    namespace: str, name: str, dimensions: Mapping[str, str], statistic: str, period: Duration = FIVE_MINUTES
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dict(dimensions),
        statistic=statistic,
        period=period,
    )


def _search_graph(
    title: str, service: str, metric: str, statistic: str, width: int = 12, per_version: bool = False
) -> cloudwatch.GraphWidget:
    """A graph of ``metric`` for every model (a SEARCH expression: new models appear by themselves)."""
    schema = "model,service,version" if per_version else "model,service"
    expression = f"SEARCH('{{{NAMESPACE},{schema}}} MetricName=\"{metric}\" service=\"{service}\"', '{statistic}', 300)"
    search = cloudwatch.MathExpression(expression=expression, using_metrics={}, label="", period=FIVE_MINUTES)
    return cloudwatch.GraphWidget(title=title, left=[search], width=width)
