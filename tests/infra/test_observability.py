"""Intent of the alarms and the dashboard: what they watch, where they notify, per environment."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized


def _alarms(template: dict) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and isinstance(r["Properties"].get("AlarmName"), str)
    }


def _topic_ref(template: dict) -> dict[str, str]:
    [logical] = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    return {"Ref": logical}


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(synthesized: Synthesized) -> None:
    # GIVEN the dev platform stack
    template = synthesized.template_json("dev", "platform")
    alarms = _alarms(template)
    # THEN the alarms exist, named for the environment
    for short in (
        "inference-5xx",
        "inference-errors",
        "inference-latency",
        "artifact-refused",
        "training-failed",
        "deployment-failed",
        "monitoring-failed",
        "drift",
    ):
        assert f"mlops-dev-{short}" in alarms, short
    # AND each one notifies the platform topic both ways, and missing data never alarms
    topic = _topic_ref(template)
    for name, props in alarms.items():
        assert props["AlarmActions"] == [topic], name
        assert props["OKActions"] == [topic], name
        assert props["TreatMissingData"] == "notBreaching", name
        assert props["AlarmDescription"], name


def test_aggregate_alarms_watch_this_environments_service(synthesized: Synthesized) -> None:
    # GIVEN dev and prod
    for env in ("dev", "prod"):
        alarms = _alarms(synthesized.template_json(env, "platform"))
        refused = alarms[f"mlops-{env}-artifact-refused"]
        # THEN ArtifactRefused is watched on the environment's own inference service dimension
        assert (refused["Namespace"], refused["MetricName"]) == ("MLOps", "ArtifactRefused")
        assert refused["Dimensions"] == [{"Name": "service", "Value": f"mlops-{env}-inference"}]
        # AND the latency alarm is on API Gateway's p99 over three consecutive minutes
        latency = alarms[f"mlops-{env}-inference-latency"]
        assert latency["ExtendedStatistic"] == "p99"
        assert (latency["EvaluationPeriods"], latency["DatapointsToAlarm"], latency["Period"]) == (3, 3, 60)


def test_functions_name_their_service_per_environment(synthesized: Synthesized) -> None:
    # GIVEN the inference function in dev and prod
    for env in ("dev", "prod"):
        template = synthesized.template_json(env, "platform")
        services = {
            r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"]
        }
        # THEN the metrics of one environment cannot mix with another's
        assert f"mlops-{env}-inference" in services
        assert all(s.startswith(f"mlops-{env}-") for s in services)


def test_drift_alarm_watches_the_monitors_aggregate(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized.template_json("dev", "platform"))
    drift = alarms["mlops-dev-drift"]
    # THEN one alarm covers every model: ModelsDrifted (Maximum >= 1) of this environment's monitor
    assert (drift["Namespace"], drift["MetricName"], drift["Statistic"]) == ("MLOps", "ModelsDrifted", "Maximum")
    assert drift["Dimensions"] == [{"Name": "service", "Value": "mlops-dev-monitor"}]
    assert (drift["Threshold"], drift["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_pipeline_failure_alarms_count_failed_and_timed_out(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized.template_json("dev", "platform"))
    failed = alarms["mlops-dev-training-failed"]
    # THEN the alarm adds ExecutionsFailed and ExecutionsTimedOut of the state machine
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert [m["Expression"] for m in failed["Metrics"] if "Expression" in m] == [
        "FILL(failed_training, 0) + FILL(timedout_training, 0)"
    ]


def test_cloudwatch_may_encrypt_notifications_with_the_topic_key(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "stateful")
    # (the data key; the other key in the stack is the audit signing key, which never meets SNS)
    [key] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::KMS::Key" and r["Properties"].get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
    ]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    # THEN the key policy lets the CloudWatch service use the key (and nothing broader)
    [statement] = [s for s in statements if s.get("Sid") == "CloudWatchAlarmNotifications"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_dashboard_draws_every_model_with_search_and_lists_alarms(synthesized: Synthesized) -> None:
    template = synthesized.template_json("dev", "platform")
    [dashboard] = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert dashboard["DashboardName"] == "mlops-dev"
    body = json.dumps(dashboard["DashboardBody"])
    # THEN per-model series come from SEARCH expressions on this environment's inference service
    assert "SEARCH(" in body and "mlops-dev-inference" in body
    for title in ("API latency p50 / p99 (ms)", "Pipeline failures", "Alarms", "Errors"):
        assert title in body, title


def test_a_refused_audit_chain_pages_through_the_topic(synthesized: Synthesized) -> None:
    # GIVEN dev and prod
    for env in ("dev", "prod"):
        template = synthesized.template_json(env, "platform")
        alarm = _alarms(template)[f"mlops-{env}-audit-chain-broken"]
        # THEN the alarm watches the digest function's AuditChainsRefused on its own service dimension
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
            "MLOps",
            "AuditChainsRefused",
            "Maximum",
        )
        assert alarm["Dimensions"] == [{"Name": "service", "Value": f"mlops-{env}-audit-digest"}]
        # AND fires at one refused chain, in one period as long as the digest schedule's
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        minutes = synthesized.stages[env].config.audit_digest_minutes
        assert alarm["Period"] == 60 * minutes and alarm["EvaluationPeriods"] == 1
        # AND pages the platform topic (and says OK again), missing data not breaching
        topic = _topic_ref(template)
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"
        # AND the metric's service is the one the digest function runs as
        services = {
            r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"]
        }
        assert f"mlops-{env}-audit-digest" in services
    # AND the dev dashboard draws refused chains and failed digest runs
    [dashboard] = [
        r["Properties"]
        for r in synthesized.template_json("dev", "platform")["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = json.dumps(dashboard["DashboardBody"])
    assert "AuditChainsRefused" in body and "AuditDigestFailed" in body


POWERTOOLS_ENVIRONMENT = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL")


def test_every_function_is_traced_and_configured_for_powertools(synthesized: Synthesized) -> None:
    # GIVEN every environment's platform stack (the stateful stack holds only CDK's own notification handler)
    for env in ("dev", "prod", "keyed"):
        functions = {
            logical: resource["Properties"]
            for logical, resource in synthesized.template_json(env, "platform")["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function"
        }
        assert len(functions) >= 14, (env, sorted(functions))
        for logical, props in functions.items():
            variables = props.get("Environment", {}).get("Variables", {})
            # THEN each sends traces to X-Ray and configures mlops.observability's logger, tracer and metrics
            assert props["TracingConfig"] == {"Mode": "Active"}, (env, logical)
            for name in POWERTOOLS_ENVIRONMENT:
                assert variables.get(name), (env, logical, name)
            assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "MLOps", (env, logical)
            assert variables["POWERTOOLS_SERVICE_NAME"].startswith(f"mlops-{env}-"), (env, logical)
            # AND the tracer is never switched off in a deployed function
            assert "POWERTOOLS_TRACE_DISABLED" not in variables, (env, logical)
