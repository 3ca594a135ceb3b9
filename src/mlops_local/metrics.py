"""CloudWatch in the local cloud: embedded-metric-format logs become metrics, and alarms evaluate.

In AWS, a Lambda function that prints an embedded metric format (EMF) document to stdout gets
metrics in CloudWatch, and metric alarms are evaluated every period. moto stores metrics and
alarms but does neither, so the local cloud does both:

- :func:`emf_metric_data` turns one EMF document (what Powertools ``Metrics`` prints) into
  ``PutMetricData`` entries; the Lambda runtime forwards every EMF line its functions print.
- :class:`AlarmEvaluator` evaluates each metric alarm against the stored datapoints, sets its
  state and, on a change, publishes the alarm's notification to its SNS actions, as CloudWatch
  does.

Local differences, on purpose: an alarm whose metric has no datapoints in its evaluation range is
left as it is (tests and the CLI may set states by hand, and those stay until data arrives), a
state set by anyone other than the evaluator is kept, alarms on metric math and percentiles are
not evaluated (listed in ``skipped``), and the evaluation range is the alarm's periods in real
time. As in CloudWatch, an alarm only sees a metric whose dimension set is exactly its own (moto
alone would also match metrics with more dimensions).

Examples
--------
>>> doc = {"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "MLOps",
...        "Dimensions": [["service"]], "Metrics": [{"Name": "Predictions", "Unit": "Count"}]}]},
...        "service": "mlops-dev-inference", "Predictions": [1.0]}
>>> [(ns, d["MetricName"], d["Value"]) for ns, d in emf_metric_data(doc)]
[('MLOps', 'Predictions', 1.0)]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EVALUATOR_REASON = "local alarm evaluation"
# The statistics CloudWatch's GetMetricStatistics computes (percentiles need raw samples).
_STATISTICS = ("Sum", "Average", "Maximum", "Minimum", "SampleCount")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def emf_documents(text: str) -> list[dict[str, Any]]:
    """The EMF documents among the lines of ``text`` (other lines, and broken JSON, are skipped)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("{") and '"_aws"' in line and "CloudWatchMetrics" in line):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("_aws"), dict):
            found.append(doc)
    return found


def emf_metric_data(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(namespace, MetricDatum)`` pairs for one EMF document: every dimension set × metric × value."""
    meta = doc.get("_aws", {})
    stamp = meta.get("Timestamp")
    timestamp = datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int | float) else datetime.now(UTC)
    data: list[tuple[str, dict[str, Any]]] = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace", "aws-embedded-metrics")
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", []):
            name = metric.get("Name")
            raw = doc.get(name)
            values = raw if isinstance(raw, list) else [raw]
            for dims in dimension_sets:
                if any(d not in doc for d in dims):
                    continue  # CloudWatch drops a dimension set whose value is missing
                dimensions = [{"Name": d, "Value": str(doc[d])} for d in dims]
                for value in values:
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        continue
                    datum: dict[str, Any] = {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": timestamp,
                        "Value": float(value),
                    }
                    if metric.get("Unit"):
                        datum["Unit"] = metric["Unit"]
                    data.append((namespace, datum))
    return data


def put_emf(cloudwatch: Any, documents: Iterable[dict[str, Any]]) -> int:
    """Store the metrics of EMF ``documents`` with ``PutMetricData``; returns how many datapoints."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        for namespace, datum in emf_metric_data(doc):
            by_namespace.setdefault(namespace, []).append(datum)
    count = 0
    for namespace, data in by_namespace.items():
        for start in range(0, len(data), 1000):  # the API's batch limit
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])
            count += len(data[start : start + 1000])
    return count


@dataclass
class Transition:
    """One alarm state change made by the evaluator."""

    alarm: str
    old: str
    new: str
    reason: str
    notified: list[str] = field(default_factory=list)


@dataclass
class AlarmEvaluator:
    """Evaluates metric alarms against stored datapoints and notifies their SNS actions on change.

    Parameters
    ----------
    client
        ``client(service)`` returns a boto3 client of the local cloud.
    region, account
        Used in the notification, as CloudWatch writes them.
    """

    client: Callable[[str], Any]
    region: str
    account: str
    transitions: list[Transition] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate every metric alarm once; returns the state changes made."""
        now = now or datetime.now(UTC)
        cloudwatch = self.client("cloudwatch")
        changes: list[Transition] = []
        with self._lock:
            for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
                for alarm in page.get("MetricAlarms", []):
                    change = self._evaluate_one(cloudwatch, alarm, now)
                    if change is not None:
                        changes.append(change)
            self.transitions.extend(changes)
        return changes

    def _evaluate_one(self, cloudwatch: Any, alarm: dict[str, Any], now: datetime) -> Transition | None:
        name = alarm["AlarmName"]
        statistic = alarm.get("Statistic")
        if alarm.get("Metrics") or statistic not in _STATISTICS:
            self.skipped[name] = "metric math or percentile alarms are not evaluated locally"
            return None
        current = alarm.get("StateValue", "INSUFFICIENT_DATA")
        reason_now = alarm.get("StateReason", "")
        untouched = current == "INSUFFICIENT_DATA" or reason_now.startswith(("Unchecked", EVALUATOR_REASON))
        if not untouched:
            return None  # a state someone set by hand stays until they change it
        dimensions = alarm.get("Dimensions", [])
        if not self._metric_exists(cloudwatch, alarm["Namespace"], alarm["MetricName"], dimensions):
            return None  # no metric with exactly these dimensions: CloudWatch sees no data either
        period = int(alarm.get("Period", 60))
        periods = int(alarm.get("EvaluationPeriods", 1))
        needed = int(alarm.get("DatapointsToAlarm") or periods)
        start = now - timedelta(seconds=period * periods)
        points = cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"],
            MetricName=alarm["MetricName"],
            Dimensions=dimensions,
            StartTime=start,
            EndTime=now + timedelta(seconds=1),
            Period=period,
            Statistics=[statistic],
        )["Datapoints"]
        if not points:
            return None
        compare = _COMPARE.get(alarm.get("ComparisonOperator", ""))
        if compare is None:
            self.skipped[name] = f"comparison {alarm.get('ComparisonOperator')} is not evaluated locally"
            return None
        threshold = float(alarm["Threshold"])
        values = [float(p[statistic]) for p in sorted(points, key=lambda p: p["Timestamp"])]
        breaching = sum(1 for v in values if compare(v, threshold))
        new = "ALARM" if breaching >= needed else "OK"
        if new == current:
            return None
        reason = (
            f"{EVALUATOR_REASON}: {breaching} of the last {len(values)} datapoints "
            f"[{', '.join(f'{v:g}' for v in values[-periods:])}] crossed the threshold "
            f"({alarm.get('ComparisonOperator')} {threshold:g}); {needed} needed"
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=new, StateReason=reason)
        change = Transition(alarm=name, old=current, new=new, reason=reason)
        actions = {"ALARM": "AlarmActions", "OK": "OKActions"}[new]
        for arn in alarm.get(actions, []):
            if arn.split(":")[2] == "sns":
                self.client("sns").publish(
                    TopicArn=arn,
                    Subject=f'{new}: "{name}" in {self.region}'[:100],
                    Message=json.dumps(self._notification(alarm, current, new, reason, now)),
                )
                change.notified.append(arn)
        return change

    @staticmethod
    def _metric_exists(cloudwatch: Any, namespace: str, name: str, dimensions: list[dict[str, str]]) -> bool:
        """Whether a metric has exactly these dimensions (moto also matches metrics with more)."""
        wanted = {(d["Name"], d["Value"]) for d in dimensions}
        for page in cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in sorted(wanted)]
        ):
            for metric in page.get("Metrics", []):
                if {(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])} == wanted:
                    return True
        return False

    def _notification(self, alarm: dict[str, Any], old: str, new: str, reason: str, now: datetime) -> dict[str, Any]:
        """The JSON body CloudWatch sends to an alarm's SNS topic."""
        return {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.account,
            "NewStateValue": new,
            "NewStateReason": reason,
            "StateChangeTime": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "Region": self.region,
            "AlarmArn": alarm.get("AlarmArn"),
            "OldStateValue": old,
            "Trigger": {
                "MetricName": alarm.get("MetricName"),
                "Namespace": alarm.get("Namespace"),
                "Statistic": str(alarm.get("Statistic", "")).upper(),
                "Dimensions": [{"name": d["Name"], "value": d["Value"]} for d in alarm.get("Dimensions", [])],
                "Period": alarm.get("Period"),
                "EvaluationPeriods": alarm.get("EvaluationPeriods"),
                "ComparisonOperator": alarm.get("ComparisonOperator"),
                "Threshold": alarm.get("Threshold"),
                "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            },
        }

    def start(self, interval_s: float = 2.0) -> None:
        """Evaluate every ``interval_s`` seconds on a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.evaluate()
                except Exception:  # noqa: S112 - the local endpoint may be stopping; try again next round
                    continue

        threading.Thread(target=loop, name="alarms", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
