"""The local cloud's CloudWatch and Scheduler: EMF → metrics, alarm evaluation → SNS, schedules fire."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_local.events import EventDispatcher
from mlops_local.metrics import AlarmEvaluator, emf_documents, emf_metric_data, put_emf
from mlops_local.runtime import FunctionSpec, LambdaRuntime

REGION = "us-east-1"
ACCOUNT = "123456789012"


def emf(name: str, value: float | list[float], **dims: str) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(datetime.now(UTC).timestamp() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": "MLOps", "Dimensions": [sorted(dims)], "Metrics": [{"Name": name, "Unit": "Count"}]}
            ],
        },
        **dims,
        name: value,
    }


@pytest.fixture
def aws() -> Iterator[Callable[[str], Any]]:
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            return clients.setdefault(service, boto3.client(service, region_name=REGION))

        yield client


def subscribed_queue(aws: Callable[[str], Any], topic_arn: str) -> str:
    url = aws("sqs").create_queue(QueueName="alarm-inbox")["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def put_alarm(aws: Callable[[str], Any], name: str, metric: str, **settings: Any) -> None:
    """A one-minute, one-period alarm on an MLOps metric, above its threshold."""
    aws("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="MLOps",
        MetricName=metric,
        Period=60,
        EvaluationPeriods=1,
        ComparisonOperator="GreaterThanThreshold",
        **settings,
    )


def messages(aws: Callable[[str], Any], url: str) -> list[dict[str, Any]]:
    found = aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(json.loads(m["Body"])["Message"]) for m in found]


def test_emf_lines_become_one_datum_per_dimension_set_metric_and_value() -> None:
    # GIVEN a log with a plain line, a broken EMF line and one EMF document with two values
    doc = emf("FeatureDriftScore", [0.5, 2.0], service="mlops-dev-monitor", model="churn")
    text = 'START RequestId: x\n{"_aws": {"CloudWatchMetrics": [\n' + json.dumps(doc) + "\n"
    # WHEN it is read
    docs = emf_documents(text)
    data = [d for document in docs for d in emf_metric_data(document)]
    # THEN only the document counts, with both values and both dimensions
    assert len(docs) == 1
    assert [(ns, d["MetricName"], d["Value"]) for ns, d in data] == [
        ("MLOps", "FeatureDriftScore", 0.5),
        ("MLOps", "FeatureDriftScore", 2.0),
    ]
    assert {x["Name"]: x["Value"] for x in data[0][1]["Dimensions"]} == {
        "model": "churn",
        "service": "mlops-dev-monitor",
    }


def test_a_dimension_set_with_a_missing_value_is_dropped() -> None:
    doc = emf("Predictions", 1.0, service="s")
    doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [["service", "model"], ["service"]]
    # THEN only the complete set is kept, as CloudWatch does
    assert [[x["Name"] for x in d["Dimensions"]] for _, d in emf_metric_data(doc)] == [["service"]]


def test_alarm_goes_to_alarm_notifies_sns_and_back_to_ok(aws: Callable[[str], Any]) -> None:
    # GIVEN an alarm on ModelsDrifted (Maximum >= 1) whose action is a topic with a queue subscribed
    topic = aws("sns").create_topic(Name="alerts")["TopicArn"]
    inbox = subscribed_queue(aws, topic)
    aws("cloudwatch").put_metric_alarm(
        AlarmName="drift",
        Namespace="MLOps",
        MetricName="ModelsDrifted",
        Dimensions=[{"Name": "service", "Value": "mlops-dev-monitor"}],
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
        OKActions=[topic],
    )
    evaluator = AlarmEvaluator(client=aws, region=REGION, account=ACCOUNT)
    # WHEN there is no data yet THEN nothing changes
    assert evaluator.evaluate() == []
    # WHEN a drifted run's metric arrives
    assert put_emf(aws("cloudwatch"), [emf("ModelsDrifted", 1.0, service="mlops-dev-monitor")]) == 1
    changes = evaluator.evaluate()
    # THEN the alarm fires and its topic gets CloudWatch's notification
    assert [(c.alarm, c.new) for c in changes] == [("drift", "ALARM")]
    alarm = aws("cloudwatch").describe_alarms(AlarmNames=["drift"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    [note] = messages(aws, inbox)
    assert note["NewStateValue"] == "ALARM" and note["Trigger"]["MetricName"] == "ModelsDrifted"
    # AND evaluating again changes nothing
    assert evaluator.evaluate() == []
    # WHEN ten minutes later the window holds only a clean run
    later = datetime.now(UTC) + timedelta(minutes=10)
    clean = emf("ModelsDrifted", 0.0, service="mlops-dev-monitor")
    clean["_aws"]["Timestamp"] = int(later.timestamp() * 1000)
    put_emf(aws("cloudwatch"), [clean])
    # THEN it returns to OK and says so on the topic
    assert [(c.old, c.new) for c in evaluator.evaluate(now=later)] == [("ALARM", "OK")]
    assert [n["NewStateValue"] for n in messages(aws, inbox)] == ["OK"]
    # AND an hour on, with no data in range, the state is left as it is
    assert evaluator.evaluate(now=later + timedelta(hours=1)) == []


def test_a_state_set_by_hand_is_kept(aws: Callable[[str], Any]) -> None:
    # GIVEN an alarm someone set to ALARM by hand, and data that would say OK
    put_alarm(aws, "canary", "PredictionErrors", Statistic="Sum", Threshold=5)
    aws("cloudwatch").set_alarm_state(AlarmName="canary", StateValue="ALARM", StateReason="forced by a test")
    put_emf(aws("cloudwatch"), [emf("PredictionErrors", 0.0)])
    # WHEN alarms are evaluated THEN the manual state stays
    assert AlarmEvaluator(client=aws, region=REGION, account=ACCOUNT).evaluate() == []
    alarm = aws("cloudwatch").describe_alarms(AlarmNames=["canary"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"


def test_percentile_alarms_are_listed_as_not_evaluated(aws: Callable[[str], Any]) -> None:
    put_alarm(aws, "latency", "PredictionLatency", ExtendedStatistic="p99", Threshold=500)
    evaluator = AlarmEvaluator(client=aws, region=REGION, account=ACCOUNT)
    assert evaluator.evaluate() == []
    assert "latency" in evaluator.skipped


def test_scheduler_schedule_fires_on_demand_to_its_target(aws: Callable[[str], Any]) -> None:
    # GIVEN a Scheduler schedule in a group, targeting a queue with a fixed input
    url = aws("sqs").create_queue(QueueName="monitor-starts")["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("scheduler").create_schedule_group(Name="mlops-dev-monitoring")
    aws("scheduler").create_schedule(
        Name="churn",
        GroupName="mlops-dev-monitoring",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler", "Input": '{"model": "churn"}'},
    )
    dispatcher = EventDispatcher(client=aws, invoke=lambda a, p: (b"", None), region=REGION, account=ACCOUNT)
    try:
        # WHEN it is fired by GROUP/NAME
        [delivery] = dispatcher.fire("mlops-dev-monitoring/churn")
        # THEN the target got the schedule's input
        assert delivery.error is None
        [message] = aws("sqs").receive_message(QueueUrl=url)["Messages"]
        assert json.loads(message["Body"]) == {"model": "churn"}
        # AND an unknown name is refused with a message naming it
        with pytest.raises(Exception, match="no rule or schedule named nope"):
            dispatcher.fire("nope")
    finally:
        dispatcher.stop()


def test_runtime_forwards_the_emf_lines_a_function_prints(tmp_path: Path) -> None:
    # GIVEN a function that prints a log line and an EMF document
    code = tmp_path / "code"
    code.mkdir()
    document = json.dumps(emf("Predictions", 1.0, service="s"))
    (code / "handler.py").write_text(
        f"import json\ndef handler(event, context):\n    print('hello')\n    print({document!r})\n    return 1\n"
    )
    seen: list[list[str]] = []
    runtime = LambdaRuntime(
        endpoint_url="http://127.0.0.1:1", region=REGION, account=ACCOUNT, log_dir=tmp_path, on_metrics=seen.append
    )
    runtime.register(
        FunctionSpec(
            name="f", arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f", handler="handler.handler", code_dir=code
        )
    )
    try:
        # WHEN it is invoked
        result = runtime.invoke("f", b"{}")
    finally:
        runtime.stop()
    # THEN the EMF line (and only it) reached the sink, and the log still has both lines
    assert result.function_error is None
    assert [emf_documents("\n".join(lines)) for lines in seen] == [[json.loads(document)]]
    assert "hello" in (tmp_path / "f.log").read_text()


def test_an_alarm_sees_only_metrics_with_exactly_its_dimensions(aws: Callable[[str], Any]) -> None:
    # GIVEN errors emitted with {model, service, version} (Powertools adds service to every metric)
    put_emf(
        aws("cloudwatch"), [emf("PredictionErrors", 9.0, model="churn", service="mlops-dev-inference", version="2")]
    )
    # AND one alarm naming only {model, version}, another naming all three
    partial = [{"Name": "model", "Value": "churn"}, {"Name": "version", "Value": "2"}]
    exact = [*partial, {"Name": "service", "Value": "mlops-dev-inference"}]
    put_alarm(aws, "partial", "PredictionErrors", Statistic="Sum", Threshold=5, Dimensions=partial)
    put_alarm(aws, "exact", "PredictionErrors", Statistic="Sum", Threshold=5, Dimensions=exact)
    # WHEN evaluated THEN only the exact one sees the data, as in CloudWatch (moto alone would match both)
    changes = AlarmEvaluator(client=aws, region=REGION, account=ACCOUNT).evaluate()
    assert [(c.alarm, c.new) for c in changes] == [("exact", "ALARM")]
